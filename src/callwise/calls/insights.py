"""Insights of a finished support call: summary, topics, sentiment per speaker, action items.

Everything here is derived from what happened on the call (the turns, the articles the answers came
from, the escalation), so the summary is true without a model: the questions the customer asked,
the knowledge-base articles used, whether a person was asked to take over and with which case.
Sentiment is VADER's (``callwise.calls.sentiment``), negation-aware.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from callwise.calls.meeting import action_items
from callwise.calls.sentiment import by_speaker
from callwise.calls.store import InsightRecord

MAX_TOPICS = 5


def support_insights(outcomes: Sequence[Any], *, escalation: dict[str, Any] | None = None,
                     customer: str = "customer", agent: str = "agent") -> InsightRecord:
    """``outcomes``: the call's ``TurnOutcome`` list in order."""
    transcript: list[dict[str, Any]] = []
    for o in outcomes:
        transcript.append({"speaker": customer, "text": o.transcript})
        if o.answer:
            transcript.append({"speaker": agent, "text": o.answer})
    topics: list[str] = []
    for o in outcomes:
        if o.kind != "answer" or o.low_confidence:
            continue
        for s in o.sources[:1]:  # the article the answer leaned on most
            title = str(s.get("title") or s.get("document") or "").strip()
            if title and title not in topics:
                topics.append(title)
    questions = [o.query or o.transcript for o in outcomes if o.kind == "answer"]
    parts = []
    if questions:
        asked = "; ".join(q.strip().rstrip("?") + "?" for q in questions[:3])
        more = f" (and {len(questions) - 3} more)" if len(questions) > 3 else ""
        parts.append(f"The customer asked: {asked}{more}")
    if topics:
        parts.append(f"Answered from: {', '.join(topics[:MAX_TOPICS])}")
    actions: list[str] = []
    if escalation:
        case = escalation.get("case") or escalation.get("case_number")
        parts.append(f"Handed to a person ({escalation.get('reason', 'escalated')}"
                     f"{', case ' + str(case) if case else ''})")
        actions.append(f"Follow up on case {case}" if case else "Follow up on the escalation")
    for o in outcomes:
        actions.extend(a for a in action_items(o.answer or "") if a not in actions)
    return InsightRecord(
        transcript=transcript, summary=". ".join(parts) + ("." if parts else ""), topics=topics[:MAX_TOPICS],
        sentiment_scores=by_speaker([(t["speaker"], t["text"]) for t in transcript]),
        action_items=actions, next_steps=actions)
