"""The turn pipeline: the stages, top to bottom, and the stream the framework reads the reply from.

``TurnPipeline.run(ctx)`` runs each stage's ``run(ctx)`` in order until one ends the turn
(``ctx.finish``); ``Persist`` runs last whatever happened. ``TurnPipeline.stream(ctx)`` runs the
same in a task and hands the spoken text to the reader as it is said (what the framework passes
to TTS); closing the stream early (barge-in) cancels the turn, and what was delivered is stored.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from callwise.calls import draft as drafts
from callwise.calls.context import TurnContext, TurnOutcome
from callwise.calls.stages.answer import Answer
from callwise.calls.stages.answerable import Answerable
from callwise.calls.stages.caller import KnowCaller
from callwise.calls.stages.escalate import EscalateOnAnswer, EscalateOnWords
from callwise.calls.stages.intake import Guard, RecordCustomerWords
from callwise.calls.stages.language import AskForPersonInLanguage, CallLanguage, EnglishSourcesNotice
from callwise.calls.stages.persist import Persist
from callwise.calls.stages.retrieve import Retrieve
from callwise.calls.stages.screen import ReadScreen
from callwise.calls.stages.survey import Goodbye, Survey
from callwise.calls.stages.understand import UnderstandQuery
from callwise.infra import telemetry


def _never(ctx: TurnContext) -> bool:
    return False


class Stage(Protocol):
    name: str

    async def run(self, ctx: TurnContext) -> None: ...


def support_stages(*, retrieve_k: int | None = None, stream: bool = True) -> list[Stage]:
    """A live support turn."""
    return [
        RecordCustomerWords(),  # the customer's words, stored first
        Guard(),                # PII redaction for models, injection markers
        CallLanguage(),         # the call's language stored once; an unserved language -> notice + case
        Survey(),               # an end-of-call survey in progress takes the turn
        EscalateOnWords(),      # escalation rules on the customer's words
        AskForPersonInLanguage(),  # "quiero hablar con una persona" (callwise.handoff.phrases)
        Goodbye(),              # a goodbye starts the survey
        UnderstandQuery(),      # the standalone question from memory; statements acknowledged
        ReadScreen(),           # the shared screen's words join the question when the turn refers to it
        Retrieve(retrieve_k),   # knowledge base -> sources
        KnowCaller(),           # the caller's CRM record in the customer block (within its budget)
        Answerable(),           # off-topic, an account action, no relevant source: "I don't have that" + an offer
        EnglishSourcesNotice(),  # once: "our documentation is in English" before an English extractive answer
        Answer(stream=stream),  # cascading router, streamed
        EscalateOnAnswer(),     # rules on the answer (failure, low confidence, repeated non-answers)
    ]


#: stages about the call rather than the question: not part of answering a golden question
CALL_ONLY = frozenset({"record", "survey", "goodbye", "caller", "call_language", "screen", "english_notice"})


def evaluation_stages(*, retrieve_k: int = 10) -> list[Stage]:
    """The same stages for the nightly run: one question, nothing stored, ``retrieve_k`` chunks
    retrieved (for the @10 metrics), the router's answer taken whole (no live deadline)."""
    return [s for s in support_stages(retrieve_k=retrieve_k, stream=False) if s.name not in CALL_ONLY]


def _language_only_stored(ctx: TurnContext) -> bool:
    choice = ctx.call.language_choice
    return choice is None or bool(getattr(choice, "supported", True))


#: in a drafted turn (``callwise.calls.draft``), stages that only write what no later stage reads: they run at
#: the commit, before persistence
DEFERRED_IN_DRAFT: dict[str, Callable[[TurnContext], bool]] = {
    "record": lambda ctx: True,
    "call_language": _language_only_stored,  # an unserved language speaks and escalates: it waits instead
}
#: in a drafted turn, stages that wait for the commit when they would act (escalations wait in ``escalate``)
WAIT_IN_DRAFT: dict[str, Callable[[TurnContext], bool]] = {
    "call_language": lambda ctx: not ctx.call.language_stored,
    "survey": lambda ctx: ctx.call.survey_phase in ("rating", "comment"),
}


