"""Answer stage: the cascading router streams the answer to the standalone question, with the
call's recent turns as history; deltas go to the customer as they arrive."""

from __future__ import annotations

import logging
import time
from typing import Any

from callwise.calls.context import TurnContext
from callwise.calls.languages import DEFAULT as DEFAULT_LANGUAGE
from callwise.calls.languages import NAMES
from callwise.calls.stages.send_offer import asks_for_code, offer_to_send
from callwise.routing.speakable import SpeakableStream, needs_speakable
from callwise.routing.text import CODE_POINTER

log = logging.getLogger("callwise.turn")

APOLOGY = "I'm sorry, I'm having trouble answering right now."


class Answer:
    """Stage: ``stream=True`` (a live turn) speaks deltas as the router streams them, under the
    router's live deadline; ``stream=False`` (the nightly run) takes the router's whole answer."""

    name = "answer"

    def __init__(self, *, stream: bool = True) -> None:
        self.stream = stream

    async def run(self, ctx: TurnContext) -> None:
        if not self.stream:
            await self._whole(ctx)
            return
        out = ctx.outcome
        started = time.perf_counter()
        stream = ctx.deps.router.answer_stream(_question(ctx), ctx.sources, live=ctx.deps.live_stream,
                                               eos_at=ctx.eos_at, **_router_kwargs(ctx))
        ctx.router_ran = True
        answer = None
        disclaimer = getattr(ctx.deps.router, "disclaimer", None)
        held = False  # the router's "I'm not completely sure" disclaimer, said after the answer unless an offer follows
        # voice/video: Markdown, code and URLs become plain sentences on the way to TTS (callwise.routing.speakable)
        norm = (SpeakableStream(boundaries=tuple(filter(None, [disclaimer])))
                if needs_speakable(ctx.call.modality) else None)
        try:
            async for delta in stream:
                if "ttft_ms" not in out.latencies:
                    out.latencies["ttft_ms"] = (time.perf_counter() - started) * 1000
                if disclaimer and disclaimer in delta:
                    delta, held = delta.replace(disclaimer, "").rstrip(), True
                await ctx.say(norm.feed(delta) if norm is not None else delta)
            answer = stream.result
            if held and disclaimer and not colleague_offer_follows(ctx, answer):
                await ctx.say(norm.feed(" " + disclaimer) if norm is not None else " " + disclaimer)
            if norm is not None:
                await ctx.say(norm.flush())
        except Exception as exc:  # noqa: BLE001 - the router promises not to raise; be safe anyway
            log.exception("router stream failed")
            out.error = f"{type(exc).__name__}: {exc}"
            if norm is not None:
                await ctx.say(norm.flush())  # the words produced before the failure are said, then the apology
        finally:
            out.latencies["router_ms"] = (time.perf_counter() - started) * 1000
            if answer is None:
                await _aclose(stream)
        if answer is None:
            await ctx.say((" " if ctx.spoken else "") + APOLOGY)
        self._apply(ctx, answer)
        if norm is not None and answer is not None and not answer.low_confidence \
                and (norm.code_dropped or CODE_POINTER in answer.text or asks_for_code(_question(ctx))):
            # the command was not read out: offer to send it by text or email (callwise.calls.stages.send_offer)
            signals = (getattr(answer, "confidence_detail", None) or {}).get("signals") or {}
            rank = int(signals.get("best_source_rank", 0) or 0) if isinstance(signals, dict) else 0
            await offer_to_send(ctx, norm.code, rank)

    async def _whole(self, ctx: TurnContext) -> None:
        started = time.perf_counter()
        ctx.router_ran = True
        answer = None
        try:
            router: Any = ctx.deps.router  # the cascading router (RouterLike names only the stream)
            answer = await router.answer(_question(ctx), ctx.sources, **_router_kwargs(ctx))
        except Exception as exc:  # noqa: BLE001 - the router promises not to raise; be safe anyway
            log.exception("router failed")
            ctx.outcome.error = f"{type(exc).__name__}: {exc}"
        ctx.outcome.latencies["router_ms"] = (time.perf_counter() - started) * 1000
        await ctx.say(answer.text if answer is not None else APOLOGY)
        self._apply(ctx, answer)

    @staticmethod
    def _apply(ctx: TurnContext, answer: Any) -> None:
        out = ctx.outcome
        ctx.answer = answer
        if answer is None:
            out.low_confidence = True
            return
        memory = ctx.call.memory
        if memory.turn_pages and ctx.sources:
            memory.last_pages, memory.turn_pages = memory.turn_pages, []
        out.tier = answer.tier
        out.confidence = answer.confidence
        out.low_confidence = answer.low_confidence
        out.cost_usd = answer.cost_usd
        out.error = answer.error if answer.error != "empty_query" else None
        if ctx.retrieval_error and not out.error:
            out.error = ctx.retrieval_error
        if answer.ttft_ms is not None:
            out.latencies.setdefault("ttft_ms", answer.ttft_ms)


def colleague_offer_follows(ctx: TurnContext, answer: Any) -> bool:
    """The rules on the answer (``EscalateOnAnswer``, the next stage) will end this turn with a colleague: the
    offer ("I'm not sure I found the right answer — would you like me to pass this to a colleague?") or the
    handoff itself. Then the router's own disclaimer before it would say the same thing twice, so it is not said.
    The same rule as ``EscalationRules.check_answer`` (``unsure_answer``), without its bookkeeping."""
    state = ctx.call.state
    if answer is None or state.offered or state.escalated:
        return False
    return bool(ctx.deps.rules.unsure_answer(escalate=bool(answer.escalate), confidence=answer.confidence,
                                            has_sources=bool(ctx.sources)))


def _question(ctx: TurnContext) -> str:
    return ctx.answer_query or ctx.query or ctx.guarded


def _router_kwargs(ctx: TurnContext) -> dict[str, Any]:
    call = ctx.call
    kwargs: dict[str, Any] = dict(
        modality=call.modality, customer=call.customer, organization_id=call.organization_id,
        session_id=call.session_id, interaction_id=ctx.interaction_id,
        history=call.memory.history(ctx.deps.history_tokens))
    if call.overrides.get("temperature") is not None:
        kwargs["temperature"] = float(call.overrides["temperature"])
    if call.overrides.get("prompt_version") is not None:
        kwargs["prompt_version"] = int(call.overrides["prompt_version"])
    if call.language != DEFAULT_LANGUAGE and NAMES.get(call.language):
        kwargs["language"] = NAMES[call.language]  # a generative tier answers in the caller's language (issue 25)
    return kwargs


async def _aclose(stream: Any) -> None:
    close = getattr(stream, "aclose", None)
    if close is not None:
        try:
            await close()
        except Exception:  # noqa: BLE001
            pass
