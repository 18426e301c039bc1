"""Breaker states on the health endpoint and the dashboard where the serving process has no breaker for a
model: what the processes that call it recorded in Postgres (``breaker_openings``)."""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from callwise.api.app import ApiServices, create_app
from callwise.routing.resilience import CircuitBreaker, SharedBreakers

TOKEN = "breaker-token-" + "x" * 12


async def test_health_without_a_router_shows_the_recorded_breakers(pg_pool: Any) -> None:
    tag = uuid.uuid4().hex[:6]
    slug = f"breakers-{tag}"
    org = await pg_pool.fetchval("insert into organizations (slug, name) values ($1, $1) returning id", slug)
    for model in (f"down-{tag}", f"fine-{tag}"):
        await pg_pool.execute("insert into cost_events (organization_id, tier, provider, model) "
                              "values ($1, 'tier1', 'openai', $2)", org, model)
    worker = SharedBreakers(pg_pool, holder="worker-host:99")
    breaker = CircuitBreaker(f"openai:down-{tag}")
    worker.attach({breaker.name: breaker})
    for _ in range(3):
        breaker.failure()
    await worker.aclose()

    client = TestClient(TestServer(create_app(ApiServices(pg_pool, None, None, None, TOKEN))))
    await client.start_server()
    try:
        res = await client.get(f"/v1/orgs/{slug}/health", headers={"Authorization": f"Bearer {TOKEN}"})
        body = await res.json()
        page = await (await client.get(f"/orgs/{slug}", headers={"Authorization": f"Bearer {TOKEN}"})).text()
    finally:
        await client.close()
    assert res.status == 200, body
    assert {m["model"]: m["breaker"] for m in body["models"]} == {f"down-{tag}": "open", f"fine-{tag}": "closed"}
    assert body["breaker_source"].startswith("breaker_openings in Postgres")
    assert "breaker_openings in Postgres" in page and "unknown" not in page
