"""The outbox under a flaky vendor: every escalation's ticket delivered exactly once, and how fast.

    python bench/outbox.py [--n 1000] [--fail-rate 0.3] [--lost-rate 0.1] [--down-at 1.0] [--down-for 3.0]
                           [--dispatchers 2] [--data-dir DIR] [--json]

``--n`` escalations are opened the way the handoff service opens them (a case and its ``zendesk.ticket``
outbox row in one transaction, 8 writers at once) while ``--dispatchers`` dispatchers (separate
``Dispatcher`` objects, as separate workers would run them, sharing one queue through ``FOR UPDATE SKIP
LOCKED``) deliver them through the real Zendesk handler (``callwise.integrations.actions``: ``external_id`` lookup
on retries, then ``POST /api/v2/tickets.json``) to a local server in Zendesk's wire format that answers
503 to ``--fail-rate`` of the calls and is completely down from ``--down-at`` for ``--down-for`` seconds;
``--lost-rate`` of the creates it does perform are answered 500 anyway (the ticket exists, the client saw
an error: the case the look-before-create step is for).

Reported: how many were delivered, how many tickets the vendor created per case (exactly once means every
case has one), p50/p95/max delivery delay (row created -> marked delivered, database clock), the
dispatchers' throughput (delivered rows per second of wall time from the first escalation to the last
delivery), attempts, and the vendor's request count. Runs on the embedded Postgres under ``--data-dir``
(default: a fresh temporary directory) or ``DATABASE_URL``; the bench's organization is deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiohttp import web  # noqa: E402
from cryptography.fernet import Fernet  # noqa: E402

from callwise.calls.store import ConversationStore, TurnRecord  # noqa: E402
from callwise.handoff.cases import CaseDesk  # noqa: E402
from callwise.integrations.actions import VendorConfig, build_handlers  # noqa: E402
from callwise.integrations.credentials import CredentialStore  # noqa: E402
from callwise.integrations.outbox import Backoff, Dispatcher, DispatchStats, enqueue  # noqa: E402
from callwise.wiring.runtime import open_runtime  # noqa: E402
from callwise.wiring.settings import Settings  # noqa: E402

TOKEN = "bench-zendesk-token"


class FlakyZendesk:
    """Zendesk's ticket endpoints (bearer token, lookup by external_id, 201 on create), flaky on purpose."""

    def __init__(self, fail_rate: float, down_at: float, down_for: float, seed: int = 11,
                 lost_rate: float = 0.0) -> None:
        self.fail_rate, self.down_at, self.down_for = fail_rate, down_at, down_for
        self.lost_rate, self.lost = lost_rate, 0
        self.rng = random.Random(seed)
        self.t0 = time.monotonic()
        self.tickets: dict[str, int] = {}
        self.creates: Counter[str] = Counter()
        self.requests = self.failed = self.down_refusals = 0

    def down(self) -> bool:
        t = time.monotonic() - self.t0
        return self.down_at <= t < self.down_at + self.down_for

    async def handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        if self.down():
            self.down_refusals += 1
            return web.json_response({"error": "ServiceUnavailable"}, status=503)
        if self.rng.random() < self.fail_rate:
            self.failed += 1
            return web.json_response({"error": "ServiceUnavailable"}, status=503)
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return web.json_response({"error": "invalid_token"}, status=401)
        if request.method == "GET":
            ext = request.query.get("external_id", "")
            tid = self.tickets.get(ext)
            found = [{"id": tid, "external_id": ext, "url": f"/api/v2/tickets/{tid}.json"}] if tid else []
            return web.json_response({"tickets": found, "count": len(found)})
        body = await request.json()
        ext = body["ticket"]["external_id"]
        self.creates[ext] += 1
        tid = self.tickets.setdefault(ext, 10000 + len(self.tickets))
        if self.rng.random() < self.lost_rate:  # created, but the answer is lost
            self.lost += 1
            return web.json_response({"error": "InternalError"}, status=500)
        return web.json_response({"ticket": {"id": tid, "external_id": ext, "url": f"/api/v2/tickets/{tid}.json"},
                                  "audit": {}}, status=201)


