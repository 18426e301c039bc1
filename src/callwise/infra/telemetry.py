"""Metrics and traces: OpenTelemetry under livekit-agents' own names, plus callwise's.

``setup_telemetry`` installs the process's meter and tracer providers once: OTLP export when
``OTEL_EXPORTER_OTLP_ENDPOINT`` is set, otherwise a Prometheus registry that ``callwise serve`` scrapes
at ``/metrics`` (``prometheus_text``). Until it runs, every function here returns at once, so a process
without telemetry pays nothing.

Names. The per-turn histograms and usage counters are created on the meter ``livekit-agents`` with the
name, unit and description the framework gives them (``livekit/agents/telemetry/otel_metrics.py``), so a
live call's own figures and a simulated or text turn's land in one series. Their label keys are the
framework's (``model_provider``, ``model_name``). callwise's own are ``callwise.*``.

Traces. One span per turn (``callwise.turn``) with one child per stage (``callwise.stage.<name>``).
Customer and agent text go on a span only as ``lk.pii.*`` attributes (the framework's convention,
stripped by its PII filter) and only for organizations that allowed it (``allow_pii_for``).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.metrics import CallbackOptions, Observation

log = logging.getLogger("callwise.telemetry")

LK_METER = "livekit-agents"
CW_METER = "callwise"
SECONDS_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0)
RATIO_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)

_lk = metrics.get_meter(LK_METER)
_cw = metrics.get_meter(CW_METER)
_tracer = trace.get_tracer(CW_METER)

# -- the framework's names, units and descriptions (livekit-agents 1.8 telemetry/otel_metrics.py) --
TURN_E2E = _lk.create_histogram("lk.agents.turn.e2e_latency", unit="s", description="End-to-end turn latency")
TURN_LLM_TTFT = _lk.create_histogram("lk.agents.turn.llm_ttft", unit="s",
                                     description="Pipeline-level LLM time to first token")
TURN_TTS_TTFB = _lk.create_histogram("lk.agents.turn.tts_ttfb", unit="s",
                                     description="Pipeline-level TTS time to first byte")
TURN_TRANSCRIPTION = _lk.create_histogram("lk.agents.turn.transcription_delay", unit="s",
                                          description="Time from end of speech to transcript available")
TURN_EOT = _lk.create_histogram("lk.agents.turn.end_of_turn_delay", unit="s",
                                description="Time from end of speech to turn decision")
USAGE_IN = _lk.create_counter("lk.agents.usage.llm_input_tokens")
USAGE_CACHED = _lk.create_counter("lk.agents.usage.llm_input_cached_tokens")
USAGE_OUT = _lk.create_counter("lk.agents.usage.llm_output_tokens")
USAGE_TTS_CHARS = _lk.create_counter("lk.agents.usage.tts_characters")

# -- callwise's own ----------------------------------------------------------------------------------
TURNS = _cw.create_counter("callwise.turns", description="Customer turns by how they ended")
STAGE = _cw.create_histogram("callwise.turn.stage.duration", unit="s", description="One turn stage")
RETRIEVAL = _cw.create_histogram("callwise.retrieval.stage.duration", unit="s",
                                 description="One retrieval stage (bm25, vector, fusion, rerank, expand)")
ROUTED = _cw.create_counter("callwise.routing.answers", description="Answers by final tier and cascade path")
CONFIDENCE = _cw.create_histogram("callwise.routing.confidence", unit="1",
                                  description="Confidence of the final answer")
ESCALATIONS = _cw.create_counter("callwise.escalations", description="Escalations by reason")
CRM_LOOKUPS = _cw.create_counter("callwise.crm.lookups", description="Caller lookups by result")
GENERATIONS = _cw.create_counter("callwise.llm.requests", description="Model calls by provider, model and result")
COST = _cw.create_counter("callwise.llm.cost_usd", description="Model spend in USD")


@dataclass
class _State:
    enabled: bool = False
    exporter: str = "none"  # "prometheus" | "otlp"
    registry: Any = None
    meter_provider: Any = None
    tracer_provider: Any = None
    pii_orgs: set[str] = field(default_factory=set)
    db: dict[str, dict[tuple[tuple[str, str], ...], float]] = field(default_factory=dict)
    open_turns: dict[int, tuple[Any, float]] = field(default_factory=dict)


_state = _State()


def _gauge(name: str, description: str) -> None:
    """An observable gauge whose value is the snapshot :func:`set_db_gauges` last stored under ``name``."""
    def observe(options: CallbackOptions) -> list[Observation]:
        return [Observation(v, dict(labels)) for labels, v in _state.db.get(name, {}).items()]

    _cw.create_observable_gauge(name, callbacks=[observe], description=description)


#: read from Postgres at each scrape (``callwise serve``), so calls handled by any process are counted
DB_GAUGES = {
    "callwise.outbox.deliveries": "Outbox rows by vendor and status",
    "callwise.calls.last_day": "Support calls started in the last 24 hours by organization and resolution",
    "callwise.escalations.last_day": "Escalations in the last 24 hours by organization and reason",
    "callwise.llm.requests.last_day": "Model calls in the last 24 hours by provider, model and result",
}
for _name, _description in DB_GAUGES.items():
    _gauge(_name, _description)


def enabled() -> bool:
    return _state.enabled


def exporter() -> str:
    return _state.exporter


def setup_telemetry(*, otlp_endpoint: str | None = None, service_name: str = "callwise",
                    span_processor: Any = None) -> None:
    """Install the providers (once per process; a second call only adds ``span_processor``).

    ``otlp_endpoint`` (``OTEL_EXPORTER_OTLP_ENDPOINT``): metrics and spans go there over OTLP/HTTP.
    Without it metrics go to a Prometheus registry read by :func:`prometheus_text`, and spans only
    to ``span_processor`` (tests) when one is given."""
    from opentelemetry.sdk.metrics import Histogram, MeterProvider
    from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    if _state.enabled:
        if span_processor is not None:
            _state.tracer_provider.add_span_processor(span_processor)
        return
    resource = Resource.create({"service.name": service_name})
    readers: list[Any] = []
    tracer_provider = TracerProvider(resource=resource)
    if otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

        base = otlp_endpoint.rstrip("/")
        readers.append(PeriodicExportingMetricReader(OTLPMetricExporter(endpoint=f"{base}/v1/metrics")))
        tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{base}/v1/traces")))
        _state.exporter = "otlp"
    else:
        from opentelemetry.exporter.prometheus import PrometheusMetricReader
        from prometheus_client import CollectorRegistry

        _state.registry = CollectorRegistry(auto_describe=True)
        readers.append(PrometheusMetricReader(registry=_state.registry))
        _state.exporter = "prometheus"
    if span_processor is not None:
        tracer_provider.add_span_processor(span_processor)
    views = [
        View(instrument_type=Histogram, instrument_unit="s",
             aggregation=ExplicitBucketHistogramAggregation(SECONDS_BUCKETS)),
        View(instrument_type=Histogram, instrument_name="callwise.routing.confidence",
             aggregation=ExplicitBucketHistogramAggregation(RATIO_BUCKETS)),
    ]
    provider = MeterProvider(metric_readers=readers, resource=resource, views=views)
    metrics.set_meter_provider(provider)
    trace.set_tracer_provider(tracer_provider)
    _state.meter_provider, _state.tracer_provider = provider, tracer_provider
    _state.enabled = True


def allow_pii_for(organization_ids: set[str]) -> None:
    """Organizations whose customer text may go on spans (``organizations.settings.telemetry_pii``)."""
    _state.pii_orgs = {str(o) for o in organization_ids}


def set_db_gauges(name: str, rows: Mapping[tuple[tuple[str, str], ...], float]) -> None:
    """The values of the DB-backed gauge ``name`` (one of ``DB_GAUGES``): label pairs -> value."""
    if name not in DB_GAUGES:
        raise KeyError(f"unknown gauge {name!r}")
    _state.db[name] = dict(rows)


def prometheus_text() -> bytes:
    """The scrape body (Prometheus text format); empty when metrics go over OTLP or are off."""
    if _state.registry is None:
        return b""
    from prometheus_client import generate_latest

    return generate_latest(_state.registry)


# -- turns ---------------------------------------------------------------------------------------------
def _secs(latencies: Mapping[str, float], key: str) -> float | None:
    v = latencies.get(key)
    return None if v is None else float(v) / 1000.0


def start_turn(ctx: Any) -> None:
    """The turn's span; ended by :func:`end_turn` (the pipeline's ``finish`` always runs)."""
    if not _state.enabled:
        return
    call = ctx.call
    span = _tracer.start_span("callwise.turn", attributes={
        "callwise.organization_id": str(call.organization_id), "callwise.session_id": str(call.session_id or ""),
        "callwise.modality": str(call.modality)})
    _state.open_turns[id(ctx)] = (span, time.perf_counter())


@contextlib.contextmanager
def stage(ctx: Any, name: str) -> Iterator[None]:
    """A child span of the turn for one stage, and its duration."""
    if not _state.enabled:
        yield
        return
    parent = _state.open_turns.get(id(ctx))
    parent_ctx = trace.set_span_in_context(parent[0]) if parent else None
    t0 = time.perf_counter()
    # started, not made current: no context switch per stage (a stage's own spans hang off the turn)
    span = _tracer.start_span(f"callwise.stage.{name}", context=parent_ctx, attributes={"callwise.stage": name})
    try:
        yield
    except BaseException as exc:
        span.record_exception(exc)
        span.set_status(trace.StatusCode.ERROR, type(exc).__name__)
        raise
    finally:
        span.end()
        STAGE.record(time.perf_counter() - t0, {"stage": name})


def end_turn(ctx: Any) -> None:
    """Record the turn's metrics from its outcome and close its span."""
    if not _state.enabled:
        return
    span, _ = _state.open_turns.pop(id(ctx), (None, 0.0))
    try:
        _record_turn(ctx, span)
    except Exception:  # noqa: BLE001 - telemetry never breaks a turn
        log.exception("could not record the turn's metrics")
    if span is not None:
        span.end()


