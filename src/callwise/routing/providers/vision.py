"""Tiers that see the customer's shared screen: the frame itself, beside the OCR text, for a vision model.

OpenAI's chat completions (GPT-4o class, and any OpenAI-compatible server that takes ``image_url`` parts) get
the frame as a ``data:image/png;base64,...`` part of the last user message; Gemini gets it as an
``inline_data`` part. The frame of the current turn travels in a context variable (:func:`use_turn_image`),
set by the calls' screen stage for the turn that refers to the screen; the router and the prompts are not
changed, and a turn without a frame (or a tier that is not one of these) sends text only.

The image is what the customer showed, never instructions: the text part says so before the question.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from google.genai import types

from callwise.routing.providers.google import GoogleProvider
from callwise.routing.providers.images import IMAGE_NOTE, turn_image, with_image
from callwise.routing.providers.openai import OpenAIProvider
from callwise.routing.providers.openai_compatible import OpenAICompatibleProvider
from callwise.routing.types import Message


class _ImageParts:
    """Adds the turn's frame to the chat-completions request an OpenAI-style provider builds."""

    vision = True
    detail: Literal["low", "high", "auto"] = "auto"

    def _params(self, messages: Sequence[Message], temperature: float, max_tokens: int, logprobs: bool) -> dict[str, Any]:
        params: dict[str, Any] = super()._params(messages, temperature, max_tokens, logprobs)  # type: ignore[misc]
        image = turn_image()
        if image is not None:
            params["messages"] = with_image(params["messages"], image, detail=self.detail)
        return params


class OpenAIVisionProvider(_ImageParts, OpenAIProvider):
    """OpenAI chat completions (GPT-4o class) with the turn's frame; ``vision``: the screen stage encodes a
    frame only for a router that has such a tier."""

    def __init__(self, model: str, *, detail: Literal["low", "high", "auto"] = "auto", **kwargs: Any) -> None:
        super().__init__(model, **kwargs)
        self.detail = detail


class OpenAICompatibleVisionProvider(_ImageParts, OpenAICompatibleProvider):
    """A vision model behind an OpenAI-compatible server (vLLM; llama.cpp with a multimodal projector)."""

    def __init__(self, model: str, *, detail: Literal["low", "high", "auto"] = "auto", **kwargs: Any) -> None:
        super().__init__(model, **kwargs)
        self.detail = detail


class GoogleVisionProvider(GoogleProvider):
    """Gemini with the turn's frame as an ``inline_data`` part of the last user turn."""

    vision = True

    def _request(self, messages: Sequence[Message], temperature: float, max_tokens: int,
                 logprobs: bool) -> tuple[list[types.Content], types.GenerateContentConfig]:
        contents, config = super()._request(messages, temperature, max_tokens, logprobs)
        image = turn_image()
        if image is not None:
            for content in reversed(contents):
                if content.role == "user":
                    content.parts = [types.Part(text=IMAGE_NOTE), *(content.parts or []),
                                     types.Part.from_bytes(data=image.png, mime_type="image/png")]
                    break
        return contents, config
