"""Cost events: one row per generation (answers, self-evaluations, summaries ...) and the report
behind ``callwise costs``."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from callwise.routing.pricing import Price

log = logging.getLogger(__name__)


@dataclass
class CostEvent:
    organization_id: str
    tier: str
    provider: str
    model: str
    purpose: str = "answer"
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    cost_usd: float = 0.0
    latency_ms: float = 0.0
    confidence: float | None = None
    escalated_from: str | None = None
    success: bool = True
    error: str | None = None
    session_id: str | None = None
    turn_id: str | None = None
    interaction_id: str | None = None
    ttft_ms: float | None = None  # time to the first output token, when the provider streamed


class CostSink(Protocol):
    async def record(self, event: CostEvent) -> None: ...


class NullCostSink:
    async def record(self, event: CostEvent) -> None:
        return None


@dataclass
class MemoryCostSink:
    events: list[CostEvent] = field(default_factory=list)

    async def record(self, event: CostEvent) -> None:
        self.events.append(event)


class PostgresCostSink:
    """Writes ``cost_events``. A failed insert is logged, never raised: accounting must not break a call."""

    def __init__(self, pool: Any) -> None:
        self.pool = pool

    async def record(self, event: CostEvent) -> None:
        try:
            await self.pool.execute(
                """insert into cost_events (organization_id, session_id, turn_id, interaction_id, tier, provider,
                       model, purpose, input_tokens, output_tokens, cached_tokens, cost_usd, latency_ms,
                       confidence, escalated_from, success, error, ttft_ms)
                   values ($1::uuid, $2::uuid, $3::uuid, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,
                           $18)""",
                event.organization_id, event.session_id, event.turn_id, event.interaction_id, event.tier,
                event.provider, event.model, event.purpose, event.input_tokens, event.output_tokens,
                event.cached_tokens, event.cost_usd, max(0.0, event.latency_ms),
                None if event.confidence is None else max(0.0, min(1.0, event.confidence)),
                event.escalated_from, event.success, (event.error or None) and event.error[:500],
                None if event.ttft_ms is None else max(0.0, event.ttft_ms),
            )
        except Exception as exc:  # noqa: BLE001
            log.warning("cost event not recorded: %s", exc, extra={"event": asdict(event)})


#: providers that run on this machine and cost nothing per token
OFFLINE_PROVIDERS = frozenset({"extractive", "local"})
NOT_APPLICABLE = "not applicable"


@dataclass
class CostReport:
    """``cascade_rate`` and ``saving_vs_tier3`` are ``None`` when they do not apply, and
    ``not_applicable`` says why (one answerer has nothing to cascade to; a free offline answerer
    has no price to save against). The saving is computed over priced interactions only
    (``priced_interactions``), so free answers never count as savings."""

    interactions: int
    tier_distribution: dict[str, float]
    tier_counts: dict[str, int]
    cascade_rate: float | None
    total_cost_usd: float
    cost_per_interaction: float
    all_tier3_cost_usd: float
    saving_vs_tier3: float | None
    by_purpose: dict[str, float]
    events: int
    priced_interactions: int = 0
    answerers: list[str] = field(default_factory=list)  # provider/model pairs that answered
    not_applicable: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _priced(event: dict[str, Any]) -> bool:
    return event.get("provider") not in OFFLINE_PROVIDERS and float(event.get("cost_usd") or 0) > 0


def summarize(rows: list[dict[str, Any]], tier3_price: Price, *, answerers: int | None = None) -> CostReport:
    """Summarize cost rows (dicts with the cost_events columns). An interaction is the set of rows
    sharing an interaction_id; its tier is the last successful answer's tier. The all-tier3 figure
    prices each priced interaction's first answer attempt (its prompt and output) at tier3 prices.

    ``answerers``: how many distinct answering models the router has now (1: the cascade cannot
    happen); without it, one answering model in the data means the same."""
    by_interaction: dict[str, list[dict[str, Any]]] = {}
    by_purpose: dict[str, float] = {}
    total = 0.0
    for i, row in enumerate(rows):
        key = row.get("interaction_id") or f"_row{i}"
        by_interaction.setdefault(key, []).append(row)
        cost = float(row.get("cost_usd") or 0)
        total += cost
        by_purpose[row["purpose"]] = by_purpose.get(row["purpose"], 0.0) + cost
    counts: dict[str, int] = {}
    cascaded = 0
    tier3_total = 0.0
    priced_total = 0.0
    priced = 0
    interactions = 0
    models: set[str] = set()
    for events in by_interaction.values():
        answers = [e for e in events if e["purpose"] == "answer"]
        if not answers:
            continue
        interactions += 1
        models.update(f"{e.get('provider')}/{e.get('model')}" for e in answers)
        done = [e for e in answers if e.get("success", True)]
        final = done[-1]["tier"] if done else "failed"
        counts[final] = counts.get(final, 0) + 1
        if len({e["tier"] for e in answers}) > 1:
            cascaded += 1
        if any(_priced(e) for e in answers):
            priced += 1
            priced_total += sum(float(e.get("cost_usd") or 0) for e in events)
            first = answers[0]
            tier3_total += tier3_price.cost(int(first["input_tokens"]), int(first["output_tokens"]))
    n = max(1, interactions)
    reasons: dict[str, str] = {}
    single = answerers == 1 if answerers is not None else len(models) == 1
    if interactions and single and not cascaded:
        only = next(iter(models)) if len(models) == 1 else "one model"
        reasons["cascade_rate"] = (f"{NOT_APPLICABLE}: one answerer ({only}) serves every tier, so there is no "
                                   "higher tier to cascade to")
    if interactions and not priced:
        reasons["saving_vs_tier3"] = (f"{NOT_APPLICABLE}: no answer came from a priced tier (the offline answerer "
                                      "costs nothing per token), so there is nothing to compare with all-tier3")
    elif interactions and tier3_total <= 0:
        reasons["saving_vs_tier3"] = f"{NOT_APPLICABLE}: tier3 has no price configured"
    return CostReport(
        interactions=interactions,
        tier_distribution={t: round(c / n, 4) for t, c in sorted(counts.items())},
        tier_counts=dict(sorted(counts.items())),
        cascade_rate=None if "cascade_rate" in reasons else round(cascaded / n, 4),
        total_cost_usd=round(total, 8),
        cost_per_interaction=round(total / n, 8),
        all_tier3_cost_usd=round(tier3_total, 8),
        saving_vs_tier3=(None if "saving_vs_tier3" in reasons or tier3_total <= 0
                         else round(1 - priced_total / tier3_total, 4)),
        by_purpose={k: round(v, 8) for k, v in sorted(by_purpose.items())},
        events=len(rows),
        priced_interactions=priced,
        answerers=sorted(models),
        not_applicable=reasons,
    )


async def cost_report(pool: Any, organization_id: str, tier3_price: Price, *, days: int | None = None,
                      answerers: int | None = None) -> CostReport:
    query = """select interaction_id, tier, provider, model, purpose, input_tokens, output_tokens, cached_tokens,
                      cost_usd, success, created_at
               from cost_events where organization_id = $1::uuid"""
    args: list[Any] = [organization_id]
    if days is not None:
        query += " and created_at >= now() - make_interval(days => $2)"
        args.append(days)
    query += " order by created_at, id"
    rows = [dict(r) for r in await pool.fetch(query, *args)]
    return summarize(rows, tier3_price, answerers=answerers)


ROLLUP_DELETE = "delete from cost_summaries where day = $1::date {org_filter}"
ROLLUP_SQL = """
insert into cost_summaries (organization_id, day, tier, provider, model, requests, failures, input_tokens,
                            output_tokens, cached_tokens, cost_usd, latency_ms_sum, computed_at)
