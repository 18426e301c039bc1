"""An ingest killed mid-way (SIGKILL to a real `callwise ingest` process) leaves every document at
its old or its new version: never a document row of one version with chunks of the other, never a
document without chunks."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
N_DOCS = 60


def _write(kb: Path, version: str) -> None:
    kb.mkdir(exist_ok=True)
    for i in range(N_DOCS):
        paras = "\n\n".join(f"Paragraph {p} of document {i}, {version}: refunds, invoices and seats are handled "
                            f"by the billing team within {p + i} business days." for p in range(4))
        (kb / f"doc-{i:03d}.md").write_text(f"# Doc {i} {version}\n\n{paras}\n")


def _ingest(kb: Path, slug: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "callwise.cli.main", "ingest", str(kb), "--org", slug], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


async def _versions(pool, org_id: str) -> dict[str, tuple[str, set[str], int]]:  # type: ignore[no-untyped-def]
    rows = await pool.fetch(
        "select d.source, d.title, array_agg(distinct substring(c.text from 'version [a-z]+')) filter "
        "(where c.text ~ 'version [a-z]+') as v, count(c.id) as n from documents d "
        "left join chunks c on c.document_id = d.id and c.organization_id = d.organization_id "
        "where d.organization_id = $1 group by d.source, d.title", org_id)
    return {r["source"]: (r["title"].split()[-1], set(r["v"] or []), r["n"]) for r in rows}


async def test_killed_ingest_leaves_each_document_whole(pg_url, pg_pool, tmp_path) -> None:
    slug = "crash-" + uuid.uuid4().hex[:8]
    env = {**os.environ, "DATABASE_URL": pg_url, "CALLWISE_DATA_DIR": str(tmp_path / "data"), "PYTHONPATH": str(ROOT)}
    for k in ("QDRANT_URL", "CALLWISE_QDRANT_URL"):
        env.pop(k, None)
    kb = tmp_path / "kb"
    _write(kb, "version one")
    first = _ingest(kb, slug, env)
    assert await asyncio.to_thread(first.wait, 600) == 0, first.stderr.read() if first.stderr else ""
    org_id = str(await pg_pool.fetchval("select id from organizations where slug = $1", slug))
    assert {t for t, _, _ in (await _versions(pg_pool, org_id)).values()} == {"one"}

    _write(kb, "version two")
    proc = _ingest(kb, slug, env)
    try:
        loop = asyncio.get_running_loop()
        end = loop.time() + 300
        while loop.time() < end and proc.poll() is None:
            done = sum(t == "two" for t, _, _ in (await _versions(pg_pool, org_id)).values())
            if done >= 3:
                break
            await asyncio.sleep(0.05)
        killed_mid_way = proc.poll() is None
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    state = await _versions(pg_pool, org_id)
    assert len(state) == N_DOCS
    for source, (title_version, chunk_versions, n_chunks) in state.items():
        assert n_chunks > 0, f"{source} lost its chunks"
        assert chunk_versions == {f"version {title_version}"}, (source, title_version, chunk_versions)
    versions = {t for t, _, _ in state.values()}
    assert killed_mid_way and versions == {"one", "two"}, "the kill landed mid-way: some documents old, some new"
