"""Any OpenAI-compatible endpoint (vLLM, Ollama, a llama.cpp server) at a ``base_url``.

llama.cpp's server ignores ``max_completion_tokens`` and would generate to the end of its context,
so this provider bounds output with the older ``max_tokens``, which all of them honour."""

from __future__ import annotations

from routing.providers.openai import OpenAIProvider


class OpenAICompatibleProvider(OpenAIProvider):
    name = "openai_compatible"
    max_tokens_param = "max_tokens"

    def __init__(self, model: str, *, base_url: str, api_key: str | None = None, timeout_s: float = 20.0,
                 logprobs: bool = False) -> None:
        super().__init__(model, api_key=api_key or "not-needed", base_url=base_url, timeout_s=timeout_s)
        # Off by default: llama.cpp computes logprobs in Python over a 262k vocabulary (~0.5 s a token).
        self.supports_logprobs = logprobs
