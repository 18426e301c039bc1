"""Per-organization monthly budgets: setting one, this month's spend against it, and the alerts at 80% and
100% (posted to Slack when a webhook is configured, and recorded in ``budget_alerts`` either way, once per
org, month and threshold).

A budget with ``hard_cap`` that is spent moves the org to its cheapest tier: the router asks
:class:`BudgetCaps` before each answer (the wiring sets ``CascadingRouter.budget_cap``), and the answer's
routing decision (``RoutedAnswer.complexity["budget_cap"]``) says so.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from callwise.integrations.slack import SlackError, SlackWebhook

THRESHOLDS = (80, 100)
CAP_REASON = "the monthly budget is spent and hard-capped: answered by the cheapest tier only"
log = logging.getLogger("callwise.budgets")


class BudgetError(ValueError):
    """Bad budget input (the message says why)."""


def month_start(day: date) -> datetime:
    return datetime(day.year, day.month, 1, tzinfo=UTC)


async def set_budget(pool: Any, org_id: str, monthly_usd: float, *, hard_cap: bool = False) -> None:
    if not monthly_usd > 0 or monthly_usd != monthly_usd or monthly_usd > 1e9:
        raise BudgetError(f"the monthly budget must be a positive amount of USD, not {monthly_usd}")
    await pool.execute(
        """insert into org_budgets (organization_id, monthly_usd, hard_cap) values ($1, $2, $3)
           on conflict (organization_id) do update set monthly_usd = excluded.monthly_usd,
               hard_cap = excluded.hard_cap, updated_at = now()""", org_id, monthly_usd, hard_cap)


async def budget_status(conn: Any, org_id: str, today: date | None = None) -> dict[str, Any] | None:
    """This month's spend (UTC) against the org's budget; ``None`` when it has none."""
    row = await conn.fetchrow("select monthly_usd, hard_cap from org_budgets where organization_id = $1", org_id)
    if row is None:
        return None
    day = today or datetime.now(UTC).date()
    start = month_start(day)
    spent = float(await conn.fetchval(
        "select coalesce(sum(cost_usd), 0) from cost_events where organization_id = $1 and created_at >= $2",
        org_id, start))
    limit = float(row["monthly_usd"])
    alerts = await conn.fetch(
        "select threshold, delivered, error, created_at from budget_alerts where organization_id = $1 and month = $2 "
        "order by threshold", org_id, start.date())
    return {"month": start.date().isoformat(), "monthly_usd": limit, "spent_usd": round(spent, 6),
            "used": round(spent / limit, 4), "hard_cap": bool(row["hard_cap"]),
            "capped": bool(row["hard_cap"]) and spent >= limit,
            "alerts": [{"threshold": int(a["threshold"]), "delivered": bool(a["delivered"]), "error": a["error"],
                        "at": a["created_at"].isoformat()} for a in alerts]}


def alert_text(slug: str, threshold: int, spent: float, limit: float, hard_cap: bool) -> str:
    what = ("budget spent" if threshold >= 100 else f"{threshold}% of the monthly budget used")
    tail = " The hard cap is on: answers now come from the cheapest tier." if hard_cap and threshold >= 100 else ""
    return f"callwise {slug}: {what}: ${spent:.2f} of ${limit:.2f} this month.{tail}"


async def check_budget(pool: Any, org_id: str, *, webhook: SlackWebhook | None,
                       today: date | None = None) -> list[dict[str, Any]]:
    """Raise the alerts this month's spend has crossed and not yet raised; returns the new ones.

    The row is claimed first (``on conflict do nothing``), so two processes checking at once post once."""
    async with pool.acquire() as conn:
        status = await budget_status(conn, org_id, today)
        if status is None:
            return []
        slug = await conn.fetchval("select slug from organizations where id = $1", org_id)
    raised = []
    for threshold in THRESHOLDS:
        if status["used"] * 100 < threshold:
            continue
        alert_id = await pool.fetchval(
            """insert into budget_alerts (organization_id, month, threshold, spent_usd, budget_usd)
               values ($1, $2::date, $3, $4, $5) on conflict (organization_id, month, threshold) do nothing
               returning id""", org_id, date.fromisoformat(status["month"]), threshold, status["spent_usd"],
            status["monthly_usd"])
        if alert_id is None:
            continue  # raised before
        text = alert_text(slug, threshold, status["spent_usd"], status["monthly_usd"], status["hard_cap"])
        delivered, error = False, None
        if webhook is None:
            error = "no Slack webhook configured (CALLWISE_SLACK_WEBHOOK_URL)"
        else:
            try:
                await webhook.post(text)
                delivered = True
            except SlackError as exc:
                error = str(exc)[:300]
        await pool.execute("update budget_alerts set delivered = $2, error = $3 where id = $1",
                           alert_id, delivered, error)
        raised.append({"threshold": threshold, "text": text, "delivered": delivered, "error": error})
    return raised


async def check_all(pool: Any, *, webhook: SlackWebhook | None, today: date | None = None) -> list[dict[str, Any]]:
    """:func:`check_budget` for every org with a budget."""
    out = []
    for org_id in await pool.fetch("select organization_id from org_budgets"):
        for alert in await check_budget(pool, str(org_id["organization_id"]), webhook=webhook, today=today):
            out.append({"organization_id": str(org_id["organization_id"]), **alert})
    return out


async def capped_orgs(pool: Any, today: date | None = None) -> set[str]:
    """Organizations whose hard-capped budget is spent this month."""
    start = month_start(today or datetime.now(UTC).date())
    rows = await pool.fetch(
        """select b.organization_id from org_budgets b
           where b.hard_cap and (select coalesce(sum(cost_usd), 0) from cost_events e
                                 where e.organization_id = b.organization_id and e.created_at >= $1) >= b.monthly_usd""",
        start)
    return {str(r["organization_id"]) for r in rows}


class BudgetCaps:
    """Which organizations are held to the cheapest tier: the router awaits :meth:`reason_for` before each
    answer. The set is read from Postgres (:func:`capped_orgs`, one indexed query) at most every ``ttl_s``
    seconds, so a budget spent in another process holds here within that time."""

    def __init__(self, pool: Any, ttl_s: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.pool = pool
        self.ttl_s = ttl_s
        self.clock = clock
        self.capped: set[str] = set()
        self.read_at: float | None = None
        self._lock = asyncio.Lock()

    async def refresh(self) -> None:
        try:
            self.capped = await capped_orgs(self.pool)
        except Exception:  # noqa: BLE001 - a failed read keeps the last set (and is retried after ttl_s)
            log.warning("could not read the capped budgets", exc_info=True)
        self.read_at = self.clock()

    async def reason_for(self, organization_id: str) -> str | None:
        if self.read_at is None or self.clock() - self.read_at >= self.ttl_s:
            async with self._lock:
                if self.read_at is None or self.clock() - self.read_at >= self.ttl_s:
                    await self.refresh()
        return CAP_REASON if str(organization_id) in self.capped else None
