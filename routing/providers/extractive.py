"""Offline answerer: the sentences of the top sources most similar to the question, chosen with an
embedding function passed in (routing imports no embedder). Its confidence is that similarity."""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from typing import Callable, Sequence

import numpy as np

from routing.providers.base import Provider, Stopwatch
from routing.text import approx_tokens, sentences
from routing.types import Generation, Grounding, Message

EmbedFn = Callable[[list[str]], np.ndarray]

NOT_FOUND = "I couldn't find that in our help centre."


class ExtractiveProvider(Provider):
    name = "extractive"
    generative = False

    def __init__(self, embed_fn: EmbedFn, *, model: str = "extractive-v1", max_sentences: int = 3,
                 max_sources: int = 3, margin: float = 0.12, min_similarity: float = 0.3,
                 full_confidence_at: float = 1.0, cache_size: int = 50_000) -> None:
        """``full_confidence_at``: similarity that maps to confidence 1.0 (1.0 = the raw cosine).

        ``min_similarity`` 0.3: on the golden set every in-scope question's best sentence scored
        0.39 or more, while off-topic ones ("What's the weather in Paris?") scored 0.21-0.23.

        Source sentences repeat from turn to turn (the same help articles come back), so their
        embeddings are kept in an LRU of ``cache_size`` sentences; only the question and unseen
        sentences are embedded on a turn.
        """
        super().__init__(model)
        self.embed_fn = embed_fn
        self.max_sentences = max_sentences
        self.max_sources = max_sources
        self.margin = margin
        self.min_similarity = min_similarity
        self.full_confidence_at = full_confidence_at
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    async def generate(self, messages: Sequence[Message], *, temperature: float = 0.0, max_tokens: int = 512,
                       logprobs: bool = False, grounding: Grounding | None = None) -> Generation:
        sw = Stopwatch()
        if grounding is None:
            text = messages[-1].content if messages else ""
            answer, sim, used = await asyncio.to_thread(self._summarize, text)
        else:
            answer, sim, used = await asyncio.to_thread(self._answer, grounding)
        confidence = max(0.0, min(1.0, sim / self.full_confidence_at))
        return Generation(text=answer, model=self.model, input_tokens=used, output_tokens=approx_tokens(answer),
                          confidence=round(confidence, 4), latency_ms=sw.elapsed_ms, finish_reason="stop")

    def _embed(self, texts: list[str]) -> np.ndarray:
        vecs = np.asarray(self.embed_fn(texts), dtype=np.float32)
        norms = np.linalg.norm(vecs, axis=1, keepdims=True)
        return vecs / np.maximum(norms, 1e-12)

    def _embed_cached(self, texts: list[str]) -> np.ndarray:
        with self._lock:
            known = {t: self._cache[t] for t in texts if t in self._cache}
            for t in known:
                self._cache.move_to_end(t)
        missing = [t for t in dict.fromkeys(texts) if t not in known]
        if missing:
            known.update(zip(missing, self._embed(missing)))
            with self._lock:
                for t in missing:
                    self._cache[t] = known[t]
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return np.stack([known[t] for t in texts])

    def _answer(self, g: Grounding) -> tuple[str, float, int]:
        cands: list[tuple[int, int, str]] = []  # (source rank, position, sentence)
        for rank, src in enumerate(g.sources[: self.max_sources]):
            for pos, s in enumerate(sentences(src.text)):
                cands.append((rank, pos, s))
        if not cands or not g.query.strip():
            return NOT_FOUND, 0.0, 0
        qvec = self._embed([g.query])[0]
        sims = self._embed_cached([c[2] for c in cands]) @ qvec
        order = np.argsort(-sims, kind="stable")
        best = float(sims[order[0]])
        if best < self.min_similarity:
            return NOT_FOUND, max(0.0, best), sum(approx_tokens(c[2]) for c in cands)
        best_rank = cands[order[0]][0]
        chosen = [int(order[0])]
        for i in order[1:]:
            if len(chosen) >= self.max_sentences:
                break
            # stay with the best source, where neighbouring sentences carry the answer's detail
            if cands[i][0] == best_rank and float(sims[i]) >= best - self.margin:
                chosen.append(int(i))
        chosen.sort(key=lambda i: (cands[i][0], cands[i][1]))
        answer = " ".join(cands[i][2] for i in chosen)
        return answer, best, sum(approx_tokens(c[2]) for c in cands) + approx_tokens(g.query)

    def _summarize(self, text: str) -> tuple[str, float, int]:
        sents = sentences(text)
        if not sents:
            return text.strip()[:400], 0.0, approx_tokens(text)
        vecs = self._embed(sents)
        centroid = vecs.mean(axis=0)
        scores = vecs @ centroid
        top = sorted(np.argsort(-scores)[: self.max_sentences].tolist())
        return " ".join(sents[i] for i in top), float(scores.max()), approx_tokens(text)
