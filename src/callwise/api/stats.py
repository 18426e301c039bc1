"""The figures a support lead reads: one organization's calls, resolution, escalations, surveys, speed,
tiers, cost and budget over the last N days, and model health per provider and model.

Everything is aggregated in Postgres (counts, percentiles, group-bys over indexed ranges), so the cost
of a request grows with the groups returned, not with the calls stored. ``/v1/orgs/ORG/stats``,
``/v1/orgs/ORG/health``, ``callwise health`` and the dashboard read these functions and nothing else.

Windows: ``days=N`` is the last N calendar days in UTC, today included (``days=1``: today).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from callwise.evaluation.budgets import budget_status

MAX_DAYS = 366

#: how each resolution figure is defined (shown beside it)
DEFINITIONS = {
    "strict": ("resolved by the AI: not escalated, no question left unanswered (low confidence or no "
               "source), not abandoned mid-answer, and a survey, when there is one, of 3 or more"),
    "lenient": "not escalated (whatever else happened on the call)",
}

#: how an error on a cost event is classed (first match wins)
_ERROR_KIND = r"""case
    when error ilike '%circuit%' then 'circuit_open'
    when error ilike '%timeout%' or error ilike '%timed out%' then 'timeout'
    when error ilike '%429%' or error ilike '%rate limit%' or error ilike '%rate_limit%' then 'rate_limit'
    when error ilike '%401%' or error ilike '%403%' or error ilike '%auth%' then 'auth'
    when error ~ '(^|[^0-9])5[0-9][0-9]([^0-9]|$)' then 'server'
    when error ilike '%connect%' then 'connection'
    else 'other' end"""


TURNS_P50_BY_DAY = """select date_trunc('day', created_at at time zone 'UTC') at time zone 'UTC' as day,
       percentile_cont(0.5) within group (order by coalesce((latencies->>'eos_to_first_token_ms')::float,
                                                            (latencies->>'first_token_ms')::float)) as p50
