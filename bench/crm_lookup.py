"""Caller lookup latency: the CRM lookup at call start, cache miss and hit, and what it adds to the first answer.

    python bench/crm_lookup.py [--callers 200] [--vendor-ms 0,80] [--budget-ms 300] [--cache pg|memory]
                               [--data-dir DIR] [--json]

A local server in HubSpot's wire format (tests/vendors/hubspot.py) holds ``--callers`` contacts; for each
``--vendor-ms`` value it answers every request that much later (a stand-in for the network round trip to
api.hubapi.com). The real path runs: ``callwise.calls.caller.CallerService`` -> ``callwise.integrations.crm.hubspot.HubSpotCRM``
(the official SDK in a worker thread) -> search by phone -> ``end_users`` upsert and session link on the
embedded Postgres. Contacts hold their numbers as people type them ("(555) 000-0042"); callers arrive as
E.164 (+15550000042), so every lookup goes through the normalised search. ``--cache pg`` (the product's cache:
a ``crm_cache`` row per org and caller, shared by every process) or ``memory`` (one process only).

Reported per vendor latency: p50/p95 of a cache-miss lookup (the CRM search through the SDK), of a cache hit,
and the wait
the first answer would see if the customer's first question were ready the instant the call started (the
worst case: the lookup starts with the greeting, so on a real call, where the first utterance ends seconds
later, the added wait is 0 unless the lookup is slower than greeting plus first utterance; it is capped by
the budget either way).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from callwise.calls.caller import CallerId, CallerService, CustomerCache, PgCustomerCache  # noqa: E402
from callwise.integrations.crm.hubspot import HubSpotCRM, HubSpotTokens  # noqa: E402
from callwise.wiring.runtime import open_runtime  # noqa: E402
from callwise.wiring.settings import Settings  # noqa: E402
from tests.vendors._http import Reply  # noqa: E402
from tests.vendors.hubspot import FakeHubSpot  # noqa: E402


def pct(values: list[float]) -> dict[str, float]:
    arr = np.array(values) if values else np.array([0.0])
    return {"p50": round(float(np.percentile(arr, 50)), 1), "p95": round(float(np.percentile(arr, 95)), 1),
            "max": round(float(arr.max()), 1)}


async def one_setting(pool: Any, org: str, fake: FakeHubSpot, callers: int, budget_s: float,
                      cache: str = "pg") -> dict[str, Any]:
    async def factory(_: str) -> HubSpotCRM:
        return HubSpotCRM(HubSpotTokens(access_token=fake.access_token), base_url=fake.url, timeout_s=5)

    await pool.execute("delete from crm_cache where organization_id = $1", org)  # each setting starts cold
    store = PgCustomerCache(pool, 600) if cache == "pg" else CustomerCache(600)
    service = CallerService(pool, factory, budget_s=budget_s, timeout_s=5, cache=store)
    miss, hit, first_wait, found = [], [], [], 0
    for i in range(callers):
        sid = await pool.fetchval("insert into sessions (organization_id, room, kind) values ($1, 'bench', 'support') "
                                  "returning id", org)
        t0 = time.perf_counter()
        lookup = service.start(org, str(sid), CallerId.parse(f"+1555{i:07d}"))
        await lookup.within_budget()  # the first answer's wait, worst case (question ready at call start)
        first_wait.append((time.perf_counter() - t0) * 1000)
        await lookup.task
        miss.append(lookup.lookup_ms or 0.0)
        found += lookup.customer is not None
    for i in range(callers):
        again = service.start(org, None, CallerId.parse(f"+1555{i:07d}"))
        await again.task
        hit.append(again.lookup_ms or 0.0)
    return {"found": found, "miss_ms": pct(miss), "hit_ms": pct(hit), "first_answer_wait_worst_ms": pct(first_wait)}


async def main(args: argparse.Namespace) -> dict[str, Any]:
    data_dir = Path(args.data_dir or tempfile.mkdtemp(prefix="cw-crm-bench-"))
    settings = Settings(_env_file=None, data_dir=data_dir)
    out: dict[str, Any] = {"callers": args.callers, "budget_ms": args.budget_ms, "cache": args.cache, "runs": {}}
    async with open_runtime(settings) as rt:
        slug = "bench-crm-" + uuid.uuid4().hex[:6]
        org = await rt.org_id(slug)
        try:
            for vendor_ms in [float(v) for v in args.vendor_ms.split(",")]:
                with FakeHubSpot() as fake:
                    for i in range(args.callers):
                        typed = f"(555) {i:07d}"[:9] + "-" + f"{i:07d}"[3:]  # (555) 000-0042
                        fake.add("contacts", {"firstname": f"C{i}", "lastname": "Bench", "phone": typed,
                                              "email": f"c{i}@bench.example", "total_revenue": str(100 * i)})
                    if vendor_ms:
                        delay = vendor_ms / 1000

                        def slow(req: Any, fake: FakeHubSpot = fake, delay: float = delay) -> Reply:
                            reply = FakeHubSpot.handle(fake, req)
                            reply.delay_s = delay
                            return reply
                        fake.handle = slow  # type: ignore[method-assign]
                    out["runs"][f"vendor_{int(vendor_ms)}ms"] = await one_setting(rt.pool, org, fake, args.callers,
                                                                                 args.budget_ms / 1000, args.cache)
        finally:
            await rt.pool.execute("delete from organizations where id = $1", org)
    return out


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--callers", type=int, default=200)
    p.add_argument("--vendor-ms", default="0,80", help="comma-separated added vendor latency per request")
    p.add_argument("--budget-ms", type=float, default=300.0)
    p.add_argument("--cache", choices=("pg", "memory"), default="pg")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    result = asyncio.run(main(a))
    if a.json:
        print(json.dumps(result))
    else:
        print(f"{a.callers} callers, budget {a.budget_ms:.0f} ms")
        for name, r in result["runs"].items():
            print(f"{name}: found {r['found']}; miss p50 {r['miss_ms']['p50']} / p95 {r['miss_ms']['p95']} ms; "
                  f"hit p50 {r['hit_ms']['p50']} / p95 {r['hit_ms']['p95']} ms; first-answer wait (worst case) "
                  f"p50 {r['first_answer_wait_worst_ms']['p50']} / p95 {r['first_answer_wait_worst_ms']['p95']} ms")
