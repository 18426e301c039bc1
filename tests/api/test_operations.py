"""Cost roll-up against hand-summed cost events, and model health against known latencies."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest

from callwise.api.stats import model_health
from callwise.routing.costs import rollup_costs


async def _event(pool, org: str, **kw) -> None:  # type: ignore[no-untyped-def]
    row = {"tier": "tier1", "provider": "google", "model": "gemini-flash", "input_tokens": 0, "output_tokens": 0,
           "cached_tokens": 0, "cost_usd": 0.0, "latency_ms": 0.0, "success": True, "error": None, "ttft_ms": None,
           "created_at": datetime.now(UTC), **kw}
    await pool.execute(
        "insert into cost_events (organization_id, tier, provider, model, input_tokens, output_tokens, cached_tokens, "
        "cost_usd, latency_ms, success, error, ttft_ms, created_at) values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, "
        "$11, $12, $13)", org, row["tier"], row["provider"], row["model"], row["input_tokens"], row["output_tokens"],
        row["cached_tokens"], row["cost_usd"], row["latency_ms"], row["success"], row["error"], row["ttft_ms"],
        row["created_at"])


async def test_rollup_matches_hand_sums_and_reruns_the_same(pg_pool, org_id) -> None:  # type: ignore[no-untyped-def]
    day = date(2026, 3, 14)
    start = datetime(2026, 3, 14, tzinfo=UTC)
    rng = np.random.default_rng(7)
    events = []
    for i in range(60):
        tier, model = [("tier1", "gemini-flash"), ("tier2", "gpt-4o-mini"), ("tier3", "claude-sonnet")][i % 3]
        ev = {"tier": tier, "model": model, "provider": model.split("-")[0], "input_tokens": int(rng.integers(10, 900)),
              "output_tokens": int(rng.integers(5, 300)), "cached_tokens": int(rng.integers(0, 50)),
              "cost_usd": round(float(rng.random()) / 100, 8), "latency_ms": float(rng.integers(50, 3000)),
              "success": i % 7 != 0, "created_at": start + timedelta(minutes=23 * i)}  # 60 x 23 min: into the next day
        events.append(ev)
        await _event(pg_pool, org_id, **ev)
    await _event(pg_pool, org_id, created_at=start - timedelta(seconds=1), cost_usd=5.0)  # the day before: not counted
    n = await rollup_costs(pg_pool, day, org_id)
    inside = [e for e in events if e["created_at"] < start + timedelta(days=1)]
    want: dict[tuple[str, str], dict[str, float]] = {}
    for e in inside:
        w = want.setdefault((e["tier"], e["model"]), {"requests": 0, "failures": 0, "input_tokens": 0,
                                                      "output_tokens": 0, "cached_tokens": 0, "cost_usd": 0.0})
        w["requests"] += 1
        w["failures"] += 0 if e["success"] else 1
        for k in ("input_tokens", "output_tokens", "cached_tokens", "cost_usd"):
            w[k] += e[k]

    async def rows() -> dict[tuple[str, str], dict[str, float]]:
        got = await pg_pool.fetch("select * from cost_summaries where organization_id = $1 and day = $2", org_id, day)
        return {(r["tier"], r["model"]): {"requests": r["requests"], "failures": r["failures"],
                                          "input_tokens": r["input_tokens"], "output_tokens": r["output_tokens"],
                                          "cached_tokens": r["cached_tokens"], "cost_usd": float(r["cost_usd"])}
                for r in got}

    first = await rows()
    assert n == len(want) == 3 and set(first) == set(want)
    for key, w in want.items():
        assert first[key] | {"cost_usd": 0} == w | {"cost_usd": 0}
        assert first[key]["cost_usd"] == pytest.approx(w["cost_usd"], abs=1e-8)
    assert await rollup_costs(pg_pool, day, org_id) == 3 and await rows() == first  # re-run: same rows
    await _event(pg_pool, org_id, tier="tier1", model="gemini-flash", provider="gemini", cost_usd=1.0,
                 created_at=start + timedelta(hours=1))  # a late event for that past day
    await rollup_costs(pg_pool, day, org_id)
    assert (await rows())[("tier1", "gemini-flash")]["requests"] == want[("tier1", "gemini-flash")]["requests"] + 1


async def test_health_figures_from_known_latencies(pg_pool, org_id) -> None:  # type: ignore[no-untyped-def]
    model = "m-" + uuid.uuid4().hex[:6]
    now = datetime.now(UTC)
    recent = list(range(10, 1010, 10))  # 100 successes in the last hour: 10 .. 1000 ms
    for ms in recent:
        await _event(pg_pool, org_id, provider="openai", model=model, latency_ms=float(ms), ttft_ms=ms / 2,
                     input_tokens=100, output_tokens=20, created_at=now - timedelta(minutes=5))
    for ms in (5000.0, 6000.0):  # older than an hour, within the day
        await _event(pg_pool, org_id, provider="openai", model=model, latency_ms=ms, created_at=now - timedelta(hours=3))
    for err in ("ReadTimeout: timed out", "HTTP 429 rate limit", "circuit open for openai", "HTTP 503 from server",
                "HTTP 401 bad key"):
        await _event(pg_pool, org_id, provider="openai", model=model, success=False, error=err,
                     created_at=now - timedelta(minutes=1))
    await _event(pg_pool, org_id, provider="openai", model=model, created_at=now - timedelta(days=2))  # outside
    body = await model_health(pg_pool, org_id, breakers=lambda: {f"openai:{model}": "open"})
    (m,) = [m for m in body["models"] if m["model"] == model]
    hour, day = m["last_hour"], m["last_day"]
    assert hour["requests"] == 105 and hour["errors"] == 5 and hour["error_rate"] == pytest.approx(5 / 105, abs=1e-4)
    assert hour["errors_by_kind"] == {"timeout": 1, "rate_limit": 1, "circuit_open": 1, "server": 1, "auth": 1}
    for q, key in ((50, "p50"), (95, "p95"), (99, "p99")):
        assert hour["latency_ms"][key] == pytest.approx(np.percentile(recent, q), abs=0.1)
    assert hour["ttft_ms"]["p50"] == pytest.approx(np.percentile([r / 2 for r in recent], 50), abs=0.1)
    assert hour["tokens"] == {"input": 10000, "output": 2000}
    assert day["requests"] == 107
    assert day["latency_ms"]["p99"] == pytest.approx(np.percentile(recent + [5000, 6000], 99), abs=0.1)
    assert m["breaker"] == "open"
    unknown = await model_health(pg_pool, org_id)
    assert {x["breaker"] for x in unknown["models"]} == {"unknown"}
