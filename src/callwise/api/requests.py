"""Typed request bodies of the JSON API: pydantic validates them, and a bad body gets one 400 that names the field."""

from __future__ import annotations

import json
import uuid
from typing import Literal, TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from callwise.api.services import json_body
from callwise.calls.guard import clean_text

Mode = Literal["bm25", "vector", "hybrid", "hybrid+rerank"]
Modality = Literal["voice", "video", "screen_share", "text"]
Model = TypeVar("Model", bound=BaseModel)
#: a customer's turn: a typed question is far shorter; a longer one is refused rather than run through every stage
MAX_QUESTION_CHARS = 4000


class _Request(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


def _text(value: object, name: str) -> str:
    """Invalid UTF-8 arrives as lone surrogates: cleaned, stripped, and never empty."""
    text = clean_text(value if isinstance(value, str) else "").strip()
    if not text:
        raise ValueError(f"{name} is empty")
    return text


class SearchRequest(_Request):
    query: str
    mode: Mode = "hybrid+rerank"
    top_k: int = Field(5, ge=1, le=50, strict=True)

    @field_validator("query", mode="before")
    @classmethod
    def _query(cls, value: object) -> str:
        return _text(value, "query")


class AskRequest(_Request):
    """One customer turn of a support conversation. Without ``call_id`` it starts a conversation; with it,
    continues that one. ``end``: close the conversation after this turn (with a ``call_id``, the question
    may then be left out: the conversation is just closed). ``modality`` applies when a conversation starts."""

    call_id: str | None = None
    end: bool = Field(False, strict=True)
    modality: Modality = "text"
    question: str | None = Field(None, validate_default=True)

    @field_validator("call_id", mode="before")
    @classmethod
    def _call_id(cls, value: object) -> str | None:
        if value is None:
            return None
        try:
            return str(uuid.UUID(str(value)))
        except ValueError:
            raise ValueError("call_id is not a UUID (the call_id a previous /ask returned)") from None

    @field_validator("question", mode="before")
    @classmethod
    def _question(cls, value: object, info: ValidationInfo) -> str | None:
        blank = value is None or (isinstance(value, str) and not value.strip())
        if blank and info.data.get("end") and info.data.get("call_id"):
            return None  # just closing the conversation
        text = _text(value, "question")
        if len(text) > MAX_QUESTION_CHARS:
            raise ValueError(f"question is {len(text)} characters; a turn is at most {MAX_QUESTION_CHARS}")
        return text


def _message(exc: ValidationError) -> str:
    first = exc.errors()[0]
    field = ".".join(str(p) for p in first.get("loc", ())) or "body"
    return f"{field}: {first.get('msg', 'invalid')}".replace("Value error, ", "")


async def parse_body(request: web.Request, model: type[Model]) -> Model:
    """The request's JSON body as ``model``; 400 with the first problem, by field name, otherwise."""
    try:
        return model.model_validate(await json_body(request))
    except ValidationError as exc:
        raise web.HTTPBadRequest(text=json.dumps({"error": _message(exc)}), content_type="application/json") from None
