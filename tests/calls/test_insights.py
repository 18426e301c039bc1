"""Support-call insights from what happened, and negation-aware sentiment."""

from callwise.calls.context import TurnOutcome
from callwise.calls.insights import support_insights
from callwise.calls.sentiment import by_speaker, sentiment


def test_negation_is_understood():
    assert sentiment("no problem") > 0 and sentiment("not bad") > 0
    assert sentiment("this is useless, I'm furious") < -0.5
    assert sentiment("I am not happy with the refund") < 0
    assert sentiment("") == 0.0 and sentiment("x" * 100_000) == 0.0


def test_by_speaker_averages_and_skips_empty_text():
    assert by_speaker([("a", "great, thanks"), ("a", "   "), ("b", "terrible")]) == {
        "a": sentiment("great, thanks"), "b": sentiment("terrible")}


def test_summary_topics_and_actions_come_from_the_call():
    turns = [
        TurnOutcome("how do I export my data?", answer="Open Settings, then Export.", kind="answer",
                    sources=[{"index": 1, "document": "kb/export.md", "title": "Exporting data"}]),
        TurnOutcome("what about invoices", answer="Invoices are under Billing.", kind="answer",
                    query="how do I export invoices", sources=[{"index": 1, "document": "kb/inv.md", "title": "Invoices"}]),
        TurnOutcome("this is useless, get me a person", answer="I've asked a colleague to call you back.",
                    kind="escalation"),
    ]
    ins = support_insights(turns, escalation={"reason": "explicit_request", "case": "CW-1042"})
    assert ins.topics == ["Exporting data", "Invoices"]
    assert "how do I export my data?" in ins.summary and "how do I export invoices?" in ins.summary
    assert "case CW-1042" in ins.summary and ins.action_items[0] == "Follow up on case CW-1042"
    assert ins.sentiment_scores["customer"] < 0
    assert [t["speaker"] for t in ins.transcript] == ["customer", "agent"] * 3


def test_a_call_with_nothing_asked_claims_nothing():
    ins = support_insights([TurnOutcome("hello", answer="Hi! How can I help?", kind="acknowledgement")])
    assert ins.summary == "" and ins.topics == [] and ins.action_items == []
