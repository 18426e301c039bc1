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
