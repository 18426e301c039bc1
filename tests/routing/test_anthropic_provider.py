"""The anthropic SDK against a local server speaking the Messages wire format, prompt caching included."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from callwise.routing.pricing import Price
from callwise.routing.prompts import PromptLibrary
from callwise.routing.providers.anthropic import AnthropicProvider
from callwise.routing.providers.base import ProviderError
from tests.vendors.anthropic import FakeAnthropic


@pytest.fixture
def fake() -> Iterator[FakeAnthropic]:
    with FakeAnthropic("Refunds are processed within 5 to 7 business days.") as f:
        yield f  # type: ignore[misc]


def messages(refund_sources, question: str = "How long do refunds take?"):  # type: ignore[no-untyped-def]
    return PromptLibrary().build(question, refund_sources, tier="tier3", modality="voice")


async def test_cache_control_on_system_and_sources_and_cache_reads(fake, refund_sources) -> None:
    p = AnthropicProvider("claude-sonnet-4-5", api_key="test", base_url=fake.base_url)
    first = await p.generate(messages(refund_sources), max_tokens=100)
    body = fake.message_requests[-1].body
    assert body["system"][0]["cache_control"] == {"type": "ephemeral"}
    user = body["messages"][0]
    assert user["role"] == "user" and len(body["messages"]) == 1  # consecutive user blocks merged
    assert user["content"][0]["cache_control"] == {"type": "ephemeral"} and "<sources>" in user["content"][0]["text"]
    assert "cache_control" not in user["content"][1] and "<customer_question>" in user["content"][1]["text"]
    h = fake.message_requests[-1].headers
    assert h.get("x-api-key") == "test" or h.get("authorization") == "Bearer test"
    assert "anthropic-version" in h
    assert first.cache_write_tokens > 0 and first.cached_tokens == 0
    second = await p.generate(messages(refund_sources, "And to PayPal?"), max_tokens=100)
    assert second.cached_tokens == first.cache_write_tokens and second.cache_write_tokens == 0
    assert second.input_tokens > second.cached_tokens and second.text.startswith("Refunds")
    # cache reads are billed at the cache-read price
    price = Price(3.0, 15.0, 0.30, 3.75)
    assert price.cost(second.input_tokens, second.output_tokens, second.cached_tokens) < \
        price.cost(second.input_tokens, second.output_tokens)


async def test_stream_events_and_usage(fake, refund_sources) -> None:
    p = AnthropicProvider("claude-sonnet-4-5", api_key="test", base_url=fake.base_url)
    s = p.stream(messages(refund_sources), max_tokens=100)
    deltas = [d async for d in s]
    assert "".join(deltas) == fake.text and len(deltas) > 3
    assert s.result.output_tokens == len(deltas) and s.result.cache_write_tokens > 0
    assert s.result.finish_reason == "end_turn" and s.result.ttft_ms is not None


@pytest.mark.parametrize("reply, retryable", [("rate_limited", True), ("model_not_found", False), ("malformed", False)])
async def test_errors(fake, refund_sources, reply: str, retryable: bool) -> None:
    fake.enqueue(getattr(fake, reply)())
    p = AnthropicProvider("claude-sonnet-4-5", api_key="test", base_url=fake.base_url)
    with pytest.raises(ProviderError) as info:
        await p.generate(messages(refund_sources))
    assert info.value.retryable is retryable and len(fake.message_requests) == 1


async def test_overloaded_529_is_retryable(fake, refund_sources) -> None:
    fake.enqueue(fake.server_error(529))
    p = AnthropicProvider("claude-sonnet-4-5", api_key="test", base_url=fake.base_url)
    with pytest.raises(ProviderError) as info:
        await p.generate(messages(refund_sources))
    assert info.value.retryable and info.value.status == 529