from turns where organization_id = $1 and role = 'assistant' and created_at >= $2 group by 1"""


class StatsError(ValueError):
    """A bad window (the message says why)."""


def parse_days(raw: str | None, default: int = 30) -> int:
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_DAYS:
        raise StatsError(f"days must be an integer from 1 to {MAX_DAYS}, not {raw!r}")
    return int(raw)


def window_start(days: int, now: datetime | None = None) -> datetime:
    today = (now or datetime.now(UTC)).astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=days - 1)


def _f(v: Any, nd: int | None = None) -> float | None:
    if v is None:
        return None
    return round(float(v), nd) if nd is not None else float(v)


def _rate(n: int, d: int) -> float | None:
    return round(n / d, 4) if d else None


async def org_stats(pool: Any, org_id: str, days: int) -> dict[str, Any]:
    """The stats API's body for one organization."""
    since = window_start(days)
    async with pool.acquire() as conn:
        calls = await conn.fetchrow(
            """select count(*) as calls,
                      count(*) filter (where status = 'active') as active,
                      count(*) filter (where ai_resolved) as strict_yes,
                      count(*) filter (where ai_resolved is not null) as strict_known,
                      count(*) filter (where resolved_by_ai) as lenient_yes,
                      count(*) filter (where resolved_by_ai is not null) as lenient_known
               from sessions where organization_id = $1 and kind = 'support' and started_at >= $2""", org_id, since)
        reasons = await conn.fetch(
            """select coalesce(resolution_reason, 'in progress') as reason, count(*) as n from sessions
               where organization_id = $1 and kind = 'support' and started_at >= $2 group by 1 order by 2 desc""",
            org_id, since)
        escalations = await conn.fetch(
            """select reason, count(*) as n from escalations where organization_id = $1 and created_at >= $2
               group by reason order by n desc, reason""", org_id, since)
        open_cases = await conn.fetchval(
            "select count(*) from escalations where organization_id = $1 and status <> 'resolved'", org_id)
        csat = await conn.fetchrow(
            """select avg(rating)::float as mean, count(*) as n from survey_responses
               where organization_id = $1 and created_at >= $2""", org_id, since)
        # one scan for the window's p50/p95 and each day's p50 (the dashboard's plot)
        first_rows = await conn.fetch(
            """select date_trunc('day', created_at at time zone 'UTC') as day,
                      percentile_cont(0.5) within group (order by ms) as p50,
                      percentile_cont(0.95) within group (order by ms) as p95, count(ms) as n
               from (select created_at, coalesce((latencies->>'eos_to_first_token_ms')::float,
                                                 (latencies->>'first_token_ms')::float) as ms
                     from turns where organization_id = $1 and role = 'assistant' and created_at >= $2) t
               group by grouping sets ((1), ())""", org_id, since)
        first_word = next(r for r in first_rows if r["day"] is None)
        by_day = {r["day"].date().isoformat(): _f(r["p50"], 1) for r in first_rows if r["day"] is not None}
        tiers = await conn.fetch(
            """select tier, count(*) as n from turns where organization_id = $1 and role = 'assistant'
               and created_at >= $2 and tier is not null group by tier order by tier""", org_id, since)
        cost = await conn.fetchval(
            "select coalesce(sum(cost_usd), 0)::float from cost_events where organization_id = $1 and created_at >= $2",
            org_id, since)
        gaps = await conn.fetch(
            """select label, impact, frequency, escalation_rate, sample_questions, created_at from knowledge_gaps
               where organization_id = $1 and status <> 'resolved' order by created_at desc, impact desc limit 5""",
            org_id)
        unanswered = await conn.fetch(
            """select question, occurrence_count, last_reason, last_seen_at from unresolved_problems
               where organization_id = $1 and last_seen_at >= $2 order by occurrence_count desc, last_seen_at desc
               limit 5""", org_id, since)
        budget = await budget_status(conn, org_id)
    answered = sum(int(r["n"]) for r in tiers)

    return {
        "days": days, "since": since.isoformat(),
        "calls": int(calls["calls"]), "in_progress": int(calls["active"]),
        "ai_resolved": {
            "strict": {"resolved": int(calls["strict_yes"]), "of": int(calls["strict_known"]),
                       "rate": _rate(calls["strict_yes"], calls["strict_known"]), "definition": DEFINITIONS["strict"]},
            "lenient": {"resolved": int(calls["lenient_yes"]), "of": int(calls["lenient_known"]),
                        "rate": _rate(calls["lenient_yes"], calls["lenient_known"]),
                        "definition": DEFINITIONS["lenient"]},
            "reasons": {r["reason"]: int(r["n"]) for r in reasons},
        },
        "escalations_by_reason": {r["reason"]: int(r["n"]) for r in escalations},
        "open_cases": int(open_cases),
        "csat": {"mean": _f(csat["mean"], 2), "count": int(csat["n"])},
        "first_word_ms": {"p50": _f(first_word["p50"], 1), "p95": _f(first_word["p95"], 1),
                          "turns": int(first_word["n"]), "p50_by_day": by_day},
        "tier_mix": {r["tier"]: int(r["n"]) for r in tiers},
        "answered_turns": answered,
        "cost_usd": round(float(cost), 6),
        "cost_per_interaction": round(float(cost) / answered, 6) if answered else None,
        "budget": budget,
        "top_gaps": [{"label": g["label"], "impact": float(g["impact"]), "frequency": int(g["frequency"]),
                      "escalation_rate": float(g["escalation_rate"]),
                      "sample_questions": json.loads(g["sample_questions"]) if isinstance(g["sample_questions"], str)
                      else list(g["sample_questions"] or []), "found_at": g["created_at"].isoformat()} for g in gaps],
        "unanswered_questions": [{"question": u["question"], "asked": int(u["occurrence_count"]),
                                  "reason": u["last_reason"]} for u in unanswered],
    }


