"""The typed request bodies: what a client may send, and the one message a bad body gets."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from callwise.api.requests import AskRequest, SearchRequest, _message


def test_defaults_and_cleaning() -> None:
    req = SearchRequest.model_validate({"query": "  refund policy \ud800 ", "extra": 1})
    assert (req.query, req.mode, req.top_k) == ("refund policy \ufffd", "hybrid+rerank", 5)
    assert AskRequest.model_validate({"question": "how do I reset my password"}).modality == "text"


@pytest.mark.parametrize(("model", "body", "field"), [
    (SearchRequest, {"query": "   "}, "query: query is empty"),
    (SearchRequest, {}, "query: Field required"),
    (SearchRequest, {"query": "x", "mode": "magic"}, "mode: Input should be"),
    (SearchRequest, {"query": "x", "top_k": 0}, "top_k: Input should be greater than or equal to 1"),
    (SearchRequest, {"query": "x", "top_k": "5"}, "top_k: Input should be a valid integer"),
    (AskRequest, {"question": "x", "modality": "fax"}, "modality: Input should be"),
    (AskRequest, {"question": None}, "question: question is empty"),
])
def test_a_bad_body_names_its_field(model, body, field) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationError) as info:
        model.model_validate(body)
    assert _message(info.value).startswith(field)


def test_an_ask_continues_or_ends_a_conversation_by_its_call_id() -> None:
    call_id = "3f2b8c1e-5a7d-4e9b-9c1a-2b3c4d5e6f70"
    req = AskRequest.model_validate({"call_id": call_id.upper(), "question": "and then?"})
    assert (req.call_id, req.question, req.end) == (call_id, "and then?", False)
    ending = AskRequest.model_validate({"call_id": call_id, "end": True})
    assert (ending.question, ending.end) == (None, True)


@pytest.mark.parametrize(("body", "message"), [
    ({"call_id": "CW-1001", "question": "hi"}, "call_id: call_id is not a UUID"),
    ({"end": True}, "question: question is empty"),  # ending needs the call to end
    ({"call_id": "3f2b8c1e-5a7d-4e9b-9c1a-2b3c4d5e6f70"}, "question: question is empty"),
    ({"question": "hi", "end": "yes"}, "end: Input should be a valid boolean"),
])
def test_a_bad_conversation_turn_names_its_field(body, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationError) as info:
        AskRequest.model_validate(body)
    assert _message(info.value).startswith(message)


def test_a_question_longer_than_a_turn_is_refused() -> None:
    AskRequest.model_validate({"question": "x" * 4000})
    with pytest.raises(ValidationError) as info:
        AskRequest.model_validate({"question": "how do refunds work " * 5_000})
    assert _message(info.value) == "question: question is 99999 characters; a turn is at most 4000"
