"""Many callwise processes on one data dir (the embedded Postgres and its knowledge store), as users run them.

Real processes on a fresh data dir, no DATABASE_URL: two `callwise simulate` and a `callwise ingest` start
at the same moment (one of them creates and starts the embedded server, the others attach); then
`callwise serve` runs while `callwise ingest` adds a document, and the API finds it on its next query;
then the worker's job-process path (`open_components_in`, as agent/worker.py's entrypoint runs it per
job) twice in parallel. When the last process is gone, so is the server.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from callwise.infra.db import PostmasterPid, pid_alive
from tests.knowledge.conftest import write_corpus

ROOT = Path(__file__).resolve().parents[2]
ORG = "acme"
JOB = """
import asyncio, sys
from contextlib import AsyncExitStack
from callwise.wiring.settings import Settings
from callwise.wiring.agent import open_components_in

async def main():
    async with AsyncExitStack() as stack:  # what callwise.agent.worker.entrypoint does in each job process
        comp = await open_components_in(stack, Settings())
        org = await comp.runtime.org_id(sys.argv[1])
        res = await comp.knowledge.retriever.retrieve(sys.argv[2], org, top_k=3, mode="hybrid")
        print(res.chunks[0].document if res.chunks else "-")

asyncio.run(main())
"""


def _env(data_dir: Path) -> dict[str, str]:
    env = {**os.environ, "CALLWISE_DATA_DIR": str(data_dir), "CALLWISE_DEFAULT_ORG": ORG, "COLUMNS": "200"}
    for key in ("DATABASE_URL", "CALLWISE_DATABASE_URL", "QDRANT_URL", "CALLWISE_QDRANT_URL", "CALLWISE_API_TOKEN"):
        env.pop(key, None)
    return env


def _start(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _finish(proc: subprocess.Popen[str], timeout: float = 900) -> str:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, f"{proc.args[1:4]} exited {proc.returncode}: {err[-3000:]}"
    assert "Traceback" not in err, err[-3000:]
    return out


def _post(port: int, path: str, body: dict) -> dict:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as resp:
        return json.loads(resp.read())


def _wait_healthy(port: int, proc: subprocess.Popen[str], timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else "serve exited"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise AssertionError("serve did not come up")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.timeout(2400)  # six heavy processes: 58 s on a quiet 2-core machine, half an hour at load average 27
def test_simulate_serve_ingest_and_jobs_share_one_data_dir(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = _env(data)
    kb = write_corpus(tmp_path / "kb")
    extra = write_corpus(tmp_path / "extra", {
        "gift.md": "# Gift cards\n\nOrbitly gift cards never expire. Zebracorn vouchers redeem under Billing.\n"})
    script = tmp_path / "call.txt"
    script.write_text("How long do refunds take to reach my card?\nI forgot my password\n")
    procs: list[subprocess.Popen[str]] = []
    try:
        # 1. three processes at once on a data dir that does not exist yet
        procs += [_start(env, "-m", "callwise.cli.main", "simulate", str(script), "--json") for _ in range(2)]
        procs.append(_start(env, "-m", "callwise.cli.main", "ingest", str(kb), "--org", ORG, "--json"))
        outs = [_finish(p) for p in procs]
        assert json.loads(outs[2])["added"] == 5
        for out in outs[:2]:
            assert json.loads(out)  # each simulate played its turns and printed them
        assert not _running(data)  # the last one out stopped the server

        # 2. serve, and an ingest beside it: the API sees the new document on its next query
        port = _free_port()
        serve = _start(env, "-m", "callwise.cli.main", "serve", "--port", str(port))
        procs.append(serve)
        _wait_healthy(port, serve)
        before = _post(port, f"/v1/orgs/{ORG}/search", {"query": "zebracorn vouchers", "mode": "bm25"})
        assert before["results"] == []
        _finish(_start(env, "-m", "callwise.cli.main", "ingest", str(extra), "--org", ORG, "--json"))
        for mode in ("bm25", "vector", "hybrid"):
            after = _post(port, f"/v1/orgs/{ORG}/search", {"query": "zebracorn vouchers gift cards", "mode": mode})
            assert after["results"] and after["results"][0]["document"].endswith("gift.md"), mode

        # 3. the worker's job-process path, twice in parallel, beside the running API
        jobs = [_start(env, "-c", JOB, ORG, q) for q in ("zebracorn vouchers", "How long do refunds take?")]
        docs = [_finish(j).strip().splitlines()[-1] for j in jobs]
        assert docs[0].endswith("gift.md") and docs[1].endswith("refunds.md")
        assert serve.poll() is None and _running(data)
        serve.send_signal(signal.SIGINT)
        serve.wait(timeout=60)
        assert not _running(data)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=30)


def _running(data: Path) -> bool:
    pm = PostmasterPid.read(data / "pg")
    return pm is not None and pid_alive(pm.pid)
