"""Tenant isolation as a matrix: for every retrieval mode, every API endpoint under /v1/orgs/{org}
and every CLI command that reads an organization's data, organization B never sees A's data
(A's marker, ids, slug). Each surface has a control that A does see its own data where the surface
shows content, so a surface that returned nothing at all would not pass as isolated."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from callwise.api.app import ApiServices, create_app
from tests.security.conftest import AUTH, MARK, leaks

MODES = ["bm25", "vector", "hybrid", "hybrid+rerank"]
QUERY = "How long do Zebra plan refunds take in business days?"


@pytest.mark.parametrize("mode", MODES)
async def test_retrieval_mode(orgs, mode: str) -> None:
    own = await orgs.knowledge.retriever.retrieve(QUERY, orgs.a_id, top_k=5, mode=mode)
    assert any(MARK in c.text for c in own.chunks), "control: A finds its own chunk"
    other = await orgs.knowledge.retriever.retrieve(QUERY, orgs.b_id, top_k=5, mode=mode)
    assert other.chunks, "B still gets its own knowledge"
    for c in other.chunks:
        assert MARK not in c.text and "Zebra" not in c.text and "kb-a" not in c.document


def _org_routes() -> list[tuple[str, str]]:
    app = create_app(ApiServices(None, None, None, None, "t"))
    out = []
    for r in app.router.routes():
        info = r.resource.get_info() if r.resource is not None else {}
        path = info.get("formatter") or info.get("path") or ""
        if "{org}" in path and r.method in ("GET", "POST"):
            out.append((r.method, path))
    return sorted(set(out))


ROUTES = _org_routes()


async def _a_case(api_client, orgs) -> str:  # type: ignore[no-untyped-def]
    res = await api_client.get(f"/v1/orgs/{orgs.a_slug}/escalations", headers=AUTH)
    assert res.status == 200
    body = await res.json()
    items = body if isinstance(body, list) else next(v for v in body.values() if isinstance(v, list))
    assert items, "A has an escalation case"
    first = items[0]
    return str(first.get("number") or first.get("case") or first.get("id"))


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
async def test_api_endpoint(api_client, orgs, pg_pool, method: str, path: str) -> None:
    params = {"org": orgs.b_slug, "run_id": orgs.a_run, "case": await _a_case(api_client, orgs)}
    body = {"query": QUERY, "question": QUERY, "notes": "b was here", "resolution_notes": "b was here",
            "agent": "b-agent", "by": "b-agent"}
    before = await pg_pool.fetch("select id, status, assigned_to, resolved_at from escalations "
                                 "where organization_id = $1 order by id", orgs.a_id)
    res = await api_client.request(method, path.format(**params), headers=AUTH,
                                   json=body if method == "POST" else None)
    text = await res.text()
    assert res.status < 500, text
    assert not leaks(text, orgs), (res.status, text[:300])
    after = await pg_pool.fetch("select id, status, assigned_to, resolved_at from escalations "
                                "where organization_id = $1 order by id", orgs.a_id)
    assert [tuple(r) for r in after] == [tuple(r) for r in before], "B changed nothing of A's"


async def test_api_controls_a_sees_its_own(api_client, orgs) -> None:
    res = await api_client.post(f"/v1/orgs/{orgs.a_slug}/search", json={"query": QUERY}, headers=AUTH)
    assert MARK in await res.text()
    res = await api_client.get(f"/v1/orgs/{orgs.a_slug}/eval-runs", headers=AUTH)
    assert orgs.a_run in await res.text()
    res = await api_client.get(f"/v1/orgs/{orgs.a_slug}/eval-runs/{orgs.a_run}/report", headers=AUTH)
    assert res.status == 200 and MARK in await res.text()
    res = await api_client.get(f"/v1/orgs/{orgs.b_slug}/eval-runs/{orgs.a_run}/report", headers=AUTH)
    assert res.status == 404


@pytest.fixture
def cli_env(pg_url, tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    for k in ("CALLWISE_DEFAULT_ORG", "QDRANT_URL", "CALLWISE_QDRANT_URL", "COHERE_API_KEY", "OPENAI_API_KEY",
              "GOOGLE_API_KEY", "ANTHROPIC_API_KEY", "CALLWISE_API_TOKEN"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("DATABASE_URL", pg_url)
    monkeypatch.setenv("COLUMNS", "300")
    monkeypatch.setenv("CALLWISE_DATA_DIR", str(tmp_path / "data"))
    return tmp_path


CLI = [
    *[["search", QUERY, "--mode", m, "--json"] for m in MODES],
    ["ask", QUERY, "--json"],
    ["costs", "--json"],
    ["ab", "list"],
    ["escalations", "list", "--json"],
    ["outbox", "list"],
]


@pytest.mark.parametrize("args", CLI, ids=[" ".join(a[:2]) for a in CLI])
def test_cli_command(cli_env, orgs, args: list[str]) -> None:
    from callwise.cli.main import app

    runner = CliRunner()
    res = runner.invoke(app, [*args, "--org", orgs.b_slug])
    assert res.exit_code in (0, 2), res.output
    assert "Traceback" not in res.output
    assert not leaks(res.output, orgs), res.output[:400]
    if args[0] in ("search", "escalations"):
        own = runner.invoke(app, [*args, "--org", orgs.a_slug])
        assert own.exit_code == 0 and MARK in own.output, "control: A sees its own"


def test_nightly_report_of_b_holds_nothing_of_a(cli_env, orgs) -> None:
    """gaps, insights, costs, escalations, surveys, A/B and the run itself, as the nightly job reports them."""
    from callwise.cli.main import app

    out = cli_env / "report-b"
    res = CliRunner().invoke(app, ["eval", "nightly", "--org", orgs.b_slug, "--out", str(out), "--json",
                                   "--max-examples", "2"])
    assert res.exit_code == 0, res.output
    figures = json.loads(res.stdout[res.stdout.index("{"):])
    assert not leaks(json.dumps(figures), orgs)
    for f in out.rglob("*"):
        if f.is_file():
            assert not leaks(f.read_text(errors="replace"), orgs), f
