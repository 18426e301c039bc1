"""Settings -> a CascadingRouter: tiers from defaults or the YAML tiers file, keys from the
environment, the offline default answerer where no cloud tier is available."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from callwise.evaluation.budgets import BudgetCaps
from callwise.infra.logs import redact
from callwise.infra.telemetry import MeteredCostSink
from callwise.routing.budget import ContextBudget, default_budget
from callwise.routing.costs import NullCostSink, PostgresCostSink
from callwise.routing.pricing import Price
from callwise.routing.prompts import PostgresPromptStore
from callwise.routing.providers.base import Provider
from callwise.routing.resilience import SharedBreakers
from callwise.routing.router import CascadingRouter, Tier
from callwise.routing.tiers import OFFLINE_PROVIDERS, TierConfig, load_tiers
from callwise.wiring.settings import Settings

log = logging.getLogger(__name__)

#: Measured on the sample KB (bench/offline_answerers.py; see the issue 4 closing note).
OFFLINE_DEFAULT = "extractive"

EmbedFn = Callable[[list[str]], np.ndarray]


class RoutingConfigError(ValueError):
    """A configuration the router cannot start with; the message names the variable to set."""


@dataclass
class RoutingPlan:
    """The tiers that will run and why the others do not."""

    tiers: dict[str, TierConfig]
    skipped: dict[str, str]
    offline: bool


def _key(settings: Settings, cfg: TierConfig) -> str | None:
    field = {"google": settings.google_api_key, "openai": settings.openai_api_key,
             "anthropic": settings.anthropic_api_key}
    if cfg.api_key_env:
        value = os.environ.get(cfg.api_key_env)
        if value:
            return value
    secret = field.get(cfg.provider)
    return secret.get_secret_value() if secret else None


def offline_answerer(settings: Settings) -> str:
    choice: str = settings.offline_answerer
    if choice == "auto":
        choice = OFFLINE_DEFAULT
    if choice == "local":
        try:
            import llama_cpp  # noqa: F401
        except ImportError:
            log.warning("CALLWISE_OFFLINE_ANSWERER=local but llama-cpp-python is not installed "
                        "(pip install 'callwise[local-llm]'); using the extractive answerer")
            return "extractive"
    return choice


def offline_tier(settings: Settings, name: str, base: TierConfig) -> TierConfig:
    kind = offline_answerer(settings)
    model = "extractive-v1" if kind == "extractive" else "gemma-3-270m-q4_k_m"
    return replace(base, provider=kind, model=model, price=Price(), base_url=None, api_key_env=None,
                   max_tokens=min(base.max_tokens, 160))


def plan_tiers(settings: Settings) -> RoutingPlan:
    """Decide which tiers run. With no tiers file and no cloud key, every tier is the offline answerer.
    Otherwise a configured tier whose key is missing is skipped with a warning or is an error
    naming the variable, as ``CALLWISE_MISSING_KEY_POLICY`` says."""
    try:
        configs = load_tiers(settings.tiers_file)
    except ValueError as exc:
        raise RoutingConfigError(f"CALLWISE_TIERS_FILE: {exc}") from exc
    wanted = {n: configs[n] for n in settings.tiers}
    any_key = any(s is not None for s in (settings.google_api_key, settings.openai_api_key, settings.anthropic_api_key))
    if settings.tiers_file is None and not any_key:
        return RoutingPlan({n: offline_tier(settings, n, c) for n, c in wanted.items()}, {}, offline=True)
    out: dict[str, TierConfig] = {}
    skipped: dict[str, str] = {}
    for name, cfg in wanted.items():
        if cfg.provider in OFFLINE_PROVIDERS:
            out[name] = cfg  # configured explicitly in the tiers file
            continue
        if cfg.provider == "openai_compatible" or _key(settings, cfg):
            out[name] = cfg
            continue
        var = cfg.key_env or "an API key"
        message = f"{name} uses {cfg.provider} ({cfg.model}) but {var} is not set"
        if settings.missing_key_policy == "error":
            raise RoutingConfigError(f"{message}; set {var} or CALLWISE_MISSING_KEY_POLICY=skip")
        log.warning("%s: skipping %s", message, name)
        skipped[name] = message
    if not out:
        log.warning("no cloud tier is available; every tier uses the offline %s answerer", offline_answerer(settings))
        return RoutingPlan({n: offline_tier(settings, n, c) for n, c in wanted.items()}, skipped, offline=True)
    return RoutingPlan(out, skipped, offline=False)


def _embed_fn(settings: Settings, embedder: Any) -> EmbedFn:
    if embedder is not None:
        return embedder.encode if hasattr(embedder, "encode") else embedder

    def lazy(texts: list[str]) -> np.ndarray:  # loading the model takes seconds: only when first needed
        from callwise.wiring.knowledge import get_embedder

        return get_embedder(settings).encode(texts)

    return lazy


def build_provider(settings: Settings, cfg: TierConfig, embedder: Any, cache: dict[str, Provider]) -> Provider:
    """One provider per (kind, model, endpoint); tiers that share one share its breaker and cache."""
    key = f"{cfg.provider}|{cfg.model}|{cfg.base_url or ''}|{cfg.vision}"
    if key in cache:
        return cache[key]
    timeout = cfg.timeout_s or settings.provider_timeout_s
    provider: Provider
    if cfg.provider == "extractive":
        from callwise.routing.providers.extractive import ExtractiveProvider

        provider = ExtractiveProvider(_embed_fn(settings, embedder), model="extractive-v1")
    elif cfg.provider == "local":
        from callwise.routing.providers.local import LocalLlamaProvider, default_model_path

        if cfg.model in ("local", "gemma-3-270m-q4_k_m"):
            provider = LocalLlamaProvider(default_model_path(settings.data_dir / "models"))
        else:  # a GGUF file path
            provider = LocalLlamaProvider(cfg.model, model=os.path.basename(cfg.model))
    elif cfg.provider == "openai":
        from callwise.routing.providers.openai import OpenAIProvider
        from callwise.routing.providers.vision import OpenAIVisionProvider

        provider = (OpenAIVisionProvider if cfg.vision else OpenAIProvider)(cfg.model, api_key=_key(settings, cfg) or "", timeout_s=timeout,
                                  base_url=cfg.base_url or settings.openai_base_url)
    elif cfg.provider == "openai_compatible":
        from callwise.routing.providers.openai_compatible import OpenAICompatibleProvider
        from callwise.routing.providers.vision import OpenAICompatibleVisionProvider

        assert cfg.base_url
        provider = (OpenAICompatibleVisionProvider if cfg.vision else OpenAICompatibleProvider)(cfg.model, base_url=cfg.base_url, api_key=_key(settings, cfg),
                                            timeout_s=timeout, logprobs=cfg.logprobs)
    elif cfg.provider == "anthropic":
        from callwise.routing.providers.anthropic import AnthropicProvider

        provider = AnthropicProvider(cfg.model, api_key=_key(settings, cfg) or "", timeout_s=timeout,
                                     base_url=cfg.base_url or settings.anthropic_base_url)
    elif cfg.provider == "google":
        from callwise.routing.providers.google import GoogleProvider
        from callwise.routing.providers.vision import GoogleVisionProvider

        provider = (GoogleVisionProvider if cfg.vision else GoogleProvider)(cfg.model, api_key=_key(settings, cfg) or "", timeout_s=timeout,
                                  base_url=cfg.base_url or settings.google_base_url)
    else:  # pragma: no cover - parse_tiers validates providers
        raise RoutingConfigError(f"unknown provider {cfg.provider!r}")
    cache[key] = provider
    return provider


def tier_budget(settings: Settings, name: str, cfg: TierConfig) -> ContextBudget | None:
    """The tier's context budget: the tiers file's context_window/input_budget, else the settings'
    per-tier values, else the provider's defaults (routing/budget.py). The extractive answerer reads
    every source and has no window: no budget."""
    if cfg.provider == "extractive":
        return None
    return default_budget(name, cfg.provider, max_output=cfg.max_tokens,
                          window=cfg.context_window or settings.context_windows.get(name),  # type: ignore[call-overload]
                          input_budget=cfg.input_budget or settings.input_budgets.get(name),  # type: ignore[call-overload]
                          tokenizer=cfg.tokenizer)


def build_router(settings: Settings, pool: Any = None, embedder: Any = None) -> CascadingRouter:
    """``embedder``: an object with ``encode(list[str])`` (knowledge's Embedder) or the function itself;
    only the extractive answerer uses it. ``pool``: cost events and versioned prompts go to Postgres."""
    plan = plan_tiers(settings)
    cache: dict[str, Provider] = {}
    tiers = [Tier(name, build_provider(settings, cfg, embedder, cache), temperature=cfg.temperature,
                  max_tokens=cfg.max_tokens, price=cfg.price, timeout_s=cfg.timeout_s, logprobs=cfg.logprobs,
                  budget=tier_budget(settings, name, cfg))
             for name, cfg in plan.tiers.items()]
    router = CascadingRouter(
        tiers, MeteredCostSink(PostgresCostSink(pool)) if pool is not None else NullCostSink(),
        confidence_threshold=settings.confidence_threshold,
        prompt_store=PostgresPromptStore(pool) if pool is not None else None,
        timeout_s=settings.provider_timeout_s,
        first_word_s=settings.turn_first_word_s, give_up_s=settings.turn_give_up_s, redact=redact,
    )
    if pool is not None:  # a spent hard-capped budget holds the org to the cheapest tier (issue 24)
        router.budget_cap = BudgetCaps(pool).reason_for
        share_breakers(router, pool)
    return router


def share_breakers(router: CascadingRouter, pool: Any) -> SharedBreakers:
    """The router's breaker openings in Postgres, honoured by every process (issue 20); the reading loop
    starts now when there is a running loop (it ends when the pool closes, or with ``aclose``)."""
    shared = SharedBreakers(pool)
    shared.attach(router.breakers)
    router.shared_breakers = shared  # type: ignore[attr-defined]
    try:
        shared.start()
    except RuntimeError:  # built outside a loop: the caller starts it
        pass
    return shared


def tier3_price(settings: Settings) -> Price:
    """Prices for the all-tier3 comparison: the configured tier3 (cloud prices even when offline)."""
    try:
        return load_tiers(settings.tiers_file)["tier3"].price
    except ValueError:
        return load_tiers(None)["tier3"].price
