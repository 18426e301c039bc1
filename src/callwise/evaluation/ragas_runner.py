"""RAGAS scoring of answered examples, offline by default, LLM-judged when a judge is configured.

Offline (always): ragas' non-LLM metrics — ``non_llm_context_precision_with_reference``,
``non_llm_context_recall`` (string similarity of retrieved to reference contexts),
``non_llm_string_similarity`` and ``semantic_similarity`` (answer vs expected answer, with the
local embedder passed in).

With a judge (``JudgeConfig``: any OpenAI-compatible endpoint): the four LLM metrics
``faithfulness``, ``answer_relevancy``, ``context_precision``, ``context_recall`` through ragas'
collections API and instructor. Without one they are reported ``not_computed`` with the reason —
never as 0. A judge that answers with garbage (unparseable, NaN, out of [0, 1]) makes that metric
``failed`` for that example; the other examples and metrics go on.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from callwise.evaluation.ragas_shim import import_ragas

LLM_METRICS = ("faithfulness", "answer_relevancy", "context_precision", "context_recall")
OFFLINE_METRICS = (
    "non_llm_context_precision_with_reference",
    "non_llm_context_recall",
    "non_llm_string_similarity",
    "semantic_similarity",
)
NO_JUDGE_REASON = (
    "no judge tier configured (set CALLWISE_JUDGE_TIER to a tier with a key or an OpenAI-compatible endpoint)"
)

Status = Literal["computed", "not_computed", "failed"]
EncodeFn = Callable[[list[str]], np.ndarray]


@dataclass(frozen=True)
class JudgeConfig:
    """An OpenAI-compatible chat endpoint that judges the LLM metrics."""

    model: str
    api_key: str
    base_url: str | None = None
    label: str = "judge"  # e.g. the tier name, shown in reports
    #: instructor's request shape: json_schema for OpenAI/Gemini; json (response_format json_object,
    #: the schema in the prompt) for llama.cpp's server, which rejects json_schema with an HTTP 500
    mode: Literal["json_schema", "json", "tools"] = "json_schema"
    max_tokens: int = 1024
    timeout_s: float = 60.0
    max_retries: int = 1  # instructor re-asks after a validation error

    def describe(self) -> dict[str, Any]:
        return {"label": self.label, "model": self.model, "base_url": self.base_url, "mode": self.mode}


@dataclass
class RagasSample:
    example_id: str
    user_input: str
    response: str
    retrieved_contexts: list[str]
    reference: str | None = None
    reference_contexts: list[str] | None = None


@dataclass
class MetricSummary:
    name: str
    status: Status
    mean: float | None
    n: int = 0
    n_failed: int = 0
    reason: str | None = None


@dataclass
class RagasReport:
    summaries: dict[str, MetricSummary]
    scores: dict[str, dict[str, float]] = field(default_factory=dict)  # example -> metric -> value
    errors: dict[str, dict[str, str]] = field(default_factory=dict)  # example -> metric -> error
    judge: dict[str, Any] | None = None
    seconds: float = 0.0

    def means(self) -> dict[str, float | None]:
        return {k: s.mean for k, s in self.summaries.items()}

    def to_json(self) -> dict[str, Any]:
        return {
            "summaries": {k: asdict(v) for k, v in self.summaries.items()},
            "judge": self.judge,
            "seconds": round(self.seconds, 3),
        }


class MetricFailed(RuntimeError):
    """The metric ran but produced no usable score (garbage from the judge, NaN, out of range)."""


class EncodeEmbeddings:
    """ragas ``BaseRagasEmbedding`` over a plain ``encode(texts) -> ndarray`` (the shared Embedder)."""

    def __new__(cls, encode: EncodeFn) -> Any:
        import_ragas()
        from ragas.embeddings.base import BaseRagasEmbedding

        class _Impl(BaseRagasEmbedding):
            def __init__(self, fn: EncodeFn) -> None:
                super().__init__()
                self._fn = fn

            def embed_text(self, text: str, **kwargs: Any) -> list[float]:
                return [float(x) for x in np.asarray(self._fn([text]))[0]]

            async def aembed_text(self, text: str, **kwargs: Any) -> list[float]:
                return self.embed_text(text)

            def embed_texts(self, texts: list[str], **kwargs: Any) -> list[list[float]]:
                return np.asarray(self._fn(list(texts)), dtype=float).tolist()

            async def aembed_texts(self, texts: list[str], **kwargs: Any) -> list[list[float]]:
                return self.embed_texts(texts)

        return _Impl(encode)


def _value(result: Any) -> float:
    v = getattr(result, "value", result)
    try:
        x = float(v)
    except (TypeError, ValueError) as exc:
        raise MetricFailed(f"non-numeric score {v!r}") from exc
    if math.isnan(x) or math.isinf(x):
        raise MetricFailed("score is NaN (the judge gave no usable verdicts)")
    if x < -1e-6 or x > 1 + 1e-6:
        raise MetricFailed(f"score {x!r} outside [0, 1]")
    return min(1.0, max(0.0, x))


def _error_text(exc: BaseException) -> str:
    """One line: instructor's retry errors arrive as multi-line XML-ish dumps."""
    body = " ".join(re.sub(r"</?[a-z_]+[^>]*>", " ", str(exc)).split())
    text = f"{type(exc).__name__}: {body}".strip()
    return text if len(text) <= 300 else text[:297] + "..."


