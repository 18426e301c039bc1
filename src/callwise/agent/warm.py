"""Pay every model's first-call costs before a caller speaks.

A fresh process pays for its first Whisper decode (CTranslate2 allocations), its first embedding
(PyTorch kernels), its first retrieval (the vector cache) and first answer, its first VAD and
turn-detector inference (ONNX sessions) and its first TTS process. The worker's prewarm hook and
``callwise simulate`` run one dummy inference of each here, so the first turn of a call costs what
the hundredth does.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import numpy as np
from livekit import rtc
from livekit.agents import tts as lk_tts
from livekit.agents import vad as lk_vad

log = logging.getLogger("callwise.warm")

WARM_QUESTION = "How do I reset my password?"


def _noise_frames(seconds: float, rate: int = 16_000, frame_ms: int = 20) -> list[rtc.AudioFrame]:
    step = rate * frame_ms // 1000
    rng = np.random.default_rng(0)
    pcm = (rng.standard_normal(int(seconds * rate)) * 300).astype("<i2")
    return [rtc.AudioFrame(pcm[i:i + step].tobytes(), rate, 1, step) for i in range(0, len(pcm) - step + 1, step)]


async def warm_vad(vad: lk_vad.VAD) -> float:
    t = time.perf_counter()
    stream = vad.stream()
    for frame in _noise_frames(0.5):
        stream.push_frame(frame)
    stream.end_input()
    async for _ in stream:
        pass
    await stream.aclose()
    return time.perf_counter() - t


def warm_turn_detector(detector: Any) -> float | None:
    """The local end-of-turn model (``livekit-local-inference``): load it and predict once."""
    if getattr(detector, "model", None) != "turn-detector-v1-mini":
        return None
    from livekit.local_inference import EOT, init_eot

    t = time.perf_counter()
    init_eot()
    EOT().predict(np.zeros(16_000, dtype=np.int16))
    return time.perf_counter() - t


async def warm_tts(tts: lk_tts.TTS) -> float:
    t = time.perf_counter()
    async for _ in tts.synthesize("Hello."):
        pass
    return time.perf_counter() - t


async def warm_answer(deps: Any, organization_id: str) -> float:
    """One turn through every stage (guard, escalation classifier, understanding, retrieval, the
    router's first tier), not stored: ``persist=False`` as the nightly run uses it."""
    from callwise.calls import SupportCall

    t = time.perf_counter()
    call = SupportCall(deps, organization_id=organization_id, session_id=None, modality="voice", persist=False)
    await call.run_turn(WARM_QUESTION)
    await call.end()
    return time.perf_counter() - t


async def warm_up(comp: Any, *, stt: Any, vad: lk_vad.VAD, tts: lk_tts.TTS | None, turn_detector: Any,
                  org_id: str | None) -> dict[str, float]:
    """Seconds each warm-up took (a part that needs none is left out)."""
    loop = asyncio.get_running_loop()
    out: dict[str, float] = {}
    if hasattr(stt, "warm_up"):
        out["stt"] = await loop.run_in_executor(None, stt.warm_up)
    out["vad"] = await warm_vad(vad)
    eot = await loop.run_in_executor(None, warm_turn_detector, turn_detector)
    if eot is not None:
        out["turn_detector"] = eot
    if tts is not None:
        out["tts"] = await warm_tts(tts)
    if org_id is not None:
        out["answer"] = await warm_answer(comp.support_deps(), org_id)
    log.info("warmed up: %s", ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in out.items()))
    return {k: round(v, 3) for k, v in out.items()}


def warm_models(*, stt: Any, vad: lk_vad.VAD, embedder: Any, turn_detector: Any) -> dict[str, float]:
    """The synchronous part, for the worker's prewarm hook (which the framework calls outside any
    event loop): Whisper, the embedder, the turn detector and the VAD (in a loop of its own)."""
    out: dict[str, float] = {}
    if hasattr(stt, "warm_up"):
        out["stt"] = stt.warm_up()
    t = time.perf_counter()
    embedder.encode(["warm up"])
    out["embedder"] = time.perf_counter() - t
    eot = warm_turn_detector(turn_detector)
    if eot is not None:
        out["turn_detector"] = eot
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        out["vad"] = asyncio.run(warm_vad(vad))
    log.info("warmed up: %s", ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in out.items()))
    return {k: round(v, 3) for k, v in out.items()}


