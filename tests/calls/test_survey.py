"""Spoken survey answers -> 1-5 ratings."""

from __future__ import annotations

import pytest

from callwise.calls.survey import parse_answer, parse_rating


@pytest.mark.parametrize("text, rating", [
    ("four", 4),
    ("Four.", 4),
    ("4", 4),
    ("4 out of 5", 4),
    ("four out of five", 4),
    ("I'd give it a 5/5", 5),
    ("I'd say a solid three", 3),
    ("Two.", 2),
    ("one", 1),
    ("eight out of ten", 4),
    ("10 out of 10", 5),
    ("three stars", 3),
    ("90 percent", 5),
    ("4.5 out of 5", 5),
    ("pretty bad", 2),
    ("not great honestly", 2),
    ("not bad", 3),
    ("it was fine", 3),
    ("okay I guess", 3),
    ("pretty good", 4),
    ("great, thanks", 4),
    ("excellent", 5),
    ("very helpful", 5),
    ("terrible", 1),
    ("the worst support I've had", 1),
])
def test_rating_table(text: str, rating: int) -> None:
    assert parse_rating(text)[0] == rating


@pytest.mark.parametrize("text", ["", "hmm let me think", "version 2.5", "seven", "I don't know"])
def test_unparseable_answers(text: str) -> None:
    assert parse_rating(text) == (None, None)


def test_low_ratings_need_followup() -> None:
    low = parse_answer("two out of five", "the agent could not find my invoice")
    assert low.rating == 2 and low.requires_followup
    assert low.feedback_text == "two out of five the agent could not find my invoice"
    high = parse_answer("five", "")
    assert high.rating == 5 and not high.requires_followup and high.understood
    assert not parse_answer("no idea").understood
