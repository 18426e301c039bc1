"""Map each confidence method's raw score to an estimated probability that the answer is right.

The extractive answerer's raw confidence is a cosine similarity (good answers score 0.4-0.7), token
log-probabilities give a geometric-mean probability, a self-evaluation a 0-10 grade: three scales,
none of them a probability. A method with fitted parameters in ``routing/data/calibration.json`` is
mapped through them; one without is passed through unchanged and marked ``calibrated=False``.

The extractive method is a logistic regression (scikit-learn, fitted by ``bench/confidence.py --fit``
on a labelled set of questions, passages, produced answers and right/wrong judgements; see
``bench/data/confidence/``) over signals the answerer and its sources give:

- ``best``: similarity of the best answer unit to the question,
- ``margin``: its lead over the runner-up unit,
- ``best_source_rank``: which retrieved source the best unit came from (0 = the top one),
- ``top_score``: the retriever's (fused) score of the top source (reported, not used: see below),
- ``term_overlap``: share of the question's content words found in the answer,
- ``source_overlap``: share of the question's content words found in the top source,
- ``abstained``: 1 when the answerer said it found nothing,
- ``type_missing``: 1 when the question expects a kind of answer (a duration for "how long", a
  number for "how many", a time for "when" or "can I still"; ``callwise.routing.answer_type``) and the
  answer has none,
- ``heading_sim``: similarity of the question to the section heading the best unit is under
  (the answerer's signal; a page without headings gets the mean over the units),
- ``question_like``: share of the answer's sentences that are questions (a FAQ heading read back),
- ``answer_words``: log of the answer's length in words.

Each fitted method also carries its operating points, chosen on the fit half: ``disclaim_below``
(the router adds its "I'm not completely sure" disclaimer under it) and ``escalate_below`` (the
escalation rules hand the call over under it). Evaluation only needs the JSON and the standard
library: scikit-learn is used to fit, not to answer.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from callwise.routing import answer_type
from callwise.routing.confidence import Confidence, Method
from callwise.routing.types import Generation, SourceDoc

PARAMS_PATH = Path(__file__).resolve().parent / "data" / "calibration.json"
#: the model's inputs; ``top_score`` is computed and reported but left out: with it, 5-fold
#: cross-validation on the fit half caught fewer wrong answers at the same share of right ones
#: disclaimed (0.67 against 0.71; rank-fusion scores barely vary between a good and a bad top hit)
EXTRACTIVE_FEATURES = ("best", "margin", "best_source_rank", "term_overlap", "source_overlap",
                       "abstained", "type_missing", "question_like", "answer_words", "heading_sim")
_SENTENCE = re.compile(r"[^.?!]+[.?!]?")

_STOP = frozenset("""a an the of to and or by for in on with not that is are be as at from if this it its can may will
you your i me my we our us do does did how what when where which who why whom whose there their they them
about into than then so such no yes any all some get got have has had was were been being would should could
please tell want need like know just also one s t""".split())
_TOKEN = re.compile(r"[a-z0-9][a-z0-9_+#.-]*[a-z0-9]|[a-z0-9]")


def content_words(text: str) -> set[str]:
    """Lower-case words of ``text`` minus stop words (question words, pronouns, auxiliaries)."""
    return {w for w in _TOKEN.findall(text.lower()) if w not in _STOP}


def overlap(question: str, text: str) -> float:
    """Share of the question's content words that occur in ``text`` (0 when it has none)."""
    q = content_words(question)
    if not q:
        return 0.0
    words = content_words(text)
    return len(q & words) / len(q)


def extractive_features(question: str, answer: str, sources: Sequence[SourceDoc],
                        signals: Mapping[str, float] | None, *, abstained: bool) -> dict[str, float]:
    """The calibration features of one extractive answer (see the module docstring), over the
    question the answerer matched (``focus``: a statement before the question left out)."""
    from callwise.routing.providers.extractive import focus

    question = focus(question)
    s = dict(signals or {})
    best = float(s.get("best", 0.0))
    second = float(s.get("second", 0.0))
    top = sources[0] if sources else None
    return {
        "best": best,
        "margin": max(0.0, best - second),
        "best_source_rank": float(s.get("best_source_rank", 0.0)),
        "top_score": float(top.score) if top is not None and top.score is not None else 0.0,
        "term_overlap": 0.0 if abstained else overlap(question, answer),
        "source_overlap": overlap(question, (top.title + " " + top.text) if top is not None else ""),
        "abstained": 1.0 if abstained else 0.0,
        "type_missing": 1.0 if (not abstained and answer_type.missing(question, answer)) else 0.0,
        "question_like": 0.0 if abstained else question_share(answer),
        "answer_words": 0.0 if abstained else math.log1p(len(answer.split())),
        "heading_sim": float(s.get("heading_sim", 0.0)),
    }


def question_share(text: str) -> float:
    """Share of the sentences of ``text`` that end with a question mark."""
    parts = [p.strip() for p in _SENTENCE.findall(text) if p.strip()]
    return sum(p.endswith("?") for p in parts) / len(parts) if parts else 0.0


