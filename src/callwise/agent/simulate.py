"""Play a recording through the voice pipeline, offline: ``callwise simulate FILE.wav``; or a text
script (``.txt``: one customer turn a line; ``.jsonl``: one JSON string or ``{"text": ...}`` a line)
through the same turn stages without audio: ``callwise simulate script.txt``.

Approach: **the same components, driven directly, unpaced**, not an ``AgentSession`` fed in real
time. The framework's session endpoints turns on wall-clock delays, so audio pushed faster than
real time merges turns, and pacing would make a one-minute call take a minute. Instead each
channel goes through the worker's own objects in the order the framework's ``stt.StreamAdapter``
uses them: the Silero VAD stream cuts utterances (audio time, so nothing merges), the STT plugin
decodes each utterance once, and the turn goes to the same ``SupportCall`` (escalation, retrieval,
router, persistence) or ``MeetingCopilot`` the worker runs.

Latencies are wall-clock on this machine: ``stt_ms`` (decode), ``retrieval_ms``, ``ttft_ms``
(router start -> first token), ``eos_to_first_token_ms`` (VAD end-of-speech event -> first answer
token: STT + escalation rules + retrieval + router) and ``speech_end_to_first_token_ms``, which
adds the VAD's silence wait (audio time) so it is what a caller would feel, TTS aside.

Input: WAV (PCM 8-32 bit) or anything PyAV reads; stereo is downmixed (support) or taken as one
participant per channel (meeting); other rates are resampled to 16 kHz; empty, corrupt and
silent files are refused with the reason.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from livekit import rtc
from livekit.agents import stt as lk_stt
from livekit.agents import utils
from livekit.agents import vad as lk_vad

from callwise.calls import SupportCall, SupportDeps, TurnOutcome
from callwise.calls.meeting import ListSink, MeetingCopilot, MeetingDeps
from callwise.infra.audio import FRAME_MS, Clip, load_audio, load_channels

Printer = Callable[[str], None]


@dataclass
class Utterance:
    speaker: str
    start_s: float
    end_s: float
    frames: list[rtc.AudioFrame]
    silence_s: float  # VAD silence wait before it called end of speech
    eos_at: float  # perf_counter when the end-of-speech event arrived


@dataclass
class SimulationReport:
    file: str
    kind: str
    duration_s: float
    session_id: str | None
    stt: str
    notes: list[str] = field(default_factory=list)
    turns: list[dict[str, Any]] = field(default_factory=list)
    insights: dict[str, Any] | None = None
    wall_s: float = 0.0
    caller: dict[str, Any] | None = None  # the CRM lookup (``--caller``): who, found or not, how long
    language: str = "en"  # the call's language (callwise.calls.languages); language_choice says why
    language_choice: dict[str, Any] | None = None
    screen: dict[str, Any] | None = None  # the shared screen (``--screen``): its OCR text, or why it was ignored

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.file, "kind": self.kind, "duration_s": round(self.duration_s, 2),
                "session_id": self.session_id, "stt": self.stt, "notes": self.notes, "turns": self.turns,
                "insights": self.insights, "wall_s": round(self.wall_s, 2), "caller": self.caller,
                "language": self.language, "language_choice": self.language_choice, "screen": self.screen}


def _set_language(call: SupportCall, report: SimulationReport, choice: Any) -> None:
    """The call's language (issue 25): fixed lines, survey, escalation phrases follow it from now on."""
    call.ctx.language, call.ctx.language_choice = choice.code, choice
    report.language, report.language_choice = choice.code, choice.as_dict()


def _share_screen(call: SupportCall, report: SimulationReport, screen: str | Path, language: str) -> None:
    """A still shared screen for the whole call (``--screen IMAGE``): read once with OCR."""
    from callwise.calls.screen import ScreenReader, tesseract_languages

    reader = ScreenReader(languages=tesseract_languages(language))
    shot = reader.update(screen)
    call.ctx.screen = reader
    report.screen = {"file": str(screen), **shot.as_dict()} if shot else {"file": str(screen), "ignored": reader.rejected}


