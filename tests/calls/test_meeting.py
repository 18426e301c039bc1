"""Meeting copilot: suggestions reach the rep only, over the callwise.suggestions text stream; insights land."""

from __future__ import annotations

import json
from typing import Any

from callwise.calls.meeting import (
    SUGGESTION_TOPIC,
    MeetingCopilot,
    MeetingDeps,
    RoomSuggestionSink,
    action_items,
    competitor_mentions,
    is_question,
    sentiment,
)


class FakeLocalParticipant:
    """Records what would go over the data channel (rtc.LocalParticipant.send_text's signature)."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    async def send_text(self, text: str, *, topic: str = "", attributes: dict[str, str] | None = None,
                        destination_identities: list[str] | None = None, reply_to_id: str | None = None) -> None:
        self.sent.append({"text": text, "topic": topic, "attributes": attributes,
                          "destination_identities": destination_identities})


def _deps(support_deps, pg_pool) -> MeetingDeps:  # type: ignore[no-untyped-def]
    return MeetingDeps(retriever=support_deps.retriever, router=support_deps.router, pool=pg_pool,
                       competitors=["Zendesk", "Intercom"], rep_prefix="rep-")


async def test_suggestions_go_only_to_the_rep(support_deps, kb_org, pg_pool) -> None:
    lp = FakeLocalParticipant()
    copilot = await MeetingCopilot.start(_deps(support_deps, pg_pool), organization_id=kb_org, room="meeting-1",
                                         sink=RoomSuggestionSink(lp))
    for who in ("rep-sam", "customer-ana", "customer-bo"):
        copilot.join(who)
    await copilot.on_utterance("rep-sam", "Thanks for joining, let's walk through the rollout.")
    answer = await copilot.on_utterance("customer-ana", "How long does a refund take to reach the card?")
    zendesk = await copilot.on_utterance("customer-bo", "Right now our support team lives in Zendesk.")
    todo = await copilot.on_utterance("rep-sam", "I'll send you the pricing sheet by Friday.")
    insights = await copilot.finish()

    assert [s.kind for s in answer] == ["answer"] and answer[0].sources[0]["document"] == "examples/kb/billing/refunds.md"
    assert [s.kind for s in zendesk] == ["competitor"]
    assert [s.kind for s in todo] == ["action_item"]
    assert lp.sent, "suggestions were published"
    for msg in lp.sent:
        assert msg["topic"] == SUGGESTION_TOPIC
        assert msg["destination_identities"] == ["rep-sam"], "never broadcast, never to the customer"
    cards = [json.loads(m["text"]) for m in lp.sent]
    assert {c["kind"] for c in cards} == {"answer", "competitor", "action_item"}

    row = await pg_pool.fetchrow("select * from conversation_insights where organization_id = $1 and session_id = $2",
                                 kb_org, copilot.session_id)
    assert len(json.loads(row["transcript"])) == 4 and row["summary"]
    assert json.loads(row["competitor_mentions"])[0]["competitor"] == "Zendesk"
    assert json.loads(row["action_items"]) == ["I'll send you the pricing sheet by Friday"]
    assert set(json.loads(row["sentiment_scores"])) == {"rep-sam", "customer-ana", "customer-bo"}
    assert insights.topics and "Refund" in insights.topics[0]
    speakers = await pg_pool.fetch("select speaker from turns where session_id = $1 order by seq", copilot.session_id)
    assert [r["speaker"] for r in speakers] == ["rep-sam", "customer-ana", "customer-bo", "rep-sam"]


async def test_no_rep_in_the_room_means_nothing_is_sent(support_deps, kb_org, pg_pool) -> None:
    lp = FakeLocalParticipant()
    copilot = await MeetingCopilot.start(_deps(support_deps, pg_pool), organization_id=kb_org, room="meeting-2",
                                         sink=RoomSuggestionSink(lp))
    found = await copilot.on_utterance("customer-ana", "We use Intercom today.")
    assert found and lp.sent == [], "an empty destination list would broadcast to everyone"
    await copilot.finish()


def test_detectors() -> None:
    assert is_question("Sure. First question, can we keep our data in Europe?")
    assert is_question("how much is the business plan")
    assert not is_question("We are happy with the rollout.")
    assert competitor_mentions("we moved off zendesk last year", ["Zendesk", "Gong"]) == ["Zendesk"]
    assert competitor_mentions("gongs and bells", ["Gong"]) == []
    assert action_items("Okay, please send me the pricing sheet by Friday so I can show my manager.")
    assert action_items("The weather is nice.") == []
    assert sentiment("this is great, thanks") > 0 > sentiment("this is a problem and too expensive")


async def test_near_simultaneous_finals_all_land_with_distinct_seqs(support_deps, kb_org, pg_pool) -> None:
    """Finals of several participants arrive at once: none may fail on unique(session_id, seq)."""
    import asyncio

    sink = FakeLocalParticipant()
    copilot = await MeetingCopilot.start(_deps(support_deps, pg_pool), organization_id=kb_org, room="meeting-race",
                                         sink=RoomSuggestionSink(sink))
    copilot.join("rep-sam")
    lines = [(f"customer-{i}", f"We moved off Zendesk last year, item {i}.") for i in range(12)]
    results = await asyncio.gather(*(copilot.on_utterance(who, text) for who, text in lines),
                                   return_exceptions=True)
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, errors[:1]
    assert all(len(r) == 1 and r[0].kind == "competitor" for r in results), "every utterance kept its suggestion"
    seqs = [r["seq"] for r in await pg_pool.fetch("select seq from turns where session_id = $1 order by seq",
                                                  copilot.session_id)]
    assert seqs == list(range(12))
    await copilot.finish()
