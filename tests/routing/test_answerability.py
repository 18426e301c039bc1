"""Answerability before composing: intents the help centre cannot answer, and the relevance bar."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from callwise.routing.answerability import (
    DEFAULT_BAR,
    OFFERS_PERSON,
    RelevanceBar,
    decide,
    intent_of,
    relevance_signals,
    relevant,
    reply_for,
)


@pytest.mark.parametrize(("text", "kind"), [
    ("are you a robot or a person?", "small_talk"),
    ("hi, how's your day been going", "small_talk"),
    ("got any good jokes about printers", "small_talk"),
    ("what's the weather going to be in Lisbon on Friday", "world_knowledge"),
    ("who won the super bowl last year", "world_knowledge"),
    ("what is the capital of Canada", "world_knowledge"),
    ("write me a poem about spreadsheets", "off_topic"),
    ("can you recommend a good monitor for design work", "off_topic"),
    ("any promo code I could use", "off_topic"),
    ("please cancel my subscription", "account_action"),
    ("refund me for the last invoice", "account_action"),
    ("could you change the card on file to my new one", "account_action"),
    ("I want a refund for the course", "account_action"),
    ("add two seats to our plan for me", "account_action"),
    ("what's your phone number, I want to talk to sales", "account_action"),
])
def test_out_of_scope_intents(text: str, kind: str) -> None:
    assert intent_of(text) == kind


@pytest.mark.parametrize("text", [
    "how do I cancel my subscription?",
    "can I switch my annual plan back to monthly billing right now",
    "how can we change the card we pay with",
    "why was my card charged twice",
    "restart the server without dropping connections",
    "close a file descriptor after fork",
    "what does the weather module in the sample app return",  # "weather" inside a question about the product
])
def test_questions_for_the_help_centre_pass(text: str) -> None:
    assert intent_of(text) is None


def _chunk(text: str, cosine: float, title: str = "") -> SimpleNamespace:
    return SimpleNamespace(text=text, title=title, stages={"vector": SimpleNamespace(rank=1, score=cosine)})


def test_relevance_bar_reads_similarity_and_covered_words() -> None:
    on_topic = [_chunk("To restart the server gracefully, send it the graceful signal; open connections finish.", 0.71,
                       "Stopping and restarting"), _chunk("Connections are closed after the timeout.", 0.55)]
    off = [_chunk("To restart the server gracefully, send it the graceful signal.", 0.22),
           _chunk("Connections are closed after the timeout.", 0.18)]
    q = "how do I restart the server gracefully"
    assert relevance_signals(q, on_topic)[0] == pytest.approx(0.71)
    assert relevance_signals("how do I install wordpress", on_topic)[2] == 0.0  # neither word is in the sources
    ok, p_ok = relevant(q, on_topic)
    bad, p_bad = relevant("how do I install wordpress plugins", off)
    assert ok and not bad and p_ok > p_bad
    assert relevant(q, []) == (False, 0.0)
    strict = RelevanceBar(DEFAULT_BAR.bias, DEFAULT_BAR.weights, bar=1.0)
    assert relevant(q, on_topic, strict)[0] is False


def test_decide_and_the_reply() -> None:
    assert decide("are you a bot", [])[0] == "small_talk"
    assert decide("close my account please", [])[0] == "account_action"
    assert decide("how do I restart it", [], None) == ("answer", None)  # no bar: intents only
    assert decide("how do I restart it", [])[0] == "no_source"
    for verdict in ("small_talk", "world_knowledge", "off_topic", "account_action", "no_source"):
        said = reply_for(verdict)  # type: ignore[arg-type]
        assert said.endswith("?")  # always an offer
        assert ("colleague" in said) == (verdict in OFFERS_PERSON)
    with pytest.raises(ValueError):
        reply_for("answer")


def test_a_named_product_no_source_mentions_counts_against_the_question() -> None:
    from callwise.routing.answerability import SIGNALS, is_common

    assert is_common("restart") and is_common("restarted") and is_common("folders")
    assert not is_common("wordpress") and not is_common("matplotlib")
    assert is_common("e-1042") and is_common("http2")  # codes are not product names
    sources = [_chunk("To restart the server gracefully, send it the graceful signal.", 0.5, "Stopping and restarting")]
    named = dict(zip(SIGNALS, relevance_signals("how do I restart wordpress gracefully", sources), strict=True))
    everyday = dict(zip(SIGNALS, relevance_signals("how do I restart the kettle gracefully", sources), strict=True))
    assert named["missing"] == everyday["missing"] == 1.0
    assert named["missing_named"] == 1.0 and everyday["missing_named"] == 0.0
    assert DEFAULT_BAR.probability(relevance_signals("how do I restart wordpress gracefully", sources)) < \
        DEFAULT_BAR.probability(relevance_signals("how do I restart the kettle gracefully", sources))
