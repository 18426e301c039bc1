"""`callwise simulate FILE` and `callwise worker dev|start`."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

import typer

from callwise.cli.common import CommandError, console, echo_json, err_console, fail, load_settings, run

log = logging.getLogger(__name__)


def simulate(
    file: Path = typer.Argument(..., help="A recording: WAV (any rate, mono or one channel per participant) or "
                                           "anything ffmpeg/PyAV reads; or a text script: .txt (one customer "
                                           "turn a line) or .jsonl (one JSON string or {\"text\": ...} a line)."),
    org: str = typer.Option(None, "--org", help="Organization slug (default: CALLWISE_DEFAULT_ORG)."),
    kind: str = typer.Option("support", "--kind", help="support | meeting"),
    participants: str = typer.Option(None, "--participants",
                                     help="Meeting: identities per channel, comma-separated (reps first, "
                                          "e.g. rep-sam,customer-ana)."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object with every turn."),
    caller: str = typer.Option(None, "--caller", help="Who is calling (a phone number, an email or a CRM id), as a "
                               "SIP number or app metadata would say: looked up in the org's connected CRM."),
    live: bool = typer.Option(False, "--live", help="Play the recording in real time into the framework's own "
                              "AgentSession (VAD, turn detector, preemptive generation, interruptions, TTS) and "
                              "report per agent turn the latencies from its metrics and the audio timeline."),
    turn_detection: str = typer.Option(None, "--turn-detection", help="--live: audio (the framework's turn "
                                       "detector, local model offline) | vad (silence only) | text (silence, held open while the "
                                       "transcript stops mid-phrase); default "
                                       "CALLWISE_TURN_DETECTION (audio)."),
    preemptive: bool = typer.Option(True, "--preemptive/--no-preemptive",
                                    help="--live: the framework's preemptive generation (the answer is drafted on "
                                         "the transcript at the caller's first pause and kept only if the turn "
                                         "ends there; a discarded draft writes nothing)."),
    language: str = typer.Option(None, "--language", help="The call's language, as room metadata or a SIP header "
                                 "would set it: en, es, fr, de, ja, zh, or auto (detected on the first utterance "
                                 "by the multilingual Whisper). Default: the organization's language, else English."),
    screen: Path = typer.Option(None, "--screen", help="An image (PNG, JPEG) the caller shares as their screen for "
                                "the whole call: its text is read by OCR when a turn refers to it."),
    hang_up: bool = typer.Option(False, "--hang-up", help="--live: the caller hangs up when the file ends (no waiting "
                                 "for an answer): the call ends as a dropped line does."),
) -> None:
    """Play a recording (VAD, STT) or a text script through the support turn's stages and print each turn."""
    if kind not in ("support", "meeting"):
        fail(f"--kind must be support or meeting, not {kind!r}")
    if live and (kind != "support" or file.suffix.lower() in (".txt", ".jsonl")):
        fail("--live plays a support call recording (not a meeting or a text script)")
    if turn_detection is not None and turn_detection not in ("audio", "vad", "text"):
        fail(f"--turn-detection must be audio, vad or text, not {turn_detection!r}")
    from callwise.agent.simulate import SCRIPT_SUFFIXES, ScriptError, load_script

    is_script = file.suffix.lower() in SCRIPT_SUFFIXES
    if is_script:
        if kind != "support":
            fail("a text script is a support conversation; --kind meeting needs a recording")
        try:
            load_script(file)  # refuse a bad script before loading any model
        except ScriptError as exc:
            fail(str(exc))
    else:
        from callwise.infra.audio import AudioError, load_audio

        try:
            load_audio(file)  # refuse bad audio before loading any model
        except AudioError as exc:
            fail(str(exc))
    if language is not None and language != "auto":
        from callwise.calls.languages import LanguageError, normalize

        try:
            normalize(language)
        except LanguageError as exc:
            fail(str(exc))
    if screen is not None and not screen.is_file():
        fail(f"--screen {screen}: no such file")
    if screen is not None and kind != "support":
        fail("--screen is a support call's shared screen (not a meeting's)")
    if hang_up and not live:
        fail("--hang-up is a --live caller leaving the line")
    settings = load_settings()
    from callwise.calls.caller import CallerId

    caller_id = CallerId.parse(caller) if caller else None

    async def go() -> dict[str, Any]:
        from callwise.agent.simulate import simulate_meeting, simulate_script, simulate_support
        from callwise.agent.voice import build_stt, build_vad, stt_choice
        from callwise.wiring.agent import open_components
        from callwise.wiring.routing import RoutingConfigError

        echo = None if json_out else (lambda line: console.print(line, highlight=False, soft_wrap=True))
        try:
            async with open_components(settings) as comp:
                org_id = await comp.runtime.org_id(org)
                docs = await comp.pool.fetchval("select count(*) from documents where organization_id = $1", org_id)
                if not docs:
                    err_console.print(f"[yellow]note:[/] organization {org or settings.default_org!r} has no "
                                      "documents; answers will have no sources (run `callwise ingest examples/kb`)",
                                      highlight=False)
                from callwise.calls.stages.language import org_language

                org_lang = await org_language(comp.pool, org_id)
                if is_script:
                    report = await simulate_script(file, deps=comp.support_deps(), organization_id=org_id, echo=echo,
                                                   caller=caller_id, screen=screen,
                                                   language=(language if language != "auto" else None) or org_lang)
                    return report.as_dict()
                stt_name = stt_choice(settings)
                if kind == "support" and (language or org_lang) and not settings.deepgram_api_key:
                    from callwise.agent.plugins.stt_multilingual import build_multilingual_stt

                    stt: Any = build_multilingual_stt(cache_dir=settings.data_dir / "models", call_language=language,
                                                      org_language=org_lang)
                    stt_name = "whisper-base-multilingual (tiny.en for English calls)"
                else:
                    stt = build_stt(settings)
                vad = build_vad(settings)
                if not live:  # the first turn must not pay any model's first-call cost (issue 20)
                    from callwise.agent.warm import warm_up

                    await warm_up(comp, stt=stt, vad=vad, tts=None, turn_detector=None,
                                  org_id=org_id if kind == "support" else None)
                if live:
                    return await _live(file, comp, settings, stt, vad, org_id, echo, caller_id,
                                       turn_detection or settings.turn_detection, preemptive, screen=screen,
                                       hang_up=hang_up)
                if kind == "support":
                    report = await simulate_support(file, deps=comp.support_deps(), stt=stt, vad=vad,
                                                    organization_id=org_id, stt_name=stt_name, echo=echo,
                                                    caller=caller_id, screen=screen)
                else:
                    names = [p.strip() for p in participants.split(",")] if participants else None
                    report = await simulate_meeting(file, deps=comp.meeting_deps(), stt=stt, vad=vad,
                                                    organization_id=org_id, participants=names,
                                                    stt_name=stt_choice(settings), echo=echo)
        except RoutingConfigError as exc:
            raise CommandError(str(exc)) from exc
        return report.as_dict()

    result = run(go)
    if json_out:
        echo_json(result)
    else:
        for note in result["notes"]:
            err_console.print(f"[yellow]note:[/] {note}", highlight=False)
        if live:
            _print_live(result)
        elif is_script:
            console.print(f"{len(result['turns'])} turns in {result['wall_s']:.1f} s; session {result['session_id']}",
                          highlight=False)
        else:
            console.print(f"{len(result['turns'])} turns, {result['duration_s']:.1f} s of audio in "
                          f"{result['wall_s']:.1f} s; session {result['session_id']}", highlight=False)


