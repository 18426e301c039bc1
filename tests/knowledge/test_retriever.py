import asyncio

import pytest

from callwise.knowledge.rerank import CohereReranker, EmbeddingReranker
from callwise.knowledge.types import MODES
from callwise.knowledge.vectors import QdrantServerStore
from tests.knowledge.conftest import make_kb, pg_vectors
from tests.vendors._http import Reply
from tests.vendors.cohere import CohereServer

QUERIES = {
    "how long do refunds take to reach my card": "billing/refunds.md",
    "E-1042": "errors/e-1042.md",
    "configure single sign-on with Okta": "sso/okta.html",
    "price of the SKU-88A desk phone": "plans/sku.txt",
    "I forgot my password": "accounts/password.md",
}


@pytest.fixture
def retriever(pg_pool, embedder):  # type: ignore[no-untyped-def]
    vectors = pg_vectors(pg_pool, embedder)
    return make_kb(pg_pool, embedder, vectors, reranker=EmbeddingReranker(vectors)).retriever


@pytest.mark.parametrize("mode", MODES)
async def test_each_mode_finds_the_right_document(retriever, two_orgs, mode):
    org_a, _ = two_orgs
    for query, doc in QUERIES.items():
        res = await retriever.retrieve(query, org_a, top_k=3, mode=mode)
        assert res.chunks, (mode, query)
        assert any(c.document.endswith(doc) for c in res.chunks[:3]), (mode, query, [c.document for c in res.chunks])


@pytest.mark.parametrize("mode", MODES)
async def test_tenant_isolation(retriever, two_orgs, mode):
    org_a, org_b = two_orgs
    for query in ("refunds SAML E-1042", "watering tomatoes", "E-1042"):
        a = await retriever.retrieve(query, org_a, top_k=10, mode=mode)
        b = await retriever.retrieve(query, org_b, top_k=10, mode=mode)
        assert all("/other/" not in c.document for c in a.chunks)
        assert b.chunks and all(c.document.endswith("garden.md") for c in b.chunks)


async def test_result_shape_and_stages(retriever, two_orgs):
    org_a, _ = two_orgs
    res = await retriever.retrieve("How do I request a refund?", org_a, top_k=2)
    assert res.query_type in ("conceptual", "technical", "conversational", "exact_match")
    assert res.reranker == "embedding" and res.rerank_fallback is None
    top = res.chunks[0]
    assert top.document.endswith("billing/refunds.md") and top.title == "Refund policy"
    assert top.text in top.parent_text and len(top.parent_text) >= len(top.text)
    assert set(top.stages) >= {"fused", "rerank"} and ("bm25" in top.stages or "vector" in top.stages)
    assert {"bm25", "embed", "vector", "fusion", "rerank", "total"} <= set(res.timings_ms)
    assert len({c.parent_id for c in res.chunks}) == len(res.chunks)  # small2big: one hit per parent


async def test_bad_queries_and_empty_org(retriever, two_orgs, org_id):
    for q in ("", "   "):
        with pytest.raises(ValueError):
            await retriever.retrieve(q, two_orgs[0])
    with pytest.raises(ValueError):
        await retriever.retrieve("x", two_orgs[0], mode="nope")
    for mode in MODES:
        assert (await retriever.retrieve("refund", org_id, mode=mode)).chunks == []


async def test_weighted_fusion(pg_pool, embedder, two_orgs):
    kb = make_kb(pg_pool, embedder, None, fusion="weighted")
    res = await kb.retriever.retrieve("E-1042", two_orgs[0], mode="hybrid")
    assert res.query_type == "exact_match" and res.chunks[0].document.endswith("e-1042.md")
    assert 0 <= res.chunks[0].score <= 1


class Boom:
    name = "boom"

    async def rerank(self, *a, **k):
        raise RuntimeError("reranker exploded")


class Slow:
    name = "slow"

    async def rerank(self, *a, **k):
        await asyncio.sleep(5)


@pytest.mark.parametrize("reranker,reason", [(Boom(), "RuntimeError"), (Slow(), "timeout")])
async def test_reranker_failure_falls_back_to_fusion_order(pg_pool, embedder, two_orgs, reranker, reason, caplog):
    kb = make_kb(pg_pool, embedder, None, reranker=reranker, rerank_timeout_s=0.2)
    plain = await kb.retriever.retrieve("refund window", two_orgs[0], mode="hybrid")
    res = await kb.retriever.retrieve("refund window", two_orgs[0], mode="hybrid+rerank")
    assert res.rerank_fallback and reason in res.rerank_fallback
    assert [c.chunk_id for c in res.chunks] == [c.chunk_id for c in plain.chunks]
    assert kb.retriever.stats.rerank_fallbacks == 1
    assert "reranker failed" in caplog.text


