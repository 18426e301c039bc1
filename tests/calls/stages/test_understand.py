"""Query understanding alone: statements, greetings, follow-ups and the standalone question."""

from __future__ import annotations

import pytest

from callwise.calls.memory import CallMemory
from callwise.calls.stages.understand import is_follow_up, is_statement, key_terms, understand


@pytest.mark.parametrize("text", [
    "Hi, I upgraded our workspace to the Business plan about two weeks ago.",
    "We moved our whole company onto the Enterprise plan last month.",
    "Alright, so we should wait for the retry after header and then try again.",
    "Good morning!",
])
def test_statements_ask_nothing(text: str) -> None:
    assert is_statement(text)


@pytest.mark.parametrize("text", [
    "It turns out we don't really need it, can I still get a full refund?",
    "Hi there, I forgot my password and I can't get into my account.",
    "Hey, our nightly sync script keeps failing with error E four two nine zero.",
    "how do I stop one of them",
    "Tell me about the SLA",
    "I need to change the email on my account",
    # typed without a question mark (bench/data/orbitly/queries.jsonl): questions all the same
    "we changed our company address, can I fix last month's invoice",
    "our school is tax exempt, how do we stop paying sales tax",
    "SKU-88A",
    "email field is greyed out and says managed by your organization",
])
def test_questions_and_problem_reports_are_answered(text: str) -> None:
    assert not is_statement(text)


def test_follow_up_carries_the_previous_question_terms() -> None:
    assert is_follow_up("How do I stop one of them?")
    assert is_follow_up("And on the annual plan?")
    assert is_follow_up("What happens to our data then?")
    assert not is_follow_up("How long does a refund take to reach my card?")
    u = understand("How do I stop one of them?", last_question="Which integrations sync calendars?", facts=[])
    assert u.kind == "question" and {"integrations", "sync", "calendars"} <= set(u.carried)
    assert u.query.startswith("How do I stop one of them?")
    standalone = understand("How long does a refund take to reach my card?", last_question="How do I set up Okta?",
                            facts=[])
    assert standalone.carried == () and standalone.query == "How long does a refund take to reach my card?"


def test_a_stated_fact_reaches_the_next_question() -> None:
    u = understand("Can I still get a full refund?", last_question=None,
                   facts=["I upgraded our workspace to the Business plan about two weeks ago"])
    assert {"upgraded", "workspace", "business", "plan"} <= set(u.carried)
    assert "refund" not in u.carried  # the question's own words are not repeated


def test_key_terms_drop_stopwords_and_repeats() -> None:
    assert key_terms("How do I reset my password, my PASSWORD?") == ["reset", "password"]


def test_history_is_bounded_by_tokens_and_keeps_the_newest() -> None:
    memory = CallMemory()
    for i in range(30):
        memory.add("user", f"question number {i} " + "word " * 20)
        memory.add("assistant", f"answer number {i} " + "word " * 20)
    history = memory.history(max_tokens=200)
    assert 0 < len(history) < 10
    assert history[-1].role == "assistant" and "answer number 29" in history[-1].content
    assert sum(len(m.content) // 4 + 5 for m in history) <= 200 + 10 * len(history)


def test_facts_steer_retrieval_not_the_answerers_question() -> None:
    u = understand("Can I still get a full refund?", last_question=None,
                   facts=["I upgraded our workspace to the Business plan about two weeks ago"])
    assert "upgraded" in u.query and u.answer_query == "Can I still get a full refund?"
    follow = understand("How do I stop one of them?", last_question="Which integrations sync calendars?", facts=[])
    assert follow.answer_query == follow.query and "integrations" in follow.answer_query
