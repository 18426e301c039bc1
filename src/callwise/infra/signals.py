"""SIGTERM and SIGINT stop a long-running command the way Ctrl-C does: by cancelling its main task.

Python's default SIGTERM kills the process on the spot, so no ``finally`` runs: the embedded
Postgres is left running with the dead process still registered under ``<data_dir>/pg-users/``.
systemd, Docker and Kubernetes stop services with SIGTERM. Under ``run_until_signal`` the signal
cancels the command's task instead; its ``async with`` blocks unwind (the HTTP site, the outbox
dispatcher, the pool, the embedded Postgres, which stops when this was its last user) and
``Stopped`` says which signal it was.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Stopped(Exception):
    """The command was stopped by a signal after a clean shutdown."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(f"stopped by {signal.Signals(signum).name}")

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


async def run_until_signal(fn: Callable[[], Awaitable[T]]) -> T:
    """Await ``fn()``; SIGTERM or SIGINT cancels it, lets it clean up, then raises ``Stopped``."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    received: list[int] = []

    def on_signal(signum: int) -> None:
        if not received and task is not None:
            received.append(signum)
            task.cancel()

    installed = []
    for sig in SIGNALS:
        try:
            loop.add_signal_handler(sig, on_signal, sig)
            installed.append(sig)
        except (NotImplementedError, RuntimeError):  # not the main thread, or no signal support
            pass
    try:
        return await fn()
    except asyncio.CancelledError:
        if received:
            if task is not None:
                task.uncancel()
            raise Stopped(received[0]) from None
        raise
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
