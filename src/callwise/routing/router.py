"""The cascading router: complexity picks the starting tier, confidence decides whether the next
tier answers, resilience keeps a live call going when providers fail. It never raises from
``answer``/``answer_stream``: the worst case is a fixed apology with ``escalate=True``."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from callwise.routing.budget import ContextBudget, retry_budget
from callwise.routing.calibration import load_calibration
from callwise.routing.complexity import MODERATE_MAX, SIMPLE_MAX, analyze
from callwise.routing.confidence import Confidence, from_logprobs, parse_score, self_eval_messages
from callwise.routing.costs import CostEvent, CostSink, NullCostSink
from callwise.routing.pricing import Price
from callwise.routing.prompts import FittedPrompt, PostgresPromptStore, PromptLibrary, clip_question, evidence_sources
from callwise.routing.providers.base import Provider, ProviderError
from callwise.routing.resilience import CircuitBreaker, RetryPolicy, TurnDeadline, call_with_retries, no_redaction
from callwise.routing.speakable import needs_speakable
from callwise.routing.types import CustomerContext, Generation, Grounding, Message, Modality, RoutedAnswer, SourceDoc

log = logging.getLogger(__name__)

#: no promise here either: the escalation that follows a failed answer says what was done
APOLOGY = "I'm sorry, I'm having trouble answering right now."
#: promises only what the system does: asking for a person is an escalation rule (explicit_request),
#: and the escalator says what really happened (a case recorded, a transfer, a colleague asked to join)
DISCLAIMER = "I'm not completely sure about this, so please double-check it, or ask me for a person."
EMPTY_REPLY = "Sorry, I didn't catch a question. Could you say that again?"
_RANK = {"tier1": 1, "tier2": 2, "tier3": 3}


@dataclass
class Tier:
    """One rung of the cascade: a provider bound to a model, its generation settings and prices."""

    name: str
    provider: Provider
    temperature: float = 0.2
    max_tokens: int = 512
    price: Price = field(default_factory=Price)
    timeout_s: float | None = None
    logprobs: bool = True
    #: what one prompt may hold (callwise.routing.budget); None sends every source whole
    budget: ContextBudget | None = None


@dataclass
class _Attempt:
    tier: Tier
    gen: Generation
    confidence: float | None
    method: str
    detail: dict[str, Any] | None = None  # Confidence.as_dict(), stored with the turn


@dataclass(frozen=True)
class AnswerOptions:
    """Per-call inputs of one answer: the call's recent turns (conversation memory, oldest first) and
    an A/B configuration's temperature."""

    history: tuple[Message, ...] = ()
    temperature: float | None = None
    prompt_version: int | None = None  # the "system" template's published version (an A/B variant)
    language: str | None = None  # the caller's language by its English name ("Spanish"), when not English