async def daily_series(pool: Any, org_id: str, days: int,
                       first_word_p50: Mapping[str, float | None] | None = None) -> list[dict[str, Any]]:
    """Per UTC day: calls, strict and lenient resolution, CSAT, first-word p50 and cost (for the plots).
    ``first_word_p50``: each day's p50 when already known (``org_stats(...)["first_word_ms"]["p50_by_day"]``):
    the turns are then not read again."""
    since = window_start(days)
    turns_cte = TURNS_P50_BY_DAY if first_word_p50 is None else "select null::timestamptz as day, null::float as p50"
    rows = await pool.fetch(
        """with d as (select generate_series($2::timestamptz, date_trunc('day', now() at time zone 'UTC')
                                                              at time zone 'UTC', interval '1 day') as day),
           s as (select date_trunc('day', started_at at time zone 'UTC') at time zone 'UTC' as day, count(*) as calls,
                        count(*) filter (where ai_resolved) as strict_yes,
                        count(*) filter (where ai_resolved is not null) as strict_known,
                        count(*) filter (where resolved_by_ai) as lenient_yes,
                        count(*) filter (where resolved_by_ai is not null) as lenient_known
                 from sessions where organization_id = $1 and kind = 'support' and started_at >= $2 group by 1),
           v as (select date_trunc('day', created_at at time zone 'UTC') at time zone 'UTC' as day,
                        avg(rating)::float as csat, count(*) as surveys
                 from survey_responses where organization_id = $1 and created_at >= $2 group by 1),
           t as ({turns_cte}),
           c as (select date_trunc('day', created_at at time zone 'UTC') at time zone 'UTC' as day,
                        sum(cost_usd)::float as cost
                 from cost_events where organization_id = $1 and created_at >= $2 group by 1)
           select d.day, coalesce(s.calls, 0) as calls, s.strict_yes, s.strict_known, s.lenient_yes, s.lenient_known,
                  v.csat, coalesce(v.surveys, 0) as surveys, t.p50, coalesce(c.cost, 0) as cost
           from d left join s using (day) left join v using (day) left join t using (day) left join c using (day)
           order by d.day""".replace("{turns_cte}", turns_cte), org_id, since)
    known = first_word_p50 or {}
    return [{"day": r["day"].date().isoformat(), "calls": int(r["calls"]),
             "strict": _rate(r["strict_yes"] or 0, r["strict_known"] or 0),
             "lenient": _rate(r["lenient_yes"] or 0, r["lenient_known"] or 0),
             "csat": _f(r["csat"], 2), "surveys": int(r["surveys"]), "first_word_p50": _f(r["p50"], 1) if first_word_p50 is None
             else known.get(r["day"].date().isoformat()),
             "cost_usd": round(float(r["cost"]), 6)} for r in rows]


async def open_case_list(pool: Any, org_id: str, limit: int = 10) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        """select case_number, reason, status, assigned_to, created_at from escalations
           where organization_id = $1 and status <> 'resolved' order by created_at desc limit $2""", org_id, limit)
    return [dict(r) for r in rows]