def build_judge_llm(judge: JudgeConfig) -> Any:
    """ragas ``InstructorLLM`` over an AsyncOpenAI client for ``judge``."""
    import_ragas()
    import instructor
    from openai import AsyncOpenAI
    from ragas.llms.base import InstructorLLM

    client = AsyncOpenAI(base_url=judge.base_url, api_key=judge.api_key or "none",
                         timeout=judge.timeout_s, max_retries=1)
    mode = {"json_schema": instructor.Mode.JSON_SCHEMA, "json": instructor.Mode.JSON,
            "tools": instructor.Mode.TOOLS}[judge.mode]
    return InstructorLLM(client=instructor.from_openai(client, mode=mode), model=judge.model,
                         provider="openai", max_tokens=judge.max_tokens, max_retries=judge.max_retries)


class RagasRunner:
    """Scores samples with every metric that can run; see the module docstring."""

    def __init__(self, encode: EncodeFn, judge: JudgeConfig | None = None, *,
                 no_judge_reason: str = NO_JUDGE_REASON, concurrency: int = 4,
                 metric_timeout_s: float = 180.0) -> None:
        import_ragas()
        # Failures are recorded per example; instructor's own error log would only repeat them.
        logging.getLogger("instructor").setLevel(logging.CRITICAL)
        from ragas.metrics import NonLLMContextPrecisionWithReference, NonLLMContextRecall
        from ragas.metrics.collections import NonLLMStringSimilarity, SemanticSimilarity

        self.judge = judge
        self.no_judge_reason = no_judge_reason
        self.metric_timeout_s = metric_timeout_s
        self._sem = asyncio.Semaphore(max(1, concurrency))
        self._emb = EncodeEmbeddings(encode)
        self._ctx_precision = NonLLMContextPrecisionWithReference()
        self._ctx_recall = NonLLMContextRecall()
        self._string_sim = NonLLMStringSimilarity()
        self._semantic = SemanticSimilarity(embeddings=self._emb)
        self._llm_metrics: dict[str, Any] = {}
        if judge is not None:
            from ragas.metrics.collections import AnswerRelevancy, ContextPrecisionWithReference, ContextRecall, Faithfulness

            llm = build_judge_llm(judge)
            self._llm_metrics = {
                "faithfulness": Faithfulness(llm=llm),
                "answer_relevancy": AnswerRelevancy(llm=llm, embeddings=self._emb, strictness=1),
                "context_precision": ContextPrecisionWithReference(llm=llm),
                "context_recall": ContextRecall(llm=llm),
            }

    # -- one sample -------------------------------------------------------------------------
    def _jobs(self, s: RagasSample) -> dict[str, Callable[[], Any]]:
        """Metric name -> coroutine factory, only for metrics whose inputs this sample has."""
        from ragas.dataset_schema import SingleTurnSample

        jobs: dict[str, Callable[[], Any]] = {}
        refs = [c for c in (s.reference_contexts or []) if c.strip()]
        ctxs = [c for c in s.retrieved_contexts if c.strip()]
        if refs:
            if ctxs:
                st = SingleTurnSample(user_input=s.user_input, retrieved_contexts=ctxs, reference_contexts=refs)
                jobs["non_llm_context_precision_with_reference"] = lambda: self._ctx_precision.single_turn_ascore(st)
                jobs["non_llm_context_recall"] = lambda: self._ctx_recall.single_turn_ascore(st)
            else:  # nothing retrieved: nothing of the reference was recalled, nothing retrieved was relevant
                jobs["non_llm_context_precision_with_reference"] = _const(0.0)
                jobs["non_llm_context_recall"] = _const(0.0)
        if s.reference and s.reference.strip():
            ref = s.reference
            jobs["non_llm_string_similarity"] = lambda: self._string_sim.ascore(reference=ref, response=s.response)
            jobs["semantic_similarity"] = lambda: self._semantic.ascore(reference=ref, response=s.response)
        if self._llm_metrics:
            m = self._llm_metrics
            jobs["faithfulness"] = lambda: m["faithfulness"].ascore(
                user_input=s.user_input, response=s.response, retrieved_contexts=ctxs or [""])
            jobs["answer_relevancy"] = lambda: m["answer_relevancy"].ascore(
                user_input=s.user_input, response=s.response)
            if s.reference and s.reference.strip():
                jobs["context_precision"] = lambda: m["context_precision"].ascore(
                    user_input=s.user_input, reference=s.reference, retrieved_contexts=ctxs or [""])
                jobs["context_recall"] = lambda: m["context_recall"].ascore(
                    user_input=s.user_input, retrieved_contexts=ctxs or [""], reference=s.reference)
        return jobs

    async def _score(self, s: RagasSample) -> tuple[dict[str, float], dict[str, str]]:
        scores: dict[str, float] = {}
        errors: dict[str, str] = {}
        for name, make in self._jobs(s).items():
            if name in ("faithfulness", "answer_relevancy") and not s.response.strip():
                errors[name] = "empty answer: the pipeline produced no text for this example"
                continue
            async with self._sem:
                try:
                    scores[name] = _value(await asyncio.wait_for(make(), self.metric_timeout_s))
                except TimeoutError:
                    errors[name] = f"timed out after {self.metric_timeout_s:.0f}s"
                except Exception as exc:  # noqa: BLE001 - any judge/parse failure is per example
                    errors[name] = _error_text(exc)
        return scores, errors

    # -- a run --------------------------------------------------------------------------------
    async def evaluate(self, samples: Sequence[RagasSample],
                       on_progress: Callable[[int], None] | None = None) -> RagasReport:
        t0 = time.perf_counter()
        report = RagasReport(summaries={}, judge=self.judge.describe() if self.judge else None)

        async def one(s: RagasSample) -> None:
            sc, er = await self._score(s)
            if sc:
                report.scores[s.example_id] = sc
            if er:
                report.errors[s.example_id] = er
            if on_progress:
                on_progress(1)

        await asyncio.gather(*(one(s) for s in samples))
        report.summaries = summarise(report, judge=self.judge is not None, no_judge_reason=self.no_judge_reason,
                                     n_samples=len(samples))
        report.seconds = time.perf_counter() - t0
        return report


def _const(v: float) -> Callable[[], Any]:
    async def f() -> float:
        return v

    return f


def summarise(report: RagasReport, *, judge: bool, no_judge_reason: str, n_samples: int) -> dict[str, MetricSummary]:
    out: dict[str, MetricSummary] = {}
    for name in OFFLINE_METRICS + LLM_METRICS:
        vals = [sc[name] for sc in report.scores.values() if name in sc]
        fails = sum(1 for er in report.errors.values() if name in er)
        if name in LLM_METRICS and not judge:
            out[name] = MetricSummary(name, "not_computed", None, reason=no_judge_reason)
        elif vals:
            out[name] = MetricSummary(name, "computed", sum(vals) / len(vals), len(vals), fails,
                                      reason=f"{fails} example(s) failed" if fails else None)
        elif fails:
            first = next(er[name] for er in report.errors.values() if name in er)
            out[name] = MetricSummary(name, "failed", None, 0, fails, reason=f"every example failed; first: {first}")
        else:
            why = "no examples" if n_samples == 0 else "no example had the inputs this metric needs"
            out[name] = MetricSummary(name, "not_computed", None, reason=why)
    return out