async def _live(file: Path, comp: Any, settings: Any, stt: Any, vad: Any, org_id: str, echo: Any, caller_id: Any,
                turn_detection: str, preemptive: bool, *, screen: Path | None = None,
                hang_up: bool = False) -> dict[str, Any]:
    from callwise.agent.line import LineTimeouts
    from callwise.agent.live import simulate_live
    from callwise.agent.voice import VoiceConfigError, build_tts, build_turn_handling, stt_choice, turn_detection_choice
    from callwise.agent.warm import warm_up

    try:
        tts = build_tts(settings)
        handling = build_turn_handling(settings, turn_detection, preemptive=preemptive)
        timeouts = LineTimeouts.from_settings(settings)
    except (VoiceConfigError, ValueError) as exc:
        raise CommandError(str(exc)) from exc
    if tts is None:
        raise CommandError("--live needs a voice to time the agent's first audio: install espeak-ng "
                           "(apt-get install espeak-ng) or set CALLWISE_TTS with its key")
    warmup = await warm_up(comp, stt=stt, vad=vad, tts=tts, turn_detector=handling["turn_detection"], org_id=org_id)
    report = await simulate_live(file, deps=comp.support_deps(), stt=stt, vad=vad, tts=tts, organization_id=org_id,
                                 turn_handling=handling, stt_name=stt_choice(settings),
                                 turn_detection_name=turn_detection_choice(settings, turn_detection), echo=echo,
                                 caller=caller_id, screen=screen, hang_up=hang_up or None, settings=settings,
                                 timeouts=timeouts)
    report.warmup_s = warmup
    return report.as_dict()