class AnswerStream:
    """Async-iterates text deltas of the answer; ``result`` is the RoutedAnswer once exhausted."""

    def __init__(self, run: Callable[[Callable[[str], Awaitable[None]]], Awaitable[RoutedAnswer]]) -> None:
        self._run = run
        self._queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._task: asyncio.Task[RoutedAnswer] | None = None
        self.result: RoutedAnswer | None = None

    def __aiter__(self) -> AnswerStream:
        return self

    async def _emit(self, delta: str) -> None:
        await self._queue.put(delta)

    async def _drive(self) -> RoutedAnswer:
        try:
            return await self._run(self._emit)
        finally:
            await self._queue.put(None)

    async def __anext__(self) -> str:
        if self._task is None:
            self._task = asyncio.ensure_future(self._drive())
        item = await self._queue.get()
        if item is None:
            self.result = await self._task
            raise StopAsyncIteration
        return item

    async def aclose(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()


class CascadingRouter:
    def __init__(self, tiers: Sequence[Tier], cost_sink: CostSink | None = None, *,
                 confidence_threshold: float = 0.8, prompts: PromptLibrary | None = None,
                 prompt_store: PostgresPromptStore | None = None, retry: RetryPolicy | None = None,
                 timeout_s: float = 20.0, breaker_failures: int = 3, breaker_reset_s: float = 30.0,
                 simple_max: float = SIMPLE_MAX, moderate_max: float = MODERATE_MAX,
                 disclaimer: str = DISCLAIMER, apology: str = APOLOGY, first_word_s: float | None = 2.5,
                 give_up_s: float = 12.0, redact: Callable[[str], str] = no_redaction) -> None:
        self.redact = redact  # masks secrets in provider errors before they are stored or shown
        self.tiers = sorted(tiers, key=lambda t: _RANK.get(t.name, 9))
        self.cost_sink: CostSink = cost_sink or NullCostSink()
        self.threshold = confidence_threshold
        self.prompts = prompts or PromptLibrary()
        self.prompt_store = prompt_store
        self.retry = retry or RetryPolicy()
        self.timeout_s = timeout_s
        self.simple_max, self.moderate_max = simple_max, moderate_max
        self.disclaimer, self.apology = disclaimer, apology
        # live turns (answer_stream): first word within first_word_s of end of speech (None: no deadline)
        self.first_word_s, self.give_up_s = first_word_s, give_up_s
        self.breakers: dict[str, CircuitBreaker] = {}
        for t in self.tiers:
            self.breakers.setdefault(t.provider.key, CircuitBreaker(t.provider.key, breaker_failures, breaker_reset_s))
        # org -> why it is held to the cheapest tier (a spent hard-capped budget), or None; set by the wiring
        self.budget_cap: Callable[[str], Awaitable[str | None]] | None = None

    # ------------------------------------------------------------------ public API
    async def answer(self, query: str, sources: Sequence[SourceDoc] = (), *, modality: Modality = "voice",
                     customer: CustomerContext | None = None, organization_id: str, session_id: str | None = None,
                     interaction_id: str | None = None, history: Sequence[Message] = (),
                     temperature: float | None = None, prompt_version: int | None = None,
                     language: str | None = None) -> RoutedAnswer:
        """``history``: the call's earlier turns for generative tiers (oldest first); ``temperature``
        overrides each tier's and ``prompt_version`` picks the system prompt's version (an A/B configuration);
        ``language``: a generative tier answers in it (its English name; the extractive tier reads English)."""
        return await self._safe_run(query, sources, modality, customer, organization_id, session_id,
                                    interaction_id, emit=None, live=False,
                                    options=AnswerOptions(tuple(history), temperature, prompt_version, language))

    def answer_stream(self, query: str, sources: Sequence[SourceDoc] = (), *, modality: Modality = "voice",
                      customer: CustomerContext | None = None, organization_id: str, session_id: str | None = None,
                      interaction_id: str | None = None, live: bool = False,
                      eos_at: float | None = None, history: Sequence[Message] = (),
                      temperature: float | None = None, prompt_version: int | None = None,
                      language: str | None = None) -> AnswerStream:
        """Stream the answer's text. A tier that may still be cascaded away from is buffered until its
        confidence is known (then flushed); the last available tier streams token by token. With
        ``live=True`` every tier streams at once and low confidence only marks the answer (no cascade
        after words were spoken); provider errors before the first token still fall to the next tier.
        A live turn has a deadline (``first_word_s`` from ``eos_at``, the caller's end of speech as
        ``time.perf_counter()``, or from now): one attempt per tier, a tier without output by then is
        abandoned for the next one and the caller hears the holding line (``TurnDeadline``)."""
        async def run(emit: Callable[[str], Awaitable[None]]) -> RoutedAnswer:
            return await self._safe_run(query, sources, modality, customer, organization_id, session_id,
                                        interaction_id, emit=emit, live=live, eos_at=eos_at,
                                        options=AnswerOptions(tuple(history), temperature, prompt_version, language))
        return AnswerStream(run)

    async def complete(self, messages: Sequence[Message], purpose: str = "summary", *, organization_id: str,
                       session_id: str | None = None, interaction_id: str | None = None,
                       max_tokens: int | None = None, temperature: float | None = None) -> str:
        """Generate with the cheapest available tier (then the next cheapest on failure). Judging needs
        an instruction-following model; summaries may fall back to the extractive answerer.
        Raises ProviderError when no tier can do it."""
        text, _ = await self._complete(messages, purpose, organization_id=organization_id, session_id=session_id,
                                       interaction_id=interaction_id, max_tokens=max_tokens, temperature=temperature)
        return text

    def breaker_states(self) -> dict[str, str]:
        return {k: b.state for k, b in self.breakers.items()}

    async def aclose(self) -> None:
        seen: set[int] = set()
        for t in self.tiers:
            if id(t.provider) not in seen:
                seen.add(id(t.provider))
                try:
                    await t.provider.aclose()
                except Exception:  # noqa: BLE001
                    pass

    # ------------------------------------------------------------------ internals
    def _cheapest(self, *, judge: bool) -> list[Tier]:
        def ok(t: Tier) -> bool:
            p = t.provider
            return p.generative and (not judge or getattr(p, "judge_capable", True))
        candidates = [t for t in self.tiers if ok(t)]
        if not judge:
            candidates += [t for t in self.tiers if not ok(t)]
        seen: set[str] = set()
        out = []
        for t in sorted(candidates, key=lambda t: (not ok(t), t.price.input + t.price.output, _RANK.get(t.name, 9))):
            if t.provider.key not in seen:
                seen.add(t.provider.key)
                out.append(t)
        return out

    @property
    def answerers(self) -> list[str]:
        """The distinct answering models (``provider:model``), cheapest tier first. One entry means
        the tiers are one answerer (the offline default): every answer is reported as ``tier1`` and
        there is no cascade."""
        return list(dict.fromkeys(t.provider.key for t in self.tiers))

    def _plan(self, start: str) -> list[Tier]:
        """Tiers from the start tier up (or the highest available below it), one per distinct provider;
        with a single answerer, its first tier whatever the complexity."""
        if len(self.answerers) == 1:
            return self.tiers[:1]
        rank = _RANK[start]
        plan = [t for t in self.tiers if _RANK.get(t.name, 9) >= rank] or self.tiers[-1:]
        seen: set[str] = set()
        out = []
        for t in plan:
            if t.provider.key not in seen:
                seen.add(t.provider.key)
                out.append(t)
        return out

    async def _record(self, tier: Tier, gen: Generation | None, *, organization_id: str, session_id: str | None,
                      interaction_id: str | None, purpose: str, confidence: float | None = None,
                      escalated_from: str | None = None, error: str | None = None, latency_ms: float = 0.0) -> float:
        cost = 0.0
        if gen is not None:
            cost = tier.price.cost(gen.input_tokens, gen.output_tokens, gen.cached_tokens, gen.cache_write_tokens)
        await self.cost_sink.record(CostEvent(
            organization_id=organization_id, tier=tier.name, provider=tier.provider.name,
            model=(gen.model if gen else tier.provider.model), purpose=purpose,
            input_tokens=gen.input_tokens if gen else 0, output_tokens=gen.output_tokens if gen else 0,
            cached_tokens=gen.cached_tokens if gen else 0, cost_usd=cost,
            latency_ms=gen.latency_ms if gen else latency_ms, confidence=confidence, escalated_from=escalated_from,
            success=gen is not None, error=error, session_id=session_id, interaction_id=interaction_id,
            ttft_ms=gen.ttft_ms if gen else None))
        return cost

    async def _call(self, tier: Tier, messages: Sequence[Message], *, grounding: Grounding | None,
                    max_tokens: int | None = None, temperature: float | None = None,
                    emit: Callable[[str], Awaitable[None]] | None = None,
                    first_output_s: float | None = None) -> Generation:
        provider = tier.provider
        kwargs: dict[str, Any] = dict(
            temperature=tier.temperature if temperature is None else temperature,
            max_tokens=max_tokens or tier.max_tokens,
            logprobs=tier.logprobs and provider.supports_logprobs, grounding=grounding)
        emitted = False
        on_first: list[Callable[[], None]] = []  # a live turn's deadline hooks the first word

        async def once() -> Generation:
            nonlocal emitted
            if emit is None:
                return await provider.generate(messages, **kwargs)
            stream = provider.stream(messages, **kwargs)
            try:
                async for delta in stream:
                    if not emitted:
                        for hook in on_first:
                            hook()
                    emitted = True
                    await emit(delta)
            except ProviderError as exc:
                if emitted:  # words are out: never retry into a duplicate
                    exc.retryable = False
                raise
            if stream.result is None:
                raise ProviderError("stream ended without a result")
            return stream.result

        timeout_s = tier.timeout_s or self.timeout_s
        if first_output_s is None:
            return await call_with_retries(once, timeout_s=timeout_s, policy=self.retry,
                                           breaker=self.breakers[provider.key], redact=self.redact)

        async def before_deadline() -> Generation:  # a live turn: output by the deadline, no retry
            loop = asyncio.get_running_loop()
            try:
                async with asyncio.timeout(first_output_s) as budget:
                    on_first.append(lambda: budget.reschedule(loop.time() + timeout_s))
                    return await once()
            except TimeoutError:
                if emitted:
                    raise ProviderError(f"stream stalled (over {timeout_s:g}s)") from None
                raise ProviderError(f"no output within {first_output_s:.2f}s (turn deadline)",
                                    retryable=True) from None

        return await call_with_retries(before_deadline, timeout_s=None, policy=RetryPolicy.single(),
                                       breaker=self.breakers[provider.key], redact=self.redact)

    async def _fitted_call(self, tier: Tier, fitted: FittedPrompt,
                           refit: Callable[[ContextBudget | None], FittedPrompt], *, grounding: Grounding,
                           **kwargs: Any) -> tuple[Generation, FittedPrompt]:
        """``_call`` with the fitted prompt; a length rejection (``ProviderError.overflow``, before any
        word is out) gets one smaller prompt, sized from the server's numbers where it gives them."""
        try:
            return await self._call(tier, fitted.messages, grounding=grounding, **kwargs), fitted
        except ProviderError as exc:
            if not exc.overflow or tier.budget is None:
                raise
            first = exc
        smaller = retry_budget(tier.budget, str(first), fitted.report.prompt_tokens)
        log.warning("%s rejected a %d-token prompt for length; retrying once with %s tokens: %s", tier.name,
                    fitted.report.prompt_tokens, smaller.prompt_limit, first)
        fitted = refit(smaller)
        grounding = Grounding(query=grounding.query, sources=tuple(fitted.sources), spoken=grounding.spoken)
        kwargs["max_tokens"] = smaller.max_output
        gen = await self._call(tier, fitted.messages, grounding=grounding, **kwargs)
        return gen, fitted

    async def _complete(self, messages: Sequence[Message], purpose: str, *, organization_id: str,
                        session_id: str | None, interaction_id: str | None, max_tokens: int | None = None,
                        temperature: float | None = None) -> tuple[str, float]:
        judge = purpose in ("judge", "self_eval")
        errors = []
        for tier in self._cheapest(judge=judge):
            try:
                gen = await self._call(tier, messages, grounding=None, max_tokens=max_tokens,
                                       temperature=0.0 if temperature is None and judge else temperature)
            except ProviderError as exc:
                errors.append(f"{tier.name}: {exc}")
                await self._record(tier, None, organization_id=organization_id, session_id=session_id,
                                   interaction_id=interaction_id, purpose=purpose, error=str(exc))
                continue
            cost = await self._record(tier, gen, organization_id=organization_id, session_id=session_id,
                                      interaction_id=interaction_id, purpose=purpose)
            return gen.text, cost
        raise ProviderError("no tier could " + purpose.replace("_", " ") + (": " + "; ".join(errors) if errors
                                                                             else " (no capable provider)"))

    async def _confidence(self, tier: Tier, gen: Generation, query: str, sources: Sequence[SourceDoc],
                          ids: dict[str, Any]) -> tuple[Confidence | None, str, float]:
        # each raw score becomes an estimated probability of being right where
        # routing/data/calibration.json has fitted parameters for its method (issue 10)
        if gen.confidence is not None:
            c = load_calibration().extractive(query, gen, sources)
            return c, c.method, 0.0
        lp = from_logprobs(gen.logprobs)
        if lp is not None:
            c = load_calibration().score("logprobs", lp)
            return c, c.method, 0.0
        if not self._cheapest(judge=True):
            return None, "none", 0.0
        # over the answer and the passages it rests on only, not the whole prompt again (issue 14)
        msgs = self_eval_messages(clip_question(query), gen.text,
                                  self.prompts.sources_block(evidence_sources(gen.text, sources)))
        try:
            text, cost = await self._complete(msgs, "self_eval", max_tokens=8, **ids)
        except ProviderError as exc:
            log.warning("self-evaluation failed: %s", exc)
            return None, "self_eval_failed", 0.0
        score = parse_score(text)
        c = load_calibration().score("self_eval", 0.0 if score is None else score)
        return c, c.method, cost

    async def _safe_run(self, query: str, sources: Sequence[SourceDoc], modality: Modality,
                        customer: CustomerContext | None, organization_id: str, session_id: str | None,
                        interaction_id: str | None, *, emit: Callable[[str], Awaitable[None]] | None,
                        live: bool, eos_at: float | None = None,
                        options: AnswerOptions | None = None) -> RoutedAnswer:
        t0 = time.perf_counter()
        interaction_id = interaction_id or str(uuid.uuid4())
        try:
            return await self._run(query, list(sources), modality, customer, organization_id, session_id,
                                   interaction_id, emit, live, t0, eos_at, options or AnswerOptions())
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a live call gets an apology, never a traceback
            log.exception("router failed")
            if emit is not None:
                await emit(self.apology)
            return RoutedAnswer(text=self.apology, tier=None, provider=None, model=None, confidence=None,
                                low_confidence=True, escalate=True, cascade_path=[], sources=list(sources),
                                latency_ms=(time.perf_counter() - t0) * 1000, error=f"{type(exc).__name__}: {exc}",
                                interaction_id=interaction_id)

    async def _run(self, query: str, sources: list[SourceDoc], modality: Modality, customer: CustomerContext | None,
                   organization_id: str, session_id: str | None, interaction_id: str,
                   emit: Callable[[str], Awaitable[None]] | None, live: bool, t0: float,
                   eos_at: float | None = None, options: AnswerOptions = AnswerOptions()) -> RoutedAnswer:
        def elapsed() -> float:
            return (time.perf_counter() - t0) * 1000

        if not query or not query.strip():
            if emit is not None:
                await emit(EMPTY_REPLY)
            return RoutedAnswer(text=EMPTY_REPLY, tier=None, provider=None, model=None, confidence=None,
                                low_confidence=False, escalate=False, cascade_path=[], sources=sources,
                                latency_ms=elapsed(), error="empty_query", interaction_id=interaction_id)
        complexity = analyze(query, simple_max=self.simple_max, moderate_max=self.moderate_max)
        cx = complexity.as_dict()
        if not self.tiers:
            return self._apology(sources, cx, ["no tiers configured"], [], elapsed(), interaction_id, 0, 0, 0, 0.0)
        prompts = self.prompts
        if self.prompt_store is not None:
            try:
                prompts = await self.prompt_store.library(organization_id)
                if options.prompt_version is not None:
                    prompts = await self.prompt_store.with_version(prompts, organization_id, "system",
                                                                   options.prompt_version)
            except Exception as exc:  # noqa: BLE001
                log.warning("prompt store unavailable, using built-in prompts: %s", exc)
        ids: dict[str, Any] = dict(organization_id=organization_id, session_id=session_id, interaction_id=interaction_id)
        grounding = Grounding(query=clip_question(query), sources=tuple(sources), spoken=needs_speakable(modality))
        context: dict[str, Any] = {}  # per tier: what the context budget kept and cut
        cap = await self.budget_cap(organization_id) if self.budget_cap is not None else None
        plan = self.tiers[:1] if cap else self._plan(complexity.tier)
        if cap:  # the routing decision says why the cheapest tier answers
            cx["budget_cap"] = cap
        path: list[str] = []
        errors: list[str] = []
        attempts: list[_Attempt] = []
        tokens = {"in": 0, "out": 0, "cached": 0}
        cost = 0.0
        first_delta_at: list[float] = []

        answer_out: list[bool] = []  # answer words (not the holding line) were emitted
        held: list[str] = []
        deadline = (TurnDeadline.starting(time.perf_counter() if eos_at is None else eos_at, self.first_word_s,
                                          self.give_up_s) if emit is not None and self.first_word_s else None)

        async def emit_timed(delta: str) -> None:
            if not first_delta_at:
                first_delta_at.append(elapsed())
            answer_out.append(True)
            assert emit is not None
            await emit(delta)

        async def hold() -> None:  # the deadline came with nothing said: the caller hears the holding line
            assert emit is not None and deadline is not None
            if not first_delta_at:
                first_delta_at.append(elapsed())
                held.append(deadline.holding_line)
                await emit(deadline.holding_line + " ")

        watchdog = asyncio.ensure_future(self._hold_at(deadline, hold)) if deadline is not None else None
        for i, tier in enumerate(plan):
            remaining = [t for t in plan[i + 1:] if self.breakers[t.provider.key].available]
            is_last = not remaining
            first_output_s = None
            if deadline is not None:
                if deadline.hold_now(words_out=bool(first_delta_at)):
                    await hold()
                first_output_s = deadline.first_output_timeout(tier.timeout_s or self.timeout_s,
                                                               words_out=bool(first_delta_at), last=is_last)
                if first_output_s is None:
                    errors.append(f"{tier.name} ({tier.provider.key}): not tried, the turn's deadline passed")
                    break
            stream_now = emit is not None and (live or is_last or bool(held))  # held: no time to cascade
            escalated_from = path[-1] if path else None
            path.append(tier.name)
            def refit(budget: ContextBudget | None, tier: Tier = tier) -> FittedPrompt:
                fitted = prompts.fit(query, sources, tier=tier.name, modality=modality, budget=budget,
                                     customer=customer, history=options.history, language=options.language)
                fitted.report.retried_smaller = budget is not tier.budget
                context[tier.name] = fitted.report.as_dict()
                return fitted

            fitted = refit(tier.budget)
            grounding = Grounding(query=grounding.query, sources=tuple(fitted.sources), spoken=grounding.spoken)
            try:
                gen, fitted = await self._fitted_call(tier, fitted, refit, grounding=grounding,
                                       temperature=options.temperature,
                                       emit=emit_timed if stream_now else None, first_output_s=first_output_s)
            except ProviderError as exc:
                errors.append(f"{tier.name} ({tier.provider.key}): {exc}")
                await self._record(tier, None, purpose="answer", escalated_from=escalated_from, error=str(exc), **ids)
                if emit is not None and answer_out:
                    break  # partial words were spoken; do not start a second answer
                continue
            c, method, eval_cost = await self._confidence(tier, gen, query, fitted.sources, ids)
            conf = None if c is None else c.value
            cost += eval_cost
            cost += await self._record(tier, gen, purpose="answer", confidence=conf, escalated_from=escalated_from, **ids)
            tokens["in"] += gen.input_tokens
            tokens["out"] += gen.output_tokens
            tokens["cached"] += gen.cached_tokens
            attempts.append(_Attempt(tier, gen, conf, method, c.as_dict() if c is not None else {"method": method}))
            accepted = conf is not None and conf >= load_calibration().disclaim_below(method, self.threshold)
            if accepted or stream_now:
                break
        if watchdog is not None:
            watchdog.cancel()
        if not attempts:
            if emit is not None:
                await emit_timed(self.apology)
            failed = self._apology(sources, cx, errors, path, elapsed(), interaction_id, tokens["in"], tokens["out"],
                                   tokens["cached"], cost)
            failed.context = context  # what each tier was sent, also when all failed
            return failed
        final = attempts[-1]
        low = final.confidence is None or final.confidence < load_calibration().disclaim_below(final.method,
                                                                                                self.threshold)
        text = final.gen.text.strip()
        already_streamed = emit is not None and bool(answer_out)
        if emit is not None and not already_streamed:
            await emit_timed(text)
        if low:
            text = f"{text} {self.disclaimer}" if text else self.disclaimer
            if emit is not None:
                await emit_timed(" " + self.disclaimer)
        if held:
            text = f"{held[0]} {text}"
        ttft = first_delta_at[0] if first_delta_at else final.gen.ttft_ms
        return RoutedAnswer(
            text=text, tier=final.tier.name, provider=final.tier.provider.name, model=final.gen.model,
            confidence=None if final.confidence is None else round(final.confidence, 4), low_confidence=low,
            escalate=False, cascade_path=path, sources=sources, input_tokens=tokens["in"],
            output_tokens=tokens["out"], cached_tokens=tokens["cached"], cost_usd=round(cost, 10),
            latency_ms=elapsed(), ttft_ms=ttft, complexity=cx,
            error="; ".join(errors) or None, interaction_id=interaction_id, confidence_method=final.method,
            confidence_detail=final.detail, context=context)

    @staticmethod
    async def _hold_at(deadline: TurnDeadline, hold: Callable[[], Awaitable[None]]) -> None:
        """At the first-word deadline, say the holding line if nothing has been said (a slow last tier
        or a buffered cascade is waited for; the caller is not left in silence)."""
        await asyncio.sleep(max(0.0, deadline.first_word_at - time.perf_counter()))
        await hold()

    def _apology(self, sources: list[SourceDoc], cx: dict[str, Any], errors: list[str], path: list[str],
                 latency_ms: float, interaction_id: str, tin: int, tout: int, tcached: int,
                 cost: float) -> RoutedAnswer:
        log.error("every tier failed: %s", "; ".join(errors))
        answer = RoutedAnswer(text=self.apology, tier=None, provider=None, model=None, confidence=None,
                              low_confidence=True, escalate=True, cascade_path=path, sources=sources,
                              input_tokens=tin, output_tokens=tout, cached_tokens=tcached, cost_usd=cost,
                              latency_ms=latency_ms, complexity=cx, error="; ".join(errors) or "all tiers failed",
                              interaction_id=interaction_id)
        return answer
