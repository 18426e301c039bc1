"""Timeouts, bounded retries (tenacity) and a circuit breaker per provider.

Two ways a provider is called:

* **background work** (nightly judging, summaries, write-backs, ``CascadingRouter.answer``):
  ``call_with_retries`` retries retryable errors (429, 5xx, timeouts, resets) with exponential
  backoff that honours ``Retry-After``, under the provider's breaker;
* **a live voice turn** (``CascadingRouter.answer_stream``): one attempt per tier, bounded by the
  turn's deadline (``RetryPolicy.single()``); the router moves on to the next tier instead of
  retrying, because a caller cannot wait for a backoff schedule.

The breaker: closed -> open after ``failure_threshold`` consecutive failures; after
``reset_after_s`` one trial call is let through (half-open): success closes it, failure opens it
again. A trial that ends in neither (cancelled by a barge-in, or abandoned by the caller's
deadline) gives the trial slot back (``release``); a trial that never reports back at all is
treated as lost after ``reset_after_s``, so a breaker can never stay open for good.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from callwise.routing.providers.base import ProviderError

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 3  # including the first call
    base_delay_s: float = 0.25
    max_delay_s: float = 4.0
    jitter: float = 0.1

    @classmethod
    def single(cls) -> RetryPolicy:
        """One attempt, no retry: what a live turn uses."""
        return cls(attempts=1)

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
    """Per-provider breaker; ``available`` is what the router asks before counting on a provider."""

    def __init__(self, name: str, failure_threshold: int = 3, reset_after_s: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.failure_threshold = failure_threshold
        self.reset_after_s = reset_after_s
        self._clock = clock
        self.failures = 0
        self.opened_at: float | None = None
        self._trial_started: float | None = None  # when the half-open trial was let through

    def _trial_in_flight(self) -> bool:
        if self._trial_started is None:
            return False
        if self._clock() - self._trial_started >= self.reset_after_s:
            self._trial_started = None  # the trial never reported back: lost, let another one through
            return False
        return True

    @property
    def state(self) -> str:
        """``closed``, ``open`` or ``half_open`` (a trial may be, or is being, made)."""
        if self.opened_at is None:
            return "closed"
        if self._clock() - self.opened_at >= self.reset_after_s:
            return "half_open"
        return "open"

    @property
    def available(self) -> bool:
        """Would a call be let through now (closed, or half-open with no trial in flight)?"""
        state = self.state
        return state == "closed" or (state == "half_open" and not self._trial_in_flight())

    def allow(self) -> bool:
        state = self.state
        if state == "closed":
            return True
        if state == "half_open" and not self._trial_in_flight():
            self._trial_started = self._clock()
            return True
        return False

    def check(self) -> None:
        if not self.allow():
            if self.state == "half_open":
                remaining = self.reset_after_s - (self._clock() - (self._trial_started or self._clock()))
            else:
                remaining = self.reset_after_s - (self._clock() - (self.opened_at or 0))
            raise CircuitOpen(self.name, max(0.0, remaining))

    def success(self) -> None:
        self.failures = 0
        self.opened_at = None
        self._trial_started = None

    def failure(self) -> None:
        self.failures += 1
        self._trial_started = None
        if self.opened_at is not None or self.failures >= self.failure_threshold:
            self.opened_at = self._clock()

    def release(self) -> None:
        """A call ended in neither success nor failure (cancelled): free the half-open trial slot."""
        self._trial_started = None


def no_redaction(text: str) -> str:
    return text


def _scrubbed(exc: ProviderError, redact: Callable[[str], str]) -> ProviderError:
    """Mask keys in a provider error's text: vendors echo the credentials they got in error bodies,
    and this text goes into cost events, stored turns, reports and API answers. ``redact`` is the
    process's (the wiring hands in ``callwise.infra.logs.redact``: registered secrets, common key shapes)."""
    text = str(exc)
    clean = redact(text)
    if clean != text:
        exc.args = (clean,)
    return exc


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, ProviderError) and exc.retryable and not isinstance(exc, CircuitOpen)


