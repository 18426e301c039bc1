"""Chaos run: support turns through the real turn stages, real Postgres and retrieval, against
three tiers of OpenAI-wire servers that fail at random.

    python bench/chaos.py --turns 1000 [--json] [--concurrency 10] [--seed 7]

Each tier is a local server in the OpenAI Chat Completions wire format (tests/vendors/openai.py)
that, per request, answers normally or fails: a timeout past the turn's deadline, 429, 5xx, a
malformed body, a connection reset, a stream dropped midway, a hang. Calls are the support scripts
of examples/calls/scripts.json, run ``--concurrency`` at a time until ``--turns`` customer turns were
started; some turns are cancelled after their first words (a barge-in). Printed: turns started,
stored (an agent turn row in Postgres after the call ended), lost (must be 0), escalations, time
to first word from end of speech (p50/p95), the fault mix, and each breaker's state after the
faults stop and the reset time passes: closed, or half-open with its trial free (a probe call went
to a cheaper tier); a breaker that would still refuse calls is "stuck".
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from collections import Counter
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from _harness import cpu_note, open_org, percentile, support_scripts  # noqa: I001 - bench-local helper

from tests.vendors._http import Reply, Request
from tests.vendors.openai import FakeOpenAI

FAULTS = {"ok": 0.52, "slow": 0.05, "429": 0.10, "5xx": 0.10, "malformed": 0.07, "reset": 0.06,
          "midstream_drop": 0.07, "hang": 0.03}


class ChaosOpenAI(FakeOpenAI):
    """FakeOpenAI that fails at random per request (``chaos`` off: always answers)."""

    def __init__(self, text: str, rng: random.Random, *, slow_s: float, hang_s: float) -> None:
        super().__init__(text, logprob=-0.05)
        self.rng = rng
        self.chaos = True
        self.slow_s, self.hang_s = slow_s, hang_s
        self.faults: Counter[str] = Counter()

    def start(self) -> ChaosOpenAI:
        super().start()
        assert self._server is not None
        self._server.handle_error = lambda *a: None  # a reset is the point, not a traceback on stderr
        return self

    def handle(self, request: Request) -> Reply:
        fault = "ok"
        if self.chaos:
            fault = self.rng.choices(list(FAULTS), weights=list(FAULTS.values()))[0]
        self.faults[fault] += 1
        if fault == "429":
            return self.rate_limited(retry_after=0.2)
        if fault == "5xx":
            return self.server_error(self.rng.choice([500, 502, 503]))
        if fault == "malformed":
            if (request.body or {}).get("stream"):
                return Reply(200, events=[b'data: {"id": "chatcmpl-x", "choices": [{"delta": {"content": "Hal',
                                          b"\n\ndata: [DONE]\n\n"])
            return self.malformed()
        if fault == "reset":
            raise ConnectionResetError("chaos: connection reset")
        normal = super().handle(request)
        if fault == "slow":
            normal.delay_s = self.slow_s
        elif fault == "hang":
            normal.delay_s = self.hang_s
        elif fault == "midstream_drop" and normal.events is not None:
            events = list(normal.events)

            def dropped() -> Any:
                yield from events[:3]
                raise ConnectionResetError("chaos: stream dropped")
            normal.events = dropped()
        return normal


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from callwise.calls import SupportCall, SupportDeps
    from callwise.handoff.escalation import EscalationPolicy, EscalationRules
    from callwise.routing.costs import PostgresCostSink
    from callwise.routing.providers.openai import OpenAIProvider
    from callwise.routing.router import CascadingRouter, Tier

    rng = random.Random(args.seed)
    servers = [ChaosOpenAI(f"Tier {i} says: refunds take five to seven business days.", random.Random(args.seed + i),
                           slow_s=args.first_word_s + 1.0, hang_s=60).start() for i in (1, 2, 3)]
    async with AsyncExitStack() as stack:
        settings, pool, knowledge, org_id = await open_org(stack, Path(args.data_dir), "chaos")
        router = CascadingRouter(
            [Tier(f"tier{i}", OpenAIProvider(f"chaos-{i}", api_key="chaos", base_url=s.base_url))
             for i, s in enumerate(servers, 1)],
            PostgresCostSink(pool), timeout_s=args.provider_timeout_s, breaker_failures=3,
            breaker_reset_s=args.breaker_reset_s, first_word_s=args.first_word_s, give_up_s=args.give_up_s)
        deps = SupportDeps(retriever=knowledge.retriever, router=router, pool=pool,
                           rules=EscalationRules(EscalationPolicy.from_settings(settings)))
        scripts = support_scripts()
        started = 0
        ttfw: list[float] = []
        outcomes: Counter[str] = Counter()
        sessions: dict[str, int] = {}  # session -> turns started
        escalated = 0
        barge_ins = 0
        lock = asyncio.Lock()

        async def one_call(n: int) -> None:
            nonlocal started, escalated, barge_ins
            call = await SupportCall.start(deps, organization_id=org_id, room=f"chaos-{n}")
            sessions[call.session_id] = 0
            try:
                for text in scripts[n % len(scripts)]:
                    async with lock:
                        if started >= args.turns:
                            return
                        started += 1
                    sessions[call.session_id] += 1
                    eos = time.perf_counter()
                    stream = call.turn(text, eos_at=eos)
                    barge = rng.random() < args.barge_in
                    first = None
                    async for _ in stream:
                        if first is None:
                            first = (time.perf_counter() - eos) * 1000
                            if barge:
                                barge_ins += 1
                                await stream.aclose()  # the caller talks over the answer
                                break
                    if first is not None:
                        ttfw.append(first)
                    out = stream.outcome
                    if out is not None:
                        outcomes[out.kind] += 1
                        escalated += bool(out.escalated)
            finally:
                await call.end()

        t0 = time.perf_counter()
        n = 0
        running: set[asyncio.Task[None]] = set()
        while started < args.turns or running:
            while started < args.turns and len(running) < args.concurrency:
                task = asyncio.ensure_future(one_call(n))
                n += 1
                running.add(task)
                await asyncio.sleep(0)
            if not running:
                break
            done, running = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            for d in done:
                if d.exception() is not None:
                    outcomes["call_error:" + type(d.exception()).__name__] += 1
        wall = time.perf_counter() - t0

        stored = int(await pool.fetchval(
            "select count(*) from turns where organization_id = $1 and role = 'assistant' and session_id = any($2::uuid[])",
            org_id, list(sessions)))
        user_rows = int(await pool.fetchval(
            "select count(*) from turns where organization_id = $1 and role = 'user' and session_id = any($2::uuid[])",
            org_id, list(sessions)))
        esc_rows = int(await pool.fetchval(
            "select count(*) from escalations where organization_id = $1 and session_id = any($2::uuid[])",
            org_id, list(sessions)))
        open_sessions = int(await pool.fetchval(
            "select count(*) from sessions where id = any($1::uuid[]) and status = 'active'", list(sessions)))
        faults = Counter()
        for s in servers:
            faults.update(s.faults)
        during = router.breaker_states()

        # the faults stop; after the reset time every breaker must let a trial through and close again
        for s in servers:
            s.chaos = False
        await asyncio.sleep(args.breaker_reset_s + 0.2)
        probe = await SupportCall.start(deps, organization_id=org_id, room="chaos-probe")
        for text in ["How long does a refund take?", "How do I reset my password?",
                     "What is the SLA on the Business plan?"] * 2:
            await probe.run_turn(text)
        await probe.end()
        after = {k: {"state": b.state, "available": b.available} for k, b in router.breakers.items()}
        await router.aclose()
    for s in servers:
        s.stop()
    return {
        "turns_started": started, "turns_stored": stored, "turns_lost": started - stored,
        "customer_turns_stored": user_rows, "calls": len(sessions), "sessions_left_active": open_sessions,
        "escalated_turns": escalated, "escalation_rows": esc_rows, "barge_ins": barge_ins,
        "turn_kinds": dict(outcomes),
        "ttfw_ms": {"p50": percentile(ttfw, 0.5), "p95": percentile(ttfw, 0.95), "max": percentile(ttfw, 1.0),
                    "n": len(ttfw)},
        "faults_served": dict(faults), "breakers_at_end_of_chaos": during, "breakers_after_recovery": after,
        "breakers_stuck": [k for k, v in after.items() if not v["available"]],
        "wall_s": round(wall, 1), "concurrency": args.concurrency, "first_word_s": args.first_word_s,
        "machine": cpu_note(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--turns", type=int, default=1000)
    ap.add_argument("--concurrency", type=int, default=10, help="calls at once")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--barge-in", type=float, default=0.05, help="share of turns cancelled after the first words")
    ap.add_argument("--first-word-s", type=float, default=2.5)
    ap.add_argument("--give-up-s", type=float, default=12.0)
    ap.add_argument("--provider-timeout-s", type=float, default=10.0)
    ap.add_argument("--breaker-reset-s", type=float, default=5.0)
    ap.add_argument("--data-dir", default="/tmp/callwise-chaos")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    res = asyncio.run(run(args))
    if args.json:
        print(json.dumps(res, indent=2))
        return
    print(f"chaos run: {res['turns_started']} turns in {res['calls']} calls, {res['concurrency']} at once, "
          f"{res['wall_s']} s ({res['machine']})")
    print(f"  turns started {res['turns_started']}  stored {res['turns_stored']}  lost {res['turns_lost']}  "
          f"(customer turns stored {res['customer_turns_stored']}, sessions left active {res['sessions_left_active']})")
    print(f"  escalations: {res['escalated_turns']} turns, {res['escalation_rows']} escalation rows; "
          f"barge-ins {res['barge_ins']}")
    t = res["ttfw_ms"]
    print(f"  time to first word from end of speech: p50 {t['p50']} ms  p95 {t['p95']} ms  max {t['max']} ms "
          f"(deadline {res['first_word_s']} s)")
    print(f"  faults served: {res['faults_served']}")
    print(f"  breakers at the end of the chaos: {res['breakers_at_end_of_chaos']}")
    print(f"  breakers after recovery: {res['breakers_after_recovery']}  stuck: {res['breakers_stuck'] or 'none'}")


if __name__ == "__main__":
    main()
