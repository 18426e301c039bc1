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

Openings outlive a call: ``SharedBreakers`` writes each opening and closing to Postgres
(``breaker_openings``, migration 0015) and reads the others' every second, so a provider that one
worker process found down is skipped by every process on every host for the rest of its 30 s.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from callwise.routing.providers.base import ProviderError

T = TypeVar("T")

log = logging.getLogger("callwise.routing.breakers")


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
        self.changed_at: float | None = None  # when it last opened or closed (``clock``)
        # told when this breaker opens (True) or closes (False) by a call of this process (SharedBreakers)
        self.on_change: Callable[[CircuitBreaker, bool], None] | None = None

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
        was_open = self.opened_at is not None
        self.failures = 0
        self.opened_at = None
        self._trial_started = None
        if was_open:
            self.changed_at = self._clock()
            if self.on_change is not None:
                self.on_change(self, False)

    def failure(self) -> None:
        self.failures += 1
        self._trial_started = None
        if self.opened_at is not None or self.failures >= self.failure_threshold:
            self.opened_at = self.changed_at = self._clock()
            if self.on_change is not None:
                self.on_change(self, True)

    def adopt(self, *, opened_ago: float | None, changed_ago: float) -> bool:
        """Another process's word on this breaker: opened ``opened_ago`` seconds ago, or closed
        (``opened_ago`` None) ``changed_ago`` seconds ago. Taken when it is newer than this process's own
        last change; returns whether the state changed."""
        now = self._clock()
        when = now - changed_ago
        if self.changed_at is not None and when <= self.changed_at:
            return False
        if opened_ago is None:
            if self.opened_at is None:
                return False
            self.failures, self.opened_at, self._trial_started = 0, None, None
        elif opened_ago >= self.reset_after_s:  # its skip is over: nothing to honour
            return False
        else:
            opened = now - opened_ago
            if self.opened_at is not None and self.opened_at >= opened:
                return False
            self.failures = max(self.failures, self.failure_threshold)
            self.opened_at = opened
            self._trial_started = None
        self.changed_at = when
        return True

    def release(self) -> None:
        """A call ended in neither success nor failure (cancelled): free the half-open trial slot."""
        self._trial_started = None


class SharedBreakers:
    """Breaker openings in Postgres (``breaker_openings``), for every process on every host.

    ``attach`` hooks a router's breakers: an opening or closing made here is written at once (in the
    background: the breaker is synchronous), and ``run`` reads every attached breaker's row each
    ``refresh_s`` and adopts what another process did since this one last changed it. Ages come from
    the database's clock, so hosts need not agree on the time."""

    def __init__(self, pool: Any, *, refresh_s: float = 1.0, holder: str | None = None) -> None:
        self.pool = pool
        self.refresh_s = refresh_s
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}"
        self.breakers: dict[str, CircuitBreaker] = {}
        self._writes: set[asyncio.Task[None]] = set()
        self._last: dict[str, asyncio.Task[None]] = {}  # each breaker's latest write, which the next one follows
        self._loop: asyncio.Task[None] | None = None

    def attach(self, breakers: Mapping[str, CircuitBreaker]) -> None:
        for name, breaker in breakers.items():
            self.breakers[name] = breaker
            breaker.on_change = self._changed

    def start(self) -> None:
        """Start reading the others' openings (needs a running loop; once)."""
        if self._loop is None and self.breakers:
            self._loop = asyncio.get_running_loop().create_task(self.run(), name="shared-breakers")

    def _changed(self, breaker: CircuitBreaker, opened: bool) -> None:
        """Write the change after this breaker's previous write (each on its own connection could commit out
        of order: an opening and the closing right after it would leave the row saying open)."""
        previous = self._last.get(breaker.name)
        try:
            task = asyncio.get_running_loop().create_task(self._write_after(previous, breaker.name, opened))
        except RuntimeError:  # no loop (a synchronous caller): the others learn at the next change
            return
        self._last[breaker.name] = task
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def _write_after(self, previous: asyncio.Task[None] | None, name: str, opened: bool) -> None:
        if previous is not None:
            await asyncio.gather(previous, return_exceptions=True)
        await self.write(name, opened)

    async def write(self, name: str, opened: bool) -> None:
        try:
            await self.pool.execute(
                """insert into breaker_openings (name, opened_at, updated_by)
                   values ($1, case when $2 then now() end, $3)
                   on conflict (name) do update set opened_at = excluded.opened_at, updated_at = now(),
                       updated_by = excluded.updated_by""",
                name, opened, self.holder)
        except Exception:  # noqa: BLE001 - the breaker works locally; sharing is best effort
            log.warning("could not record breaker %s %s", name, "opening" if opened else "closing", exc_info=True)

    async def refresh(self) -> int:
        """Adopt the openings and closings other processes recorded; returns how many breakers changed."""
        if not self.breakers:
            return 0
        rows = await self.pool.fetch(
            """select name, extract(epoch from now() - opened_at)::float8 as opened_ago,
                      extract(epoch from now() - updated_at)::float8 as changed_ago
               from breaker_openings where name = any($1::text[]) and updated_by <> $2""",
            list(self.breakers), self.holder)
        changed = 0
        for r in rows:
            breaker = self.breakers.get(r["name"])
            if breaker is not None and breaker.adopt(opened_ago=r["opened_ago"], changed_ago=r["changed_ago"]):
                changed += 1
                log.info("breaker %s %s by another process", breaker.name, breaker.state)
        return changed

    async def run(self) -> None:
        """Refresh every ``refresh_s`` until cancelled or the pool closes."""
        while not getattr(self.pool, "is_closing", lambda: False)():
            try:
                await self.refresh()
            except Exception:  # noqa: BLE001 - a database hiccup: try again next time
                if getattr(self.pool, "is_closing", lambda: False)():
                    return
                log.warning("could not read shared breaker openings", exc_info=True)
            await asyncio.sleep(self.refresh_s)

    async def aclose(self) -> None:
        if self._loop is not None:
            self._loop.cancel()
            await asyncio.gather(self._loop, return_exceptions=True)
            self._loop = None
        if self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)


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