# ------------------------------------------------------------------------- the job process's parts
class JobProcessParts:
    """The parts of a worker's job process that do not depend on the call, opened before a job comes.

    The framework prewarms each job process with the synchronous ``setup_fnc`` (``_JobProc.initialize``),
    before the process has an event loop, and only then creates the loop that runs the process's one
    job (``_ProcClient.run``: ``asyncio.new_event_loop()``; the process exits when its job ends). An
    asyncpg pool belongs to the loop it was opened on, so the database pool, the knowledge store, the
    router with its breakers and the CRM caller service cannot be made in ``setup_fnc``. ``start_on_job_loop``
    arranges, from ``setup_fnc``, for ``open()`` to start on that loop as soon as it exists, while the
    process waits in the idle pool; the job's entrypoint then finds them open (``components()``).

    Should the loop come from anywhere else (a framework that no longer calls ``new_event_loop``, a
    thread executor), ``components()`` opens them itself on the job's loop. Everything opened is held
    by one task and closed when ``release()`` is called (the job's last shutdown step) or when the
    framework cancels the task as it closes the loop of a process that never got a job.
    """

    def __init__(self, opener: Any) -> None:
        # ``opener(stack)``: an awaitable giving the components, their resources entered into ``stack``
        self._opener = opener
        self._task: asyncio.Task[None] | None = None
        self._ready: asyncio.Future[Any] | None = None
        self._release: asyncio.Event | None = None
        self.opened_s: float | None = None
        self.started_before_job = False

    def start_on_job_loop(self) -> None:
        """Open the parts on the next event loop this thread creates (one shot)."""
        import threading

        base = asyncio.get_event_loop_policy()
        thread = threading.get_ident()
        parts = self

        class _OpenOnNewLoop(type(base)):  # type: ignore[misc]
            def new_event_loop(self) -> asyncio.AbstractEventLoop:
                loop = base.new_event_loop()
                if threading.get_ident() == thread:
                    asyncio.set_event_loop_policy(base)
                    loop.call_soon(parts._begin, loop)
                    parts.started_before_job = True
                return loop

        asyncio.set_event_loop_policy(_OpenOnNewLoop())

    def _begin(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._task is None:
            self._ready = loop.create_future()
            self._release = asyncio.Event()
            self._task = loop.create_task(self._hold(), name="callwise-job-process-parts")

    async def _hold(self) -> None:
        from contextlib import AsyncExitStack

        assert self._ready is not None and self._release is not None
        t = time.perf_counter()
        try:
            async with AsyncExitStack() as stack:
                comp = await self._opener(stack)
                self.opened_s = round(time.perf_counter() - t, 3)
                log.info("job process parts open in %.0f ms", self.opened_s * 1000)
                self._ready.set_result(comp)
                await self._release.wait()
        except BaseException as exc:
            if not self._ready.done():
                self._ready.set_exception(exc if isinstance(exc, Exception) else RuntimeError("cancelled"))
            if not isinstance(exc, (Exception, asyncio.CancelledError)):
                raise

    async def components(self) -> Any:
        """The opened parts (waits while they are still opening; opens them now when nothing started them
        on this loop)."""
        loop = asyncio.get_running_loop()
        failed = self._ready is not None and self._ready.done() and self._ready.exception() is not None
        if self._task is None or self._task.get_loop() is not loop or failed:
            if failed:  # opening before the job failed (say, the database was down then): try again now
                log.warning("job process parts failed to open before the job; opening them again",
                            exc_info=self._ready.exception() if self._ready is not None else None)
            self._task = None
            self._begin(loop)
        assert self._ready is not None
        return await asyncio.shield(self._ready)

    async def release(self) -> None:
        """Close what was opened (the pool last), once the job's own shutdown steps are done."""
        if self._task is None or self._release is None:
            return
        self._release.set()
        await asyncio.gather(self._task, return_exceptions=True)
