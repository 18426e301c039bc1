"""Timeouts, bounded retries with exponential backoff, and a circuit breaker per provider."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass
from typing import Awaitable, Callable, TypeVar

from routing.providers.base import ProviderError

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 3  # including the first call
    base_delay_s: float = 0.25
    max_delay_s: float = 4.0
    jitter: float = 0.1

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Backoff before retry number ``attempt`` (1-based); honours Retry-After up to max_delay."""
        d = min(self.max_delay_s, self.base_delay_s * (2 ** (attempt - 1)))
        if retry_after is not None:
            d = min(self.max_delay_s, max(d, retry_after))
        return d * (1 + random.uniform(0, self.jitter))


class CircuitOpen(ProviderError):
    def __init__(self, provider: str, retry_in_s: float) -> None:
        super().__init__(f"circuit open for {provider} (retry in {retry_in_s:.1f}s)", retryable=False)


class CircuitBreaker:
    """closed -> open after ``failure_threshold`` consecutive failures; after ``reset_after_s`` one
    trial call is let through (half-open): success closes it, failure opens it again."""

    def __init__(self, name: str, failure_threshold: int = 3, reset_after_s: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.failure_threshold = failure_threshold
        self.reset_after_s = reset_after_s
        self._clock = clock
        self.failures = 0
        self.opened_at: float | None = None
        self._trial_in_flight = False

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return "closed"
        if self._clock() - self.opened_at >= self.reset_after_s:
            return "half_open"
        return "open"

    def allow(self) -> bool:
        state = self.state
        if state == "closed":
            return True
        if state == "half_open" and not self._trial_in_flight:
            self._trial_in_flight = True
            return True
        return False

    def check(self) -> None:
        if not self.allow():
            remaining = self.reset_after_s - (self._clock() - (self.opened_at or 0))
            raise CircuitOpen(self.name, max(0.0, remaining))

    def success(self) -> None:
        self.failures = 0
        self.opened_at = None
        self._trial_in_flight = False

    def failure(self) -> None:
        self.failures += 1
        self._trial_in_flight = False
        if self.opened_at is not None or self.failures >= self.failure_threshold:
            self.opened_at = self._clock()


async def call_with_retries(fn: Callable[[], Awaitable[T]], *, timeout_s: float, policy: RetryPolicy,
                            breaker: CircuitBreaker) -> T:
    """Run ``fn`` under the breaker with a per-attempt timeout; retry retryable errors with backoff.
    Every failed attempt counts against the breaker. Raises ProviderError on final failure."""
    last: ProviderError | None = None
    for attempt in range(1, policy.attempts + 1):
        breaker.check()
        try:
            result = await asyncio.wait_for(fn(), timeout=timeout_s)
        except asyncio.TimeoutError:
            last = ProviderError(f"timed out after {timeout_s:g}s", retryable=True, status=None)
        except ProviderError as exc:
            last = exc
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a provider bug must not reach a live call
            last = ProviderError(f"{type(exc).__name__}: {exc}", retryable=False)
        else:
            breaker.success()
            return result
        breaker.failure()
        if not last.retryable or attempt == policy.attempts:
            break
        await asyncio.sleep(policy.delay(attempt, last.retry_after))
    assert last is not None
    raise last