def _print_live(result: dict[str, Any]) -> None:
    for i, t in enumerate(result["turns"], start=1):
        lat = t["latencies_ms"]
        parts = [f"{k.replace('_', ' ')} {v:.0f} ms" for k, v in lat.items() if v is not None]
        flags = (" CUT IN" if t["cut_in"] else "") + (" (interrupted)" if t["interrupted"] else "")
        console.print(f"turn {i}: last word {t['customer_last_word_s']} s -> first audio {t['first_audio_s']} s"
                      f"{flags}; " + ", ".join(parts), highlight=False, soft_wrap=True)
    console.print(f"{len(result['turns'])} agent turns, {result['cut_ins']} cut-ins, turn detection "
                  f"{result['turn_detection']}, preemptive generation {'on' if result['preemptive_generation'] else 'off'}"
                  f"; {result['duration_s']:.1f} s of audio in {result['wall_s']:.1f} s; session "
                  f"{result['session_id']}", highlight=False)


def worker(
    mode: str = typer.Argument(..., help="dev (reloads, debug logs) | start (production) | console | connect"),
    agent_kind: str = typer.Option("auto", "--agent",
                                   help="support | meeting: register under that agent name (explicit dispatch); "
                                        "auto: join every room, kind from job/room metadata or a 'meeting-' room name."),
    extra: list[str] = typer.Argument(None, help="Further options for the LiveKit agents CLI."),
) -> None:
    """Run the LiveKit agent worker (the framework's own server and CLI)."""
    if agent_kind not in ("support", "meeting", "auto"):
        fail(f"--agent must be support, meeting or auto, not {agent_kind!r}")
    if mode not in ("dev", "start", "console", "connect", "download-files"):
        fail(f"unknown worker mode {mode!r}: use dev or start")
    settings = load_settings()
    if mode in ("dev", "start", "connect") and not (settings.livekit_url and settings.livekit_api_key
                                                    and settings.livekit_api_secret):
        fail("the worker needs a LiveKit server: set LIVEKIT_URL, LIVEKIT_API_KEY and LIVEKIT_API_SECRET "
             "(or try `callwise simulate FILE.wav` offline)")
    for var, secret in (("LIVEKIT_URL", settings.livekit_url), ("LIVEKIT_API_KEY", settings.livekit_api_key),
                        ("LIVEKIT_API_SECRET", settings.livekit_api_secret)):
        if secret is not None:
            os.environ.setdefault(var, secret if isinstance(secret, str) else secret.get_secret_value())
    os.environ["CALLWISE_WORKER_AGENT"] = agent_kind
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from callwise.agent.worker import run_worker

    sys.argv = ["callwise worker", mode, *(extra or [])]
    run_worker(agent_kind)


def register(app: typer.Typer) -> None:
    app.command("simulate")(simulate)
    app.command("worker", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(worker)
