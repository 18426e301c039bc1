"""Survey stages: the end-of-call rating once the customer says goodbye (``callwise.calls.survey`` parses it).

``Survey`` runs before the escalation rules (a "1" or "terrible" during the survey is a rating,
not frustration); ``Goodbye`` runs after them (a goodbye that asks for a human is escalated).
"""

from __future__ import annotations

import re

from callwise.calls import languages, survey
from callwise.calls.context import CallContext, TurnContext
from callwise.calls.store import ConversationStore

RETRY_RATING = "Sorry, I didn't catch that. Could you give me a number from one to five?"
_GOODBYE = re.compile(
    r"\b(?:that'?s all|that is all|that'?s everything|that'?s it for (?:now|today)|nothing else|"
    r"no (?:more|other|further) questions|good ?bye|bye(?: bye)?|have a (?:good|nice|great) (?:day|one))\b",
    re.IGNORECASE)


def is_goodbye(text: str, language: str = "en") -> bool:
    if language != "en":  # the caller's language, or English (callwise.calls.languages)
        return languages.is_goodbye(text, language)
    return bool(_GOODBYE.search(text[:2000]))


async def store_survey(call: CallContext, comment: str = "") -> None:
    """Store the rating (and comment) given so far; nothing when no rating was understood."""
    call.survey_phase = "done"
    answer = survey.parse_answer(call.survey_rating_text, comment, call.language)
    if answer.rating is None or not call.persist or call.session_id is None:
        return
    await ConversationStore(call.deps.pool, call.organization_id).add_survey(
        call.session_id, rating=answer.rating, feedback_text=answer.feedback_text or None,
        channel_used="voice" if call.modality != "text" else "chat", requires_followup=answer.requires_followup)


class Survey:
    """Stage: while the survey is running, the customer's words answer it."""

    name = "survey"

    async def run(self, ctx: TurnContext) -> None:
        call = ctx.call
        if call.survey_phase not in ("rating", "comment"):
            return
        ctx.finish("survey")
        if call.survey_phase == "rating":
            rating, _ = survey.parse_rating(ctx.text, call.language)
            if rating is None and call.rating_retries == 0:
                call.rating_retries += 1
                await ctx.say(RETRY_RATING)
                return
            call.survey_rating_text = ctx.text
            if rating is None:
                call.survey_phase = "done"
                await ctx.say(survey.CLOSING)
                return
            call.survey_phase = "comment"
            await ctx.say(survey.COMMENT_QUESTION)
            return
        await store_survey(call, comment=ctx.text)
        await ctx.say(survey.CLOSING)


class Goodbye:
    """Stage: a goodbye starts the survey (once per call)."""

    name = "goodbye"

    async def run(self, ctx: TurnContext) -> None:
        if ctx.call.survey_phase == "off" and is_goodbye(ctx.text, ctx.call.language):
            ctx.call.survey_phase = "rating"
            await ctx.say(survey.RATING_QUESTION)
            ctx.finish("survey")