class TurnPipeline:
    def __init__(self, stages: Sequence[Stage] | None = None, persist: Stage | None = None) -> None:
        self.stages: list[Stage] = list(stages) if stages is not None else support_stages()
        self.persist: Stage = persist or Persist()

    async def run(self, ctx: TurnContext) -> TurnOutcome:
        """Every stage in order, then persistence (also on failure or cancellation)."""
        try:
            await self.run_stages(ctx)
        finally:
            await self.finish(ctx)
        return ctx.outcome

    async def run_stages(self, ctx: TurnContext) -> None:
        telemetry.start_turn(ctx)  # one span per turn, one child per stage (callwise.infra.telemetry)
        draft = ctx.draft
        if draft is not None:
            drafts.CURRENT.set(draft)  # this task and the ones it starts: cost events held until the commit
        try:
            for stage in self.stages:
                if ctx.done:
                    break
                if draft is not None and draft.committed and draft.deferred:
                    await ctx.commit_point()  # committed while running: the deferred writes first, in order
                if draft is not None and draft.pending:
                    if DEFERRED_IN_DRAFT.get(stage.name, _never)(ctx):
                        draft.deferred.append(stage)
                        continue
                    if WAIT_IN_DRAFT.get(stage.name, _never)(ctx):
                        await ctx.commit_point()
                with telemetry.stage(ctx, stage.name):
                    await stage.run(ctx)
            ctx.completed = True
        except drafts.DraftDiscarded:
            ctx.cancelled = True  # the framework dropped the draft: the reply ends here, nothing is stored
        except asyncio.CancelledError:
            ctx.cancelled = True
            raise
        finally:
            if draft is not None:
                draft.busy_s += time.perf_counter() - draft.started - draft.waited_s

    async def finish(self, ctx: TurnContext) -> None:
        """The reply as heard, the total time, then ``Persist``. A draft is stored only once committed (its
        deferred stages and held cost events first); a discarded one leaves nothing."""
        draft = ctx.draft
        if draft is not None:
            try:
                await ctx.commit_point()
            except drafts.DraftDiscarded:
                telemetry.end_turn(ctx)
                return
            sink = getattr(ctx.deps.router, "cost_sink", None)
            if isinstance(sink, drafts.DraftCostSink):
                await sink.release(draft)
        out = ctx.outcome
        heard = ctx.delivered if ctx.emit is not None else ctx.spoken
        out.answer = "".join(heard).strip()
        out.latencies["total_ms"] = ctx.ms_since_start()
        if (ctx.cancelled or not ctx.completed) and out.error is None:
            out.error = "interrupted"
        try:
            with telemetry.stage(ctx, self.persist.name):
                await self.persist.run(ctx)
        finally:
            telemetry.end_turn(ctx)
            if draft is not None and ctx.adopt is not None:
                ctx.adopt()

    def stream(self, ctx: TurnContext, *, on_task: Callable[[asyncio.Task[Any]], None] | None = None) -> TurnStream:
        return TurnStream(self, ctx, on_task)


class TurnStream:
    """Async-iterates the reply's text as it is spoken; ``outcome`` is set when the turn is over.

    The stages run in a task; the reader gets each piece of text as it is said. At the end the
    turn is stored before the iteration stops. ``aclose`` before the end (barge-in) cancels the
    stages and stores what the reader passed on, in the background (``on_task`` gets that task so
    the call can wait for it at its end)."""

    def __init__(self, pipeline: TurnPipeline, ctx: TurnContext,
                 on_task: Callable[[asyncio.Task[Any]], None] | None = None) -> None:
        self._pipeline = pipeline
        self._ctx = ctx
        self._on_task = on_task
        self._queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._finished = False
        self._stored = False

    def __aiter__(self) -> TurnStream:
        return self

    async def _drive(self) -> None:
        try:
            await self._pipeline.run_stages(self._ctx)
        finally:
            self._queue.put_nowait(None)

    async def _emit(self, text: str) -> None:
        self._queue.put_nowait(text)

    async def __anext__(self) -> str:
        if self._finished:
            raise StopAsyncIteration
        if self._task is None:
            self._ctx.emit = self._emit
            self._task = asyncio.ensure_future(self._drive())
        item = await self._queue.get()
        if item is not None:
            self._ctx.delivered.append(item)  # what the customer hears
            return item
        self._finished = True
        if self._ctx.draft is not None:  # the reply is all said; it is stored once the framework keeps it
            task = self._task
            await asyncio.wait({task})
            self._store_in_background(task)
            error = None if task.cancelled() else task.exception()
            if error is not None:
                raise error
            raise StopAsyncIteration
        try:
            await self._task  # re-raises what a stage raised, after the turn is stored
        finally:
            await self._pipeline.finish(self._ctx)
            self._stored = True
        raise StopAsyncIteration

    async def aclose(self) -> None:
        """The reader stopped (barge-in): cancel the stages; store what was delivered, in the background."""
        if self._finished or self._task is None:
            self._finished = True
            return
        self._finished = True
        self._ctx.cancelled = True
        if self._ctx.draft is not None:
            self._ctx.draft.discard()  # closed before the framework kept it: a dropped preemptive reply
        task = self._task
        task.cancel()
        self._store_in_background(task)

    def _store_in_background(self, task: asyncio.Future[None]) -> None:
        async def store() -> None:
            try:
                await task
            except BaseException:  # noqa: BLE001 - cancelled or failed: the turn is stored either way
                pass
            await self._pipeline.finish(self._ctx)
            self._stored = True

        bg = asyncio.ensure_future(store())
        if self._on_task is not None:
            self._on_task(bg)

    @property
    def outcome(self) -> TurnOutcome | None:
        return self._ctx.outcome if self._stored else None

    async def collect(self) -> TurnOutcome:
        async for _ in self:
            pass
        return self._ctx.outcome
