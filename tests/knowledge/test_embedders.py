"""Cloud embedders (Cohere through its SDK, OpenAI through its SDK, Voyage over httpx) against local
servers in each vendor's wire format, and re-embedding a knowledge base when the model changes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from callwise.knowledge.embedders import EmbeddingError, build_cloud_embedder, embedder_from_settings
from callwise.knowledge.embedders.cohere import CohereEmbedder
from callwise.knowledge.embedders.openai import OpenAIEmbedder
from callwise.knowledge.embedders.voyage import VoyageEmbedder
from tests.vendors._http import Reply
from tests.vendors.cohere_embed import CohereEmbedServer
from tests.vendors.openai_embed import OpenAIEmbedServer
from tests.vendors.voyage import VoyageServer

TEXTS = ["Refunds reach your card in 5-10 business days.", "Reset your password from the sign-in page.",
         "SAML assertions expire after five minutes."]


def _cases():  # type: ignore[no-untyped-def]
    return [
        ("cohere", CohereEmbedServer, lambda url: CohereEmbedder(CohereEmbedServer.API_KEY, "embed-english-light-v3.0",
                                                                 base_url=url, max_retries=0), 384),
        ("openai", OpenAIEmbedServer, lambda url: OpenAIEmbedder(OpenAIEmbedServer.API_KEY, "text-embedding-3-small",
                                                                 base_url=url + "/v1", max_retries=0), 1536),
        ("voyage", VoyageServer, lambda url: VoyageEmbedder(VoyageServer.API_KEY, "voyage-3-lite", base_url=url + "/v1",
                                                            max_retries=0), 512),
    ]


@pytest.mark.parametrize("vendor,server_cls,make,dim", _cases(), ids=["cohere", "openai", "voyage"])
def test_cloud_embedder_batches_normalises_and_separates_queries(vendor, server_cls, make, dim) -> None:  # type: ignore[no-untyped-def]
    with server_cls() as server:
        emb = make(server.url)
        emb.batch_size = 2
        seen: list[tuple[int, int]] = []
        vecs = emb.encode(TEXTS, progress=lambda done, total: seen.append((done, total)))
        assert vecs.shape == (3, dim) and vecs.dtype == np.float32 and emb.dim == dim
        assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
        assert len(server.requests) == 2 and seen == [(2, 3), (3, 3)], "3 texts in batches of 2"
        q = emb.encode_query("how long until my refund arrives on my card")
        assert q.shape == (dim,) and int(np.argmax(vecs @ q)) == 0
        assert emb.model_path.startswith(f"{vendor}:") and emb.requests == 3 and emb.tokens_billed > 0
        bodies = [r.json for r in server.requests]
        if vendor == "cohere":
            assert [b["input_type"] for b in bodies] == ["search_document", "search_document", "search_query"]
            assert bodies[0]["embedding_types"] == ["float"] and bodies[0]["truncate"] == "END"
        elif vendor == "voyage":
            assert [b["input_type"] for b in bodies] == ["document", "document", "query"]
            assert bodies[0]["truncation"] is True
        else:
            assert bodies[0]["input"] == TEXTS[:2]
        assert emb.count_tokens_batch(["a b c d e f", "unbelievable"]) == [6, 1], "WordPiece counts for the chunker"


def test_openai_dimensions_and_blank_text() -> None:
    with OpenAIEmbedServer() as server:
        emb = OpenAIEmbedder(OpenAIEmbedServer.API_KEY, "text-embedding-3-large", base_url=server.url + "/v1",
                             dimensions=256, max_retries=0)
        vecs = emb.encode(["", "some text"])  # the API rejects empty strings: a blank chunk still gets a vector
        assert vecs.shape == (2, 256) and server.requests[0].json["dimensions"] == 256


@pytest.mark.parametrize("vendor,server_cls,make,dim", _cases(), ids=["cohere", "openai", "voyage"])
def test_cloud_embedder_errors_name_the_vendor_and_status(vendor, server_cls, make, dim) -> None:  # type: ignore[no-untyped-def]
    with server_cls() as server:
        emb = make(server.url)
        server.API_KEY = "another-key"  # the embedder's key is now wrong
        with pytest.raises(EmbeddingError, match=rf"{vendor}: .*HTTP 401") as err:
            emb.encode(["hello there"])
        assert err.value.status == 401 and not err.value.retryable
        server.API_KEY = type(server).API_KEY
        server.enqueue(Reply(200, b"this is not json"))
        with pytest.raises(EmbeddingError, match=vendor):
            emb.encode(["hello there"])


def test_voyage_retries_rate_limits_honouring_retry_after() -> None:
    with VoyageServer() as server:
        server.enqueue(Reply(429, {"detail": "rate limited"}, {"retry-after": "0"}), Reply(503, {"detail": "busy"}))
        emb = VoyageEmbedder(VoyageServer.API_KEY, "voyage-3.5", base_url=server.url + "/v1", backoff_s=0.01)
        assert emb.encode(["hello there"]).shape == (1, 1024) and len(server.requests) == 3
        server.enqueue(*[Reply(429, {"detail": "rate limited"}, {"retry-after": "0"})] * 3)
        with pytest.raises(EmbeddingError, match="HTTP 429") as err:
            emb.encode(["hello again"])
        assert err.value.retryable


def test_settings_pick_the_provider_key_and_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    from callwise.wiring.settings import Settings

    with VoyageServer() as server:
        monkeypatch.setenv("CALLWISE_EMBEDDING_PROVIDER", "voyage")
        monkeypatch.setenv("VOYAGE_API_KEY", VoyageServer.API_KEY)
        monkeypatch.setenv("VOYAGE_BASE_URL", server.url + "/v1")
        monkeypatch.setenv("CALLWISE_EMBEDDING_DIMENSIONS", "256")
        emb = embedder_from_settings(Settings(_env_file=None))
        assert isinstance(emb, VoyageEmbedder) and emb.model == "voyage-3.5" and emb.dim == 256
        assert emb.encode(["a text"]).shape == (1, 256) and server.requests[-1].json["output_dimension"] == 256
        monkeypatch.delenv("VOYAGE_API_KEY")
        with pytest.raises(ValueError, match="CALLWISE_EMBEDDING_PROVIDER=voyage needs VOYAGE_API_KEY"):
            Settings(_env_file=None)
    with pytest.raises(ValueError, match="unknown embedding provider"):
        build_cloud_embedder("acme", "key")


async def test_reembed_switches_the_model_of_an_organization(pg_pool, org_id, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from callwise.knowledge.chunking import Chunker, ChunkingConfig
    from callwise.knowledge.docstore import PgDocumentStore
    from callwise.knowledge.embedders.reembed import model_name, needs_reembed, reembed, stored_model
    from callwise.knowledge.ingest import Ingestor
    from callwise.knowledge.pgstore import PgKnowledgeStore, PgLexical, PgVectors, StoreError
    from callwise.knowledge.retriever import Retriever, RetrieverConfig
    from tests.knowledge.conftest import write_corpus

    def kb(emb):  # type: ignore[no-untyped-def]
        vectors = PgVectors(PgKnowledgeStore(pg_pool, emb.dim, model_name(emb)))
        docs, bm25 = PgDocumentStore(pg_pool), PgLexical(vectors.store)
        return (Ingestor(docs, vectors, emb, bm25, Chunker(emb.count_tokens_batch, ChunkingConfig())),
                Retriever(docs, vectors, emb, bm25, None, RetrieverConfig()))

    root = write_corpus(tmp_path / "kb")
    with CohereEmbedServer() as co, VoyageServer() as vo:
        old = CohereEmbedder(CohereEmbedServer.API_KEY, "embed-english-light-v3.0", base_url=co.url)
        ingestor, _ = kb(old)
        await ingestor.ingest(root, org_id)
        assert await stored_model(pg_pool, org_id) == ("cohere:embed-english-light-v3.0", 384)

        new = VoyageEmbedder(VoyageServer.API_KEY, "voyage-3-lite", base_url=vo.url + "/v1")
        assert await needs_reembed(pg_pool, org_id, new) and not await needs_reembed(pg_pool, org_id, old)
        _, retriever = kb(new)
        with pytest.raises(StoreError, match="dimensions"):
            await retriever.retrieve("how long do refunds take", org_id, mode="vector")
        n_chunks = await pg_pool.fetchval("select count(*) from chunks where organization_id = $1", org_id)
        seen: list[int] = []
        rep = await reembed(pg_pool, org_id, new, progress=lambda done, total: seen.append(done))
        assert rep.chunks == n_chunks and rep.model == "voyage:voyage-3-lite" and rep.dim == 512
        assert rep.model_before == "cohere:embed-english-light-v3.0" and seen and seen[-1] < n_chunks + 1
        assert await stored_model(pg_pool, org_id) == ("voyage:voyage-3-lite", 512)
        _, retriever = kb(new)
        res = await retriever.retrieve("how long do refunds take to reach my card", org_id, mode="vector")
        assert res.chunks and res.chunks[0].document.endswith("refunds.md")
        widths = await pg_pool.fetch("select distinct length(embedding) as w from chunks where organization_id = $1",
                                     org_id)
        assert [r["w"] for r in widths] == [512 * 4], "every vector, parents included, was rewritten"