@dataclass(frozen=True)
class LogisticModel:
    """``p = sigmoid(intercept + coef . (x - mean) / scale)``: a fitted scikit-learn LogisticRegression
    over standardised features, stored as plain numbers."""

    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float

    def probability(self, x: Mapping[str, float]) -> float:
        z = self.intercept
        for name, m, sc, c in zip(self.features, self.mean, self.scale, self.coef, strict=True):
            z += c * (float(x.get(name, 0.0)) - m) / (sc or 1.0)
        if z >= 0:
            return 1.0 / (1.0 + math.exp(-z))
        e = math.exp(z)
        return e / (1.0 + e)


@dataclass(frozen=True)
class IsotonicModel:
    """A fitted scikit-learn IsotonicRegression over one raw score, as its step points
    (``x_thresholds_``, ``y_thresholds_``), interpolated linearly and clipped at the ends."""

    xs: tuple[float, ...]
    ys: tuple[float, ...]

    def probability(self, raw: float) -> float:
        return float(np.interp(raw, self.xs, self.ys))  # what IsotonicRegression.predict does


@dataclass(frozen=True)
class MethodCalibration:
    method: str
    model: LogisticModel | IsotonicModel
    disclaim_below: float
    escalate_below: float | None
    fitted_on: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Calibration:
    """The fitted parameters of every calibrated method (possibly none)."""

    methods: dict[str, MethodCalibration]
    source: str = ""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "") -> Calibration:
        methods: dict[str, MethodCalibration] = {}
        for name, spec in (data.get("methods") or {}).items():
            kind = spec.get("kind")
            model: LogisticModel | IsotonicModel
            if kind == "logistic":
                model = LogisticModel(tuple(spec["features"]), tuple(map(float, spec["mean"])),
                                      tuple(map(float, spec["scale"])), tuple(map(float, spec["coef"])),
                                      float(spec["intercept"]))
                if not (len(model.features) == len(model.mean) == len(model.scale) == len(model.coef)):
                    raise ValueError(f"calibration for {name}: features, mean, scale and coef differ in length")
            elif kind == "isotonic":
                model = IsotonicModel(tuple(map(float, spec["xs"])), tuple(map(float, spec["ys"])))
                if not model.xs or len(model.xs) != len(model.ys):
                    raise ValueError(f"calibration for {name}: xs and ys must be non-empty and of one length")
            else:
                raise ValueError(f"calibration for {name}: unknown kind {kind!r}")
            floor = spec.get("escalate_below")
            methods[name] = MethodCalibration(name, model, float(spec["disclaim_below"]),
                                              None if floor is None else float(floor), dict(spec.get("fitted_on", {})))
        return cls(methods, source)

    # ------------------------------------------------------------------ mapping
    def extractive(self, question: str, gen: Generation, sources: Sequence[SourceDoc], *,
                   abstained: bool | None = None) -> Confidence:
        """The probability that an extractive answer is right, from its signals (``abstained``: the
        answerer said it found nothing; by default, its answer is its not-found sentence)."""
        raw = gen.confidence
        if abstained is None:
            from callwise.routing.providers.extractive import NOT_FOUND

            abstained = gen.text.strip() == NOT_FOUND
        cal = self.methods.get("extractive")
        if cal is None or not isinstance(cal.model, LogisticModel) or gen.signals is None:
            return Confidence(_clip(raw), "provider", raw=raw)
        x = extractive_features(question, gen.text, sources, gen.signals, abstained=abstained)
        return Confidence(_clip(cal.model.probability(x)), "extractive", raw=raw, calibrated=True,
                          disclaim_below=cal.disclaim_below, signals={k: round(v, 4) for k, v in x.items()})

    def score(self, method: Method, raw: float) -> Confidence:
        """A raw log-probability or self-evaluation score, mapped when that method is fitted."""
        cal = self.methods.get(method)
        if cal is None or not isinstance(cal.model, IsotonicModel):
            return Confidence(_clip(raw), method, raw=raw)
        return Confidence(_clip(cal.model.probability(raw)), method, raw=raw, calibrated=True,
                          disclaim_below=cal.disclaim_below)

    def disclaim_below(self, method: str | None, default: float) -> float:
        """The probability under which an answer of ``method`` gets the disclaimer (``default``, the
        router's configured threshold, for a method without fitted parameters)."""
        cal = self.methods.get(method or "")
        return cal.disclaim_below if cal is not None else default

    def escalate_below(self, default: float) -> float:
        """The lowest ``escalate_below`` of the fitted methods (``default`` when none has one)."""
        floors = [c.escalate_below for c in self.methods.values() if c.escalate_below is not None]
        return min(floors) if floors else default


def _clip(value: float | None) -> float:
    if value is None or math.isnan(value):
        return 0.0
    return max(0.0, min(1.0, float(value)))


@lru_cache(maxsize=4)
def load_calibration(path: str | None = None) -> Calibration:
    """The fitted parameters (cached); a missing file means no method is calibrated."""
    p = Path(path) if path else PARAMS_PATH
    if not p.exists():
        return Calibration({}, str(p))
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{p}: not valid JSON ({exc})") from exc
    return Calibration.from_dict(data, str(p))