async def call_once(fn: Callable[[], Awaitable[T]], *, timeout_s: float | None,
                    breaker: CircuitBreaker, redact: Callable[[str], str] = no_redaction) -> T:
    """One attempt under the breaker with a timeout. Errors become ProviderError (counted against
    the breaker); cancellation releases the breaker's trial slot and propagates."""
    breaker.check()
    try:
        if timeout_s is None:
            result = await fn()
        else:
            result = await asyncio.wait_for(fn(), timeout=timeout_s)
    except TimeoutError:
        breaker.failure()
        raise ProviderError(f"timed out after {timeout_s:g}s", retryable=True, status=None) from None
    except ProviderError as exc:
        breaker.failure()
        raise _scrubbed(exc, redact) from None  # the cause may carry the secret being scrubbed
    except asyncio.CancelledError:
        breaker.release()
        raise
    except Exception as exc:  # a provider bug must not reach a live call
        breaker.failure()
        raise _scrubbed(ProviderError(f"{type(exc).__name__}: {exc}", retryable=False), redact) from exc
    except BaseException:
        breaker.release()
        raise
    breaker.success()
    return result


async def call_with_retries(fn: Callable[[], Awaitable[T]], *, timeout_s: float | None, policy: RetryPolicy,
                            breaker: CircuitBreaker, redact: Callable[[str], str] = no_redaction) -> T:
    """Run ``fn`` under the breaker with a per-attempt timeout; retry retryable errors with backoff
    (tenacity). Every failed attempt counts against the breaker. Raises ProviderError on final failure."""

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome is not None else None
        retry_after = exc.retry_after if isinstance(exc, ProviderError) else None
        return policy.delay(state.attempt_number, retry_after)

    retrying = AsyncRetrying(stop=stop_after_attempt(max(1, policy.attempts)), wait=wait,
                             retry=retry_if_exception(_retryable), reraise=True)
    async for attempt in retrying:
        with attempt:
            return await call_once(fn, timeout_s=timeout_s, breaker=breaker, redact=redact)
    raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover


HOLDING_LINE = "Let me check that for you."


@dataclass
class TurnDeadline:
    """The time budget of one live turn, from the caller's end of speech (``time.perf_counter``).

    Before any word is out, a tier with another available tier after it gets until
    ``first_word_at`` to produce its first output; one that misses it is abandoned (the router moves
    to the next tier). Whatever is running, the caller hears the holding line at ``first_word_at`` if
    nothing has been said, so something is said within the budget. After that, each further tier
    gets ``after_hold_s`` to its first token (the router streams it, no more cascading); the last
    available tier is waited for until ``give_up_at`` (abandoning it would only leave the apology),
    and nothing starts after ``give_up_at``: the caller gets the apology and a handoff.
    """

    first_word_at: float
    give_up_at: float
    after_hold_s: float
    holding_line: str = HOLDING_LINE
    min_slice_s: float = 0.15  # less time than this before the first-word deadline: say the holding line now

    @classmethod
    def starting(cls, start: float, first_word_s: float, give_up_s: float,
                 holding_line: str = HOLDING_LINE) -> TurnDeadline:
        return cls(start + first_word_s, start + max(first_word_s, give_up_s), first_word_s, holding_line)

    def first_output_timeout(self, tier_timeout_s: float, *, words_out: bool, last: bool = False) -> float | None:
        """Seconds the next attempt may take to its first output; None when the turn is out of time."""
        now = time.perf_counter()
        left = self.give_up_at - now
        if left <= 0:
            return None
        if last:
            return min(tier_timeout_s, left)
        if not words_out and self.first_word_at - now >= self.min_slice_s:
            return min(tier_timeout_s, self.first_word_at - now)
        return min(tier_timeout_s, left, self.after_hold_s)

    def hold_now(self, *, words_out: bool) -> bool:
        """Should the holding line be said before the next attempt?"""
        return not words_out and self.first_word_at - time.perf_counter() < self.min_slice_s
