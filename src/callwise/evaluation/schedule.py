"""An in-process daily scheduler for the nightly run (`callwise eval schedule --at 02:00`).

For production, cron or a systemd timer calling `callwise eval nightly` is sturdier (README); this
loop is for a single long-running process. A failed run is logged and the next day still runs.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

log = logging.getLogger(__name__)
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def parse_hhmm(at: str) -> time:
    m = _HHMM.match(at.strip())
    if not m:
        raise ValueError(f"expected HH:MM (24h), got {at!r}")
    return time(int(m.group(1)), int(m.group(2)))


def next_run(now: datetime, at: time) -> datetime:
    """The first ``at`` strictly after ``now`` (timezone-aware; DST gaps resolve to the wall-clock time)."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    candidate = now.replace(hour=at.hour, minute=at.minute, second=0, microsecond=0)
    if candidate <= now:
        candidate = (candidate + timedelta(days=1)).replace(hour=at.hour, minute=at.minute)
    return candidate


async def run_daily(at: str, job: Callable[[], Awaitable[object]], *, tz: str = "UTC",
                    stop: asyncio.Event | None = None, clock: Callable[[], datetime] | None = None,
                    on_wait: Callable[[datetime], None] | None = None, max_runs: int | None = None) -> int:
    """Run ``job`` every day at ``at`` in ``tz`` until ``stop`` is set; returns the number of runs."""
    when = parse_hhmm(at)
    zone = ZoneInfo(tz)
    stop = stop or asyncio.Event()
    now = clock or (lambda: datetime.now(zone))
    runs = 0
    while not stop.is_set() and (max_runs is None or runs < max_runs):
        due = next_run(now().astimezone(zone), when)
        if on_wait:
            on_wait(due)
        delay = max(0.0, (due - now().astimezone(zone)).total_seconds())
        try:
            await asyncio.wait_for(stop.wait(), timeout=delay)
            break  # stopped while waiting
        except TimeoutError:
            pass
        try:
            await job()
        except Exception:  # noqa: BLE001 - tomorrow's run must still happen
            log.exception("scheduled nightly evaluation failed")
        runs += 1
    return runs
