"""Stages for a call in another language (``callwise.calls.languages``).

The agent's fixed lines are said in the call's language by ``TurnContext.say`` (``localize``); these
stages do what a line cannot:

* ``CallLanguage``: once per call, stores the language on the session; a caller in a language
  callwise does not serve hears one English sentence naming the served languages.
* ``AskForPersonInLanguage``: "quiero hablar con una persona" is an explicit request for a human
  (``callwise.handoff.phrases``; the English rules run before it).
* ``EnglishSourcesNotice``: before the first answer read from the English knowledge base by the
  extractive tier, the caller is told once, in their language, that the answer is read from
  English documentation; the sentences that follow are the English ones, untranslated.
"""

from __future__ import annotations

import logging
from typing import Any

from callwise.calls import languages
from callwise.calls.context import TurnContext
from callwise.calls.stages.escalate import escalate
from callwise.handoff import phrases
from callwise.handoff.escalation import Escalation

log = logging.getLogger("callwise.turn")


async def org_language(pool: Any, organization_id: str) -> str | None:
    """The organization's language setting (``organizations.language``, migration 0014), if any."""
    try:
        return await pool.fetchval("select language from organizations where id = $1", organization_id)
    except Exception:  # noqa: BLE001 - a database before migration 0014
        log.warning("could not read the organization's language", exc_info=True)
        return None


class CallLanguage:
    """Stage: the call's language, stored once; an unserved language gets the English notice."""

    name = "call_language"

    async def run(self, ctx: TurnContext) -> None:
        call = ctx.call
        if call.language_stored:
            return
        call.language_stored = True
        choice = call.language_choice
        if call.persist and call.session_id is not None:
            try:
                await ctx.deps.pool.execute(
                    "update sessions set language = $3 where organization_id = $1 and id = $2",
                    call.organization_id, call.session_id, call.language)
            except Exception:  # noqa: BLE001 - a database before migration 0014: the turn goes on
                log.warning("could not store the call's language", exc_info=True)
        if choice is not None and not choice.supported:
            await ctx.say(languages.unsupported_notice())
            hit = Escalation("explicit_request", f"unsupported_language:{choice.requested}", [choice.requested or ""])
            await ctx.say(" " + await escalate(ctx, hit, with_reason=False))
            ctx.finish("escalation")


class AskForPersonInLanguage:
    """Stage: an explicit request for a person in the call's language."""

    name = "escalate_in_language"

    async def run(self, ctx: TurnContext) -> None:
        lang = ctx.call.language
        if lang == languages.DEFAULT:
            return
        found = phrases.match(ctx.text, lang)
        if found is None:
            return
        reason, words = found
        hit = Escalation(reason, f"phrases_{lang}", [words])  # type: ignore[arg-type]
        await ctx.say(await escalate(ctx, hit))
        ctx.finish("escalation")


def extractive_only(router: Any) -> bool:
    """Every tier of the router reads sentences out of the sources (no generative model), so the
    answer will be the English documentation's own sentences."""
    tiers = getattr(router, "tiers", None)
    if not tiers:
        return False
    return not any(getattr(t.provider, "generative", True) for t in tiers)


class EnglishSourcesNotice:
    """Stage: once per call, before an English extractive answer to a caller in another language."""

    name = "english_notice"

    async def run(self, ctx: TurnContext) -> None:
        call = ctx.call
        if call.language == languages.DEFAULT or call.english_notice_given:
            return
        if not ctx.sources or not extractive_only(ctx.deps.router):
            return
        call.english_notice_given = True
        await ctx.say(languages.line(languages.ENGLISH_DOCS, call.language) + " ")
