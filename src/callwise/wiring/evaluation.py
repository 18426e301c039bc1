"""Settings -> evaluation objects: the judge for RAGAS, the answering pipeline (the support turn's
own stages), the gap writer."""

from __future__ import annotations

import os
from typing import Any, Literal

from callwise.calls import CallContext, SupportDeps, TurnContext, TurnOutcome, TurnPipeline
from callwise.calls.pipeline import evaluation_stages
from callwise.evaluation.pipeline import PipelineOutput
from callwise.evaluation.ragas_runner import NO_JUDGE_REASON, JudgeConfig
from callwise.handoff.escalation import EscalationPolicy, EscalationRules
from callwise.routing.tiers import load_tiers
from callwise.routing.types import Message
from callwise.wiring.settings import Settings

# OpenAI-compatible endpoints of the cloud providers (used only for judging through ragas/instructor).
COMPAT_BASE = {
    "google": "https://generativelanguage.googleapis.com/v1beta/openai/",
    "anthropic": "https://api.anthropic.com/v1/",
}


def judge_config(settings: Settings) -> tuple[JudgeConfig | None, str]:
    """The judge for the LLM metrics, or None and the reason they will not be computed."""
    if settings.judge_tier is None:
        return None, NO_JUDGE_REASON
    try:
        cfg = load_tiers(settings.tiers_file)[settings.judge_tier]
    except ValueError as exc:
        return None, f"CALLWISE_TIERS_FILE: {exc}"
    name = settings.judge_tier
    if cfg.provider in ("extractive", "local"):
        return None, (f"judge tier {name} is the offline {cfg.provider} answerer, which cannot follow judge prompts "
                      "(measured: Gemma 3 270M gives NaN on every LLM metric); configure a cloud key or an "
                      "OpenAI-compatible endpoint for it")
    secrets = {"google": settings.google_api_key, "openai": settings.openai_api_key,
               "anthropic": settings.anthropic_api_key}
    key = os.environ.get(cfg.api_key_env) if cfg.api_key_env else None
    if key is None and secrets.get(cfg.provider) is not None:
        key = secrets[cfg.provider].get_secret_value()  # type: ignore[union-attr]
    if cfg.provider == "openai_compatible":
        # json_object, not json_schema: llama.cpp's server rejects response_format type json_schema (HTTP 500)
        return JudgeConfig(model=cfg.model, api_key=key or "none", base_url=cfg.base_url, label=name, mode="json",
                           timeout_s=cfg.timeout_s or 120.0), ""
    if not key:
        return None, f"judge tier {name} uses {cfg.provider} but {cfg.key_env or 'its API key'} is not set"
    base = {"openai": settings.openai_base_url, "google": settings.google_base_url,
            "anthropic": settings.anthropic_base_url}.get(cfg.provider)
    base = cfg.base_url or base or COMPAT_BASE.get(cfg.provider)
    mode: Literal["json", "json_schema"] = "json" if cfg.provider == "anthropic" else "json_schema"  # Anthropic's compat layer ignores schemas
    return JudgeConfig(model=cfg.model, api_key=key, base_url=base, label=name, mode=mode,
                       timeout_s=cfg.timeout_s or 60.0), ""


class StagePipeline:
    """The support turn's stages (``callwise.calls.pipeline.evaluation_stages``) answering one golden
    question, as ``callwise.evaluation.pipeline.Pipeline``: no session, nothing stored, every question a
    fresh call (no memory), the router's answer taken whole (no live deadline)."""

    def __init__(self, deps: SupportDeps, *, retrieve_k: int = 10, modality: str = "text") -> None:
        self.deps = deps
        self.router = deps.router
        self.modality = modality
        self.pipeline = TurnPipeline(evaluation_stages(retrieve_k=retrieve_k))

    async def run(self, query: str, organization_id: str, *, interaction_id: str) -> PipelineOutput:
        call = CallContext(deps=self.deps, organization_id=organization_id, session_id=None,
                           modality=self.modality, persist=False)
        ctx = TurnContext(call=call, text=query, outcome=TurnOutcome(transcript=query), interaction_id=interaction_id)
        out = await self.pipeline.run(ctx)
        routed = ctx.answer
        esc = out.escalation or {}
        return PipelineOutput(
            answer=out.answer, contexts=[s.text for s in ctx.sources], documents=[c.document for c in ctx.retrieved],
            tier=out.tier, provider=routed.provider if routed else None, model=routed.model if routed else None,
            confidence=out.confidence, low_confidence=out.low_confidence, escalate=out.escalated,
            escalation_rule=esc.get("repeat_reason") or esc.get("reason"),
            cascade_path=list(routed.cascade_path or []) if routed else [],
            input_tokens=int(routed.input_tokens or 0) if routed else 0,
            output_tokens=int(routed.output_tokens or 0) if routed else 0,
            cost_usd=float(out.cost_usd or 0.0), latency_ms=float(routed.latency_ms or 0.0) if routed else 0.0,
            retrieval_ms=float(out.latencies.get("retrieval_ms", 0.0)), error=out.error,
            retrieved="retrieval_ms" in out.latencies, kind=out.kind)


def build_pipeline(settings: Settings, retriever: Any, router: Any) -> StagePipeline:
    """The agent's turn stages with the agent's escalation rules and top-k; 10 chunks retrieved for
    the @10 retrieval metrics, the first top-k given to the router as a live turn does."""
    deps = SupportDeps(retriever=retriever, router=router, pool=None,
                       rules=EscalationRules(EscalationPolicy.from_settings(settings)),
                       top_k=settings.retrieval_top_k, redact_pii=settings.pii_redaction)
    return StagePipeline(deps, retrieve_k=max(10, settings.retrieval_top_k))


GAP_PROMPT = (
    "Customers asked these questions and our help centre could not answer them:\n{questions}\n\n"
    "Reply with a short article title (at most 8 words) on the first line, then an outline of 3 to 6 "
    "bullet points for a help-centre article that would answer them. No preamble."
)


def gap_writer(router: Any, organization_id: str, *, offline: bool):  # type: ignore[no-untyped-def]
    """Label + outline through the router's ``complete()``; with only offline tiers, a template
    (an extractive answerer cannot write an outline)."""

    async def write(questions: list[str]) -> tuple[str, str]:
        from callwise.knowledge.gaps import fallback_label

        if offline:
            label = fallback_label(questions)
            outline = "Suggested article answering:\n" + "\n".join(f"- {q}" for q in questions)
            return label, outline
        text = await router.complete(
            [Message("system", "You plan help-centre articles for a customer-support team."),
             Message("user", GAP_PROMPT.format(questions="\n".join(f"- {q}" for q in questions)))],
            purpose="gap_outline", organization_id=organization_id, max_tokens=300)
        lines = [ln.strip() for ln in (text or "").strip().splitlines() if ln.strip()]
        if not lines:
            return fallback_label(questions), ""
        label = lines[0].lstrip("#*- ").removeprefix("Title:").strip().strip('"*')
        return label or fallback_label(questions), "\n".join(lines[1:])

    return write
