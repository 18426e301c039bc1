"""Knowledge fixtures: the real embedder (loaded once), the real Postgres knowledge store, tiny corpora."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from callwise.knowledge.chunking import Chunker, ChunkingConfig
from callwise.knowledge.docstore import PgDocumentStore
from callwise.knowledge.embedders.reembed import model_name
from callwise.knowledge.embeddings import Embedder
from callwise.knowledge.ingest import Ingestor
from callwise.knowledge.lexical import BM25Registry
from callwise.knowledge.pgstore import PgKnowledgeStore, PgLexical, PgVectors
from callwise.knowledge.retriever import Retriever, RetrieverConfig
from callwise.knowledge.vectors import QdrantLexical

CORPUS: dict[str, str] = {
    "billing/refunds.md": """---
title: Refund policy
---
# Refund policy

Orbitly refunds annual plans in full within 30 days of purchase. After 30 days we refund the unused
months pro rata. Monthly plans are not refunded, but you can cancel at any time.

## How to request a refund

Open Billing > Invoices, pick the invoice and choose Request refund. Refunds reach your card in 5-10
business days.
""",
    "errors/e-1042.md": """# Error E-1042: SAML assertion expired

E-1042 appears when the identity provider's SAML assertion is older than five minutes. Check that the
clocks of your IdP and your servers are in sync (NTP), then sign in again.
""",
    "sso/okta.html": """<html><head><title>Set up SSO with Okta</title></head><body>
<h1>Set up SSO with Okta</h1><p>Orbitly supports SAML 2.0 single sign-on with Okta on the Business plan.</p>
<h2>Steps</h2><ol><li>In Okta, create a SAML app.</li><li>Paste the Orbitly ACS URL and entity ID.</li>
<li>Upload the Okta metadata XML in Settings &gt; Security &gt; SSO.</li></ol></body></html>""",
    "plans/sku.txt": """Hardware add-on SKU-88A is the Orbitly desk phone. It costs 79 dollars and ships in 3 days.
The SKU-88B headset costs 39 dollars.
""",
    "accounts/password.md": """# Reset your password

If you forgot your password, click Forgot password on the sign-in page and follow the link we email you.
The link is valid for one hour. Passwords need twelve characters.
""",
}


def write_corpus(root: Path, files: dict[str, str] | None = None) -> Path:
    for rel, text in (files or CORPUS).items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return root


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    return Embedder()


@dataclass
class KB:
    docs: PgDocumentStore
    vectors: object
    bm25: object
    retriever: Retriever
    ingestor: Ingestor
    embedder: Embedder


def pg_vectors(pool, embedder: Embedder) -> PgVectors:  # type: ignore[no-untyped-def]
    """The default store, as a fresh process would have it (its own dense cache)."""
    return PgVectors(PgKnowledgeStore(pool, embedder.dim, model_name(embedder)))


def make_kb(pool, embedder: Embedder, vectors=None, reranker=None, **cfg) -> KB:  # type: ignore[no-untyped-def]
    """Postgres store by default; pass a Qdrant store as ``vectors`` for the QDRANT_URL path (BM25 in memory)."""
    docs = PgDocumentStore(pool)
    vectors = vectors if vectors is not None else pg_vectors(pool, embedder)
    if isinstance(vectors, PgVectors):
        bm25 = PgLexical(vectors.store)
    elif getattr(vectors, "has_sparse", False):
        bm25 = QdrantLexical(vectors)
    else:
        bm25 = BM25Registry(docs, refresh_s=0.0)
    retriever = Retriever(docs, vectors, embedder, bm25, reranker, RetrieverConfig(**cfg))
    ingestor = Ingestor(docs, vectors, embedder, bm25, Chunker(embedder.count_tokens_batch, ChunkingConfig()))
    return KB(docs, vectors, bm25, retriever, ingestor, embedder)


async def vector_count(kb: KB, organization_id: str) -> int:
    n = kb.vectors.count(organization_id)  # type: ignore[attr-defined]
    return int(await n) if hasattr(n, "__await__") else int(n)


@pytest.fixture
def kb(pg_pool, embedder) -> KB:  # type: ignore[no-untyped-def]
    return make_kb(pg_pool, embedder)


@pytest.fixture(scope="session")
def corpus_dir(tmp_path_factory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("corpus") / "kb")


@pytest.fixture(scope="session")
async def two_orgs(pg_pool, embedder, corpus_dir):  # type: ignore[no-untyped-def]
    """Two organizations with different corpora, ingested once for the retrieval tests."""
    import uuid

    ids = []
    for _ in range(2):
        slug = "t-" + uuid.uuid4().hex[:12]
        row = await pg_pool.fetchrow("insert into organizations (slug, name) values ($1, $1) returning id", slug)
        ids.append(str(row["id"]))
    kb = make_kb(pg_pool, embedder)
    await kb.ingestor.ingest(corpus_dir, ids[0])
    other = write_corpus(corpus_dir.parent / "other", {
        "garden.md": "# Watering tomatoes\n\nWater tomato plants deeply twice a week; refunds and SAML are not"
                     " covered here. Error E-1042 is a sprinkler code.\n",
    })
    await kb.ingestor.ingest(other, ids[1])
    return ids[0], ids[1]
