"""Anthropic Messages API (anthropic SDK) with prompt caching: ``cache_control`` breakpoints on the
system prompt and on the knowledge context, so repeated turns over the same sources read them from
the cache (billed at the cache-read price)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import anthropic

from callwise.routing.budget import is_overflow
from callwise.routing.providers.base import Provider, ProviderError, Stopwatch, is_retryable_status, merge_roles
from callwise.routing.types import Generation, Grounding, Message

EPHEMERAL = {"type": "ephemeral"}
MAX_BREAKPOINTS = 4  # the API allows four cache_control blocks per request


def translate_error(exc: Exception) -> ProviderError:
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, anthropic.APIStatusError):
        status = exc.status_code
        retry_after = None
        try:
            ra = exc.response.headers.get("retry-after")
            retry_after = float(ra) if ra else None
        except (TypeError, ValueError):
            pass
        # 529 overloaded_error is Anthropic's "try again"
        return ProviderError(f"HTTP {status}: {exc.message}", status=status,
                             retryable=is_retryable_status(status), retry_after=retry_after,
                             overflow=is_overflow(status, str(exc.message)))
    if isinstance(exc, anthropic.APIConnectionError):
        return ProviderError(f"{type(exc).__name__}: {exc}", retryable=True)
    return ProviderError(f"malformed response: {type(exc).__name__}: {exc}", retryable=False)


def to_request(messages: Sequence[Message]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(system blocks, messages) with cache breakpoints where ``Message.cache`` asks for them."""
    budget = MAX_BREAKPOINTS
    system_msgs = [m for m in messages if m.role == "system"]
    system: list[dict[str, Any]] = []
    for m in system_msgs:
        block: dict[str, Any] = {"type": "text", "text": m.content}
        if m.cache and budget:
            block["cache_control"] = EPHEMERAL
            budget -= 1
        system.append(block)
    _, turns = merge_roles(messages)
    out = []
    for role, msgs in turns:
        content = []
        for m in msgs:
            block = {"type": "text", "text": m.content}
            if m.cache and budget:
                block["cache_control"] = EPHEMERAL
                budget -= 1
            content.append(block)
        out.append({"role": role, "content": content})
    return system, out


class AnthropicProvider(Provider):
    name = "anthropic"

    def __init__(self, model: str, *, api_key: str, base_url: str | None = None, timeout_s: float = 20.0,
                 client: anthropic.AsyncAnthropic | None = None) -> None:
        super().__init__(model)
        self.client = client or anthropic.AsyncAnthropic(api_key=api_key, base_url=base_url, timeout=timeout_s,
                                                         max_retries=0)

    def _params(self, messages: Sequence[Message], temperature: float, max_tokens: int) -> dict[str, Any]:
        system, msgs = to_request(messages)
        # The installed SDK (2.x) no longer takes sampling parameters for current Claude models, so
        # the tier's temperature is not sent.
        params: dict[str, Any] = {"model": self.model, "max_tokens": max_tokens, "messages": msgs}
        if system:
            params["system"] = system
        return params

    @staticmethod
    def _usage(input_tokens: int, cache_read: int | None, cache_write: int | None) -> tuple[int, int, int]:
        """Anthropic's input_tokens excludes cache reads and writes; ours is the whole prompt."""
        read, write = cache_read or 0, cache_write or 0
        return input_tokens + read + write, read, write

    async def generate(self, messages: Sequence[Message], *, temperature: float = 0.3, max_tokens: int = 1024,
                       logprobs: bool = False, grounding: Grounding | None = None) -> Generation:
        sw = Stopwatch()
        try:
            resp = await self.client.messages.create(**self._params(messages, temperature, max_tokens))
            text = "".join(getattr(b, "text", "") for b in resp.content if getattr(b, "type", "") == "text")
            u = resp.usage
            total, read, write = self._usage(u.input_tokens, u.cache_read_input_tokens, u.cache_creation_input_tokens)
        except Exception as exc:  # noqa: BLE001
            raise translate_error(exc) from exc
        return Generation(text=text, model=resp.model or self.model, input_tokens=total,
                          output_tokens=u.output_tokens, cached_tokens=read, cache_write_tokens=write,
                          latency_ms=sw.elapsed_ms, finish_reason=resp.stop_reason)

    async def _stream(self, messages: Sequence[Message], *, temperature: float, max_tokens: int, logprobs: bool,
                      grounding: Grounding | None) -> AsyncIterator[str | Generation]:
        sw = Stopwatch()
        parts: list[str] = []
        model, finish = self.model, None
        input_tokens = output_tokens = 0
        read = write = None
        try:
            stream = await self.client.messages.create(**self._params(messages, temperature, max_tokens), stream=True)
            async for event in stream:
                if event.type == "message_start":
                    model = event.message.model or model
                    u = event.message.usage
                    input_tokens, output_tokens = u.input_tokens, u.output_tokens
                    read, write = u.cache_read_input_tokens, u.cache_creation_input_tokens
                elif event.type == "content_block_delta" and getattr(event.delta, "type", "") == "text_delta":
                    sw.mark_first()
                    parts.append(event.delta.text)
                    yield event.delta.text
                elif event.type == "message_delta":
                    output_tokens = event.usage.output_tokens
                    finish = event.delta.stop_reason or finish
        except Exception as exc:  # noqa: BLE001
            raise translate_error(exc) from exc
        total, r, w = self._usage(input_tokens, read, write)
        yield Generation(text="".join(parts), model=model, input_tokens=total, output_tokens=output_tokens,
                         cached_tokens=r, cache_write_tokens=w, latency_ms=sw.elapsed_ms, ttft_ms=sw.ttft_ms,
                         finish_reason=finish)

    async def aclose(self) -> None:
        await self.client.close()
