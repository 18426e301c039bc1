"""A call's shutdown, in order.

The framework runs a job's shutdown callbacks concurrently (``job_proc_lazy_main``: one task per
callback, gathered), so a pool closed by one callback goes away under ``call.end()`` (A/B outcome,
insights, the CRM write-back) and the survey follow-up still writing in another. A job registers
one ``OrderedShutdown.run`` instead: the call's steps run one after the other in the order they
were added, then the closing steps (the outbox dispatcher, the pool) last, in reverse order.
A step that fails is logged and the next one still runs.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger("callwise.shutdown")

Step = Callable[[], Awaitable[Any]]


class OrderedShutdown:
    def __init__(self) -> None:
        self._steps: list[Step] = []
        self._closing: list[Step] = []
        self.done: list[str] = []

    def add(self, step: Step) -> None:
        """A step of the call (runs in the order added, before any closing step)."""
        self._steps.append(step)

    def closing(self, step: Step) -> None:
        """A resource to close once every call step is over (closing steps run last-added first)."""
        self._closing.append(step)

    async def run(self, reason: str = "") -> None:
        for step in [*self._steps, *reversed(self._closing)]:
            name = getattr(step, "__qualname__", None) or repr(step)
            try:
                await step()
                self.done.append(name)
            except Exception:  # noqa: BLE001 - the next step (closing the pool) must still run
                log.exception("shutdown step %s failed (reason: %s)", name, reason or "-")

    def job_context(self, ctx: Any) -> Any:
        """``ctx`` whose ``add_shutdown_callback`` adds a step here (for code that takes a JobContext)."""
        return _OrderedContext(ctx, self)


class _OrderedContext:
    def __init__(self, ctx: Any, shutdown: OrderedShutdown) -> None:
        self._ctx = ctx
        self._shutdown = shutdown

    def add_shutdown_callback(self, callback: Step) -> None:
        self._shutdown.add(callback)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ctx, name)
