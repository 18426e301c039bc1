"""One module per provider behind ``callwise.routing.providers.base.Provider``. Vendor SDKs are imported by
their modules only, so a missing optional SDK affects only that provider."""

from callwise.routing.providers.base import GenerationStream, Provider, ProviderError

__all__ = ["GenerationStream", "Provider", "ProviderError"]
