"""Secrets never leave: every secret setting holds a known marker, the vendors behind the keys
echo the key back in their error bodies (as real ones do), and the main commands and API answers
must show the marker nowhere: not in a log line, an exception text, a report or a response."""

from __future__ import annotations

import json
import re

import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from callwise.wiring.settings import Settings, env_name
from tests.vendors._http import Reply, Request
from tests.vendors.openai import FakeOpenAI

MARK = "SECRETMARK"
FERNET = (MARK + "enc").ljust(43, "A") + "="  # a valid Fernet key that carries the marker


class EchoingVendor(FakeOpenAI):
    """Rejects every call and quotes the credentials it got, like a careless vendor error page."""

    def handle(self, request: Request) -> Reply:
        got = " ".join(f"{k}={v}" for k, v in request.headers.items()
                       if k in ("authorization", "x-api-key", "x-goog-api-key", "api-key"))
        return Reply(401, {"error": {"message": f"Incorrect API key provided: {got} (path {request.path}?"
                                                f"{request.query})", "type": "invalid_request_error",
                                     "code": "invalid_api_key"}})


@pytest.fixture
def secret_env(pg_url, tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    vendor = EchoingVendor().start()
    for name, info in Settings.model_fields.items():
        if info.annotation is not None and "SecretStr" in str(info.annotation) and name != "database_url":
            monkeypatch.setenv(env_name(name), f"{MARK}{name}x9")
    monkeypatch.setenv("CALLWISE_ENCRYPTION_KEY", FERNET)
    monkeypatch.setenv("SLACK_WEBHOOK_URL", f"{vendor.url}/services/T0/B0/{MARK}slack")
    for var in ("OPENAI_BASE_URL", "GOOGLE_BASE_URL", "ANTHROPIC_BASE_URL", "COHERE_BASE_URL"):
        monkeypatch.setenv(var, vendor.base_url if var == "OPENAI_BASE_URL" else vendor.url)
    for k in ("QDRANT_URL", "CALLWISE_QDRANT_URL", "LIVEKIT_URL", "CALLWISE_DEFAULT_ORG", "CALLWISE_TIERS_FILE"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("DATABASE_URL", pg_url)
    monkeypatch.setenv("CALLWISE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CALLWISE_LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("COLUMNS", "300")
    yield vendor
    vendor.stop()


def _no_marker(text: str, where: str) -> None:
    found = [m.start() for m in re.finditer(MARK, text)]
    assert not found, f"{where}: secret marker at {found[:3]}: ...{text[max(0, found[0] - 200):found[0] + 80]}..."


def test_cli_commands_never_print_a_secret(secret_env, orgs, tmp_path) -> None:
    from callwise.cli.main import app

    script = tmp_path / "call.txt"
    script.write_text("How long does a refund take?\nI want to speak to a human.\n")
    runner = CliRunner()
    commands = [
        ["config"],
        ["ask", "How long does a refund take?", "--org", orgs.b_slug, "--json"],
        ["search", "refund", "--org", orgs.b_slug, "--json"],
        ["costs", "--org", orgs.b_slug, "--json"],
        ["simulate", str(script), "--org", orgs.b_slug, "--json"],
        ["eval", "nightly", "--org", orgs.b_slug, "--out", str(tmp_path / "report"), "--json", "--max-examples", "2"],
    ]
    for args in commands:
        res = runner.invoke(app, args)
        _no_marker(res.output, " ".join(args[:2]))
        if res.exception is not None and not isinstance(res.exception, SystemExit):
            _no_marker(repr(res.exception), " ".join(args[:2]) + " exception")
    for f in (tmp_path / "report").rglob("*"):
        if f.is_file():
            _no_marker(f.read_text(errors="replace"), str(f))
    assert secret_env.requests, "the vendors behind the keys were called (the secrets were in play)"


async def test_api_answers_and_stored_rows_never_hold_a_secret(secret_env, orgs, pg_pool) -> None:
    from aiohttp.test_utils import TestClient, TestServer

    from callwise.api.app import ApiServices, create_app
    from callwise.wiring.routing import build_router, tier3_price

    settings = Settings(_env_file=None)
    assert isinstance(settings.openai_api_key, SecretStr) and MARK in settings.openai_api_key.get_secret_value()
    router = build_router(settings, pg_pool, orgs.knowledge.embedder)
    token = settings.api_token.get_secret_value()
    client = TestClient(TestServer(create_app(ApiServices(pg_pool, orgs.knowledge.retriever, router,
                                                          tier3_price(settings), token))))
    await client.start_server()
    try:
        auth = {"Authorization": f"Bearer {token}"}
        for method, path, body in [("POST", f"/v1/orgs/{orgs.b_slug}/ask", {"question": "How long does a refund take?"}),
                                   ("POST", f"/v1/orgs/{orgs.b_slug}/search", {"query": "refund"}),
                                   ("GET", f"/v1/orgs/{orgs.b_slug}/costs", None),
                                   ("GET", "/", None), ("GET", "/healthz", None), ("GET", "/nope", None)]:
            res = await client.request(method, path, json=body, headers=auth)
            _no_marker(await res.text() + json.dumps(dict(res.headers)), path)
        res = await client.get("/", headers={"Authorization": "Bearer wrong"})
        _no_marker(await res.text(), "401 page")
    finally:
        await client.close()
        await router.aclose()
    rows = await pg_pool.fetch("select error from cost_events where organization_id = $1 and error is not null",
                               orgs.b_id)
    for r in rows:
        _no_marker(r["error"], "cost_events.error")
    rows = await pg_pool.fetch("select error from turns where organization_id = $1 and error is not null", orgs.b_id)
    for r in rows:
        _no_marker(r["error"], "turns.error")


async def test_per_org_vendor_secrets_are_redacted_from_logs(pg_pool, org_id, tmp_path) -> None:
    """A vendor secret stored per organization (not in the settings) is masked once this process has read it."""
    import io
    import logging

    from cryptography.fernet import Fernet

    from callwise.infra.logs import configure_logging
    from callwise.wiring.integrations import credential_store
    from callwise.wiring.settings import Settings

    stream = io.StringIO()
    configure_logging("INFO", stream=stream)  # started with the settings' secrets only
    try:
        settings = Settings(_env_file=None, data_dir=tmp_path, encryption_key=Fernet.generate_key().decode())
        creds = credential_store(settings, pg_pool)
        token = "zd-org-access-" + "q7" * 12
        await creds.set(org_id, "zendesk", secrets={"access_token": token}, fields={"subdomain": "acme"})
        await creds.get(org_id, "zendesk")
        logging.getLogger("callwise.test").warning("the vendor echoed %s back", token)  # no key-shaped words
        assert token not in stream.getvalue() and "****" in stream.getvalue()
    finally:
        configure_logging("WARNING")