def clip_frames(clip: Clip, frame_ms: int = FRAME_MS) -> list[rtc.AudioFrame]:
    pcm = np.frombuffer(clip.pcm16(), dtype="<i2")
    step = clip.sample_rate * frame_ms // 1000
    out = []
    for i in range(0, len(pcm), step):
        chunk = pcm[i:i + step]
        if len(chunk) < step:
            chunk = np.pad(chunk, (0, step - len(chunk)))
        out.append(rtc.AudioFrame(chunk.tobytes(), clip.sample_rate, 1, step))
    # trailing silence so the VAD closes a final utterance that runs to the end of the file
    silence = np.zeros(step, dtype="<i2").tobytes()
    out += [rtc.AudioFrame(silence, clip.sample_rate, 1, step) for _ in range(1000 // frame_ms)]
    return out


async def vad_utterances(clip: Clip, vad: lk_vad.VAD, speaker: str) -> AsyncIterator[Utterance]:
    """Cut ``clip`` into utterances with a VAD stream, as fast as the CPU allows."""
    stream = vad.stream()

    async def feed() -> None:
        for i, frame in enumerate(clip_frames(clip)):
            stream.push_frame(frame)
            if i % 50 == 0:
                await asyncio.sleep(0)
        stream.end_input()

    feeder = asyncio.create_task(feed())
    try:
        async for ev in stream:
            if ev.type != lk_vad.VADEventType.END_OF_SPEECH:
                continue
            eos_s = ev.samples_index / clip.sample_rate if ev.samples_index else None
            end_s = (eos_s - ev.silence_duration) if eos_s is not None else 0.0
            yield Utterance(speaker=speaker, start_s=max(0.0, end_s - ev.speech_duration), end_s=end_s,
                            frames=list(ev.frames), silence_s=ev.silence_duration, eos_at=time.perf_counter())
    finally:
        await utils.aio.cancel_and_wait(feeder)
        await stream.aclose()


async def transcribe(stt: lk_stt.STT, utt: Utterance) -> tuple[str, float]:
    """One decode per utterance (what ``stt.StreamAdapter`` does after END_OF_SPEECH)."""
    t = time.perf_counter()
    event = await stt.recognize(utils.merge_frames(utt.frames))
    text = event.alternatives[0].text.strip() if event.alternatives else ""
    return text, (time.perf_counter() - t) * 1000


def _ts(seconds: float) -> str:
    return f"{int(seconds // 60):02d}:{seconds % 60:04.1f}"


def _latency_line(lat: dict[str, float]) -> str:
    keys = [("stt_ms", "stt"), ("retrieval_ms", "retrieval"), ("ttft_ms", "ttft"),
            ("eos_to_first_token_ms", "eos->1st token"), ("speech_end_to_first_token_ms", "speech end->1st token")]
    return ", ".join(f"{label} {lat[k]:.0f} ms" for k, label in keys if k in lat)


def _echo_answer(echo: Printer, at: str, out: TurnOutcome) -> None:
    meta: list[str] = [out.kind]
    if out.tier:
        meta.append(out.tier)
    if out.confidence is not None:
        meta.append(f"confidence {out.confidence:.2f}")
    if out.escalated and out.escalation:
        esc = out.escalation  # the case desk adds the case number and what happened to the handoff (issue 11)
        case = f", case {esc['case']}, handoff {esc.get('handoff_status')}" if esc.get("case") else ""
        meta.append(f"ESCALATED: {esc['reason']} ({esc['handoff']}{case})")
    echo(f"{at}agent ({', '.join(meta)}): {out.answer}")
    if out.query:
        echo(f"    understood as: {out.query}")
    if out.sources:
        echo("    sources: " + "; ".join(f"[{s['index']}] {s['document']}" for s in out.sources))
    line = _latency_line(out.latencies)
    if line:
        echo("    " + line)


class ScriptError(ValueError):
    """A text script that cannot be played (the message says where and why)."""


SCRIPT_SUFFIXES = (".txt", ".jsonl")
MAX_SCRIPT_TURNS = 500
MAX_TURN_CHARS = 4000


def _echo_caller(echo: Printer | None, call: SupportCall, report: SimulationReport) -> None:
    """Once the CRM lookup has an answer: the caller in the report and, once, on screen."""
    lookup = call.ctx.caller
    if lookup is None or (lookup.task is not None and not lookup.task.done()):
        return
    first = report.caller is None
    report.caller = lookup.as_dict()
    if echo and first:
        c = lookup.customer
        if c is None:
            why = f" ({lookup.error})" if lookup.error else ""
            echo(f"caller {lookup.caller.key}: not found in the CRM{why}")
        else:
            facts = ", ".join(f"{k} {v}" for k, v in c.prompt_fields().items() if k != "name")
            echo(f"caller: {c.name or '?'} ({c.provider} {c.external_id}){'; ' + facts if facts else ''}; "
                 f"lookup {lookup.lookup_ms} ms{' (cached)' if lookup.cache_hit else ''}")


def load_script(path: str | Path) -> list[str]:
    """Customer turns of a ``.txt`` (one a line; blank lines and ``#`` comments skipped) or ``.jsonl``
    (a JSON string, or an object with ``text``, a line) script."""
    p = Path(path)
    if p.suffix.lower() not in SCRIPT_SUFFIXES:
        raise ScriptError(f"{p}: a script is a .txt or .jsonl file")
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise ScriptError(f"{p}: cannot read ({exc.strerror or exc})") from exc
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ScriptError(f"{p}: not UTF-8 text (byte {exc.start})") from exc
    turns: list[str] = []
    for n, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or (p.suffix.lower() == ".txt" and line.startswith("#")):
            continue
        if p.suffix.lower() == ".jsonl":
            try:
                item = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ScriptError(f"{p}:{n}: not JSON ({exc.msg})") from exc
            if isinstance(item, dict):
                item = item.get("text")
            if not isinstance(item, str):
                raise ScriptError(f'{p}:{n}: expected a string or {{"text": "..."}}')
            line = item.strip()
            if not line:
                continue
        if len(line) > MAX_TURN_CHARS:
            raise ScriptError(f"{p}:{n}: a turn is {len(line)} characters; at most {MAX_TURN_CHARS}")
        turns.append(line)
    if not turns:
        raise ScriptError(f"{p}: no customer turns (one a line)")
    if len(turns) > MAX_SCRIPT_TURNS:
        raise ScriptError(f"{p}: {len(turns)} turns; at most {MAX_SCRIPT_TURNS}")
    return turns


async def simulate_script(path: str | Path, *, deps: SupportDeps, organization_id: str,
                          echo: Printer | None = None, overrides: dict[str, Any] | None = None,
                          metadata: dict[str, Any] | None = None, caller: Any | None = None,
                          language: str | None = None, screen: str | Path | None = None) -> SimulationReport:
    """Each line of the script is one customer turn through the same ``SupportCall`` stages as a
    spoken call (modality ``text``; no VAD/STT, so no audio timings). ``language``: the call's language
    (a text script has no speech to detect it from)."""
    started = time.perf_counter()
    turns = load_script(path)
    report = SimulationReport(file=str(path), kind="support", duration_s=0.0, session_id=None, stt="text script")
    call = await SupportCall.start(deps, organization_id=organization_id, room=f"simulate-{Path(path).stem}",
                                   modality="text", overrides=overrides, caller=caller,
                                   metadata={"simulated_from": str(path), **(metadata or {})})
    report.session_id = call.session_id
    if language:
        from callwise.calls.languages import choose

        _set_language(call, report, choose(call=language))
    if screen is not None:
        _share_screen(call, report, screen, report.language)
    try:
        for i, text in enumerate(turns, start=1):
            if echo:
                echo(f"[{i}] customer: {text}")
            out = await call.run_turn(text, eos_at=time.perf_counter())
            report.turns.append({"speaker": "customer", "index": i, **out.as_dict()})
            _echo_caller(echo, call, report)
            if echo:
                _echo_answer(echo, f"[{i}] ", out)
    finally:
        await call.end()
        _echo_caller(echo, call, report)
    report.wall_s = time.perf_counter() - started
    return report


async def simulate_support(path: str | Path, *, deps: SupportDeps, stt: lk_stt.STT, vad: lk_vad.VAD,
                           organization_id: str, stt_name: str = "", echo: Printer | None = None,
                           caller: Any | None = None, screen: str | Path | None = None) -> SimulationReport:
    """``stt`` settles the call's language when it can (``MultilingualWhisperSTT.choice``, on the first
    utterance); ``screen``: an image shown as the caller's shared screen for the whole call."""
    started = time.perf_counter()
    clip = load_audio(path)
    report = SimulationReport(file=str(path), kind="support", duration_s=clip.duration_s, session_id=None,
                              stt=stt_name, notes=list(clip.notes))
    call = await SupportCall.start(deps, organization_id=organization_id, room=f"simulate-{Path(path).stem}",
                                   modality="voice", metadata={"simulated_from": str(path)}, caller=caller)
    report.session_id = call.session_id
    if getattr(stt, "choice", None) is not None:  # a language set for the call or the org
        _set_language(call, report, stt.choice)  # type: ignore[attr-defined]
    if screen is not None:
        _share_screen(call, report, screen, report.language)
    try:
        async for utt in vad_utterances(clip, vad, "customer"):
            text, stt_ms = await transcribe(stt, utt)
            if call.ctx.language_choice is None and getattr(stt, "choice", None) is not None:
                _set_language(call, report, stt.choice)  # type: ignore[attr-defined]
            if not text:
                continue
            if echo:
                echo(f"[{_ts(utt.start_s)}] customer: {text}")
            out = await call.run_turn(text, eos_at=utt.eos_at, stt_ms=stt_ms)
            out.latencies["vad_silence_ms"] = utt.silence_s * 1000
            if "eos_to_first_token_ms" in out.latencies:
                out.latencies["speech_end_to_first_token_ms"] = (out.latencies["eos_to_first_token_ms"]
                                                                 + utt.silence_s * 1000)
            turn = {"speaker": "customer", "start_s": round(utt.start_s, 2), "end_s": round(utt.end_s, 2),
                    **out.as_dict()}
            report.turns.append(turn)
            _echo_caller(echo, call, report)
            if echo:
                _echo_answer(echo, f"[{_ts(utt.end_s)}] ", out)
    finally:
        await call.end()
        _echo_caller(echo, call, report)
    report.wall_s = time.perf_counter() - started
    return report


async def simulate_meeting(path: str | Path, *, deps: MeetingDeps, stt: lk_stt.STT, vad: lk_vad.VAD,
                           organization_id: str, participants: list[str] | None = None, stt_name: str = "",
                           echo: Printer | None = None) -> SimulationReport:
    """Each channel is one participant (``participants`` names them; reps carry the rep prefix)."""
    started = time.perf_counter()
    clips = load_channels(path)
    names = participants or manifest_participants(path) or default_participants(len(clips), deps.rep_prefix)
    if len(names) < len(clips):
        names = names + [f"participant-{i + 1}" for i in range(len(names), len(clips))]
    report = SimulationReport(file=str(path), kind="meeting", duration_s=clips[0].duration_s, session_id=None,
                              stt=stt_name, notes=list(clips[0].notes))
    if len(clips) == 1:
        report.notes.append("one channel: every utterance is attributed to one participant; record one "
                            "channel per participant to separate speakers")
    sink = ListSink()
    copilot = await MeetingCopilot.start(deps, organization_id=organization_id, room=f"simulate-{Path(path).stem}",
                                         sink=sink)
    report.session_id = copilot.session_id
    for name in names[: len(clips)]:
        copilot.join(name)
    utterances: list[tuple[Utterance, str, float]] = []
    for clip, name in zip(clips, names, strict=False):
        async for utt in vad_utterances(clip, vad, name):
            text, stt_ms = await transcribe(stt, utt)
            if text:
                utterances.append((utt, text, stt_ms))
    utterances.sort(key=lambda u: u[0].start_s)
    for utt, text, stt_ms in utterances:
        if echo:
            echo(f"[{_ts(utt.start_s)}] {utt.speaker}: {text}")
        t = time.perf_counter()
        suggestions = await copilot.on_utterance(utt.speaker, text, at_s=utt.end_s, latencies={"stt_ms": stt_ms})
        pipeline_ms = (time.perf_counter() - t) * 1000
        turn = {"speaker": utt.speaker, "start_s": round(utt.start_s, 2), "end_s": round(utt.end_s, 2),
                "transcript": text, "suggestions": [s.as_dict() for s in suggestions],
                "latencies_ms": {"stt_ms": round(stt_ms, 1), "suggestion_ms": round(pipeline_ms, 1)},
                # fields every turn carries, so support and meeting output read alike
                "answer": next((s.text for s in suggestions if s.kind == "answer"), ""),
                "sources": next((s.sources for s in suggestions if s.kind == "answer"), []),
                "tier": None, "escalated": False}
        report.turns.append(turn)
        if echo:
            for s in suggestions:
                echo(f"    -> to {', '.join(copilot.reps) or '(no rep)'} [{s.kind}] {s.title}: {s.text}")
                for src in s.sources[:3]:
                    echo(f"       [{src['index']}] {src['document']}")
    insights = await copilot.finish()
    report.insights = {"summary": insights.summary, "topics": insights.topics,
                       "sentiment_scores": insights.sentiment_scores, "action_items": insights.action_items,
                       "competitor_mentions": insights.competitor_mentions, "next_steps": insights.next_steps}
    if echo:
        echo(f"summary: {insights.summary}")
        echo(f"topics: {', '.join(insights.topics) or '-'}; sentiment: {insights.sentiment_scores}")
        echo(f"action items: {insights.action_items}")
    report.wall_s = time.perf_counter() - started
    return report


def default_participants(n: int, rep_prefix: str) -> list[str]:
    return [f"{rep_prefix}1"] + [f"customer-{i}" for i in range(1, n)]


def manifest_entry(path: str | Path) -> dict[str, Any] | None:
    """The file's entry in a ``manifest.json`` next to it (as ``examples/calls`` has), if any."""
    manifest = Path(path).with_name("manifest.json")
    if not manifest.exists():
        return None
    try:
        data = json.loads(manifest.read_text())
    except ValueError:
        return None
    for call in data.get("calls", []) if isinstance(data, dict) else []:
        if isinstance(call, dict) and call.get("file") == Path(path).name:
            return call
    return None


def manifest_participants(path: str | Path) -> list[str] | None:
    """Identities from a ``manifest.json`` next to the file (as ``examples/calls`` has)."""
    call = manifest_entry(path)
    if call and call.get("channels"):
        return list(call["channels"])
    return None