def _record_turn(ctx: Any, span: Any) -> None:
    call, out = ctx.call, ctx.outcome
    lat: Mapping[str, float] = out.latencies
    answer = getattr(ctx, "answer", None)
    model = {"model_provider": getattr(answer, "provider", None) or "", "model_name": getattr(answer, "model", None) or ""}
    model = {k: v for k, v in model.items() if v}
    first_word = _secs(lat, "eos_to_first_token_ms") or _secs(lat, "first_token_ms")
    if first_word is not None:
        TURN_E2E.record(first_word, model)
    ttft_ms = getattr(answer, "ttft_ms", None) if getattr(ctx, "router_ran", False) else None
    if ttft_ms is not None:
        TURN_LLM_TTFT.record(float(ttft_ms) / 1000.0, model)
    stt = _secs(lat, "stt_ms")
    if stt is not None:
        TURN_TRANSCRIPTION.record(stt, {})
    eot = _secs(lat, "end_of_turn_ms")
    if eot is not None:
        TURN_EOT.record(eot, {})
    tts = _secs(lat, "tts_ttfb_ms")
    if tts is not None:
        TURN_TTS_TTFB.record(tts, {})
    if out.answer and call.modality != "text":
        USAGE_TTS_CHARS.add(len(out.answer), {})
    TURNS.add(1, {"kind": str(out.kind), "modality": str(call.modality),
                  "result": "error" if out.error and out.error != "interrupted" else
                  "interrupted" if out.error else "ok"})
    if answer is not None and getattr(ctx, "router_ran", False):
        path = getattr(answer, "cascade_path", None) or [out.tier or "none"]
        ROUTED.add(1, {"tier": str(out.tier or "none"), "cascade": ">".join(map(str, path)),
                       "cascaded": str(len(path) > 1).lower()})
        if out.confidence is not None:
            CONFIDENCE.record(float(out.confidence), {"tier": str(out.tier or "none")})
    if out.escalated and out.escalation:
        ESCALATIONS.add(1, {"reason": str(out.escalation.get("reason", "unknown")),
                            "handoff": str(out.escalation.get("handoff", "none"))})
    lookup = getattr(call, "caller", None)
    if lookup is not None and getattr(lookup, "lookup_ms", None) is not None \
            and not getattr(lookup, "_cw_counted", False):
        lookup._cw_counted = True
        result = ("error" if lookup.error else "cache_hit" if lookup.cache_hit else
                  "found" if lookup.customer is not None else "unknown")
        CRM_LOOKUPS.add(1, {"result": result})
    if span is None:
        return
    attrs: dict[str, Any] = {"callwise.turn.kind": str(out.kind)}
    if out.tier:
        attrs["callwise.routing.tier"] = out.tier
    if out.confidence is not None:
        attrs["callwise.routing.confidence"] = float(out.confidence)
    if out.escalated and out.escalation:
        attrs["callwise.escalation.reason"] = str(out.escalation.get("reason"))
    if out.error:
        attrs["callwise.error"] = str(out.error)[:200]
    for key, value in lat.items():
        attrs[f"callwise.latency.{key}"] = round(float(value), 1)
    if str(call.organization_id) in _state.pii_orgs:
        attrs["lk.pii.user_text"] = out.transcript
        attrs["lk.pii.agent_text"] = out.answer
    span.set_attributes(attrs)


