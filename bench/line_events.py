"""What a real line throws at a call, measured live: each scenario of tests/agent/line_calls.py played in real
time into the framework's AgentSession with the worker's line handlers (``callwise.agent.line``).

    python bench/line_events.py [--runs 3] [--prompt-s 30] [--goodbye-s 60] [--only talk-over,...] [--json]

* ``silent``: the caller says nothing: when the prompt and the goodbye start (seconds after the greeting
  ends), the end reason stored;
* ``talk-over``: the caller talks over the answer after 1.0-2.0 s of it: from their first sound to the
  agent's last (``stop_after_onset_ms``), the words heard against the words of the answer, both stored;
* ``cough``: coughs and a noise burst before the question and over the answer: user turns, answers,
  stops, what the VAD heard;
* ``hang-up``: the line drops mid-sentence: end reason, the caller's words stored, abandoned turns.

Every figure comes from one run of the scenario on this machine (``uptime``'s load is printed beside).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._harness import cpu_note, ensure_example_kb  # noqa: E402
from tests.agent.line_calls import cough_call, hang_up_call, silent_call, talk_over_call  # noqa: E402

SCENARIOS = ("silent", "talk-over", "cough", "hang-up")


async def scenario(name: str, run: int, folder: Path, play: Any, pool: Any, org_id: str,
                   timeouts: Any) -> dict[str, Any]:
    if name == "silent":
        call = silent_call(folder)
        data = await play(call.path, stay_on_line_s=timeouts.goodbye_s + 15)
        turns = data["turns"]
        return {"prompts": data["silence_prompts"], "end_reason": data["end_reason"],
                "prompt_first_audio_s": turns[0]["first_audio_s"] if turns else None,
                "goodbye_first_audio_s": turns[1]["first_audio_s"] if len(turns) > 1 else None,
                "stored_end_reason": await pool.fetchval("select end_reason from sessions where id = $1",
                                                         data["session_id"])}
    if name == "talk-over":
        after = (1.0, 1.5, 2.0)[run % 3]
        data = await play(talk_over_call(folder, after_s=after).path)
        first = data["turns"][0] if data["turns"] else {}
        row = await pool.fetchrow("select text, heard, error from turns where session_id = $1 and role = 'assistant' "
                                  "order by seq limit 1", data["session_id"])
        return {"talk_over_after_s": after, "interrupted": first.get("interrupted"),
                "stop_after_onset_ms": first.get("stop_after_onset_ms"), "heard_s": first.get("heard_s"),
                "answer_audio_s": first.get("audio_s"),
                "words_heard": len((row["heard"] or "").split()) if row else None,
                "words_said": len(row["text"].split()) if row else None, "stored_error": row["error"] if row else None,
                "answered_after": len(data["turns"]) - 1}
    if name == "cough":
        data = await play(cough_call(folder).path, max_wait_s=3.0)
        users = await pool.fetchval("select count(*) from turns where session_id = $1 and role = 'user'",
                                    data["session_id"])
        return {"agent_turns": len(data["turns"]), "user_turns_stored": users,
                "answer_stopped": any("agent_stopped_s" in t for t in data["turns"]),
                "vad_speech_starts": data["caller_sounds"], "agent_resumed": data["agent_resumed"]}
    data = await play(hang_up_call(folder).path)
    rows = await pool.fetch("select role, text, error from turns where session_id = $1 order by seq",
                            data["session_id"])
    return {"end_reason": data["end_reason"], "user_words_stored": " ".join(r["text"] for r in rows if r["role"] == "user"),
            "abandoned_turns": sum(1 for r in rows if r["error"] == "abandoned"),
            "answers": sum(1 for r in rows if r["role"] == "assistant"),
            "session_ended": await pool.fetchval("select ended_at is not null from sessions where id = $1",
                                                 data["session_id"])}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from callwise.agent.line import LineTimeouts
    from callwise.agent.live import simulate_live
    from callwise.agent.voice import build_stt, build_tts, build_turn_handling, build_vad
    from callwise.agent.warm import warm_up
    from callwise.wiring.agent import open_components
    from callwise.wiring.settings import Settings

    settings = Settings(**({"data_dir": args.data_dir} if args.data_dir else {}))
    timeouts = LineTimeouts(prompt_s=args.prompt_s, goodbye_s=args.goodbye_s)
    only = [s for s in (args.only or ",".join(SCENARIOS)).split(",") if s]
    out: dict[str, Any] = {"cpu": cpu_note(), "timeouts": [timeouts.prompt_s, timeouts.goodbye_s], "scenarios": {}}
    async with open_components(settings) as comp:
        org_id = await comp.runtime.org_id(args.org)
        await ensure_example_kb(comp, org_id)
        stt, vad, tts = build_stt(settings), build_vad(settings), build_tts(settings)
        if tts is None:
            raise SystemExit("needs espeak-ng (apt-get install espeak-ng)")
        handling = build_turn_handling(settings, settings.turn_detection)
        await warm_up(comp, stt=stt, vad=vad, tts=tts, turn_detector=handling["turn_detection"], org_id=org_id)

        async def play(path: Path, **kw: Any) -> dict[str, Any]:
            report = await simulate_live(path, deps=comp.support_deps(), stt=stt, vad=vad, tts=tts,
                                         organization_id=org_id, turn_handling=handling, timeouts=timeouts, **kw)
            return report.as_dict()

        with tempfile.TemporaryDirectory() as tmp:
            for name in only:
                runs = []
                for i in range(args.runs if name == "talk-over" else 1):
                    row = await scenario(name, i, Path(tmp) / f"{name}-{i}", play, comp.pool, org_id, timeouts)
                    row["load"] = round(os.getloadavg()[0], 2)
                    runs.append(row)
                    print(f"{name}: {row}", file=sys.stderr, flush=True)
                out["scenarios"][name] = runs
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3, help="Talk-over runs (over the answer after 1.0, 1.5, 2.0 s).")
    ap.add_argument("--prompt-s", type=float, default=30.0)
    ap.add_argument("--goodbye-s", type=float, default=60.0)
    ap.add_argument("--only", default=None, help=f"Comma-separated: {', '.join(SCENARIOS)}.")
    ap.add_argument("--org", default="demo", help="An organization with the sample KB (ingested when it has none).")
    ap.add_argument("--data-dir", type=Path, default=None)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    os.environ.setdefault("CALLWISE_TTS", "espeak")
    report = asyncio.run(run(args))
    if args.json:
        print(json.dumps(report, indent=2, default=str))


if __name__ == "__main__":
    main()
