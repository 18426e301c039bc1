"""RAGAS scoring: offline non-LLM metrics, the judge path against a local OpenAI-compatible server,
a garbage judge, and the import shim."""

from __future__ import annotations

import sys

import pytest

from callwise.evaluation.ragas_runner import LLM_METRICS, OFFLINE_METRICS, JudgeConfig, RagasRunner, RagasSample
from tests.vendors.llama_server import ALIAS, HAS_LLAMA_SERVER, SKIP_REASON, LlamaServer, gemma_path
from tests.vendors.openai_judge import serve_judge

SAMPLES = [
    RagasSample("refund", "How long do refunds take?", "Refunds are issued within 14 days.",
                ["Refunds are issued within 14 days of the request.", "Plans are billed monthly."],
                "You get the refund within 14 days of the request.",
                ["Refunds are issued within 14 days of the request."]),
    RagasSample("plans", "Which plans are there?", "Free, Pro and Enterprise.",
                ["Orbitly offers Free, Pro and Enterprise plans."], "Orbitly has Free, Pro and Enterprise plans.",
                ["Orbitly offers Free, Pro and Enterprise plans."]),
    RagasSample("miss", "How do I reset my password?", "I could not find that.", ["Invoices are emailed monthly."],
                "Use the Forgot password link on the sign-in page.",
                ["Click Forgot password on the sign-in page and follow the email link."]),
]


def test_shim_makes_ragas_importable() -> None:
    from callwise.evaluation.ragas_shim import import_ragas

    ragas = import_ragas()
    assert ragas.__version__ == "0.4.3"
    assert "langchain_community.chat_models.vertexai" in sys.modules


async def test_offline_metrics(encode) -> None:  # type: ignore[no-untyped-def]
    rep = await RagasRunner(encode).evaluate(SAMPLES)
    for name in OFFLINE_METRICS:
        assert rep.summaries[name].status == "computed" and rep.summaries[name].n == 3
    s = rep.scores
    assert s["plans"]["non_llm_context_recall"] == pytest.approx(1.0)
    assert s["miss"]["non_llm_context_recall"] == pytest.approx(0.0)
    assert s["refund"]["non_llm_context_precision_with_reference"] == pytest.approx(1.0, abs=1e-6)  # hit at rank 1
    assert s["refund"]["semantic_similarity"] > s["miss"]["semantic_similarity"]
    for name in LLM_METRICS:  # not computed, with the reason, never zero
        summary = rep.summaries[name]
        assert summary.status == "not_computed" and summary.mean is None and "judge" in (summary.reason or "")
        assert all(name not in sc for sc in rep.scores.values())


async def test_three_examples_with_local_judge(encode) -> None:  # type: ignore[no-untyped-def]
    with serve_judge("agree") as judge:
        runner = RagasRunner(encode, JudgeConfig(model="judge-model", api_key="sk-test", base_url=judge.base_url))
        rep = await runner.evaluate(SAMPLES)
        assert judge.requests, "the judge was never called"
        body = judge.requests[0].body
        assert body["model"] == "judge-model" and body["messages"]
        assert body["response_format"]["type"] == "json_schema"
    for name in LLM_METRICS:
        summary = rep.summaries[name]
        assert summary.status == "computed", (name, summary, rep.errors)
        assert summary.n == 3 and 0.0 <= summary.mean <= 1.0
    assert rep.summaries["faithfulness"].mean == pytest.approx(1.0)  # a judge that agrees with every statement
    assert rep.judge and rep.judge["model"] == "judge-model"


async def test_garbage_judge_fails_per_example_not_zero(encode) -> None:  # type: ignore[no-untyped-def]
    with serve_judge("garbage") as judge:
        rep = await RagasRunner(encode, JudgeConfig(model="m", api_key="k", base_url=judge.base_url)).evaluate(SAMPLES)
    for name in LLM_METRICS:
        summary = rep.summaries[name]
        assert summary.status == "failed" and summary.mean is None and summary.n_failed == 3
        assert all(name in rep.errors[ex] for ex in ("refund", "plans", "miss"))
    assert "Invalid JSON" in rep.errors["refund"]["faithfulness"] or "validation" in rep.errors["refund"]["faithfulness"]
    assert rep.summaries["semantic_similarity"].status == "computed"  # the offline metrics still ran


