"""Settings -> telemetry and the operations loop of ``callwise serve`` (cost roll-up, budget alerts)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

from callwise.evaluation.budgets import check_all
from callwise.infra import telemetry
from callwise.integrations.slack import SlackWebhook
from callwise.routing.costs import rollup_costs
from callwise.wiring.settings import Settings

log = logging.getLogger("callwise.wiring.telemetry")


def start_telemetry(service_name: str = "callwise") -> None:
    """OTLP when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set (the OpenTelemetry variable), else Prometheus."""
    telemetry.setup_telemetry(otlp_endpoint=os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or None,
                              service_name=service_name)


def start_worker_telemetry() -> bool:
    """In a LiveKit job process: OTLP export when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set, so the framework's
    own turn metrics and ours leave the process; otherwise nothing (a job process has no scrape endpoint:
    the framework's ``/metrics`` on the worker's port serves the main process). Returns whether it started."""
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if not endpoint:
        return False
    telemetry.setup_telemetry(otlp_endpoint=endpoint, service_name="callwise-worker")
    return True


async def load_pii_orgs(pool: Any) -> set[str]:
    """Organizations whose settings allow customer text on spans (``{"telemetry_pii": true}``)."""
    rows = await pool.fetch(
        "select id from organizations where coalesce((settings->>'telemetry_pii')::boolean, false)")
    orgs = {str(r["id"]) for r in rows}
    telemetry.allow_pii_for(orgs)
    return orgs


def slack_webhook(settings: Settings) -> SlackWebhook | None:
    url = settings.slack_webhook_url.get_secret_value() if settings.slack_webhook_url else None
    return SlackWebhook(url) if url else None


async def operations_tick(settings: Settings, pool: Any) -> None:
    """Roll up yesterday's and today's costs, raise any budget alert now due, refresh the PII list."""
    today = datetime.now(UTC).date()
    for day in (today - timedelta(days=1), today):
        await rollup_costs(pool, day)
    await check_all(pool, webhook=slack_webhook(settings))
    await load_pii_orgs(pool)


@contextlib.asynccontextmanager
async def running_operations(settings: Settings, pool: Any, every_s: float = 60.0) -> AsyncIterator[None]:
    """:func:`operations_tick` every ``every_s`` seconds in the background while the block runs."""
    async def loop() -> None:
        while True:
            try:
                await operations_tick(settings, pool)
            except Exception:  # noqa: BLE001 - the next tick tries again
                log.exception("operations tick failed")
            await asyncio.sleep(every_s)

    task = asyncio.create_task(loop(), name="callwise-operations")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
