"""OpenAI chat completions (openai SDK), with logprobs for confidence."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import openai

from callwise.routing.budget import PER_MESSAGE_TOKENS, EstimateCounter, is_overflow
from callwise.routing.providers.base import Provider, ProviderError, Stopwatch, is_retryable_status
from callwise.routing.types import Generation, Grounding, Message


def translate_error(exc: Exception) -> ProviderError:
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, openai.APIStatusError):
        retry_after = None
        try:
            ra = exc.response.headers.get("retry-after")
            retry_after = float(ra) if ra else None
        except (TypeError, ValueError):
            pass
        return ProviderError(f"HTTP {exc.status_code}: {exc.message}", status=exc.status_code,
                             retryable=is_retryable_status(exc.status_code), retry_after=retry_after,
                             overflow=is_overflow(exc.status_code, str(exc.message)))
    if isinstance(exc, openai.APIConnectionError) or "TransportError" in _kinds(exc):  # timeouts included;
        return ProviderError(f"{type(exc).__name__}: {exc}", retryable=True)  # a stream's read errors come unwrapped
    return ProviderError(f"malformed response: {type(exc).__name__}: {exc}", retryable=False)


def _kinds(exc: BaseException | None) -> set[str]:
    """The class names in an exception's MRO: the openai SDK 3.x raises httpx2's exceptions, 1.x
    httpx's, with the same names."""
    return {c.__name__ for c in type(exc).__mro__} if exc is not None else set()


def dropped_before_output(exc: Exception) -> bool:
    """A stream that failed after the server took the request: the connection read failed or was
    closed mid-response, or a 5xx. Not a timeout (asking again would wait as long) and not a refused
    connection (nothing is listening: an outage)."""
    if isinstance(exc, openai.APITimeoutError):
        return False
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code >= 500
    kinds = _kinds(exc.__cause__ if isinstance(exc, openai.APIConnectionError) else exc)
    return "TransportError" in kinds and not kinds & {"ConnectError", "TimeoutException"}


def _stale_connection(exc: Exception) -> bool:
    kinds = _kinds(exc.__cause__ if isinstance(exc, openai.APIConnectionError) else exc)
    return bool(kinds & {"RemoteProtocolError", "ReadError"})


