from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator

import numpy as np
import pytest

from callwise.routing.resilience import RetryPolicy
from callwise.routing.types import SourceDoc
from tests.vendors.openai import FakeOpenAI

FAST_RETRY = RetryPolicy(attempts=3, base_delay_s=0.01, max_delay_s=0.05, jitter=0.0)


def hashing_embed(texts: list[str], dim: int = 256) -> np.ndarray:
    """A deterministic bag-of-words embedding: enough to test the extractive plumbing quickly."""
    out = np.zeros((len(texts), dim), dtype=np.float32)
    for i, t in enumerate(texts):
        for w in re.findall(r"[a-z0-9]+", t.lower()):
            if len(w) > 2:
                out[i, int(hashlib.md5(w.encode()).hexdigest(), 16) % dim] += 1.0
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.maximum(norms, 1e-12)


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    with FakeOpenAI("Refunds are processed within 5 to 7 business days [1].") as fake:
        yield fake  # type: ignore[misc]


@pytest.fixture
def refund_sources() -> list[SourceDoc]:
    return [
        SourceDoc(1, "examples/kb/billing/refunds.md", "Refunds",
                  "# Refunds\nRefunds are processed within 5 to 7 business days after approval. "
                  "You can request a refund within 30 days of purchase. After 30 days, refunds are not available."),
        SourceDoc(2, "examples/kb/account/password.md", "Reset your password",
                  "To reset your password, open Settings and choose Security. Click Reset password and "
                  "follow the link we email you."),
    ]
