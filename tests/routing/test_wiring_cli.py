"""Settings -> router (offline default, missing-key policy, tiers file) and the ask/costs commands."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from typer.testing import CliRunner

from callwise.wiring.routing import OFFLINE_DEFAULT, RoutingConfigError, build_router, plan_tiers
from callwise.wiring.settings import Settings
from tests.vendors.openai import FakeOpenAI

KEYS = ("GOOGLE_API_KEY", "GEMINI_API_KEY", "OPENAI_API_KEY", "ANTHROPIC_API_KEY", "CALLWISE_GOOGLE_API_KEY",
        "CALLWISE_OPENAI_API_KEY", "CALLWISE_ANTHROPIC_API_KEY", "CALLWISE_TIERS_FILE", "CALLWISE_MISSING_KEY_POLICY",
        "CALLWISE_OFFLINE_ANSWERER", "CALLWISE_TIERS")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for k in KEYS:
        monkeypatch.delenv(k, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env


def settings(**kw: object) -> Settings:
    return Settings(_env_file=None, **kw)  # type: ignore[call-arg]


def test_no_keys_every_tier_is_the_offline_default() -> None:
    plan = plan_tiers(settings())
    assert plan.offline and set(plan.tiers) == {"tier1", "tier2", "tier3"}
    assert {c.provider for c in plan.tiers.values()} == {OFFLINE_DEFAULT}
    assert all(c.price.input == 0 for c in plan.tiers.values())
    router = build_router(settings(), None, lambda texts: __import__("numpy").ones((len(texts), 3)))
    assert len({id(t.provider) for t in router.tiers}) == 1  # one shared answerer, one breaker


def test_missing_key_skip_warns_with_variable(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        plan = plan_tiers(settings(openai_api_key="sk-test"))
    assert list(plan.tiers) == ["tier2"] and plan.tiers["tier2"].provider == "openai"
    assert "GOOGLE_API_KEY" in plan.skipped["tier1"] and "ANTHROPIC_API_KEY" in plan.skipped["tier3"]
    assert "ANTHROPIC_API_KEY is not set" in caplog.text


def test_missing_key_error_names_variable() -> None:
    with pytest.raises(RoutingConfigError, match="GOOGLE_API_KEY"):
        plan_tiers(settings(openai_api_key="sk-test", missing_key_policy="error"))


def test_tiers_file_and_bad_tiers_file(tmp_path: Path) -> None:
    good = tmp_path / "tiers.yaml"
    good.write_text("tier1: {provider: openai_compatible, model: llama3, base_url: 'http://127.0.0.1:1/v1'}\n"
                    "tier2: {provider: extractive}\n"
                    "tier3: {model: claude-opus-4-1, prices: {input: 15, output: 75}}\n")
    plan = plan_tiers(settings(tiers_file=good))
    assert plan.tiers["tier1"].provider == "openai_compatible" and plan.tiers["tier2"].provider == "extractive"
    assert "tier3" in plan.skipped  # anthropic without a key
    bad = tmp_path / "bad.yaml"
    bad.write_text("tier4: {provider: openai}\n")
    with pytest.raises(RoutingConfigError, match="CALLWISE_TIERS_FILE.*tier4"):
        plan_tiers(settings(tiers_file=bad))
    bad.write_text("tier1: {provider: nope}\n")
    with pytest.raises(RoutingConfigError, match="unknown provider 'nope'"):
        plan_tiers(settings(tiers_file=bad))
    bad.write_text("tier1: {provider: openai_compatible, base_url: 'http://x/v1', context_window: -5}\n")
    with pytest.raises(RoutingConfigError, match="context_window must be positive"):
        plan_tiers(settings(tiers_file=bad))


def test_context_budget_per_tier_from_file_settings_and_defaults(tmp_path: Path) -> None:
    tiers = tmp_path / "tiers.yaml"
    tiers.write_text("tier1: {provider: extractive}\n"
                     "tier2: {provider: openai_compatible, model: qwen, base_url: 'http://127.0.0.1:1/v1',"
                     " context_window: 4096, input_budget: 2500, max_tokens: 160}\n"
                     "tier3: {provider: openai_compatible, model: big, base_url: 'http://127.0.0.1:2/v1'}\n")
    s = settings(tiers_file=tiers, context_windows={"tier3": 32768}, input_budgets={"tier3": 5000})
    router = build_router(s, None, lambda texts: __import__("numpy").ones((len(texts), 3)))
    by = {t.name: t for t in router.tiers}
    assert by["tier1"].budget is None  # the extractive answerer reads every source
    b2 = by["tier2"].budget
    assert b2 is not None and (b2.window, b2.input_budget, b2.max_output) == (4096, 2500, 160)
    assert b2.prompt_limit == 2500
    b3 = by["tier3"].budget  # no keys in the file: the settings' per-tier values
    assert b3 is not None and (b3.window, b3.input_budget) == (32768, 5000)
    # an OpenAI-compatible server is not asked for logprobs unless the file says so (slow on llama.cpp)
    assert not by["tier2"].provider.supports_logprobs
    plan = plan_tiers(settings())
    assert all(c.context_window is None for c in plan.tiers.values())


def test_cli_ask_json_and_costs(pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from callwise.cli.main import app

    with FakeOpenAI("Refunds take 5 to 7 business days [1].", logprob=-0.01) as fake:
        tiers = tmp_path / "tiers.yaml"
        tiers.write_text(f"tier1: {{provider: openai_compatible, model: local-model, base_url: '{fake.base_url}', logprobs: true, "
                         "prices: {input: 0.1, output: 0.4}}\n")
        env = {"CALLWISE_DATABASE_URL": pg_url, "CALLWISE_DATA_DIR": str(tmp_path / "data"),
               "CALLWISE_TIERS_FILE": str(tiers), "CALLWISE_LOG_LEVEL": "ERROR"}
        runner = CliRunner()
        # `ask` runs the support turn stages: an org whose help centre has nothing on the question gets the
        # answerability refusal and an offer of a colleague, not an ungrounded model answer
        res = runner.invoke(app, ["ask", "How long do refunds take?", "--org", "cli-empty", "--json"], env=env)
        assert res.exit_code == 0, res.output
        data = json.loads(res.stdout[res.stdout.index("{"):])
        assert data["unsure"] and data["offered_colleague"] and data["router"] is None and not fake.chat_requests
        kb = tmp_path / "kb"
        kb.mkdir()
        (kb / "refunds.md").write_text("# Refunds\n\nRefunds take 5 to 7 business days and go back to the card "
                                       "you paid with.\n")
        (kb / "invoices.md").write_text("# Invoices\n\nInvoices are emailed on the first of each month.\n")
        (kb / "seats.md").write_text("# Seats\n\nAdd seats from Admin > Billing; each seat is billed monthly.\n")
        assert runner.invoke(app, ["ingest", str(kb), "--org", "cli-test"], env=env).exit_code == 0
        res = runner.invoke(app, ["ask", "How long do refunds take?", "--org", "cli-test", "--json"], env=env)
        assert res.exit_code == 0, res.output
        data = json.loads(res.stdout[res.stdout.index("{"):])
        assert data["answer"] == "Refunds take 5 to 7 business days [1]." and data["tier"] == "tier1"
        assert data["confidence"] == pytest.approx(0.99, abs=0.001) and data["cost_usd"] > 0
        assert data["sources"][0]["document"].endswith("refunds.md") and data["router"]["cascade_path"] == ["tier1"]
        assert data["kind"] == "answer" and data["escalation"] is None and data["unsure"] is False
        assert fake.chat_requests[-1].body["max_tokens"] == 512
        res = runner.invoke(app, ["ask", "How long do refunds take?", "--org", "cli-test"], env=env)
        assert res.exit_code == 0 and "tier tier1" in res.stdout and "cost $" in res.stdout
        res = runner.invoke(app, ["costs", "--org", "cli-test", "--json"], env=env)
        assert res.exit_code == 0, res.output
        report = json.loads(res.stdout[res.stdout.index("{"):])
        assert report["interactions"] == 2 and report["tier_counts"] == {"tier1": 2}
        assert 0 < report["saving_vs_tier3"] < 1
        res = runner.invoke(app, ["ask", "  ", "--org", "cli-test"], env=env)
        assert res.exit_code == 2 and "empty" in res.output


def test_a_vision_tier_in_the_tiers_file_builds_the_image_sending_provider(tmp_path: Path) -> None:
    from callwise.routing.providers.openai import OpenAIProvider
    from callwise.routing.providers.vision import OpenAICompatibleVisionProvider, OpenAIVisionProvider

    tiers = tmp_path / "tiers.yaml"
    tiers.write_text("tier1: {provider: openai_compatible, model: qwen2.5-vl, base_url: 'http://127.0.0.1:1/v1', "
                     "vision: true}\n"
                     "tier2: {provider: openai, model: gpt-4o-mini}\n"
                     "tier3: {provider: openai, model: gpt-4o, vision: true}\n")
    router = build_router(settings(tiers_file=tiers, openai_api_key="sk-test"))
    by_name = {t.name: t.provider for t in router.tiers}
    assert isinstance(by_name["tier1"], OpenAICompatibleVisionProvider)
    assert type(by_name["tier2"]) is OpenAIProvider  # a tier without vision is never sent the frame
    assert isinstance(by_name["tier3"], OpenAIVisionProvider)
    bad = tmp_path / "bad.yaml"
    bad.write_text("tier1: {provider: extractive, vision: true}\n")
    with pytest.raises(RoutingConfigError, match="cannot be sent images"):
        plan_tiers(settings(tiers_file=bad))
    bad.write_text("tier1: {provider: openai, vision: 'yes'}\n")
    with pytest.raises(RoutingConfigError, match="vision must be true or false"):
        plan_tiers(settings(tiers_file=bad))
