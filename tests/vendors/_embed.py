"""A deterministic text embedding for the embedding-API fakes: hashed bag of words (with a vendor
salt), so similar texts get similar vectors and a retrieval test can find the right chunk."""

from __future__ import annotations

import hashlib
import re


def bag_of_words(text: str, dim: int, salt: str = "", prefix: str = "") -> list[float]:
    vec = [0.0] * dim
    for w in re.findall(r"[a-z0-9]+", (prefix + " " + text).lower()):
        if len(w) > 2:
            h = int(hashlib.md5((salt + w).encode()).hexdigest(), 16)
            vec[h % dim] += 1.0 if (h >> 64) & 1 else -1.0
    vec[0] += 0.01  # never all zeros
    return vec
