"""Fixtures of the evaluation tests: one local MiniLM embedder for the whole session."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest


@pytest.fixture(scope="session")
def encode() -> Callable[[list[str]], np.ndarray]:
    from callwise.knowledge.embeddings import Embedder

    return Embedder().encode
