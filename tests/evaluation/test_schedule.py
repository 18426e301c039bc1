"""The in-process daily scheduler."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, time, timedelta

import pytest

from callwise.evaluation.schedule import next_run, parse_hhmm, run_daily


def test_next_run() -> None:
    utc = UTC
    assert next_run(datetime(2026, 3, 1, 1, 0, tzinfo=utc), time(2, 0)) == datetime(2026, 3, 1, 2, 0, tzinfo=utc)
    assert next_run(datetime(2026, 3, 1, 2, 0, tzinfo=utc), time(2, 0)) == datetime(2026, 3, 2, 2, 0, tzinfo=utc)
    assert next_run(datetime(2026, 12, 31, 23, 0, tzinfo=utc), time(2, 0)) == datetime(2027, 1, 1, 2, 0, tzinfo=utc)
    with pytest.raises(ValueError):
        next_run(datetime(2026, 1, 1), time(2, 0))
    with pytest.raises(ValueError):
        parse_hhmm("25:00")


async def test_run_daily_runs_and_survives_a_failing_job() -> None:
    start = datetime(2026, 1, 1, 1, 59, 59, 850000, tzinfo=UTC)
    calls: list[int] = []

    async def job() -> None:
        calls.append(1)
        raise RuntimeError("boom")  # logged; the scheduler keeps going

    runs = await run_daily("02:00", job, clock=lambda: start, max_runs=1)
    assert runs == 1 and calls == [1]


async def test_run_daily_stops() -> None:
    stop = asyncio.Event()
    stop.set()
    assert await run_daily("02:00", lambda: asyncio.sleep(0), stop=stop) == 0
    _ = timedelta
