"""Gemini through the google-genai SDK (``client.aio.models.generate_content[_stream]``).

Confidence uses the candidate's ``avgLogprobs``, which the Gemini API returns without being asked;
``request_logprobs=True`` also asks for per-token ``logprobsResult`` (not every model accepts it)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from callwise.routing.budget import is_overflow
from callwise.routing.providers.base import Provider, ProviderError, Stopwatch, is_retryable_status, merge_roles
from callwise.routing.types import Generation, Grounding, Message


def translate_error(exc: Exception) -> ProviderError:
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, genai_errors.APIError):
        code = int(exc.code) if exc.code else None
        return ProviderError(f"HTTP {code} {exc.status or ''}: {exc.message}".strip(), status=code,
                             retryable=is_retryable_status(code), overflow=is_overflow(code, str(exc.message)))
    name = type(exc).__module__ + "." + type(exc).__name__
    if any(k in name for k in ("httpx", "aiohttp", "Timeout", "Connect")) or isinstance(exc, (OSError, TimeoutError)):
        return ProviderError(f"{type(exc).__name__}: {exc}", retryable=True)
    return ProviderError(f"malformed response: {type(exc).__name__}: {exc}", retryable=False)


class GoogleProvider(Provider):
    name = "google"
    supports_logprobs = True

    def __init__(self, model: str, *, api_key: str, base_url: str | None = None, timeout_s: float = 20.0,
                 request_logprobs: bool = False, client: genai.Client | None = None) -> None:
        super().__init__(model)
        self.request_logprobs = request_logprobs
        options = types.HttpOptions(base_url=base_url, timeout=int(timeout_s * 1000),
                                    retry_options=types.HttpRetryOptions(attempts=1))  # the router retries
        self.client = client or genai.Client(api_key=api_key, http_options=options)

    def _request(self, messages: Sequence[Message], temperature: float, max_tokens: int,
                 logprobs: bool) -> tuple[list[types.Content], types.GenerateContentConfig]:
        system, turns = merge_roles(messages)
        contents = [types.Content(role="model" if role == "assistant" else "user",
                                  parts=[types.Part(text=m.content) for m in msgs]) for role, msgs in turns]
        config: dict[str, Any] = {"temperature": temperature, "max_output_tokens": max_tokens}
        if system:
            config["system_instruction"] = system
        if "2.5-flash" in self.model:  # a fast tier: no thinking tokens
            config["thinking_config"] = types.ThinkingConfig(thinking_budget=0)
        if logprobs and self.request_logprobs:
            config["response_logprobs"] = True
        return contents, types.GenerateContentConfig(**config)

    @staticmethod
    def _logprobs(candidate: Any) -> list[float] | None:
        result = getattr(candidate, "logprobs_result", None)
        if result is not None and result.chosen_candidates:
            values = [c.log_probability for c in result.chosen_candidates if c.log_probability is not None]
            if values:
                return values
        avg = getattr(candidate, "avg_logprobs", None)
        return [avg] if avg is not None else None

    @staticmethod
    def _usage(meta: Any) -> tuple[int, int, int]:
        if meta is None:
            return 0, 0, 0
        out = (meta.candidates_token_count or 0) + (meta.thoughts_token_count or 0)  # thoughts bill as output
        return meta.prompt_token_count or 0, out, meta.cached_content_token_count or 0

    async def generate(self, messages: Sequence[Message], *, temperature: float = 0.1, max_tokens: int = 512,
                       logprobs: bool = False, grounding: Grounding | None = None) -> Generation:
        sw = Stopwatch()
        contents, config = self._request(messages, temperature, max_tokens, logprobs)
        try:
            resp = await self.client.aio.models.generate_content(model=self.model, contents=contents, config=config)
            cand = resp.candidates[0] if resp.candidates else None
            if cand is None:
                raise ProviderError(f"no candidates (prompt feedback: {resp.prompt_feedback})")
            text = "".join(p.text or "" for p in (cand.content.parts if cand.content and cand.content.parts else []))
            tin, tout, cached = self._usage(resp.usage_metadata)
        except Exception as exc:  # noqa: BLE001
            raise translate_error(exc) from exc
        return Generation(text=text, model=resp.model_version or self.model, input_tokens=tin, output_tokens=tout,
                          cached_tokens=cached, logprobs=self._logprobs(cand), latency_ms=sw.elapsed_ms,
                          finish_reason=str(cand.finish_reason.value if cand.finish_reason else "") or None)

    async def _stream(self, messages: Sequence[Message], *, temperature: float, max_tokens: int, logprobs: bool,
                      grounding: Grounding | None) -> AsyncIterator[str | Generation]:
        sw = Stopwatch()
        contents, config = self._request(messages, temperature, max_tokens, logprobs)
        parts: list[str] = []
        meta = None
        lps: list[float] | None = None
        model, finish = self.model, None
        try:
            stream = await self.client.aio.models.generate_content_stream(model=self.model, contents=contents,
                                                                          config=config)
            async for chunk in stream:
                model = chunk.model_version or model
                meta = chunk.usage_metadata or meta
                for cand in chunk.candidates or []:
                    lps = self._logprobs(cand) or lps
                    if cand.finish_reason:
                        finish = str(cand.finish_reason.value)
                    for p in (cand.content.parts if cand.content and cand.content.parts else []):
                        if p.text:
                            sw.mark_first()
                            parts.append(p.text)
                            yield p.text
        except Exception as exc:  # noqa: BLE001
            raise translate_error(exc) from exc
        tin, tout, cached = self._usage(meta)
        yield Generation(text="".join(parts), model=model, input_tokens=tin, output_tokens=tout, cached_tokens=cached,
                         logprobs=lps, latency_ms=sw.elapsed_ms, ttft_ms=sw.ttft_ms, finish_reason=finish)

    async def aclose(self) -> None:
        try:
            await self.client.aio.aclose()
        except Exception:  # noqa: BLE001 - older SDKs have no aclose
            pass
