"""The dashboard's load time with N support calls in the database (default 100,000 over 30 days).

Fills an organization (once; re-runs reuse it) with calls, their two turns, cost events, escalations and
survey answers, written by SQL in bulk, then times the org page, the overview and the stats API through
the real app (aiohttp server, Postgres). Prints the median of --repeat requests; --json for one object.

    OMP_NUM_THREADS=1 python bench/dashboard_load.py --calls 100000 --json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from contextlib import AsyncExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import ROOT, cpu_note  # noqa: E402

FILL = """
with s as (
    insert into sessions (organization_id, room, kind, modality, started_at, ended_at, status, resolved_by_ai,
                          ai_resolved, resolution_reason)
    select $1, 'bench-' || i, 'support', 'voice', t, t + interval '3 minutes',
           case when i % 10 = 0 then 'escalated' else 'ended' end,
           i % 10 <> 0, i % 10 not in (0, 3, 7),
           case when i % 10 = 0 then 'escalated:explicit_request' when i % 10 = 3 then 'unanswered'
                when i % 10 = 7 then 'abandoned' else 'resolved' end
    from (select i, now() - (random() * interval '30 days') as t from generate_series(1, $2::int) i) g
    returning id, started_at, status, resolved_by_ai
), u as (
    insert into turns (organization_id, session_id, seq, speaker, role, text, created_at)
    select $1, id, 0, 'customer', 'user', 'How long does a refund take?', started_at from s
), a as (
    insert into turns (organization_id, session_id, seq, speaker, role, text, tier, confidence, latencies,
                       cost_usd, created_at)
    select $1, id, 1, 'agent', 'assistant', 'Refunds take five to seven days.',
           (array['tier1', 'tier1', 'tier1', 'tier2', 'tier3'])[1 + floor(random() * 5)::int], 0.9,
           jsonb_build_object('eos_to_first_token_ms', 300 + random() * 900), 0.0004, started_at + interval '5 s'
    from s
), c as (
    insert into cost_events (organization_id, session_id, tier, provider, model, input_tokens, output_tokens,
                             cost_usd, latency_ms, ttft_ms, created_at)
    select $1, id, 'tier1', 'google', 'gemini-flash', 900, 60, 0.0004, 400 + random() * 600, 200 + random() * 300,
           started_at + interval '5 s'
    from s
), e as (
    insert into escalations (organization_id, session_id, reason, status, created_at)
    select $1, id, 'explicit_request', case when random() < 0.9 then 'resolved' else 'waiting' end,
           started_at + interval '10 s' from s where status = 'escalated'
)
insert into survey_responses (organization_id, session_id, rating, channel_used, created_at)
select $1, id, 1 + floor(random() * 5)::int, 'voice', started_at + interval '3 minutes'
from s where random() < 0.2
"""


async def main(args: argparse.Namespace) -> dict:  # type: ignore[type-arg]
    from aiohttp.test_utils import TestClient, TestServer

    from callwise.api.app import ApiServices, create_app
    from callwise.wiring.runtime import open_runtime
    from callwise.wiring.settings import Settings

    note = cpu_note()
    async with AsyncExitStack() as stack:
        settings = Settings(data_dir=args.data_dir)
        rt = await stack.enter_async_context(open_runtime(settings))
        pool = rt.pool
        slug = f"bench-dash-{args.calls}"
        org = await rt.org_id(slug)
        have = await pool.fetchval("select count(*) from sessions where organization_id = $1", org)
        fill_s = None
        if have < args.calls:
            t = time.perf_counter()
            while have < args.calls:  # in batches: each is one statement under the pool's command timeout
                batch = min(10_000, args.calls - have)
                await pool.execute(FILL, org, batch, timeout=600)
                have += batch
            await pool.execute("analyze", timeout=600)
            fill_s = round(time.perf_counter() - t, 1)
        client = TestClient(TestServer(create_app(ApiServices(pool, None, None, None, None))))
        await client.start_server()
        stack.push_async_callback(client.close)
        out: dict = {"calls": args.calls, "fill_s": fill_s, "machine": note}  # type: ignore[type-arg]
        for name, path in (("org_page", f"/orgs/{slug}"), ("stats_30d", f"/v1/orgs/{slug}/stats?days=30"),
                           ("stats_1d", f"/v1/orgs/{slug}/stats?days=1"), ("overview", "/")):
            times = []
            for i in range(args.repeat + 1):
                t = time.perf_counter()
                res = await client.get(path)
                body = await res.read()
                assert res.status == 200, (path, res.status, body[:300])
                ms = (time.perf_counter() - t) * 1000
                if i == 0:
                    out[f"{name}_first_ms"] = round(ms, 1)  # the first request of a fresh process (imports, templates, first queries)
                else:
                    times.append(ms)
            out[f"{name}_median_ms"] = round(statistics.median(times), 1)
            out[f"{name}_max_ms"] = round(max(times), 1)
        stats = await (await client.get(f"/v1/orgs/{slug}/stats?days=30")).json()
        out["stats_calls_30d"] = stats["calls"]
        out["load_after"] = round(__import__("os").getloadavg()[0], 1)
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--data-dir", type=Path, default=ROOT / ".callwise" / "bench-dashboard")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    result = asyncio.run(main(a))
    print(json.dumps(result) if a.json else "\n".join(f"{k}: {v}" for k, v in result.items()))