select organization_id, $1::date, tier, provider, model, count(*), count(*) filter (where not success),
       sum(input_tokens), sum(output_tokens), sum(cached_tokens), sum(cost_usd), sum(latency_ms), now()
from cost_events
where created_at >= $1::date::timestamp at time zone 'UTC'
  and created_at < ($1::date + 1)::timestamp at time zone 'UTC' {org_filter}
group by organization_id, tier, provider, model
"""


async def rollup_costs(pool: Any, day: Any, organization_id: str | None = None, *, timeout: float = 600.0) -> int:
    """Summarize one UTC day of ``cost_events`` into ``cost_summaries`` (one row per org, tier, provider
    and model). The day's rows are replaced in one transaction, so a re-run, for today or any past day,
    gives the same rows. Returns how many rows the day has. ``timeout``: per statement (a batch job, not
    bound by the pool's command timeout)."""
    org_filter = "and organization_id = $2::uuid" if organization_id else ""
    args: tuple[Any, ...] = (day, organization_id) if organization_id else (day,)
    async with pool.acquire() as conn, conn.transaction():
        # one roll-up of a day at a time (two runs at once would each delete, then both insert)
        await conn.execute("select pg_advisory_xact_lock(hashtext('cost_rollup'), $1::date - date '2000-01-01')", day)
        await conn.execute(ROLLUP_DELETE.format(org_filter=org_filter), *args, timeout=timeout)
        status = await conn.execute(ROLLUP_SQL.format(org_filter=org_filter), *args, timeout=timeout)
    return int(status.rsplit(" ", 1)[-1])