async def test_empty_answer_and_no_contexts(encode) -> None:  # type: ignore[no-untyped-def]
    s = RagasSample("empty", "q?", "", [], "expected", ["a reference passage"])
    with serve_judge("agree") as judge:
        rep = await RagasRunner(encode, JudgeConfig(model="m", api_key="k", base_url=judge.base_url)).evaluate([s])
    assert rep.scores["empty"]["non_llm_context_recall"] == 0.0
    assert "empty answer" in rep.errors["empty"]["faithfulness"]


async def test_no_samples(encode) -> None:  # type: ignore[no-untyped-def]
    rep = await RagasRunner(encode).evaluate([])
    assert all(s.status == "not_computed" for s in rep.summaries.values())
    assert rep.summaries["semantic_similarity"].reason == "no examples"


# --- the judge path against a real OpenAI-compatible server (llama.cpp, Gemma 3 270M) ------------
SHORT_GOLDEN = "\n".join([
    '{"id": "g1", "query": "How long do I have to get a full refund?", "expected_answer": "Paid purchases are '
    'fully refundable within 30 days of the purchase date.", "relevant_documents": ["examples/kb/billing/refunds.md"], '
    '"category": "simple", "expected_tier": "tier1"}',
])  # one example: Gemma 270M decodes ~70 tokens/s on 2 quiet cores, and each metric is 1-2 judge calls


@pytest.mark.skipif(not HAS_LLAMA_SERVER, reason=SKIP_REASON)
async def test_llm_metrics_judged_by_a_real_llama_server(encode, tmp_path_factory) -> None:  # type: ignore[no-untyped-def]
    """The nightly's judge path on a real endpoint: ragas -> instructor (JSON schema) -> llama.cpp's
    server. Gemma 270M cannot judge (the point is the protocol): every LLM metric must come back as
    numbers in [0, 1] or as per-example failures with the reason, never as silent zeros."""
    from pathlib import Path

    from callwise.evaluation.golden import parse_lines

    golden = parse_lines(SHORT_GOLDEN.splitlines())
    samples = []
    for ex in golden:
        doc = Path(ex.relevant_documents[0]).read_text()
        samples.append(RagasSample(ex.id, ex.query, ex.expected_answer.split(".")[0] + ".", [doc[:1500]],
                                   ex.expected_answer, [doc[:1500]]))
    model = gemma_path(tmp_path_factory.mktemp("models"))
    with LlamaServer.start(model, n_ctx=2048, log_dir=tmp_path_factory.mktemp("llama-judge")) as srv:
        judge = JudgeConfig(model=ALIAS, api_key="none", base_url=srv.base_url, max_tokens=64, timeout_s=120,
                            mode="json")  # what callwise.wiring.evaluation uses for an openai_compatible judge
        rep = await RagasRunner(encode, judge, concurrency=1, metric_timeout_s=240).evaluate(samples)
        log = srv.log_path.read_text()
    assert "POST /v1/chat/completions" in log, log[-1500:]
    # the server accepted every request: failures may only be the small model's answers, not the protocol
    assert " 500 Internal Server Error" not in log and "422 Unprocessable" not in log, log[-1500:]
    for errs in rep.errors.values():
        assert not any("Error code:" in e for e in errs.values()), errs
    assert rep.judge is not None and rep.judge["base_url"] == srv.base_url
    for name in LLM_METRICS:
        summary = rep.summaries[name]
        assert summary.status in ("computed", "failed"), (name, summary)
        assert summary.n + summary.n_failed == len(samples), (name, summary)
        if summary.status == "computed":
            assert summary.mean is not None and 0.0 <= summary.mean <= 1.0
        for ex in golden:  # each example has a number or a reason for this metric
            assert name in rep.scores.get(ex.id, {}) or rep.errors.get(ex.id, {}).get(name)