class OpenAIProvider(Provider):
    name = "openai"
    supports_logprobs = True
    #: the parameter that bounds output; OpenAI's own API wants max_completion_tokens
    max_tokens_param = "max_completion_tokens"

    def __init__(self, model: str, *, api_key: str, base_url: str | None = None, timeout_s: float = 20.0,
                 client: openai.AsyncOpenAI | None = None) -> None:
        super().__init__(model)
        # Retries are the router's job (bounded, with its breaker): the SDK's are off.
        self.client = client or openai.AsyncOpenAI(api_key=api_key, base_url=base_url, timeout=timeout_s,
                                                   max_retries=0)

    def _params(self, messages: Sequence[Message], temperature: float, max_tokens: int, logprobs: bool) -> dict[str, Any]:
        params: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "temperature": temperature,
            self.max_tokens_param: max_tokens,
        }
        if logprobs and self.supports_logprobs:
            params["logprobs"] = True
        return params

    async def generate(self, messages: Sequence[Message], *, temperature: float = 0.2, max_tokens: int = 512,
                       logprobs: bool = False, grounding: Grounding | None = None) -> Generation:
        sw = Stopwatch()
        try:
            resp = await self.client.chat.completions.create(**self._params(messages, temperature, max_tokens, logprobs))
            choice = resp.choices[0]
            text = choice.message.content or ""
            lps = None
            if choice.logprobs is not None and choice.logprobs.content:
                lps = [t.logprob for t in choice.logprobs.content]
            usage = resp.usage
            cached = 0
            if usage is not None and usage.prompt_tokens_details is not None:
                cached = usage.prompt_tokens_details.cached_tokens or 0
        except Exception as exc:  # noqa: BLE001
            raise translate_error(exc) from exc
        return Generation(
            text=text, model=resp.model or self.model,
            input_tokens=usage.prompt_tokens if usage else 0,
            output_tokens=usage.completion_tokens if usage else 0,
            cached_tokens=cached, logprobs=lps, latency_ms=sw.elapsed_ms, finish_reason=choice.finish_reason,
        )

    async def _stream(self, messages: Sequence[Message], *, temperature: float, max_tokens: int, logprobs: bool,
                      grounding: Grounding | None) -> AsyncIterator[str | Generation]:
        sw = Stopwatch()
        parts: list[str] = []
        lps: list[float] = []
        usage = None
        model = self.model
        finish = None
        try:
            stream = await self.client.chat.completions.create(
                **self._params(messages, temperature, max_tokens, logprobs), stream=True,
                stream_options={"include_usage": True})
            async for chunk in stream:
                model = chunk.model or model
                if chunk.usage is not None:
                    usage = chunk.usage
                for choice in chunk.choices:
                    if choice.logprobs is not None and choice.logprobs.content:
                        lps.extend(t.logprob for t in choice.logprobs.content)
                    if choice.finish_reason:
                        finish = choice.finish_reason
                    delta = choice.delta.content if choice.delta else None
                    if delta:
                        sw.mark_first()
                        parts.append(delta)
                        yield delta
        except Exception as exc:  # noqa: BLE001
            if not parts and dropped_before_output(exc):
                # llama.cpp's server fails a streamed prompt over its window after the request was
                # accepted: an empty 200, a dropped connection or a 500, at random. Ask once without
                # streaming: a length rejection comes back with the window's numbers, a dead server
                # refuses the connection (an outage stays an outage)
                raise await self._why_empty(messages, temperature, f"{type(exc).__name__}: {exc}") from exc
            raise translate_error(exc) from exc
        if finish is None:  # every complete stream ends with a finish_reason; a killed server just stops
            if not parts:
                # llama.cpp's server answers a streamed prompt over its window with an empty 200 (the
                # error is only in its log): ask once without streaming, which gets the 400 with the numbers
                raise await self._why_empty(messages, temperature)
            raise ProviderError(f"the stream ended mid-answer after {len(parts)} chunks (connection lost)",
                                retryable=True)
        cached = 0
        if usage is not None and usage.prompt_tokens_details is not None:
            cached = usage.prompt_tokens_details.cached_tokens or 0
        if usage is None:  # llama.cpp's server sends no usage on a stream: count rather than report 0
            counter = EstimateCounter()
            n_in = sum(counter.count(m.content) + PER_MESSAGE_TOKENS for m in messages)
            n_out = len(parts)  # llama.cpp and vLLM stream one token a chunk
        yield Generation(
            text="".join(parts), model=model,
            input_tokens=usage.prompt_tokens if usage else n_in,
            output_tokens=usage.completion_tokens if usage else n_out,
            cached_tokens=cached, logprobs=lps or None, latency_ms=sw.elapsed_ms, ttft_ms=sw.ttft_ms,
            finish_reason=finish,
        )

    async def _why_empty(self, messages: Sequence[Message], temperature: float, seen: str = "") -> ProviderError:
        """The error behind a stream that ended before any output (``seen``: how it ended, when not
        simply empty): a length rejection (with the server's window), a dead server, or unexplained."""
        how = f"the stream ended before any output{f' ({seen})' if seen else ''}"
        for attempt in range(3):
            try:
                await self.client.chat.completions.create(**self._params(messages, temperature, 1, False))
            except Exception as exc:  # noqa: BLE001
                if attempt < 2 and _stale_connection(exc):
                    continue  # the pooled keep-alive connection died with the stream: once more, on a new one
                err = translate_error(exc)
                if err.overflow:
                    return err
                return ProviderError(f"{how}; asked again: {err}", retryable=err.retryable, status=err.status)
            break
        return ProviderError(how, retryable=True)

    async def aclose(self) -> None:
        await self.client.close()
