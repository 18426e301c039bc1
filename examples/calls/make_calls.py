"""Generate the sample calls (``examples/calls/*.wav``) with espeak-ng.

    python examples/calls/make_calls.py            # needs espeak-ng (sox optional)

Reads ``scripts.json`` next to this file (the content of the calls), speaks each
utterance with espeak-ng, resamples to 16 kHz mono s16 (sox when installed, else scipy) and
joins the utterances with ~1 s of silence. Support calls are mono. Meeting calls are written
with one channel per participant (reps first; the identities are listed in the manifest), the
way a per-speaker conference recording arrives, so the copilot transcribes each one separately.
``manifest.json`` records every utterance's text, speaker and start/end time in the file: the
reference for WER and end-of-speech timing in ``bench/voice_turn.py`` and the tests.
The WAVs are committed, so CI and the README need no espeak-ng to play them.

scripts.json: ``{"calls": [{"name": ..., "kind": "support"|"meeting", "utterances": [...]}]}``;
an utterance is a string (the customer) or ``{"speaker": ..., "text": ...}``; the keys
``id``/``turns``/``lines`` are accepted for ``name``/``utterances``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import wave
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RATE = 16_000
GAP_S = 1.0
LEAD_S = 0.5
VOICES = {"customer": "en-us", "rep": "en-gb"}
# 150 words a minute with a 40 ms gap between words: espeak's default pace runs words together
# (tiny.en WER 20% on these scripts at -s 165, 7% with these settings; measured, see bench/).
ESPEAK_ARGS = ["-s", "150", "-g", "4"]

def load_scripts() -> list[dict]:
    path = HERE / "scripts.json"
    data = json.loads(path.read_text())
    calls = data["calls"] if isinstance(data, dict) else data
    out = []
    for call in calls:
        utterances = call.get("utterances") or call.get("turns") or call.get("lines") or []
        norm = []
        for u in utterances:
            if isinstance(u, str):
                norm.append({"speaker": "customer", "text": u})
            else:
                norm.append({"speaker": u.get("speaker") or u.get("role") or "customer", "text": u["text"]})
        out.append({"name": call.get("name") or call["id"], "kind": call.get("kind", "support"),
                    "utterances": norm})
    return out


def speak(text: str, voice: str, tmp: Path) -> np.ndarray:
    """espeak-ng -> float32 16 kHz mono."""
    raw = tmp / "raw.wav"
    subprocess.run(["espeak-ng", "-v", voice, *ESPEAK_ARGS, "-w", str(raw), text], check=True)
    if shutil.which("sox"):
        out = tmp / "16k.wav"
        subprocess.run(["sox", str(raw), "-r", str(RATE), "-c", "1", "-b", "16", str(out)], check=True)
        raw = out
    with wave.open(str(raw), "rb") as w:
        rate, data = w.getframerate(), w.readframes(w.getnframes())
    samples = np.frombuffer(data, "<i2").astype(np.float32) / 32768.0
    if rate != RATE:
        from math import gcd

        from scipy.signal import resample_poly

        g = gcd(rate, RATE)
        samples = resample_poly(samples, RATE // g, rate // g).astype(np.float32)
    return np.trim_zeros(samples, "b")


def write(path: Path, channels: list[np.ndarray]) -> None:
    length = max(len(c) for c in channels)
    stacked = np.stack([np.pad(c, (0, length - len(c))) for c in channels], axis=1)
    pcm = (np.clip(stacked, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(len(channels))
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm.tobytes())


def voice_for(speaker: str) -> str:
    return VOICES["rep"] if speaker.startswith("rep") or speaker == "agent" else VOICES["customer"]


def channels_for(call: dict) -> list[str]:
    """Support: one mono channel. Meeting: one channel per participant, reps first."""
    if call["kind"] != "meeting":
        return [call["utterances"][0]["speaker"] if call["utterances"] else "customer"]
    names = list(dict.fromkeys(u["speaker"] for u in call["utterances"]))
    return sorted(names, key=lambda n: (not n.startswith("rep"), names.index(n)))


def make_call(call: dict, tmp: Path) -> dict:
    speakers = channels_for(call)
    tracks = {s: [np.zeros(int(LEAD_S * RATE), np.float32)] for s in speakers}
    cursor = int(LEAD_S * RATE)
    entries = []
    for u in call["utterances"]:
        speaker = u["speaker"] if u["speaker"] in speakers else speakers[0]
        audio = speak(u["text"], voice_for(u["speaker"]), tmp)
        for s in speakers:
            tracks[s].append(audio if s == speaker else np.zeros(len(audio), np.float32))
            tracks[s].append(np.zeros(int(GAP_S * RATE), np.float32))
        entries.append({"speaker": u["speaker"], "text": u["text"], "start_s": round(cursor / RATE, 3),
                        "end_s": round((cursor + len(audio)) / RATE, 3)})
        cursor += len(audio) + int(GAP_S * RATE)
    path = HERE / f"{call['name']}.wav"
    write(path, [np.concatenate(tracks[s]) for s in speakers])
    return {"file": path.name, "kind": call["kind"], "channels": speakers,
            "duration_s": round(cursor / RATE, 3), "utterances": entries}


def main() -> int:
    if shutil.which("espeak-ng") is None:
        print("espeak-ng is not installed (apt-get install espeak-ng)", file=sys.stderr)
        return 2
    manifest = {"sample_rate": RATE, "calls": []}
    with tempfile.TemporaryDirectory() as tmp:
        for call in load_scripts():
            entry = make_call(call, Path(tmp))
            manifest["calls"].append(entry)
            print(f"{entry['file']}: {entry['duration_s']:.1f} s, {len(entry['utterances'])} utterances")
    (HERE / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
