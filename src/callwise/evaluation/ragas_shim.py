"""Make ``import ragas`` (0.4.3) work with the langchain-community we ship.

ragas 0.4.3 imports ``langchain_community.chat_models.vertexai.ChatVertexAI`` at import time, but no
langchain-community release that fits langchain-core 1.x has that module any more
(vibrantlabsai/ragas#2745, #2995). We never use Vertex through langchain, so before importing ragas
we register an empty stand-in module with a placeholder ``ChatVertexAI`` class. If a future
langchain-community brings the module back, the real one is used and the stand-in is never made.

Also switches ragas' usage telemetry off unless the user opted in explicitly.
"""

from __future__ import annotations

import atexit
import importlib
import importlib.util
import os
import sys
import types
from typing import Any

_MODULE = "langchain_community.chat_models.vertexai"


def _module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def install() -> None:
    """Register the stand-in module when the real one is missing. Idempotent."""
    os.environ.setdefault("RAGAS_DO_NOT_TRACK", "true")
    if _MODULE in sys.modules or _module_exists(_MODULE):
        return
    stub = types.ModuleType(_MODULE)
    stub.__doc__ = "callwise stand-in: ragas 0.4.3 imports this; Vertex AI through langchain is unused."

    class ChatVertexAI:  # noqa: D401 - placeholder only
        """Placeholder; constructing it means someone tried to use Vertex through langchain."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            raise RuntimeError("ChatVertexAI is not available in callwise (ragas import shim)")

    stub.ChatVertexAI = ChatVertexAI  # type: ignore[attr-defined]
    sys.modules[_MODULE] = stub


def import_ragas() -> types.ModuleType:
    """``import ragas`` after installing the shim; raises ImportError with a fix when absent."""
    install()
    try:
        ragas = importlib.import_module("ragas")
    except ModuleNotFoundError as exc:
        if exc.name in ("ragas", "instructor"):
            raise ImportError(
                f"{exc.name} is not installed: run `pip install --no-deps -r requirements-nodeps.txt`"
            ) from exc
        raise
    quiet_analytics()
    return ragas


def quiet_analytics() -> None:
    """With tracking off, stop ragas' analytics batcher and take its shutdown off ``atexit``: it has
    nothing to send, and its exit-time log line went to whatever stream logging had then (under pytest
    or a CLI runner, a closed one: a traceback after the test summary)."""
    analytics = sys.modules.get("ragas._analytics")
    if analytics is None or not analytics.do_not_track():
        return
    batcher = getattr(analytics, "_analytics_batcher", None)
    if batcher is not None:
        batcher._running = False
        atexit.unregister(batcher.shutdown)