async def model_health(pool: Any, org_id: str | None = None, *,
                       breakers: Callable[[], Mapping[str, str]] | None = None) -> dict[str, Any]:
    """Per provider and model, over the last hour and the last day: latency p50/p95/p99, time to first
    token p50/p95, requests, errors by kind and the error rate, tokens and spend, from ``cost_events``.
    ``breakers`` (the serving router's ``breaker_states``, keyed ``provider:model``) adds each breaker's
    state; without it the state is ``unknown``."""
    states = dict(breakers()) if breakers is not None else {}
    org_filter = "and organization_id = $2" if org_id else ""
    args: tuple[Any, ...] = (org_id,) if org_id else ()
    out: dict[tuple[str, str], dict[str, Any]] = {}
    async with pool.acquire() as conn:
        for window, span in (("last_hour", timedelta(hours=1)), ("last_day", timedelta(days=1))):
            rows = await conn.fetch(
                f"""select provider, model, count(*) as requests, count(*) filter (where not success) as errors,
                       percentile_cont(0.5) within group (order by latency_ms) filter (where success) as p50,
                       percentile_cont(0.95) within group (order by latency_ms) filter (where success) as p95,
                       percentile_cont(0.99) within group (order by latency_ms) filter (where success) as p99,
                       percentile_cont(0.5) within group (order by ttft_ms) as ttft_p50,
                       percentile_cont(0.95) within group (order by ttft_ms) as ttft_p95,
                       sum(input_tokens) as tokens_in, sum(output_tokens) as tokens_out,
                       sum(cost_usd)::float as cost
                    from cost_events where created_at >= now() - $1::interval {org_filter}
                    group by provider, model""", span, *args)
            kinds = await conn.fetch(
                f"""select provider, model, {_ERROR_KIND} as kind, count(*) as n from cost_events
                    where created_at >= now() - $1::interval and not success {org_filter}
                    group by 1, 2, 3""", span, *args)
            by_kind: dict[tuple[str, str], dict[str, int]] = {}
            for k in kinds:
                by_kind.setdefault((k["provider"], k["model"]), {})[k["kind"]] = int(k["n"])
            for r in rows:
                key = (r["provider"], r["model"])
                entry = out.setdefault(key, {"provider": key[0], "model": key[1]})
                n = int(r["requests"])
                entry[window] = {
                    "requests": n, "errors": int(r["errors"]), "error_rate": _rate(int(r["errors"]), n),
                    "errors_by_kind": by_kind.get(key, {}),
                    "latency_ms": {"p50": _f(r["p50"], 1), "p95": _f(r["p95"], 1), "p99": _f(r["p99"], 1)},
                    "ttft_ms": {"p50": _f(r["ttft_p50"], 1), "p95": _f(r["ttft_p95"], 1)},
                    "tokens": {"input": int(r["tokens_in"] or 0), "output": int(r["tokens_out"] or 0)},
                    "cost_usd": round(float(r["cost"] or 0), 6),
                }
    models = []
    for (provider, model), entry in sorted(out.items()):
        entry.setdefault("last_hour", None)
        state = states.get(f"{provider}:{model}") or states.get(provider)
        entry["breaker"] = state or "unknown"
        models.append(entry)
    return {"generated_at": datetime.now(UTC).isoformat(), "organization": org_id, "models": models,
            "breaker_source": "this process's router" if breakers is not None else "not known outside `callwise serve`"}


async def db_gauges(pool: Any) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """What ``/metrics`` reads from Postgres at each scrape (``callwise.infra.telemetry.DB_GAUGES``)."""
    async with pool.acquire() as conn:
        outbox = await conn.fetch(
            "select split_part(action, '.', 1) as vendor, status, count(*) as n from outbox group by 1, 2")
        calls = await conn.fetch(
            """select o.slug, coalesce(s.resolution_reason, 'in_progress') as resolution, count(*) as n
               from sessions s join organizations o on o.id = s.organization_id
               where s.kind = 'support' and s.started_at >= now() - interval '1 day' group by 1, 2""")
        escalations = await conn.fetch(
            """select o.slug, e.reason, count(*) as n from escalations e join organizations o on o.id = e.organization_id
               where e.created_at >= now() - interval '1 day' group by 1, 2""")
        requests = await conn.fetch(
            """select provider, model, case when success then 'ok' else 'error' end as result, count(*) as n
               from cost_events where created_at >= now() - interval '1 day' group by 1, 2, 3""")
    return {
        "callwise.outbox.deliveries": {(("vendor", r["vendor"]), ("status", r["status"])): r["n"] for r in outbox},
        "callwise.calls.last_day": {(("organization", r["slug"]), ("resolution", r["resolution"])): r["n"]
                                    for r in calls},
        "callwise.escalations.last_day": {(("organization", r["slug"]), ("reason", r["reason"])): r["n"]
                                          for r in escalations},
        "callwise.llm.requests.last_day": {(("provider", r["provider"]), ("model", r["model"]),
                                            ("result", r["result"])): r["n"] for r in requests},
    }
