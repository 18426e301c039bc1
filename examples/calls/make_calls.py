"""Generate the sample calls (``examples/calls/*.wav``) with espeak-ng.

    python examples/calls/make_calls.py            # needs espeak-ng (sox optional)

Reads ``scripts.json`` next to this file (falls back to the built-in scripts below), speaks each
utterance with espeak-ng, resamples to 16 kHz mono s16 (sox when installed, else scipy) and
joins the utterances with ~1 s of silence. Support calls are mono. Meeting calls are written
with one channel per participant (channel 1 = the rep, channel 2 = the customer), the way a
per-speaker conference recording arrives, so the copilot can transcribe each one separately.
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
VOICES = {"customer": "en-us", "rep": "en-gb", "agent": "en-gb"}

DEFAULT_SCRIPTS = {"calls": [
    {"name": "support-billing", "kind": "support", "utterances": [
        "Hi, how do I download my invoices as a PDF?",
        "And who receives the invoice emails?",
        "Great, thanks, that's all I needed.",
        "Four out of five.",
        "The answers were quick and clear.",
    ]},
    {"name": "support-password", "kind": "support", "utterances": [
        "How do I reset my password?",
        "How do I turn on two factor authentication for my account?",
    ]},
    {"name": "support-sso", "kind": "support", "utterances": [
        "How do I set up single sign on with Okta?",
        "What happens to my data if I downgrade to the free plan?",
    ]},
    {"name": "support-escalation", "kind": "support", "utterances": [
        "I think my account was hacked, someone changed my email address.",
    ]},
    {"name": "meeting-demo", "kind": "meeting", "utterances": [
        {"speaker": "rep", "text": "Thanks for joining today. Let's talk about your rollout."},
        {"speaker": "customer", "text": "Do you support single sign on with Okta?"},
        {"speaker": "customer", "text": "We are currently using Zendesk for our help desk."},
        {"speaker": "rep", "text": "I will send you the pricing sheet by Friday."},
    ]},
]}


def load_scripts() -> list[dict]:
    path = HERE / "scripts.json"
    data = json.loads(path.read_text()) if path.exists() else DEFAULT_SCRIPTS
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
    subprocess.run(["espeak-ng", "-v", voice, "-s", "160", "-w", str(raw), text], check=True)
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


def make_call(call: dict, tmp: Path) -> dict:
    speakers = ["rep", "customer"] if call["kind"] == "meeting" else ["customer"]
    tracks = {s: [np.zeros(int(LEAD_S * RATE), np.float32)] for s in speakers}
    cursor = int(LEAD_S * RATE)
    entries = []
    for u in call["utterances"]:
        speaker = u["speaker"] if u["speaker"] in speakers else speakers[-1]
        audio = speak(u["text"], VOICES.get(speaker, "en-us"), tmp)
        for s in speakers:
            tracks[s].append(audio if s == speaker else np.zeros(len(audio), np.float32))
            tracks[s].append(np.zeros(int(GAP_S * RATE), np.float32))
        entries.append({"speaker": speaker, "text": u["text"], "start_s": round(cursor / RATE, 3),
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
