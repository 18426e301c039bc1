"""The case desk, outbox and credentials commands in-process (typer's runner) against the test Postgres."""

from __future__ import annotations

import asyncio
import json
import uuid

import asyncpg
import pytest
from typer.testing import CliRunner

from callwise.cli.main import app


@pytest.fixture
def cli_env(pg_pool, pg_url, tmp_path, monkeypatch):  # pg_pool: the schema is migrated
    for k in list(__import__("os").environ):
        if k.startswith("CALLWISE_"):
            monkeypatch.delenv(k)
    monkeypatch.setenv("DATABASE_URL", pg_url)
    monkeypatch.setenv("CALLWISE_DATA_DIR", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    slug = "cli-" + uuid.uuid4().hex[:8]

    async def seed() -> None:
        conn = await asyncpg.connect(pg_url)
        try:
            org = await conn.fetchval("insert into organizations (slug, name) values ($1, $1) returning id", slug)
            sid = await conn.fetchval("insert into sessions (organization_id, room, kind) values ($1, 'r', 'support') "
                                      "returning id", org)
            await conn.execute("insert into turns (organization_id, session_id, seq, speaker, role, text) values "
                               "($1, $2, 0, 'customer', 'user', 'please put me through to a supervisor')", org, sid)
            await conn.execute("insert into escalations (organization_id, session_id, reason, details, handoff, status) "
                               "values ($1, $2, 'explicit_request', $3, 'callback', 'callback')", org, sid,
                               json.dumps({"rule": "asked for a human", "matched": ["supervisor"]}))
        finally:
            await conn.close()

    asyncio.run(seed())
    return slug


def _json(args: list[str], stdin: str | None = None) -> dict:  # type: ignore[type-arg]
    res = CliRunner().invoke(app, args, input=stdin)
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def test_escalations_list_claim_resolve(cli_env):
    org = cli_env
    listed = _json(["escalations", "list", "--org", org, "--json"])
    [case] = listed["cases"]
    assert case["case"] == "CW-1001" and case["status"] == "callback"
    assert case["transcript"][0]["text"] == "please put me through to a supervisor"
    claimed = _json(["escalations", "claim", "CW-1001", "--agent", "alice", "--org", org, "--json"])
    assert claimed["status"] == "claimed" and claimed["assigned_to"] == "alice"
    res = CliRunner().invoke(app, ["escalations", "claim", "CW-1001", "--agent", "bob", "--org", org])
    assert res.exit_code == 2 and "already claimed by alice" in res.output
    done = _json(["escalations", "resolve", "1001", "--agent", "alice", "--notes", "called back", "--org", org, "--json"])
    assert done["status"] == "resolved" and done["resolution_notes"] == "called back"
    shown = CliRunner().invoke(app, ["escalations", "show", "CW-1001", "--org", org])
    assert shown.exit_code == 0 and "supervisor" in shown.stdout and "resolved" in shown.stdout
    assert CliRunner().invoke(app, ["escalations", "list", "--org", "no-such-org"]).exit_code == 2


def test_integrations_secrets_from_stdin_never_echoed(cli_env):
    org = cli_env
    secret = "zd-oauth-access-token-9f8e7d6c"
    _json(["integrations", "set", "zendesk", "--org", org, "--field", "subdomain=acme", "--json"],
          stdin=f"access_token={secret}\n")
    res = CliRunner().invoke(app, ["integrations", "list", "--org", org, "--json"])
    assert res.exit_code == 0 and secret not in res.stdout
    [info] = json.loads(res.stdout)["integrations"]
    assert info["secrets"]["access_token"] == "****7d6c" and info["fields"] == {"subdomain": "acme"}
    bad = CliRunner().invoke(app, ["integrations", "set", "zendesk", "--org", org], input="oops\n")
    assert bad.exit_code == 2 and "oops" not in bad.output
    assert _json(["integrations", "remove", "zendesk", "--org", org, "--json"]) == {"removed": True}
    again = CliRunner().invoke(app, ["integrations", "remove", "zendesk", "--org", org])
    # nothing left to remove: one error line and exit 2, not a traceback
    assert again.exit_code == 2 and "no zendesk credentials" in again.output
    assert not isinstance(again.exception, RuntimeError), again.exception
    key = __import__("pathlib").Path.cwd() / "secrets" / "fernet.key"
    assert key.exists() and oct(key.stat().st_mode & 0o777) == "0o600"


def test_outbox_list_and_retry(cli_env):
    org = cli_env
    out = _json(["outbox", "list", "--org", org, "--json"])
    assert out == {"counts": {}, "items": []}
    assert _json(["outbox", "retry", "--org", org, "--json"]) == {"requeued": 0}
    res = CliRunner().invoke(app, ["outbox", "retry", "not-a-uuid", "--org", org])
    assert res.exit_code == 2


def test_keys_create_list_revoke_and_integration_changes_are_audited(cli_env, pg_url):
    org = cli_env
    made = _json(["keys", "create", "--org", org, "--role", "agent", "--name", "alice", "--actor", "ops@x", "--json"])
    key = made["key"]
    assert key.startswith("cw_") and made["role"] == "agent" and made["name"] == "alice"
    listed = CliRunner().invoke(app, ["keys", "list", "--org", org, "--json"])
    assert listed.exit_code == 0 and key not in listed.stdout  # only the prefix, never the key
    assert [k["prefix"] for k in json.loads(listed.stdout)["keys"]] == [made["prefix"]]
    bad = CliRunner().invoke(app, ["keys", "create", "--org", org, "--role", "root"])
    assert bad.exit_code == 2 and "viewer, agent, admin" in bad.output
    assert _json(["keys", "revoke", made["prefix"], "--org", org, "--json"])["revoked_at"]
    assert _json(["keys", "list", "--org", org, "--json"]) == {"keys": []}
    gone = CliRunner().invoke(app, ["keys", "revoke", "nope", "--org", org])
    assert gone.exit_code == 2 and "no key" in gone.output
    _json(["integrations", "set", "twilio", "--org", org, "--field", "account_sid=AC1", "--field",
           "from_number=(555) 010-0100", "--json"], stdin="auth_token=tw-secret-123456\n")
    [info] = _json(["integrations", "list", "--org", org, "--json"])["integrations"]
    assert info["fields"]["from_number"] == "+15550100100"  # stored as E.164

    async def audit() -> list[tuple[str, str, str]]:
        conn = await asyncpg.connect(pg_url)
        try:
            rows = await conn.fetch("select a.actor, a.action, a.details::text from audit_log a join organizations o "
                                    "on o.id = a.organization_id where o.slug = $1 order by a.id", org)
        finally:
            await conn.close()
        return [(r[0], r[1], r[2]) for r in rows]

    rows = asyncio.run(audit())
    assert [r[1] for r in rows] == ["api_key.create", "api_key.revoke", "integration.set"]
    assert rows[0][0] == "ops@x" and rows[2][0].startswith("cli")
    assert "tw-secret" not in rows[2][2] and "auth_token" in rows[2][2]
