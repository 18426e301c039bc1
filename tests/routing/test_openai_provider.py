"""The openai SDK against a local server speaking the Chat Completions wire format."""

from __future__ import annotations

import math

import pytest

from callwise.routing.providers.base import ProviderError
from callwise.routing.providers.openai import OpenAIProvider
from callwise.routing.providers.openai_compatible import OpenAICompatibleProvider
from callwise.routing.types import Message
from tests.vendors.openai import FakeOpenAI

MSGS = [Message("system", "You are helpful."), Message("user", "How long do refunds take?")]


async def test_generate_counts_tokens_and_logprobs(fake_openai: FakeOpenAI) -> None:
    fake_openai.cached_tokens = 3
    p = OpenAIProvider("gpt-4o-mini", api_key="test", base_url=fake_openai.base_url)
    gen = await p.generate(MSGS, temperature=0.2, max_tokens=64, logprobs=True)
    assert gen.text == fake_openai.text
    assert gen.output_tokens == len(fake_openai.text.split())
    assert gen.input_tokens > 0 and gen.cached_tokens == 3
    assert gen.logprobs and all(math.isclose(lp, -0.05) for lp in gen.logprobs)
    body = fake_openai.chat_requests[-1].body
    assert body["max_completion_tokens"] == 64 and "max_tokens" not in body
    assert body["logprobs"] is True and body["model"] == "gpt-4o-mini"
    assert fake_openai.chat_requests[-1].headers["authorization"] == "Bearer test"


async def test_stream_yields_deltas_then_accounting(fake_openai: FakeOpenAI) -> None:
    p = OpenAIProvider("gpt-4o-mini", api_key="test", base_url=fake_openai.base_url)
    stream = p.stream(MSGS, max_tokens=64, logprobs=True)
    deltas = [d async for d in stream]
    assert len(deltas) > 3 and "".join(deltas) == fake_openai.text
    assert stream.result is not None
    assert stream.result.output_tokens == len(deltas) and stream.result.input_tokens > 0
    assert stream.result.ttft_ms is not None and stream.result.logprobs
    assert fake_openai.chat_requests[-1].body["stream_options"] == {"include_usage": True}


async def test_openai_compatible_sends_max_tokens(fake_openai: FakeOpenAI) -> None:
    p = OpenAICompatibleProvider("gemma3-270m", base_url=fake_openai.base_url)
    gen = await p.generate(MSGS, max_tokens=3, logprobs=True)
    body = fake_openai.chat_requests[-1].body
    assert body["max_tokens"] == 3 and "max_completion_tokens" not in body
    assert "logprobs" not in body  # off unless configured (slow on llama.cpp)
    assert gen.output_tokens == 3 and gen.finish_reason == "length"


@pytest.mark.parametrize("reply, retryable, status", [
    ("rate_limited", True, 429), ("server_error", True, 500), ("model_not_found", False, 404),
])
async def test_errors_are_translated(fake_openai: FakeOpenAI, reply: str, retryable: bool, status: int) -> None:
    fake_openai.enqueue(getattr(fake_openai, reply)())
    p = OpenAIProvider("gpt-4o-mini", api_key="test", base_url=fake_openai.base_url)
    with pytest.raises(ProviderError) as info:
        await p.generate(MSGS)
    assert info.value.retryable is retryable and info.value.status == status
    assert len(fake_openai.chat_requests) == 1  # the SDK's own retries are off


async def test_malformed_json_is_a_provider_error(fake_openai: FakeOpenAI) -> None:
    fake_openai.enqueue(fake_openai.malformed())
    p = OpenAIProvider("gpt-4o-mini", api_key="test", base_url=fake_openai.base_url)
    with pytest.raises(ProviderError):
        await p.generate(MSGS)


async def test_retry_after_header_is_read(fake_openai: FakeOpenAI) -> None:
    fake_openai.enqueue(fake_openai.rate_limited(retry_after=0.5))
    p = OpenAIProvider("gpt-4o-mini", api_key="test", base_url=fake_openai.base_url)
    with pytest.raises(ProviderError) as info:
        await p.generate(MSGS)
    assert info.value.retry_after == 0.5


async def test_openai_compatible_sends_alternating_turns(fake_openai: FakeOpenAI) -> None:
    """Local servers render the model's own chat template, and many assume alternating turns (Qwen 2.5
    echoed the question block when the sources and the question came as two user messages): runs of
    one role go as one message, the question last."""
    msgs = [Message("system", "Rules."), Message("system", "Voice."), Message("user", "Earlier question"),
            Message("assistant", "Earlier answer"), Message("user", "<sources>...</sources>"),
            Message("user", "<customer_question>How?</customer_question>")]
    await OpenAICompatibleProvider("qwen", base_url=fake_openai.base_url).generate(msgs)
    sent = fake_openai.chat_requests[-1].body["messages"]
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "user"]
    assert sent[0]["content"] == "Rules.\n\nVoice."
    assert sent[-1]["content"] == "<sources>...</sources>\n\n<customer_question>How?</customer_question>"
    await OpenAIProvider("gpt-4o-mini", api_key="t", base_url=fake_openai.base_url).generate(msgs)
    assert len(fake_openai.chat_requests[-1].body["messages"]) == 6  # OpenAI's own API takes them as they are
