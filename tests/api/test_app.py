"""The HTTP API over real parts: Postgres, the embedded vector store, MiniLM, the offline router."""

import json
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from callwise.api.app import ApiServices, create_app
from callwise.wiring.settings import Settings

KB = Path(__file__).resolve().parents[2] / "examples" / "kb"


@pytest.fixture(scope="module")
async def api_org(pg_pool):
    import uuid

    slug = "api-" + uuid.uuid4().hex[:10]
    return str(await pg_pool.fetchval("insert into organizations (slug, name) values ($1, $1) returning id", slug))


@pytest.fixture(scope="module")
async def api(pg_pool, api_org, tmp_path_factory):
    from callwise.wiring.knowledge import build_knowledge
    from callwise.wiring.routing import build_router, tier3_price

    org_id = api_org
    settings = Settings(_env_file=None, data_dir=tmp_path_factory.mktemp("api-data"), api_token="s3cret-token")
    knowledge = build_knowledge(settings, pg_pool)
    await knowledge.ingestor.ingest(str(KB / "billing"), org_id)
    router = build_router(settings, pg_pool, knowledge.embedder)
    slug = await pg_pool.fetchval("select slug from organizations where id = $1", org_id)
    app = create_app(ApiServices(pg_pool, knowledge.retriever, router, tier3_price(settings), "s3cret-token"))
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        yield client, slug
    finally:
        await client.close()
        await router.aclose()


AUTH = {"Authorization": "Bearer s3cret-token"}


async def test_only_health_is_open_when_a_token_is_set(api):
    import base64

    client, slug = api
    assert (await (await client.get("/healthz")).json())["status"] == "ok"
    page = await client.get("/")
    assert page.status == 401 and "WWW-Authenticate" in page.headers
    assert slug not in await page.text(), "the dashboard lists organizations: not without the token"
    for path in ("/", "/nope", f"/v1/orgs/{slug}/costs", f"/v1/orgs/{slug}/eval-runs"):
        assert (await client.get(path)).status == 401, path
        assert (await client.get(path, headers={"Authorization": "Bearer wrong"})).status == 401, path
    page = await client.get("/", headers=AUTH)
    assert page.status == 200 and slug in await page.text()
    basic = base64.b64encode(b"ops:s3cret-token").decode()
    assert (await client.get("/", headers={"Authorization": f"Basic {basic}"})).status == 200, "a browser can log in"
    wrong = base64.b64encode(b"s3cret-token:").decode()
    assert (await client.get("/", headers={"Authorization": f"Basic {wrong}"})).status == 401


async def test_v1_needs_the_bearer_token(api):
    client, slug = api
    res = await client.post(f"/v1/orgs/{slug}/search", json={"query": "refund"})
    assert res.status == 401
    res = await client.post(f"/v1/orgs/{slug}/search", json={"query": "refund"},
                            headers={"Authorization": "Bearer wrong"})
    assert res.status == 401


async def test_search_returns_ranked_chunks_with_stages(api):
    client, slug = api
    res = await client.post(f"/v1/orgs/{slug}/search", json={"query": "how long does a refund take", "top_k": 3},
                            headers=AUTH)
    assert res.status == 200
    body = await res.json()
    assert 1 <= len(body["results"]) <= 3
    assert body["results"][0]["document"].endswith("refunds.md")
    assert body["results"][0]["stages"]


async def test_ask_answers_from_the_knowledge_base_and_records_cost(api, pg_pool, api_org):
    org_id = api_org
    client, slug = api
    res = await client.post(f"/v1/orgs/{slug}/ask", json={"question": "How many business days until my refund arrives?"},
                            headers=AUTH)
    assert res.status == 200
    body = await res.json()
    assert body["answer"] and body["tier"] in ("tier1", "tier2", "tier3")
    assert any(s["document"].endswith("refunds.md") for s in body["sources"])
    n = await pg_pool.fetchval("select count(*) from cost_events where organization_id = $1", org_id)
    assert n >= 1
    costs = await (await client.get(f"/v1/orgs/{slug}/costs", headers=AUTH)).json()
    assert costs["interactions"] >= 1


@pytest.mark.parametrize("path,body,status", [
    ("search", "not json", 400),
    ("search", json.dumps(["a list"]), 400),
    ("search", json.dumps({"query": "  "}), 400),
    ("search", json.dumps({"query": "x", "mode": "magic"}), 400),
    ("search", json.dumps({"query": "x", "top_k": 0}), 400),
    ("ask", json.dumps({"question": ""}), 400),
    ("ask", json.dumps({"question": "hi", "modality": "fax"}), 400),
])
async def test_malformed_requests_get_a_clear_400(api, path, body, status):
    client, slug = api
    res = await client.post(f"/v1/orgs/{slug}/{path}", data=body, headers={**AUTH, "Content-Type": "application/json"})
    assert res.status == status
    assert "error" in await res.json()


async def test_unknown_organization_is_404_and_not_created(api, pg_pool):
    client, _ = api
    res = await client.post("/v1/orgs/nobody-here/search", json={"query": "refund"}, headers=AUTH)
    assert res.status == 404
    assert await pg_pool.fetchval("select count(*) from organizations where slug = 'nobody-here'") == 0


async def test_eval_report_rejects_bad_ids(api):
    client, slug = api
    res = await client.get(f"/v1/orgs/{slug}/eval-runs/not-a-uuid/report", headers=AUTH)
    assert res.status == 400
    res = await client.get(f"/v1/orgs/{slug}/eval-runs", headers=AUTH)
    assert res.status == 200 and (await res.json())["runs"] == []
