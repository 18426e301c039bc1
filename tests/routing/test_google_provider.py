"""The google-genai SDK against a local server speaking the Gemini generateContent wire format."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest

from callwise.routing.providers.base import ProviderError
from callwise.routing.providers.google import GoogleProvider
from callwise.routing.types import Message
from tests.vendors.google import FakeGemini

MSGS = [Message("system", "You are helpful.", cache=True), Message("user", "Sources", cache=True),
        Message("user", "How long do refunds take?")]


@pytest.fixture
def fake() -> Iterator[FakeGemini]:
    with FakeGemini("Refunds take 5 to 7 business days.", cached_tokens=2) as f:
        yield f  # type: ignore[misc]


def provider(fake: FakeGemini, **kw: object) -> GoogleProvider:
    return GoogleProvider("gemini-2.5-flash", api_key="test-key", base_url=fake.url, **kw)  # type: ignore[arg-type]


async def test_generate(fake) -> None:
    gen = await provider(fake).generate(MSGS, temperature=0.1, max_tokens=64)
    assert gen.text == fake.text and gen.output_tokens == 7 and gen.input_tokens > 0 and gen.cached_tokens == 2
    assert gen.logprobs == [-0.05]
    req = fake.generate_requests[-1]
    assert req.path.endswith("/models/gemini-2.5-flash:generateContent")  # v1 or v1beta, per SDK version
    assert req.headers["x-goog-api-key"] == "test-key"
    body = req.body
    assert body["systemInstruction"]["parts"][0]["text"] == "You are helpful."
    assert [len(c["parts"]) for c in body["contents"]] == [2] and body["contents"][0]["role"] == "user"
    assert body["generationConfig"]["maxOutputTokens"] == 64
    assert list(body["generationConfig"]["thinkingConfig"].values()) == [0]  # thinkingBudget (SDK may send snake_case)


async def test_per_token_logprobs_when_requested(fake) -> None:
    gen = await provider(fake, request_logprobs=True).generate(MSGS, logprobs=True)
    assert fake.generate_requests[-1].body["generationConfig"]["responseLogprobs"] is True
    assert gen.logprobs and len(gen.logprobs) == 7 and math.isclose(gen.logprobs[0], -0.05)


async def test_stream(fake) -> None:
    s = provider(fake).stream(MSGS, max_tokens=64)
    deltas = [d async for d in s]
    assert "".join(deltas) == fake.text and len(deltas) == 7
    assert s.result.output_tokens == 7 and s.result.logprobs == [-0.05] and s.result.finish_reason == "STOP"
    assert fake.generate_requests[-1].query["alt"] == ["sse"]


@pytest.mark.parametrize("reply, retryable", [("rate_limited", True), ("server_error", True),
                                              ("model_not_found", False), ("malformed", False)])
async def test_errors(fake, reply: str, retryable: bool) -> None:
    fake.enqueue(getattr(fake, reply)())
    with pytest.raises(ProviderError) as info:
        await provider(fake).generate(MSGS)
    assert info.value.retryable is retryable
    assert len(fake.generate_requests) == 1  # the SDK's retries are off
