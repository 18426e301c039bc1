"""Query understanding: the standalone question a turn stands for, from the call's memory.

Offline and deterministic (no model call on the hot path):

* **follow-ups**: an elliptical or pronoun-led question ("how do I stop one of them?", "and on the
  annual plan?") gets the previous question's key terms carried in, so retrieval and the answerer
  see the topic it follows;
* **stated facts**: a statement that asks nothing ("I upgraded our workspace to the business plan
  about two weeks ago") is acknowledged with an invitation, and its key terms are carried into the
  next question's retrieval (not into the answerer's question: on the sample call, "can I still get
  a full refund" answered with the upgrade terms picked the sentence about the workspace moving back
  to Free; without them, the 30-day full refund sentence; a generative tier has the statement in
  the history anyway);
* everything else passes through unchanged.

With a generative tier in the router (a cloud key or an OpenAI-compatible server), a follow-up is
first rewritten into a standalone question by one short call to the cheapest such tier
(``callwise.routing.condense``), within ``condense_timeout_s``; on a timeout, an error or an unusable rewrite
the turn goes on with the offline carry-over above.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from callwise.calls.context import TurnContext
from callwise.calls.stages.send_offer import reply_to_offer
from callwise.routing.condense import CONDENSE_TIMEOUT_S, condenser_for
from callwise.routing.types import Message

log = logging.getLogger(__name__)

ACKNOWLEDGEMENT = "Thanks, I've noted that. What would you like to know?"
GREETING_REPLY = "Hello! What can I help you with today?"

_WORD = re.compile(r"[a-z0-9]+(?:['-][a-z0-9]+)*")
_STOP = frozenset("""
a about above after again against all also am an and any are aren't as at be because been before being below
between both but by can can't cannot could couldn't did didn't do does doesn't doing don't down during each few for
from further get got had hadn't has hasn't have haven't having he her here hers herself him himself his how i i'd
i'll i'm i've if in into is isn't it it's its itself just let's like me more most mustn't my myself no nor not now
of off on once one only or other ought our ours ourselves out over own really same shan't she should shouldn't so
some still such than that that's the their theirs them themselves then there there's these they they'd they'll
they're they've this those through to too under until up us very was wasn't we we'd we'll we're we've were weren't
what what's when when's where where's which while who who's whom why why's will with won't would wouldn't you
you'd you'll you're you've your yours yourself yourselves okay ok yes yeah hi hello hey thanks thank please well
so um uh oh alright right sure great got go going want wanted need needed know tell way thing things also again
many much able ago two three four five six seven eight nine ten weeks week days day months month years year
""".split())
_PRONOUN_LED = re.compile(
    r"^(?:and|also|but|so|then|what about|how about|same for|what if|or)\b|"
    r"\b(?:it|its|it's|them|they|those|these|that one|this one|one of them|either|both of them|that|this)\b|"
    r"\b(?:then|in that case|instead)\W*$",
    re.IGNORECASE)
#: a question or request anywhere in the turn ("we changed our address, can I fix the invoice")
_ASKING = re.compile(
    r"\b(?:how|what|what's|when|where|which|who|whom|whose|why|whether|"
    r"(?:can|could|do|does|did|will|would|should|shall|may|might|must|is|are|am|was|were|have|has)"
    r" (?:i|we|you|they|it|he|she|my|our|your|their|this|that|these|those|there|anyone|someone|people|"
    r"the|a|an|all|every|each)|"
    r"any way|possible to|tell me|explain|show me|walk me|step by step|let me know)\b", re.IGNORECASE)
#: a statement with one of these still asks for help ("I can't log in", "the export keeps failing")
_ASKS = re.compile(
    r"\b(?:can't|cannot|can not|couldn't|won't|doesn't|don't|didn't|isn't|aren't|wasn't|not|never|no longer|"
    r"unable|error|errors|fail|fails|failing|failed|broken|problem|issue|trouble|stuck|wrong|invalid|expired|"
    r"lost|forgot|forgotten|missing|help|need|needs|want|wants|wondering|wonder|looking for|trying to|try to|"
    r"how to|please|question|refund|cancel|charge|charged|declined|blocked|locked|blank|greyed|grayed|slow|"
    r"crash|crashes|crashed|cut|dropped|disconnected|stopped|keeps)\b", re.IGNORECASE)
#: a statement is a declarative sentence about the customer or their account
_DECLARATIVE_START = re.compile(
    r"^(?:(?:hi|hello|hey|okay|ok|so|well|alright|right|and|also|just|good (?:morning|afternoon|evening))"
    r"(?: there)?[,.!]*\s+)*(?:i|we|i've|we've|i'm|we're|i'd|we'd|our|my|the|this|that|it|it's|they|there)\b",
    re.IGNORECASE)
_CODE = re.compile(r"\b[A-Za-z]*-?\d{3,}[A-Za-z]*\b|\b[A-Z]{2,}-\w+\b")
_GREETING = re.compile(
    r"^(?:(?:hi|hello|hey|good (?:morning|afternoon|evening)|hiya|howdy|greetings)(?: there)?[,.! ]*"
    r"(?:(?:thanks|thank you)(?: for (?:taking|picking up|answering)(?: my call)?)?[,.! ]*)?"
    r"(?:how are you(?: doing)?(?: today)?[?.! ]*)?)$", re.IGNORECASE)


@dataclass(frozen=True)
class Understanding:
    """What the turn is: ``question`` (answer it), ``statement`` or ``greeting`` (acknowledge)."""

    kind: str
    query: str
    carried: tuple[str, ...] = ()
    answer_query: str = ""  # what the answerer is asked: the words plus terms carried from a question

    def __post_init__(self) -> None:
        if not self.answer_query:
            object.__setattr__(self, "answer_query", self.query)


def key_terms(text: str) -> list[str]:
    """Content words of ``text`` in order, without stopwords or repeats."""
    seen: list[str] = []
    for w in _WORD.findall(text.lower()):
        if w not in _STOP and len(w) > 1 and w not in seen:
            seen.append(w)
    return seen


def is_greeting(text: str) -> bool:
    return bool(_GREETING.match(text.strip()))


def is_statement(text: str) -> bool:
    """True when the turn asks nothing: a greeting, or a declarative sentence of five words or more
    about the customer ("I ...", "our ...") with no question mark, no question or request anywhere in
    it, no problem words ("I can't ...", "... keeps failing") and no error code. Fragments and bare
    codes are searches, not statements."""
    t = text.strip()[:2000]
    if not t or "?" in t:
        return False
    if is_greeting(t):
        return True
    if _ASKING.search(t) or _ASKS.search(t) or _CODE.search(t) or len(t.split()) < 5:
        return False
    return bool(_DECLARATIVE_START.match(t))


def points_back(text: str) -> bool:
    """The turn opens with "and", "what about" ... or refers back ("it", "them", "that one")."""
    return bool(_PRONOUN_LED.search(text.strip()))


#: words that only make sense against something said before: "too", "as well", "the same one", "the rest"
_LEANS = re.compile(r"\b(?:too|as well|also|either|instead|after all|anyway|again|the rest|the whole thing|ones?)\b",
                    re.IGNORECASE)
_DEFINITE = re.compile(r"\b(?:the|that|this|those|these|my|our) (\w+)", re.IGNORECASE)


def leans_back(text: str, previous: str | None) -> bool:
    """The turn leans on the previous question without a pronoun: it points back (``points_back``),
    uses a word that needs something said before ("too", "as well", "the same one", "the rest"), or
    names with "the"/"that"/"our" a thing the previous question named ("if I edit **the file**")."""
    t = text.strip()
    if points_back(t) or _LEANS.search(t):
        return True
    if not previous:
        return False
    before = {w.rstrip("s") for w in key_terms(previous)}
    return any(m.group(1).lower().rstrip("s") in before for m in _DEFINITE.finditer(t))


def is_follow_up(text: str) -> bool:
    """An elliptical or pronoun-led turn that leans on what was asked before."""
    t = text.strip()
    terms = key_terms(t)
    return bool(_PRONOUN_LED.search(t)) and len(terms) <= 4 or len(terms) <= 1


def understand(text: str, *, last_question: str | None, facts: list[str]) -> Understanding:
    """The turn's kind and its standalone question."""
    if is_greeting(text):
        return Understanding("greeting", text)
    if is_statement(text):
        return Understanding("statement", text)
    own = set(key_terms(text))
    from_question: list[str] = []
    if last_question and is_follow_up(text):
        from_question = [w for w in key_terms(last_question) if w not in own][:8]
    from_facts = [w for w in key_terms(facts[-1]) if w not in own and w not in from_question] if facts else []
    carried = (from_question + from_facts)[:8]
    if not carried:
        return Understanding("question", text)

    def with_terms(terms: list[str]) -> str:
        return f"{text.rstrip()} ({' '.join(terms)})" if terms else text

    return Understanding("question", with_terms(carried), tuple(carried), with_terms(from_question))


