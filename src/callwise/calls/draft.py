"""A turn drafted before anyone knows it will be said: the voice framework's preemptive generation.

LiveKit starts answering on the transcript at the caller's first pause and throws the answer away when the
caller goes on. A support turn has side effects (the customer's words and the answer stored, a case opened,
cost events, the call's escalation counters), so a drafted turn runs on a copy of the call's state
(``CallContext.draft_copy``) and holds every write until the framework keeps it:

* stages that only write (storing the customer's words, the call's language) are deferred to the commit;
* a stage that would act on the world (an escalation, the survey) waits for the commit (``Draft.wait``);
* cost events the router records during the draft are buffered (``DraftCostSink``) and written at the commit.

``commit()`` (the framework added the user turn to the conversation: it will speak this reply) releases
them and the call adopts the draft's state; ``discard()`` drops them: nothing reaches the database.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from dataclasses import dataclass, field
from typing import Any

from callwise.routing.costs import CostEvent, CostSink


class DraftDiscarded(Exception):
    """The framework dropped the draft while a stage waited for its commit."""


@dataclass
class Draft:
    """The commit state of one drafted turn."""

    started: float = field(default_factory=time.perf_counter)
    deferred: list[Any] = field(default_factory=list)  # stages to run at the commit, in order
    costs: list[CostEvent] = field(default_factory=list)  # cost events held until the commit
    committed: bool = False
    discarded: bool = False
    busy_s: float = 0.0  # wall time the draft's stages ran, waits for the commit excluded (thrown away if discarded)
    waited_s: float = 0.0  # time its stages waited for the commit
    _decided: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def pending(self) -> bool:
        return not (self.committed or self.discarded)

    def commit(self) -> None:
        if self.pending:
            self.committed = True
            self._decided.set()

    def discard(self) -> None:
        if self.pending:
            self.discarded = True
            self._decided.set()

    async def wait(self) -> bool:
        """True once committed; False when discarded."""
        if self.pending:
            started = time.perf_counter()
            await self._decided.wait()
            self.waited_s += time.perf_counter() - started
        return self.committed


#: the draft whose stages are running in this task (cost events are held for it)
CURRENT: contextvars.ContextVar[Draft | None] = contextvars.ContextVar("callwise_draft", default=None)


class DraftCostSink:
    """A cost sink that holds the events of a pending draft (``CURRENT``) and passes every other one on."""

    def __init__(self, inner: CostSink) -> None:
        self.inner = inner

    async def record(self, event: CostEvent) -> None:
        draft = CURRENT.get()
        if draft is not None and draft.pending:
            draft.costs.append(event)
            return
        if draft is not None and draft.discarded:
            return
        await self.inner.record(event)

    async def release(self, draft: Draft) -> None:
        """The held events of a committed draft, written."""
        events, draft.costs = draft.costs, []
        for event in events:
            await self.inner.record(event)


def hold_costs(router: Any) -> DraftCostSink | None:
    """Wrap ``router.cost_sink`` once so drafts can hold their cost events; the wrapper (None: no router)."""
    if router is None or not hasattr(router, "cost_sink"):
        return None
    sink = router.cost_sink
    if not isinstance(sink, DraftCostSink):
        sink = DraftCostSink(sink)
        router.cost_sink = sink
    return sink
