"""Calls that test what a real line throws at the agent, built from the sample recordings (examples/calls):
a silent caller, a caller who talks over the answer, coughs and a noise burst, a hang-up mid-sentence. Each
call is a WAV with a manifest entry beside it, in a folder of its own (``callwise.agent.live`` reads the
caller's utterances from the manifest). Used by tests/agent/test_line.py and bench/line_events.py."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from callwise.infra.audio import load_audio, write_wav

CALLS = Path(__file__).resolve().parents[2] / "examples" / "calls"
RATE = 16_000


@dataclass
class LineCall:
    path: Path
    #: where things are in the file (seconds): question_start_s, question_end_s, ...
    marks: dict[str, float] = field(default_factory=dict)


def utterance(file: str, i: int) -> np.ndarray:
    """The ``i``-th customer utterance of a sample call."""
    manifest = json.loads((CALLS / "manifest.json").read_text())
    utt = next(c for c in manifest["calls"] if c["file"] == file)["utterances"][i]
    samples = load_audio(CALLS / file).samples
    return samples[int(utt["start_s"] * RATE):int(utt["end_s"] * RATE)]


def silence(seconds: float) -> np.ndarray:
    """A quiet line: faint hiss (a file of exact zeros is refused as silent audio)."""
    return (np.random.default_rng(7).standard_normal(int(seconds * RATE)) * 0.001).astype(np.float32)


def cough(seconds: float = 0.35, seed: int = 3) -> np.ndarray:
    """A cough's shape: a sharp band-limited burst (about 300-3000 Hz) that decays within a third of a second."""
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1 / RATE)
    spectrum[(freqs < 300) | (freqs > 3000)] = 0
    noise = np.fft.irfft(spectrum, n)
    t = np.arange(n) / RATE
    envelope = np.minimum(t / 0.01, 1.0) * np.exp(-t / 0.08)
    return (noise / np.abs(noise).max() * envelope * 0.6).astype(np.float32)


def noise_burst(seconds: float = 0.25, seed: int = 9) -> np.ndarray:
    """A click or a knock on the line: flat noise, on and off."""
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(int(seconds * RATE)) * 0.3).clip(-1, 1).astype(np.float32)


def write_call(folder: Path, name: str, parts: list[np.ndarray], utterances: list[dict[str, Any]],
               **entry: Any) -> Path:
    """``parts`` joined into ``folder/name`` beside a manifest whose entry lists ``utterances``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    write_wav(path, np.concatenate(parts).astype(np.float32))
    manifest = {"calls": [{"file": name, "kind": "support", "channels": ["caller"], "utterances": utterances,
                           **entry}]}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return path


def silent_call(folder: Path) -> LineCall:
    """Half a second of a quiet line, then nothing: the caller stays on without a word."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "silent.wav"
    write_wav(path, silence(0.5))
    return LineCall(path)


def talk_over_call(folder: Path, after_s: float = 1.5) -> LineCall:
    """The refund question, then the caller's next question once the answer has played ``after_s``."""
    question, over = utterance("refund.wav", 1), utterance("refund.wav", 2)
    lead = 0.3
    q_end = lead + len(question) / RATE
    o_start = q_end + 1.0
    path = write_call(folder, "talk-over.wav", [silence(lead), question, silence(1.0), over, silence(1.0)], [
        {"start_s": lead, "end_s": round(q_end, 3)},
        {"start_s": round(o_start, 3), "end_s": round(o_start + len(over) / RATE, 3), "over_agent_after_s": after_s}])
    return LineCall(path, {"question_end_s": q_end, "over_start_s": o_start})


def cough_call(folder: Path) -> LineCall:
    """A cough and a noise burst before the refund question, and a cough over the agent's answer."""
    question = utterance("refund.wav", 1)
    before = [silence(0.5), cough(), silence(0.8), noise_burst(), silence(1.0)]
    q_start = sum(len(p) for p in before) / RATE
    q_end = q_start + len(question) / RATE
    path = write_call(folder, "cough.wav", [*before, question, silence(1.0), cough(seed=5), silence(1.0)], [
        {"start_s": round(q_start, 3), "end_s": round(q_end, 3)},
        {"start_s": round(q_end + 1.0, 3), "end_s": round(q_end + 1.35, 3), "over_agent_after_s": 1.0}])
    return LineCall(path, {"question_start_s": q_start, "question_end_s": q_end})


def hang_up_call(folder: Path, fraction: float = 0.55) -> LineCall:
    """The first sentence of refund.wav ("Hi, I upgraded our workspace to the Business plan ...") cut at
    ``fraction``: the line drops mid-sentence."""
    said = utterance("refund.wav", 0)
    cut = said[:int(len(said) * fraction)]
    path = write_call(folder, "hang-up.wav", [silence(0.3), cut],
                      [{"start_s": 0.3, "end_s": round(0.3 + len(cut) / RATE, 3)}], hangs_up=True)
    return LineCall(path, {"cut_s": 0.3 + len(cut) / RATE})
