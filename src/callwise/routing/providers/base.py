"""The provider interface: ``generate`` and ``stream`` with token accounting and optional logprobs."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Sequence

from callwise.routing.types import Generation, Grounding, Message


class ProviderError(Exception):
    """A failed provider call. ``retryable`` for rate limits, 5xx, timeouts and dropped connections;
    ``overflow`` when the model rejected the prompt for length (the router retries once, smaller)."""

    def __init__(self, message: str, *, retryable: bool = False, status: int | None = None,
                 retry_after: float | None = None, overflow: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status = status
        self.retry_after = retry_after
        self.overflow = overflow


def is_retryable_status(status: int | None) -> bool:
    return status is not None and (status == 429 or status == 408 or status >= 500)


class GenerationStream:
    """Async-iterates text deltas; ``result`` holds the Generation once the stream is exhausted."""

    def __init__(self, source: AsyncIterator[str | Generation]) -> None:
        self._source = source
        self.result: Generation | None = None

    def __aiter__(self) -> GenerationStream:
        return self

    async def __anext__(self) -> str:
        while True:
            item = await self._source.__anext__()
            if isinstance(item, Generation):
                self.result = item
                continue
            if item:
                return item

    async def aclose(self) -> None:
        aclose = getattr(self._source, "aclose", None)
        if aclose is not None:
            await aclose()


class Provider(ABC):
    """One model behind one vendor API. Subclasses translate their SDK's errors into ProviderError
    and fill the Generation's token counts (``input_tokens`` = whole prompt, cached included)."""

    name: str = "provider"
    supports_logprobs: bool = False
    #: False for answerers that cannot follow instructions (extractive): never used as a judge.
    generative: bool = True

    def __init__(self, model: str) -> None:
        self.model = model

    @property
    def key(self) -> str:
        return f"{self.name}:{self.model}"

    @abstractmethod
    async def generate(self, messages: Sequence[Message], *, temperature: float = 0.2, max_tokens: int = 512,
                       logprobs: bool = False, grounding: Grounding | None = None) -> Generation: ...

    def stream(self, messages: Sequence[Message], *, temperature: float = 0.2, max_tokens: int = 512,
               logprobs: bool = False, grounding: Grounding | None = None) -> GenerationStream:
        return GenerationStream(self._stream(messages, temperature=temperature, max_tokens=max_tokens,
                                             logprobs=logprobs, grounding=grounding))

    async def _stream(self, messages: Sequence[Message], *, temperature: float, max_tokens: int,
                      logprobs: bool, grounding: Grounding | None) -> AsyncIterator[str | Generation]:
        """Default: one delta with the whole text. Vendors with streaming APIs override."""
        gen = await self.generate(messages, temperature=temperature, max_tokens=max_tokens, logprobs=logprobs,
                                  grounding=grounding)
        gen.ttft_ms = gen.latency_ms
        yield gen.text
        yield gen

    async def aclose(self) -> None:
        return None


class Stopwatch:
    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.first: float | None = None

    def mark_first(self) -> None:
        if self.first is None:
            self.first = time.perf_counter()

    @property
    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.start) * 1000

    @property
    def ttft_ms(self) -> float | None:
        return None if self.first is None else (self.first - self.start) * 1000


def merge_roles(messages: Sequence[Message]) -> tuple[str, list[tuple[str, list[Message]]]]:
    """System text joined, then consecutive same-role messages grouped (vendors that need alternation)."""
    system = "\n\n".join(m.content for m in messages if m.role == "system")
    turns: list[tuple[str, list[Message]]] = []
    for m in messages:
        if m.role == "system":
            continue
        if turns and turns[-1][0] == m.role:
            turns[-1][1].append(m)
        else:
            turns.append((m.role, [m]))
    return system, turns
