"""As a user runs it: a CRM connected with `callwise integrations set`, `callwise simulate --caller` shows the
caller found in the CRM (a local server in HubSpot's wire format), and `callwise outbox run` leaves the call
engagement on the CRM side; an unknown caller and no CRM at all change nothing else."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import asyncpg
import pytest

from tests.vendors.hubspot import FakeHubSpot

CLI = [sys.executable, "-m", "callwise.cli.main"]


def _run(args, env, stdin=None, timeout=300):
    return subprocess.run([*CLI, *args], env=env, input=stdin, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def world(pg_pool, pg_url, tmp_path):
    with FakeHubSpot() as hs:
        hs.add("contacts", {"firstname": "Ada", "lastname": "Lovelace", "email": "ada@example.com", "phone": "+15550100",
                            "company": "Analytical Engines", "total_revenue": "12500"})
        env = {k: v for k, v in os.environ.items() if not k.startswith("CALLWISE_")}
        env.update(DATABASE_URL=pg_url, CALLWISE_DATA_DIR=str(tmp_path / "data"), CALLWISE_HUBSPOT_BASE_URL=hs.url,
                   CALLWISE_OUTBOX_DISPATCHER="false", HF_HUB_OFFLINE="1")
        slug = "crmcli-" + uuid.uuid4().hex[:8]
        script = tmp_path / "call.txt"
        script.write_text("hi, I have a question about my plan\nhow do I change my plan?\n")
        yield hs, env, slug, script


async def _org(pg_url, slug):
    conn = await asyncpg.connect(pg_url)
    try:
        await conn.execute("insert into organizations (slug, name) values ($1, $1)", slug)
    finally:
        await conn.close()


async def test_simulate_with_a_known_caller_and_the_write_back(world, pg_url):
    hs, env, slug, script = world
    await _org(pg_url, slug)
    res = _run(["integrations", "set", "hubspot", "--org", slug], env, stdin=f"access_token={hs.access_token}\n")
    assert res.returncode == 0, res.stderr
    assert hs.access_token not in res.stdout + res.stderr
    res = _run(["simulate", str(script), "--org", slug, "--caller", "+1 555 0100", "--json"], env)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["caller"]["known"] and out["caller"]["customer"]["name"] == "Ada Lovelace"
    assert out["caller"]["customer"]["company"] == "Analytical Engines"
    plain = _run(["simulate", str(script), "--org", slug, "--caller", "+15550100"], env)
    assert "caller: Ada Lovelace (hubspot" in plain.stdout
    res = _run(["outbox", "run", "--org", slug, "--json"], env)
    assert res.returncode == 0, res.stderr
    calls = hs.objects["calls"]
    assert len(calls) == 2  # one engagement per simulated call
    assert all(c["associations"][0]["to"]["id"] == hs.objects["contacts"][0]["id"] for c in calls)
    assert "how do I change my plan?" in calls[0]["properties"]["hs_call_body"]


async def test_unknown_caller_and_no_crm(world, pg_url):
    hs, env, slug, script = world
    await _org(pg_url, slug)
    res = _run(["simulate", str(script), "--org", slug, "--caller", "nobody@example.com", "--json"], env)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["caller"]["known"] is False and out["caller"]["error"] is None
    assert len(out["turns"]) == 2 and hs.requests == []  # no CRM connected: nothing asked of it