async def _serve(vendor: FlakyZendesk) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_route("*", "/api/v2/tickets.json", vendor.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


async def run(args: argparse.Namespace) -> dict[str, Any]:
    overrides: dict[str, Any] = {"_env_file": None}
    tmp = None
    if args.data_dir:
        overrides["data_dir"] = Path(args.data_dir)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="cw-bench-outbox-")
        overrides["data_dir"] = Path(tmp.name)
    settings = Settings(**overrides)
    vendor = FlakyZendesk(args.fail_rate, args.down_at, args.down_for, lost_rate=args.lost_rate)
    runner, url = await _serve(vendor)
    try:
        async with open_runtime(settings) as rt:
            pool = rt.pool
            slug = "bench-outbox-" + uuid.uuid4().hex[:8]
            org = str(await pool.fetchval("insert into organizations (slug, name) values ($1, $1) returning id", slug))
            try:
                return await _bench(args, pool, org, vendor, url)
            finally:
                await pool.execute("delete from organizations where id = $1", org)
    finally:
        await runner.cleanup()
        if tmp is not None:
            tmp.cleanup()


async def _bench(args: argparse.Namespace, pool: Any, org: str, vendor: FlakyZendesk, url: str) -> dict[str, Any]:
    creds = CredentialStore(pool, Fernet(Fernet.generate_key()))
    await creds.set(org, "zendesk", secrets={"access_token": TOKEN}, fields={"subdomain": "bench"})
    handlers = build_handlers(pool, creds, VendorConfig(zendesk_base_url=url))
    store, desk = ConversationStore(pool, org), CaseDesk(pool, org)
    sessions = []
    for i in range(min(args.n, 50)):  # a handful of calls carry the escalations (the transcript goes in the ticket)
        sid = await store.start_session(room=f"bench-{i}", kind="support")
        await store.add_turn(sid, TurnRecord(speaker="customer", role="user", text="I want to talk to a person"))
        sessions.append(sid)

    async def open_case(i: int) -> None:
        async with pool.acquire() as conn, conn.transaction():
            case = await desk.open(conn, session_id=sessions[i % len(sessions)], reason="explicit_request",
                                   handoff="callback", details={"rule": "bench", "matched": ["a person"]},
                                   status="callback", handoff_status="callback")
            await enqueue(conn, organization_id=org, action="zendesk.ticket",
                          payload={"case_id": case.id, "case": case.label, "reason": "explicit_request",
                                   "rule": "bench", "matched": ["a person"], "handoff": "callback"},
                          idempotency_key=f"{case.id}:ticket", case_id=case.id, max_attempts=args.max_attempts)

    async def writers() -> None:
        queue = iter(range(args.n))

        async def writer() -> None:
            for i in queue:
                await open_case(i)

        await asyncio.gather(*(writer() for _ in range(8)))

    dispatchers = [Dispatcher(pool, handlers, organization_id=org, batch_size=args.batch, concurrency=16, lease_s=30,
                              backoff=Backoff(base_s=0.2, max_s=2.0, jitter=0.2)) for _ in range(args.dispatchers)]
    stop = asyncio.Event()
    vendor.t0 = time.monotonic()
    t0 = time.perf_counter()
    loops = [asyncio.create_task(d.run(stop, poll_s=0.05)) for d in dispatchers]
    await writers()
    written_s = time.perf_counter() - t0
    deadline = time.perf_counter() + args.timeout
    while time.perf_counter() < deadline:
        left = await pool.fetchval("select count(*) from outbox where organization_id = $1 and status in "
                                   "('pending', 'in_flight')", org)
        if left == 0:
            break
        await asyncio.sleep(0.05)
    stop.set()
    per: list[DispatchStats] = await asyncio.gather(*loops)
    last = await pool.fetchval("select max(delivered_at) - min(created_at) from outbox where organization_id = $1", org)
    wall_s = last.total_seconds() if last else time.perf_counter() - t0
    rows = await pool.fetch("select status, attempts, extract(epoch from delivered_at - created_at) as delay "
                            "from outbox where organization_id = $1", org)
    delays = [float(r["delay"]) for r in rows if r["delay"] is not None]
    status = Counter(r["status"] for r in rows)
    ticket_ids = await pool.fetchval("select count(*) from escalations where organization_id = $1 and ticket_id is not null",
                                     org)
    creates = Counter(vendor.creates.values())
    audits = await pool.fetchval("select count(*) from audit_log where organization_id = $1 and action = 'zendesk.ticket' "
                                 "and details->>'result' = 'delivered'", org)
    return {
        "escalations": args.n, "dispatchers": args.dispatchers, "fail_rate": args.fail_rate,
        "down_window_s": [args.down_at, args.down_at + args.down_for],
        "delivered": status.get("delivered", 0), "dead": status.get("dead", 0),
        "not_finished": status.get("pending", 0) + status.get("in_flight", 0),
        "cases_with_ticket_id": int(ticket_ids), "audit_rows": int(audits),
        "vendor_tickets": len(vendor.tickets), "tickets_created_once": creates.get(1, 0),
        "tickets_created_more_than_once": sum(v for k, v in creates.items() if k > 1),
        "exactly_once": len(vendor.tickets) == args.n and set(vendor.creates.values()) == {1},
        "delay_s": {"p50": round(_pct(delays, 0.5), 3), "p95": round(_pct(delays, 0.95), 3),
                    "max": round(max(delays), 3) if delays else None},
        "throughput_per_s": round(len(delays) / wall_s, 1) if wall_s else None,
        "wall_s": round(wall_s, 2), "enqueue_s": round(written_s, 2),
        "attempts": {"mean": round(sum(r["attempts"] for r in rows) / max(1, len(rows)), 2),
                     "max": max((r["attempts"] for r in rows), default=0)},
        "per_dispatcher_delivered": [s.delivered for s in per], "lost_leases": sum(s.lost_lease for s in per),
        "vendor_requests": vendor.requests, "vendor_503_random": vendor.failed, "vendor_503_down": vendor.down_refusals,
        "vendor_created_then_500": vendor.lost,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--fail-rate", type=float, default=0.3)
    p.add_argument("--lost-rate", type=float, default=0.1, help="share of creates answered 500 after creating")
    p.add_argument("--down-at", type=float, default=1.0, help="seconds after the start when the vendor goes down")
    p.add_argument("--down-for", type=float, default=3.0)
    p.add_argument("--dispatchers", type=int, default=2)
    p.add_argument("--batch", type=int, default=50)
    p.add_argument("--max-attempts", type=int, default=30)
    p.add_argument("--timeout", type=float, default=300.0)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    out = asyncio.run(run(args))
    if args.json:
        print(json.dumps(out, indent=2))
        return
    print(f"{out['escalations']} escalations, {out['dispatchers']} dispatchers, vendor failing {out['fail_rate']:.0%} "
          f"and down {out['down_window_s'][0]:g}-{out['down_window_s'][1]:g} s")
    print(f"delivered {out['delivered']}, dead {out['dead']}, unfinished {out['not_finished']}; vendor tickets "
          f"{out['vendor_tickets']} (created more than once: {out['tickets_created_more_than_once']}); "
          f"exactly once: {out['exactly_once']}")
    d = out["delay_s"]
    print(f"delivery delay p50 {d['p50']} s, p95 {d['p95']} s, max {d['max']} s; throughput "
          f"{out['throughput_per_s']}/s over {out['wall_s']} s; attempts mean {out['attempts']['mean']} "
          f"max {out['attempts']['max']}; per dispatcher {out['per_dispatcher_delivered']}")


if __name__ == "__main__":
    main()
