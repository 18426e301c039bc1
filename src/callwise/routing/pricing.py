"""Prices per million tokens and the cost of one generation."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Price:
    """USD per million tokens. ``cached`` is the cache-read price; ``cache_write`` the price of
    tokens written to a cache (Anthropic charges 1.25x input); both default to the input price."""

    input: float = 0.0
    output: float = 0.0
    cached: float | None = None
    cache_write: float | None = None

    def cost(self, input_tokens: int, output_tokens: int, cached_tokens: int = 0, cache_write_tokens: int = 0) -> float:
        """``input_tokens`` is the whole prompt, cached and cache-written tokens included."""
        plain = max(0, input_tokens - cached_tokens - cache_write_tokens)
        cached_price = self.input if self.cached is None else self.cached
        write_price = self.input if self.cache_write is None else self.cache_write
        usd = plain * self.input + cached_tokens * cached_price + cache_write_tokens * write_price
        usd += output_tokens * self.output
        return round(usd / 1_000_000, 10)


FREE = Price()
