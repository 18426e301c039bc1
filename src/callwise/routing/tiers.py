"""Tier configuration: provider, model, generation settings and prices, from defaults or YAML.

A YAML file looks like::

    tier1: {provider: google, model: gemini-2.5-flash, prices: {input: 0.30, output: 2.50, cached: 0.03}}
    tier2: {provider: openai_compatible, model: llama3, base_url: http://localhost:11434/v1,
            context_window: 4096, input_budget: 2500}
    tier3: {provider: anthropic, model: claude-sonnet-4-5, max_tokens: 1024}

Keys a tier omits come from that tier's default.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from callwise.routing.pricing import Price

TIER_NAMES = ("tier1", "tier2", "tier3")
PROVIDERS = ("google", "openai", "anthropic", "local", "openai_compatible", "extractive")
OFFLINE_PROVIDERS = ("local", "extractive")

#: Environment variable holding each cloud provider's key (what error messages name).
KEY_ENV = {"google": "GOOGLE_API_KEY", "openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}


@dataclass(frozen=True)
class TierConfig:
    name: str
    provider: str
    model: str
    temperature: float
    max_tokens: int
    price: Price = field(default_factory=Price)
    base_url: str | None = None
    api_key_env: str | None = None
    timeout_s: float | None = None
    logprobs: bool = True
    #: the model's context window in tokens (the server's n_ctx); None = the provider's default
    context_window: int | None = None
    #: the most prompt tokens one answer may cost; None = the tier's default (callwise.routing.budget)
    input_budget: int | None = None
    #: how prompts are counted: "estimate" or a path to the model's GGUF (its tokenizer)
    tokenizer: str | None = None
    #: the tier is sent the caller's shared-screen frame with the question (openai, openai_compatible, google)
    vision: bool = False

    @property
    def key_env(self) -> str | None:
        return self.api_key_env or KEY_ENV.get(self.provider)


#: providers whose tier can take the shared-screen frame itself (routing/providers/vision.py)
VISION_PROVIDERS = ("openai", "openai_compatible", "google")


# Public list prices (USD per million tokens) as of 2025: Gemini 2.5 Flash 0.30 in / 2.50 out /
# 0.03 cached; GPT-4o mini 0.15 / 0.60 / 0.075 cached; Claude Sonnet 4.5 3.00 / 15.00,
# cache reads 0.30, cache writes 3.75.
DEFAULT_TIERS: dict[str, TierConfig] = {
    "tier1": TierConfig("tier1", "google", "gemini-2.5-flash", 0.1, 512, Price(0.30, 2.50, 0.03)),
    "tier2": TierConfig("tier2", "openai", "gpt-4o-mini", 0.2, 768, Price(0.15, 0.60, 0.075)),
    "tier3": TierConfig("tier3", "anthropic", "claude-sonnet-4-5", 0.3, 1024, Price(3.00, 15.00, 0.30, 3.75)),
}


def _price(value: Any, default: Price) -> Price:
    if value is None:
        return default
    if not isinstance(value, Mapping):
        raise ValueError(f"prices must be a mapping of input/output/cached/cache_write, got {value!r}")
    unknown = set(value) - {"input", "output", "cached", "cache_write"}
    if unknown:
        raise ValueError(f"unknown price keys {sorted(unknown)}")
    return Price(float(value.get("input", default.input)), float(value.get("output", default.output)),
                 None if value.get("cached", default.cached) is None else float(value.get("cached", default.cached)),
                 None if value.get("cache_write", default.cache_write) is None
                 else float(value.get("cache_write", default.cache_write)))


def _positive(tier: str, key: str, value: Any) -> int | None:
    if value is None:
        return None
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{tier}: {key} must be a whole number of tokens, got {value!r}") from None
    if n <= 0:
        raise ValueError(f"{tier}: {key} must be positive, got {n}")
    return n


def parse_tiers(data: Mapping[str, Any], defaults: Mapping[str, TierConfig] = DEFAULT_TIERS) -> dict[str, TierConfig]:
    """Overlay a mapping (parsed YAML) on the defaults; raises ValueError naming the bad key."""
    out = dict(defaults)
    for name, spec in (data or {}).items():
        if name not in TIER_NAMES:
            raise ValueError(f"unknown tier {name!r} (expected one of {', '.join(TIER_NAMES)})")
        if not isinstance(spec, Mapping):
            raise ValueError(f"{name}: expected a mapping")
        allowed = {"provider", "model", "temperature", "max_tokens", "prices", "base_url", "api_key_env",
                   "timeout_s", "logprobs", "context_window", "input_budget", "tokenizer", "vision"}
        unknown = set(spec) - allowed
        if unknown:
            raise ValueError(f"{name}: unknown keys {sorted(unknown)}")
        base = defaults[name]
        provider = spec.get("provider", base.provider)
        if provider not in PROVIDERS:
            raise ValueError(f"{name}: unknown provider {provider!r} (expected one of {', '.join(PROVIDERS)})")
        if provider == "openai_compatible" and not spec.get("base_url"):
            raise ValueError(f"{name}: provider openai_compatible needs base_url")
        vision = spec.get("vision", False)
        if not isinstance(vision, bool):
            raise ValueError(f"{name}: vision must be true or false")
        if vision and provider not in VISION_PROVIDERS:
            raise ValueError(f"{name}: provider {provider} cannot be sent images (vision needs one of "
                             f"{', '.join(VISION_PROVIDERS)})")
        same_provider = provider == base.provider
        out[name] = replace(
            base, provider=provider,
            model=str(spec.get("model", base.model if same_provider else provider)),
            temperature=float(spec.get("temperature", base.temperature)),
            max_tokens=int(spec.get("max_tokens", base.max_tokens)),
            price=_price(spec.get("prices"), base.price if same_provider else Price()),
            base_url=spec.get("base_url", base.base_url if same_provider else None),
            api_key_env=spec.get("api_key_env", base.api_key_env if same_provider else None),
            timeout_s=None if spec.get("timeout_s") is None else float(spec["timeout_s"]),
            # llama.cpp computes logprobs in Python over the whole vocabulary (~0.3-0.5 s a token on 2
            # cores): an OpenAI-compatible server gives them only when the tiers file asks
            logprobs=bool(spec.get("logprobs", base.logprobs and provider != "openai_compatible")),
            context_window=_positive(name, "context_window", spec.get("context_window")),
            input_budget=_positive(name, "input_budget", spec.get("input_budget")),
            tokenizer=None if spec.get("tokenizer") is None else str(spec["tokenizer"]),
            vision=vision,
        )
    return out


def load_tiers(path: Path | None) -> dict[str, TierConfig]:
    if path is None:
        return dict(DEFAULT_TIERS)
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except OSError as exc:
        raise ValueError(f"cannot read tiers file {path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ValueError(f"tiers file {path} is not valid YAML: {exc}") from exc
    if not isinstance(data, Mapping):
        raise ValueError(f"tiers file {path}: expected a mapping of tier1..tier3")
    try:
        return parse_tiers(data)
    except ValueError as exc:
        raise ValueError(f"tiers file {path}: {exc}") from exc
