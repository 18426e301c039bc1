"""Any OpenAI-compatible endpoint (vLLM, Ollama, a llama.cpp server) at a ``base_url``.

llama.cpp's server ignores ``max_completion_tokens`` and would generate to the end of its context,
so this provider bounds output with the older ``max_tokens``, which all of them honour.

Local servers render the chat with the model's own template, and many templates assume strictly
alternating turns: Gemma's and Mistral's raise on two user messages in a row, and Qwen 2.5 accepts
them but, given the sources and the question as two user turns, answered a git question by echoing
the question block or saying it had no information (issue 14). So consecutive messages of one role
are sent as one message (system text first, then alternating turns), as the Anthropic and Gemini
providers already do."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from callwise.routing.providers.base import merge_roles
from callwise.routing.providers.openai import OpenAIProvider
from callwise.routing.types import Message


def alternating(messages: Sequence[Message]) -> list[dict[str, str]]:
    """One system message (all system text joined), then one message per run of same-role messages."""
    system, turns = merge_roles(messages)
    out = [{"role": "system", "content": system}] if system else []
    out += [{"role": role, "content": "\n\n".join(m.content for m in group)} for role, group in turns]
    return out


class OpenAICompatibleProvider(OpenAIProvider):
    name = "openai_compatible"
    max_tokens_param = "max_tokens"
    #: a dropped stream counts as a length rejection only for a prompt estimated at least this share
    #: of the declared window (llama.cpp 0.3.36 may drop the connection instead of answering 400)
    overflow_share = 0.9

    def __init__(self, model: str, *, base_url: str, api_key: str | None = None, timeout_s: float = 20.0,
                 logprobs: bool = False, context_window: int | None = None) -> None:
        super().__init__(model, api_key=api_key or "not-needed", base_url=base_url, timeout_s=timeout_s)
        # Off by default: llama.cpp computes logprobs in Python over a 262k vocabulary (~0.5 s a token).
        self.supports_logprobs = logprobs
        self.context_window = context_window

    def _params(self, messages: Sequence[Message], temperature: float, max_tokens: int, logprobs: bool) -> dict[str, Any]:
        params = super()._params(messages, temperature, max_tokens, logprobs)
        params["messages"] = alternating(messages)
        return params