def record_retrieval(timings_ms: Mapping[str, float], *, query_type: str | None = None, mode: str = "") -> None:
    """One retrieval's stage timings (``RetrievalResult.timings_ms``)."""
    if not _state.enabled:
        return
    for name, ms in timings_ms.items():
        if isinstance(ms, (int, float)):
            RETRIEVAL.record(float(ms) / 1000.0, {"stage": name, "query_type": query_type or "", "mode": mode})


def record_generation(event: Any) -> None:
    """One model call (a ``CostEvent``): usage under the framework's names, requests and spend under ours."""
    if not _state.enabled:
        return
    model = {"model_provider": str(event.provider), "model_name": str(event.model)}
    if event.input_tokens:
        USAGE_IN.add(int(event.input_tokens), model)
    if event.cached_tokens:
        USAGE_CACHED.add(int(event.cached_tokens), model)
    if event.output_tokens:
        USAGE_OUT.add(int(event.output_tokens), model)
    labels = {"provider": str(event.provider), "model": str(event.model), "tier": str(event.tier),
              "purpose": str(event.purpose), "result": "ok" if event.success else "error"}
    GENERATIONS.add(1, labels)
    if event.cost_usd:
        COST.add(float(event.cost_usd), {k: labels[k] for k in ("provider", "model", "tier")})


class MeteredRetriever:
    """Delegates to a retriever and records each retrieval's stage timings."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    async def retrieve(self, query: str, organization_id: str, *args: Any, **kwargs: Any) -> Any:
        result = await self._inner.retrieve(query, organization_id, *args, **kwargs)
        record_retrieval(getattr(result, "timings_ms", {}) or {}, query_type=getattr(result, "query_type", None),
                         mode=str(kwargs.get("mode", "")))
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def metered_retriever(inner: Any) -> Any:
    """``inner`` wrapped in a :class:`MeteredRetriever` (typed ``Any``: it stands in for the retriever)."""
    return MeteredRetriever(inner)


class MeteredCostSink:
    """Delegates to a cost sink and counts each generation (see :func:`record_generation`)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def record(self, event: Any) -> None:
        record_generation(event)
        await self.inner.record(event)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)
