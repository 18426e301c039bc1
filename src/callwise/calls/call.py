"""``SupportCall``: one support conversation, its session row and the state its turns share."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from callwise.calls.context import CallContext, EventSink, TurnContext, TurnOutcome
from callwise.calls.deps import SupportDeps
from callwise.calls.draft import Draft, hold_costs
from callwise.calls.pipeline import TurnPipeline, TurnStream
from callwise.calls.stages.survey import store_survey
from callwise.calls.store import ConversationStore
from callwise.routing.types import CustomerContext

log = logging.getLogger("callwise.call")

GREETING = "Hi, thanks for calling support. How can I help you today?"
ESCALATION_TOPIC = "callwise.escalations"


class SupportCall:
    """``call.turn(text)`` streams the reply (what the framework hands to TTS), then ``.outcome``;
    ``call.run_turn(text)`` runs it to the end. ``call.end()`` closes the session."""

    def __init__(self, deps: SupportDeps, *, organization_id: str, session_id: str | None, modality: str = "voice",
                 customer: CustomerContext | None = None, speaker: str = "customer",
                 on_event: EventSink | None = None, pipeline: TurnPipeline | None = None,
                 overrides: dict[str, Any] | None = None, persist: bool = True) -> None:
        self.deps = deps
        self.ctx = CallContext(deps=deps, organization_id=organization_id, session_id=session_id, modality=modality,
                               customer=customer, speaker=speaker, on_event=on_event,
                               overrides=dict(overrides or {}), persist=persist)
        self.pipeline = pipeline or TurnPipeline()
        self.store = ConversationStore(deps.pool, organization_id)
        self._background: set[asyncio.Task[Any]] = set()
        self._drafts: list[Draft] = []
        self._task_draft: dict[asyncio.Task[Any], Draft] = {}
        self.outcomes: list[TurnOutcome] = []

    @classmethod
    async def start(cls, deps: SupportDeps, *, organization_id: str, room: str, modality: str = "voice",
                    customer: CustomerContext | None = None, speaker: str = "customer",
                    on_event: EventSink | None = None, metadata: dict[str, Any] | None = None,
                    overrides: dict[str, Any] | None = None, caller: Any | None = None) -> SupportCall:
        """``caller``: an ``callwise.calls.caller.CallerId``; its CRM lookup starts now, in the background."""
        store = ConversationStore(deps.pool, organization_id)
        session_id = await store.start_session(room=room, kind="support", modality=modality,  # type: ignore[arg-type]
                                               metadata=metadata)
        call = cls(deps, organization_id=organization_id, session_id=session_id, modality=modality,
                   customer=customer, speaker=speaker, on_event=on_event, overrides=overrides)
        if caller is not None and deps.callers is not None:
            call.ctx.caller = deps.callers.start(organization_id, session_id, caller)
        if deps.experiments:
            await call._join_experiments(getattr(caller, "key", None) or session_id, overrides or {})
        return call

    async def _join_experiments(self, user_key: str, explicit: dict[str, Any]) -> None:
        """The caller's variant of each running experiment (``callwise.evaluation.ab``'s deterministic hash on the
        caller, else the session): its config applies to this call's turns, the session is tagged, and
        the outcome is recorded at the end. An experiment lookup that fails leaves the default config."""
        from callwise.evaluation.ab import APPLIED_KEYS, assign_call, call_config

        ctx = self.ctx
        try:
            assignments = await assign_call(self.deps.pool, ctx.organization_id, user_key)
            if not assignments:
                return
            config, conflicts = call_config(assignments)
            ctx.experiments, ctx.ab_user_key = assignments, user_key
            ctx.overrides = {**config, **explicit}  # what the caller of start() set explicitly wins
            not_applied = sorted(set(config) - APPLIED_KEYS)
            if not_applied or conflicts:
                log.warning("experiment config not applied on live calls: %s; conflicts: %s", not_applied, conflicts)
            await self.store.tag_experiments(ctx.session_id or "", [a.to_json() for a in assignments],
                                             not_applied=not_applied, conflicts=conflicts)
        except Exception:  # noqa: BLE001 - an experiment must never break a call
            log.exception("could not assign the call's experiments; running the default config")

    # state the worker, tests and benches read
    @property
    def organization_id(self) -> str:
        return self.ctx.organization_id

    @property
    def session_id(self) -> str:
        return self.ctx.session_id or ""

    @property
    def state(self) -> Any:
        return self.ctx.state

    @property
    def survey_phase(self) -> str:
        return self.ctx.survey_phase

    @property
    def escalation(self) -> dict[str, Any] | None:
        return self.ctx.escalation

    # ------------------------------------------------------------------ the turn
    def new_turn(self, text: str, *, eos_at: float | None = None, stt_ms: float | None = None) -> TurnContext:
        out = TurnOutcome(transcript=text)
        if stt_ms is not None:
            out.latencies["stt_ms"] = stt_ms
        self.outcomes.append(out)
        return TurnContext(call=self.ctx, text=text, outcome=out, eos_at=eos_at)

    def turn(self, text: str, *, eos_at: float | None = None, stt_ms: float | None = None) -> TurnStream:
        """``eos_at``: ``time.perf_counter()`` at the customer's end of speech, when known."""
        return self.pipeline.stream(self.new_turn(text, eos_at=eos_at, stt_ms=stt_ms), on_task=self._track)

    async def draft_turn(self, text: str, draft: Draft, *, eos_at: float | None = None,
                         stt_ms: float | None = None) -> TurnStream:
        """A turn drafted before it is known to be said (``callwise.calls.draft``): it runs on a copy of the
        call's state, and is stored and adopted only once ``draft`` is committed; discarded, it leaves nothing.
        Waits for the turns still being stored, so the draft starts from the call as it stands."""
        await self.settled()
        hold_costs(self.deps.router)
        self._drafts.append(draft)
        out = TurnOutcome(transcript=text)
        if stt_ms is not None:
            out.latencies["stt_ms"] = stt_ms
        shadow = self.ctx.draft_copy()

        def adopt() -> None:
            self.ctx.adopt(shadow)
            self.outcomes.append(out)

        ctx = TurnContext(call=shadow, text=text, outcome=out, eos_at=eos_at, draft=draft, adopt=adopt)

        def track(task: asyncio.Task[Any]) -> None:
            self._track(task)
            self._task_draft[task] = draft
            task.add_done_callback(lambda t: self._task_draft.pop(t, None))

        return self.pipeline.stream(ctx, on_task=track)

    @property
    def drafts(self) -> list[Draft]:
        """Every drafted turn of the call, kept, discarded or pending."""
        return list(self._drafts)

    async def settled(self) -> None:
        """Every turn stored that is being stored in the background (a barge-in's, a draft's after its commit).
        A discarded draft stores nothing: its unwinding (a model call finishing in its thread) is not waited for."""
        pending = [t for t in self._background if not t.done()
                   and not (t in self._task_draft and self._task_draft[t].discarded)]
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)

    async def run_turn(self, text: str, **kwargs: Any) -> TurnOutcome:
        return await self.turn(text, **kwargs).collect()

    def _track(self, task: asyncio.Task[Any]) -> None:
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # ------------------------------------------------------------------ end of call
    async def end(self) -> None:
        """Store a half-finished survey, wait for background writes, close the session row. A draft still
        waiting for its commit is discarded: the call ended before it was said."""
        for draft in self._drafts:
            draft.discard()
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        if self.ctx.survey_phase == "comment":
            await store_survey(self.ctx)
        if not self.ctx.persist or self.ctx.session_id is None:
            return
        resolved = self.ctx.escalation is None
        await self.store.end_session(self.ctx.session_id, status="escalated" if not resolved else "ended",
                                     resolved_by_ai=resolved)
        if self.ctx.experiments:
            from callwise.evaluation.ab import record_call_outcomes

            try:
                await record_call_outcomes(self.deps.pool, self.ctx.organization_id, self.ctx.session_id,
                                           self.ctx.ab_user_key or self.ctx.session_id, self.ctx.experiments)
            except Exception:  # noqa: BLE001 - the call is over; its outcome is also synced by `ab report`
                log.exception("could not record the call's experiment outcomes")
        insights = await self._save_insights()
        if self.ctx.caller is not None:
            await self._write_back(insights)

    async def _save_insights(self) -> Any:
        """Summary, topics, sentiment and action items of the call (``callwise.calls.insights``), stored."""
        from callwise.calls.insights import support_insights

        insights = support_insights(self.outcomes, escalation=self.ctx.escalation)
        try:
            await self.store.save_insights(self.ctx.session_id or "", insights)
        except Exception:  # noqa: BLE001 - the turns are stored; insights are derived from them
            log.exception("could not store the call's insights")
        return insights

    async def _write_back(self, insights: Any) -> None:
        """The call, summarised, queued for the caller's CRM contact (``callwise.calls.caller.write_back``)."""
        from callwise.calls.caller import call_record, write_back

        lookup = self.ctx.caller
        if lookup is None:  # no CRM lookup on this call: nothing to write back to
            return
        if lookup.task is not None and not lookup.task.done():
            await asyncio.wait({lookup.task}, timeout=lookup.budget_s + 5)
        row = await self.deps.pool.fetchrow(
            "select started_at, extract(epoch from coalesce(ended_at, now()) - started_at) as secs from sessions "
            "where organization_id = $1 and id = $2", self.ctx.organization_id, self.ctx.session_id)
        transcript = [(who, text) for o in self.outcomes
                      for who, text in (("Customer", o.transcript), ("Agent", o.answer)) if text]
        esc = self.ctx.escalation
        mood = insights.sentiment_scores.get("customer")
        summary = insights.summary + (f" Customer sentiment {mood:+.2f} (VADER)." if mood is not None else "")
        record = call_record(session_id=self.ctx.session_id or "", started_at=row["started_at"],
                             duration_s=float(row["secs"] or 0), summary=summary, transcript=transcript,
                             escalation=(esc or {}).get("reason") if esc else None, link=None)
        try:
            await write_back(self.deps.pool, self.ctx.organization_id, lookup, record)
        except Exception:  # the call is stored; a lost write-back is logged, never a failed call end
            log.exception("CRM write-back could not be queued")