class UnderstandQuery:
    """Stage: set ``ctx.query``; acknowledge a statement or greeting and keep its facts."""

    name = "understand"

    def __init__(self, condense_timeout_s: float = CONDENSE_TIMEOUT_S) -> None:
        self.condense_timeout_s = condense_timeout_s

    async def run(self, ctx: TurnContext) -> None:
        if await reply_to_offer(ctx):  # "yes" to "shall I text you the command?" (callwise.calls.stages.send_offer)
            return
        memory = ctx.call.memory
        facts = memory.facts[-1:] if memory.last_user_kind() == "acknowledgement" else []
        u = understand(ctx.guarded, last_question=memory.last_question, facts=facts)
        if u.kind == "question":
            ctx.query, ctx.answer_query = u.query, u.answer_query
            if memory.last_question and is_follow_up(ctx.guarded):
                await self._condense(ctx)
            if ctx.query != ctx.guarded:
                ctx.outcome.query = ctx.query
            return
        ctx.query = ctx.guarded
        if u.kind == "statement" and not is_greeting(ctx.guarded):
            memory.add_fact(ctx.guarded)
            await ctx.say(ACKNOWLEDGEMENT)
        else:
            await ctx.say(GREETING_REPLY)
        ctx.finish("acknowledgement")

    async def _condense(self, ctx: TurnContext) -> None:
        """A follow-up rewritten by the cheapest generative tier; the offline carry-over stays when
        there is none, or it is too slow or its answer is not a usable question."""
        condenser = condenser_for(ctx.deps.router, timeout_s=self.condense_timeout_s)
        if condenser is None:
            return
        memory = ctx.call.memory
        history = memory.history(max_tokens=300) or [Message("user", memory.last_question or "")]
        res = await condenser.standalone(ctx.guarded, history)
        ctx.outcome.latencies["condense_ms"] = res.ms
        if res.question is None:
            log.info("condense fell back to key terms (%s): %s", res.model, res.reason)
            return
        ctx.query = ctx.answer_query = res.question
