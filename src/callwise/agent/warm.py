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