async def test_cohere_rerank_through_the_sdk(pg_pool, embedder, two_orgs):
    with CohereServer() as fake:
        reranker = CohereReranker.from_key(CohereServer.API_KEY, "rerank-english-v3.0", base_url=fake.url)
        kb = make_kb(pg_pool, embedder, None, reranker=reranker)
        res = await kb.retriever.retrieve("ACS URL entity ID metadata XML", two_orgs[0], top_k=3)
        assert res.reranker == "cohere" and res.rerank_fallback is None
        assert res.chunks[0].document.endswith("okta.html") and "rerank" in res.chunks[0].stages
        sent = fake.requests[-1].json
        assert sent["model"] == "rerank-english-v3.0" and len(sent["documents"]) <= 25
        fake.enqueue(Reply(500, {"message": "internal"}))
        res = await kb.retriever.retrieve("ACS URL entity ID", two_orgs[0], top_k=3)
        assert res.rerank_fallback and res.chunks
        fake.enqueue(Reply(200, {"results": []}, delay_s=3))
        reranker.timeout_s = 0.3
        res = await kb.retriever.retrieve("ACS URL entity ID", two_orgs[0], top_k=3)
        assert res.rerank_fallback and kb.retriever.stats.rerank_fallbacks == 2


async def test_qdrant_client_store_isolation(pg_pool, embedder, corpus_dir, tmp_path):
    """The QDRANT_URL path (qdrant-client; local mode here): dense + sparse BM25 with the IDF modifier, per tenant."""
    import uuid
    import warnings

    from qdrant_client import QdrantClient

    from callwise.knowledge.vectors import QdrantLexical
    from tests.knowledge.conftest import write_corpus

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        store = QdrantServerStore(QdrantClient(":memory:"), embedder.dim)
    assert store.has_sparse
    org_a, org_b = [str(await pg_pool.fetchval("insert into organizations (slug, name) values ($1, $1) returning id",
                                               "q-" + uuid.uuid4().hex[:12])) for _ in range(2)]
    kb = make_kb(pg_pool, embedder, store, reranker=EmbeddingReranker(store))
    assert isinstance(kb.bm25, QdrantLexical)
    await kb.ingestor.ingest(corpus_dir, org_a)
    await kb.ingestor.ingest(write_corpus(tmp_path / "other", {
        "garden.md": "# Watering tomatoes\n\nWater tomato plants deeply twice a week; Error E-1042 is a sprinkler code.\n"}),
        org_b)
    for mode in MODES:
        a = await kb.retriever.retrieve("SAML assertion expired E-1042", org_a, mode=mode)
        assert any(c.document.endswith("e-1042.md") for c in a.chunks[:2]) and all("/other/" not in c.document for c in a.chunks)
        b = await kb.retriever.retrieve("E-1042 SAML", org_b, mode=mode)
        assert b.chunks and all(c.document.endswith("garden.md") for c in b.chunks)
    for query, doc in QUERIES.items():  # lexical search alone, from the server's sparse vectors
        res = await kb.retriever.retrieve(query, org_a, top_k=3, mode="bm25")
        assert any(c.document.endswith(doc) for c in res.chunks), query
    store.delete_document(org_b, b.chunks[0].document_id)
    assert store.count(org_b) == 0 and store.count(org_a) > 0
    assert (await kb.retriever.retrieve("watering tomatoes", org_b, mode="bm25")).chunks == []


class _Forgetful:
    """The store's vectors with some of them not returned (an ingest half-way, an index out of step)."""

    def __init__(self, vectors, drop) -> None:  # type: ignore[no-untyped-def]
        self.inner, self.drop = vectors, drop

    def vectors(self, organization_id, ids):  # type: ignore[no-untyped-def]
        return {k: v for k, v in self.inner.vectors(organization_id, ids).items() if not self.drop(k)}

    def __getattr__(self, name):  # type: ignore[no-untyped-def]
        return getattr(self.inner, name)


async def test_a_missing_vector_never_sinks_a_candidate(pg_pool, embedder, two_orgs):
    """A candidate whose parent vector is missing is scored by its own; one with no vector at all makes the
    re-score fall back to the fusion order instead of scoring it 0 (the README's refund question lost its page so)."""
    vectors = pg_vectors(pg_pool, embedder)
    org = two_orgs[0]
    full = make_kb(pg_pool, embedder, vectors, reranker=EmbeddingReranker(vectors)).retriever
    ref = await full.retrieve("how long do refunds take to reach my card", org, mode="hybrid+rerank")
    top = ref.chunks[0]
    assert top.document.endswith("billing/refunds.md") and ref.rerank_fallback is None and top.parent_id
    no_parent = EmbeddingReranker(_Forgetful(vectors, lambda k: k == top.parent_id))
    res = await make_kb(pg_pool, embedder, vectors, reranker=no_parent).retriever.retrieve(
        "how long do refunds take to reach my card", org, mode="hybrid+rerank")
    assert res.rerank_fallback is None and res.chunks[0].document.endswith("billing/refunds.md")
    nothing = EmbeddingReranker(_Forgetful(vectors, lambda k: k in (top.parent_id, top.chunk_id)))
    kb = make_kb(pg_pool, embedder, vectors, reranker=nothing)
    plain = await kb.retriever.retrieve("how long do refunds take to reach my card", org, mode="hybrid")
    res = await kb.retriever.retrieve("how long do refunds take to reach my card", org, mode="hybrid+rerank")
    assert res.rerank_fallback and "vectors missing for 1 of" in res.rerank_fallback
    assert [c.chunk_id for c in res.chunks] == [c.chunk_id for c in plain.chunks]
