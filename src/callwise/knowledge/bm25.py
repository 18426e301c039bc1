"""An incremental inverted index that scores exactly like rank-bm25's ``BM25Okapi``.

rank-bm25 scores every document per query (259 ms at 100k); this keeps postings per term and only
touches documents that contain a query term, while keeping BM25Okapi's formulas: Robertson idf
``log(N - n + 0.5) - log(n + 0.5)``, negative idfs replaced by ``epsilon * mean(idf)``, k1 = 1.5,
b = 0.75, avgdl over all documents. Documents can be added and removed at any time.
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass

import numpy as np

from callwise.knowledge.text import tokenize


@dataclass(frozen=True)
class BM25Params:
    k1: float = 1.5
    b: float = 0.75
    epsilon: float = 0.25


class BM25Index:
    def __init__(self, params: BM25Params | None = None, tokenizer: Callable[[str], list[str]] = tokenize) -> None:
        self.params = params or BM25Params()
        self.tokenizer = tokenizer
        self._lock = threading.RLock()
        self._term_ids: dict[str, int] = {}
        self._df: list[int] = []
        self._postings: list[dict[int, int]] = []
        self._cache: dict[int, tuple[np.ndarray, np.ndarray, float]] = {}
        self._keys: list[Hashable | None] = []
        self._slot_of: dict[Hashable, int] = {}
        self._slot_terms: list[np.ndarray | None] = []
        self._doc_len = np.zeros(0, dtype=np.float32)
        self._free: list[int] = []
        self._group: dict[Hashable, set[Hashable]] = {}
        self._group_of: dict[Hashable, Hashable] = {}
        self._total_len = 0
        self._avg_idf: float | None = None
        self.signature: object = None  # set by the owner to tell whether the index is current

    def __len__(self) -> int:
        return len(self._slot_of)

    # --- updates ------------------------------------------------------------------------
    def add(self, key: Hashable, text: str, group: Hashable | None = None) -> None:
        self.add_tokens(key, self.tokenizer(text), group)

    def add_tokens(self, key: Hashable, tokens: list[str], group: Hashable | None = None) -> None:
        with self._lock:
            if key in self._slot_of:
                self.remove(key)
            slot = self._free.pop() if self._free else self._new_slot()
            counts = Counter(tokens)
            tids = np.empty(len(counts), dtype=np.int32)
            for i, (term, tf) in enumerate(counts.items()):
                tid = self._term_ids.get(term)
                if tid is None:
                    tid = self._term_ids[term] = len(self._df)
                    self._df.append(0)
                    self._postings.append({})
                self._postings[tid][slot] = tf
                self._df[tid] += 1
                self._cache.pop(tid, None)
                tids[i] = tid
            self._keys[slot] = key
            self._slot_of[key] = slot
            self._slot_terms[slot] = tids
            self._doc_len[slot] = len(tokens)
            self._total_len += len(tokens)
            if group is not None:
                self._group.setdefault(group, set()).add(key)
                self._group_of[key] = group
            self._avg_idf = None

    def _new_slot(self) -> int:
        slot = len(self._keys)
        self._keys.append(None)
        self._slot_terms.append(None)
        if slot >= len(self._doc_len):
            grown = np.zeros(max(1024, 2 * len(self._doc_len)), dtype=np.float32)
            grown[: len(self._doc_len)] = self._doc_len
            self._doc_len = grown
        return slot

    def remove(self, key: Hashable) -> bool:
        with self._lock:
            slot = self._slot_of.pop(key, None)
            if slot is None:
                return False
            tids = self._slot_terms[slot]
            for tid in tids if tids is not None else ():
                del self._postings[tid][slot]
                self._df[tid] -= 1
                self._cache.pop(tid, None)
            self._total_len -= int(self._doc_len[slot])
            self._doc_len[slot] = 0
            self._keys[slot] = None
            self._slot_terms[slot] = None
            self._free.append(slot)
            group = self._group_of.pop(key, None)
            if group is not None:
                members = self._group.get(group)
                if members is not None:
                    members.discard(key)
                    if not members:
                        del self._group[group]
            self._avg_idf = None
            return True

    def remove_group(self, group: Hashable) -> int:
        with self._lock:
            keys = list(self._group.get(group, ()))
            for key in keys:
                self.remove(key)
            return len(keys)

    # --- queries ------------------------------------------------------------------------
    def _idf(self, df: int, n: int) -> float:
        idf = math.log(n - df + 0.5) - math.log(df + 0.5)
        if idf < 0:
            if self._avg_idf is None:
                dfs = np.asarray(self._df, dtype=np.float64)
                dfs = dfs[dfs > 0]
                vals = np.log(n - dfs + 0.5) - np.log(dfs + 0.5)
                self._avg_idf = float(vals.mean()) if len(vals) else 0.0
            idf = self.params.epsilon * self._avg_idf
        return idf

    def _weights(self, tid: int, avgdl: float) -> tuple[np.ndarray, np.ndarray]:
        """(slots, tf saturation per slot) for a term; cached until the term or avgdl changes."""
        cached = self._cache.get(tid)
        if cached is None or cached[2] != avgdl:
            k1, b = self.params.k1, self.params.b
            posting = self._postings[tid]
            slots = np.fromiter(posting.keys(), dtype=np.int64, count=len(posting))
            tfs = np.fromiter(posting.values(), dtype=np.float64, count=len(posting))
            norm = k1 * (1.0 - b + b * self._doc_len[slots].astype(np.float64) / avgdl)
            cached = (slots, tfs * (k1 + 1.0) / (tfs + norm), avgdl)
            self._cache[tid] = cached
        return cached[0], cached[1]

    def search(self, query: str, limit: int) -> list[tuple[Hashable, float]]:
        return self.search_tokens(self.tokenizer(query), limit)

    def search_tokens(self, tokens: Iterable[str], limit: int) -> list[tuple[Hashable, float]]:
        """Top ``limit`` (key, score) among documents holding a query term, best first (ties: by slot)."""
        with self._lock:
            n = len(self._slot_of)
            if n == 0:
                return []
            avgdl = self._total_len / n if self._total_len else 1.0
            scores: np.ndarray | None = None
            touched: np.ndarray | None = None
            for term in tokens:
                tid = self._term_ids.get(term)
                if tid is None or self._df[tid] == 0:
                    continue
                idf = self._idf(self._df[tid], n)
                slots, weights = self._weights(tid, avgdl)
                if scores is None or touched is None:
                    scores = np.zeros(len(self._keys), dtype=np.float64)
                    touched = np.zeros(len(self._keys), dtype=bool)
                scores[slots] += idf * weights
                touched[slots] = True
            if scores is None or touched is None:
                return []
            cand = np.flatnonzero(touched)
            cand_scores = scores[cand]  # every document holding a query term (tiny corpora can score < 0)
            if len(cand) > limit:  # keep every tie of the limit-th score, then order by (score, slot)
                kth = -np.partition(-cand_scores, limit - 1)[limit - 1]
                keep = cand_scores >= kth
                cand, cand_scores = cand[keep], cand_scores[keep]
            order = np.lexsort((cand, -cand_scores))[:limit]
            return [(self._keys[int(cand[i])], float(cand_scores[i])) for i in order]
