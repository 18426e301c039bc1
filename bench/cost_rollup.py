"""The cost roll-up's time for N cost events on one day (default 1,000,000: 20 organizations, three tiers,
five models), then a re-run of the same day (idempotent: the same rows), checked against a direct sum.

    OMP_NUM_THREADS=1 python bench/cost_rollup.py --events 1000000 --json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from contextlib import AsyncExitStack
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import ROOT, cpu_note  # noqa: E402

DAY = date(2025, 1, 15)  # a past day of its own, so re-runs of the bench find their events

FILL = """
insert into cost_events (organization_id, tier, provider, model, input_tokens, output_tokens, cached_tokens,
                         cost_usd, latency_ms, success, created_at)
select (array_agg_orgs)[1 + i % cardinality(array_agg_orgs)],
       (array['tier1', 'tier2', 'tier3'])[1 + i % 3],
       (array['google', 'openai', 'anthropic', 'openai_compatible', 'extractive'])[1 + i % 5],
       (array['gemini-flash', 'gpt-4o-mini', 'claude-sonnet', 'qwen2.5-1.5b', 'extractive-v1'])[1 + i % 5],
       100 + i % 900, 10 + i % 200, i % 50, (i % 1000) / 1e6, 50 + i % 3000, i % 97 <> 0,
       $1::date + (i % 86400) * interval '1 second'
from generate_series(1, $2::int) i, (select array_agg(id) as array_agg_orgs from organizations
                                     where slug like 'bench-rollup-%') o
"""


async def main(args: argparse.Namespace) -> dict:  # type: ignore[type-arg]
    from callwise.routing.costs import rollup_costs
    from callwise.wiring.runtime import open_runtime
    from callwise.wiring.settings import Settings

    note = cpu_note()
    async with AsyncExitStack() as stack:
        rt = await stack.enter_async_context(open_runtime(Settings(data_dir=args.data_dir)))
        pool = rt.pool
        for i in range(20):
            await rt.org_id(f"bench-rollup-{i:02d}")
        have = await pool.fetchval("select count(*) from cost_events where created_at >= $1::date "
                                   "and created_at < $1::date + 1", DAY)
        fill_s = None
        if have < args.events:
            t = time.perf_counter()
            while have < args.events:  # in batches: each is one statement under the pool's command timeout
                batch = min(100_000, args.events - have)
                await pool.execute(FILL, DAY, batch, timeout=600)
                have += batch
            await pool.execute("analyze cost_events", timeout=600)
            fill_s = round(time.perf_counter() - t, 1)
        runs = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            rows = await rollup_costs(pool, DAY)
            runs.append(round(time.perf_counter() - t, 2))
        total = float(await pool.fetchval("select sum(cost_usd) from cost_summaries where day = $1", DAY))
        direct = float(await pool.fetchval("select sum(cost_usd) from cost_events where created_at >= $1::date "
                                           "and created_at < $1::date + 1", DAY))
        requests = int(await pool.fetchval("select sum(requests) from cost_summaries where day = $1", DAY))
    return {"events": args.events, "fill_s": fill_s, "summary_rows": rows, "rollup_s": runs,
            "summed_requests": requests, "cost_matches": abs(total - direct) < 1e-6, "machine": note,
            "load_after": round(__import__("os").getloadavg()[0], 1)}


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--data-dir", type=Path, default=ROOT / ".callwise" / "bench-rollup")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    result = asyncio.run(main(a))
    print(json.dumps(result) if a.json else "\n".join(f"{k}: {v}" for k, v in result.items()))
