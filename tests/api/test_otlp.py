"""OTLP export when OTEL_EXPORTER_OTLP_ENDPOINT is set: metrics and spans reach a local collector stand-in
that decodes them with the OTLP protobuf classes (OTLP/HTTP: POST /v1/metrics and /v1/traces)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.vendors._http import FakeServer, Reply, Request


class Collector(FakeServer):
    """An OpenTelemetry collector's OTLP/HTTP receiver: protobuf bodies, 200 with an empty response."""

    def __init__(self) -> None:
        super().__init__()
        self.metrics: list[ExportMetricsServiceRequest] = []
        self.traces: list[ExportTraceServiceRequest] = []

    def handle(self, request: Request) -> Reply:
        raw = request.raw
        if request.path == "/v1/metrics":
            self.metrics.append(ExportMetricsServiceRequest.FromString(raw))
        elif request.path == "/v1/traces":
            self.traces.append(ExportTraceServiceRequest.FromString(raw))
        else:
            return Reply(status=404, body="")
        return Reply(status=200, body=b"", headers={"content-type": "application/x-protobuf"})


SCRIPT = textwrap.dedent("""
    from types import SimpleNamespace as NS
    from opentelemetry import metrics, trace
    from callwise.infra import telemetry
    from callwise.routing.costs import CostEvent
    from callwise.wiring.telemetry import start_worker_telemetry

    assert start_worker_telemetry() and telemetry.exporter() == "otlp"
    call = NS(organization_id="o", session_id="s", modality="voice", caller=None)
    out = NS(latencies={"eos_to_first_token_ms": 420.0}, kind="answer", error=None, answer="Five days.",
             transcript="How long?", tier="tier1", confidence=0.9, escalated=False, escalation=None)
    ctx = NS(call=call, outcome=out, answer=NS(provider="openai", model="gpt-4o-mini", ttft_ms=210.0,
                                                cascade_path=["tier1"]), router_ran=True)
    telemetry.start_turn(ctx)
    with telemetry.stage(ctx, "answer"):
        pass
    telemetry.end_turn(ctx)
    telemetry.record_generation(CostEvent(organization_id="o", tier="tier1", provider="openai",
                                          model="gpt-4o-mini", input_tokens=900, output_tokens=40))
    metrics.get_meter_provider().force_flush()
    trace.get_tracer_provider().force_flush()
""")


def test_metrics_and_spans_go_over_otlp_when_the_endpoint_is_set(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with Collector() as collector:
        env = {**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url}
        res = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, res.stderr[-2000:]
    names = {m.name: (sm.scope.name, m) for req in collector.metrics for rm in req.resource_metrics
             for sm in rm.scope_metrics for m in sm.metrics}
    assert names["lk.agents.turn.e2e_latency"][0] == "livekit-agents"
    e2e = names["lk.agents.turn.e2e_latency"][1].histogram.data_points[0]
    assert e2e.sum == 0.42 and {a.key for a in e2e.attributes} == {"model_provider", "model_name"}
    assert names["lk.agents.usage.llm_input_tokens"][1].sum.data_points[0].as_int == 900
    assert {"callwise.turns", "callwise.turn.stage.duration", "callwise.llm.requests"} <= set(names)
    spans = [s for req in collector.traces for rs in req.resource_spans for ss in rs.scope_spans for s in ss.spans]
    turn = next(s for s in spans if s.name == "callwise.turn")
    stage = next(s for s in spans if s.name == "callwise.stage.answer")
    assert stage.parent_span_id == turn.span_id and stage.trace_id == turn.trace_id
    assert not any(a.key.startswith("lk.pii.") for a in turn.attributes)
