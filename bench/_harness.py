"""Shared set-up for the benches (chaos, concurrency, followups, voice_turn): a database (DATABASE_URL, or the
embedded server under --data-dir), an organization with a part of the sample knowledge base
ingested, the support scripts of examples/calls/scripts.json, and percentiles."""

from __future__ import annotations

import json
import math
import os
import sys
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

KB_SUBSET = ["billing/refunds.md", "accounts/reset-password.md", "sso/okta-setup.md",
             "plans/sla-and-service-credits.md", "billing/invoices-and-receipts.md",
             "error-codes/e-4290-rate-limit-exceeded.md", "error-codes/e-5003-service-unavailable.md",
             "plans/plan-comparison.md"]


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    k = (len(s) - 1) * q
    lo, hi = math.floor(k), math.ceil(k)
    return round(s[lo] + (s[hi] - s[lo]) * (k - lo), 1)


def support_scripts() -> list[list[str]]:
    data = json.loads((ROOT / "examples" / "calls" / "scripts.json").read_text())
    return [[u["text"] for u in s["utterances"]] for s in data if s.get("kind") == "support"]


async def open_org(stack: AsyncExitStack, data_dir: Path, slug: str) -> tuple[Any, Any, Any, str]:
    """(settings, pool, knowledge, org_id) with the KB subset ingested (unchanged files are skipped)."""
    from callwise.wiring.knowledge import build_knowledge
    from callwise.wiring.runtime import open_runtime
    from callwise.wiring.settings import Settings

    settings = Settings(data_dir=data_dir)
    rt = await stack.enter_async_context(open_runtime(settings))
    org_id = await rt.org_id(slug)
    knowledge = build_knowledge(settings, rt.pool)
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        for rel in KB_SUBSET:
            if (ROOT / "examples" / "kb" / rel).is_file():
                await knowledge.ingestor.ingest(f"examples/kb/{rel}", org_id)
    finally:
        os.chdir(cwd)
    return settings, rt.pool, knowledge, org_id


async def ensure_example_kb(comp: Any, org_id: str) -> float | None:
    """Ingest the whole sample knowledge base into an organization that has no documents yet;
    returns the seconds it took, or None when the organization already had some."""
    import time

    if await comp.pool.fetchval("select count(*) from documents where organization_id = $1", org_id):
        return None
    t = time.perf_counter()
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        await comp.knowledge.ingestor.ingest("examples/kb", org_id)
    finally:
        os.chdir(cwd)
    return round(time.perf_counter() - t, 1)


def cpu_note() -> str:
    n = os.cpu_count() or 0
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"{n} CPU cores available, load average {load:.1f} at start"
