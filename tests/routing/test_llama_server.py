"""The ``openai_compatible`` tier against llama.cpp's real OpenAI-compatible server (Gemma 3 270M,
n_ctx 1024 so "over the window" is cheap to reach): streaming, usage, a prompt over the window
(the budget fits it; a server smaller than declared gets one smaller prompt), a timeout, and the
server killed mid-stream."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from callwise.routing.budget import ContextBudget, GGUFCounter
from callwise.routing.providers.base import ProviderError
from callwise.routing.providers.openai_compatible import OpenAICompatibleProvider
from callwise.routing.resilience import RetryPolicy
from callwise.routing.router import CascadingRouter, Tier
from callwise.routing.types import Message, SourceDoc
from tests.vendors.llama_server import ALIAS, HAS_LLAMA_SERVER, SKIP_REASON, LlamaServer, gemma_path

pytestmark = pytest.mark.skipif(not HAS_LLAMA_SERVER, reason=SKIP_REASON)
ORG = "00000000-0000-0000-0000-0000000000aa"
N_CTX = 1024
ONE_TRY = RetryPolicy(attempts=1)
SLOW = 300.0  # seconds a call may take: 2 shared cores can be very busy (timings are bench/, not tests)

PAGE = " ".join(
    f"Section {i}. To change a password in the account settings, open Security, choose Change password, "
    f"enter the old password and the new one twice, then press Save; the change applies at the next sign-in."
    for i in range(40))
PASSAGE = ("Section 20. To change a password in the account settings, open Security, choose Change password, "
           "enter the old password and the new one twice, then press Save; the change applies at the next sign-in.")


def manual_sources(n: int = 4) -> list[SourceDoc]:
    return [SourceDoc(i, f"manual/page{i}.html", f"Page {i}", PAGE, PASSAGE) for i in range(1, n + 1)]


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return gemma_path(tmp_path_factory.mktemp("models"))


@pytest.fixture
def server(llama_gemma: LlamaServer) -> LlamaServer:
    """The session's Gemma server (tests/conftest.py), whose window is N_CTX."""
    assert llama_gemma.n_ctx == N_CTX
    return llama_gemma


def provider(srv: LlamaServer, timeout_s: float = SLOW) -> OpenAICompatibleProvider:
    return OpenAICompatibleProvider(ALIAS, base_url=srv.base_url, timeout_s=timeout_s)


async def test_generate_and_stream_with_usage(server: LlamaServer) -> None:
    p = provider(server)
    msgs = [Message("system", "Answer briefly."), Message("user", "How do I change my password?")]
    gen = await p.generate(msgs, max_tokens=12, temperature=0.0)
    assert gen.text and gen.input_tokens > 5 and 0 < gen.output_tokens <= 12 and gen.model
    stream = p.stream(msgs, max_tokens=12, temperature=0.0)
    deltas = [d async for d in stream]
    res = stream.result
    assert res is not None and len(deltas) > 1 and "".join(deltas) == res.text
    assert res.ttft_ms is not None and res.ttft_ms <= res.latency_ms
    # usage on a stream: the server's own numbers when it sends them, else counted (never zero)
    assert res.input_tokens > 5 and 0 < res.output_tokens <= 12
    await p.aclose()


async def test_budget_keeps_a_long_grounded_prompt_inside_the_real_window(server: LlamaServer, model: Path) -> None:
    counter = GGUFCounter(model)  # the model's own tokenizer: the count the server will make
    budget = ContextBudget(window=N_CTX, input_budget=None, max_output=32)
    router = CascadingRouter([Tier("tier2", provider(server), max_tokens=32, budget=budget)], retry=ONE_TRY,
                             confidence_threshold=0.0, timeout_s=SLOW)
    ans = await router.answer("How do I change my password?", manual_sources(), modality="voice", organization_id=ORG)
    await router.aclose()
    rep = ans.context["tier2"]
    assert ans.tier == "tier2" and ans.error is None, ans.error
    assert rep["cut_tokens"] > 0 and not rep["retried_smaller"]
    assert ans.input_tokens + 32 <= N_CTX  # what the server counted fits its window
    # the estimate errs high: the server's count is within the estimate
    assert ans.input_tokens <= rep["prompt_tokens"] + 8
    assert counter.count(PASSAGE) > 20


async def test_a_server_smaller_than_declared_gets_one_smaller_prompt(server: LlamaServer) -> None:
    declared = ContextBudget(window=16_384, input_budget=6000, max_output=32)  # the tiers file is wrong
    router = CascadingRouter([Tier("tier2", provider(server), max_tokens=32, budget=declared)], retry=ONE_TRY,
                             confidence_threshold=0.0, timeout_s=SLOW)
    ans = await router.answer("How do I change my password?", manual_sources(), modality="voice", organization_id=ORG)
    await router.aclose()
    rep = ans.context["tier2"]
    assert ans.tier == "tier2" and not ans.escalate, ans.error
    assert rep["retried_smaller"] and rep["budget"]["window"] == N_CTX
    assert ans.input_tokens + 32 <= N_CTX


async def test_a_streamed_answer_over_the_window_gets_one_smaller_prompt(server: LlamaServer) -> None:
    """Streamed, llama.cpp 0.3.36 fails an over-window prompt after accepting it: an empty 200 or a
    dropped connection, at random (the error is only in its log). The provider asks once without
    streaming, gets the 400 with the window's numbers, and the router retries once, smaller."""
    declared = ContextBudget(window=16_384, input_budget=6000, max_output=24)
    router = CascadingRouter([Tier("tier2", provider(server), max_tokens=24, budget=declared)], retry=ONE_TRY,
                             confidence_threshold=0.0, timeout_s=SLOW, first_word_s=None)
    stream = router.answer_stream("How do I change my password?", manual_sources(), modality="voice",
                                  organization_id=ORG)
    deltas = [d async for d in stream]
    ans = stream.result
    await router.aclose()
    assert ans is not None and ans.tier == "tier2" and deltas, ans.error
    assert ans.context["tier2"]["retried_smaller"] and ans.context["tier2"]["budget"]["window"] == N_CTX


async def test_a_stream_over_the_window_is_a_length_rejection_every_time(server: LlamaServer) -> None:
    """Whichever way the server fails the stream (empty 200 or dropped connection), the provider
    reports a length rejection with the server's window, never an outage."""
    p = provider(server)
    big = [Message("user", PAGE * 3)]  # about 3,000 tokens against a 1,024 window
    for _ in range(4):
        with pytest.raises(ProviderError) as err:
            _ = [d async for d in p.stream(big, max_tokens=8)]
        assert err.value.overflow and "1024" in str(err.value), err.value
    await p.aclose()


async def test_a_server_dead_before_any_output_is_an_outage_not_a_length_rejection(
        model: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    """The server stops answering (SIGSTOP) with the request accepted, then is killed: the stream
    drops before any output, the provider asks once more, finds nothing listening, and reports a
    retryable outage, not a length rejection (a large prompt must not be mistaken for one)."""
    srv = LlamaServer.start(model, n_ctx=N_CTX, log_dir=tmp_path_factory.mktemp("llama-dead"))
    try:
        p = provider(srv)
        os.kill(srv.proc.pid, signal.SIGSTOP)
        task = asyncio.ensure_future(_drain(p.stream([Message("user", PAGE * 3)], max_tokens=8)))
        await asyncio.sleep(0.5)  # the connection is accepted by the kernel, the request unanswered
        srv.kill()
        with pytest.raises(ProviderError) as err:
            await task
        assert err.value.retryable and not err.value.overflow, err.value
        await p.aclose()
    finally:
        srv.kill()


async def _drain(stream: AsyncIterator[str]) -> list[str]:
    return [d async for d in stream]


async def test_without_a_budget_the_same_question_fails_for_length(server: LlamaServer) -> None:
    router = CascadingRouter([Tier("tier2", provider(server), max_tokens=32, budget=None)], retry=ONE_TRY,
                             timeout_s=SLOW)
    ans = await router.answer("How do I change my password?", manual_sources(), modality="voice", organization_id=ORG)
    await router.aclose()
    assert ans.tier is None and ans.escalate and "context" in (ans.error or "").lower()


async def test_timeout_is_a_retryable_provider_error(server: LlamaServer) -> None:
    p = provider(server, timeout_s=0.05)
    with pytest.raises(ProviderError) as err:
        await p.generate([Message("user", "Tell me a long story about passwords.")], max_tokens=64)
    assert err.value.retryable
    await p.aclose()
    await asyncio.sleep(1.5)  # let the server finish the abandoned request before the next test


async def test_server_killed_mid_stream(model: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    """The caller has heard some words when the server dies: no second answer starts, the router
    does not raise, the words already out stay, the apology follows and the turn escalates."""
    srv = LlamaServer.start(model, n_ctx=N_CTX, log_dir=tmp_path_factory.mktemp("llama-kill"))
    try:
        router = CascadingRouter([Tier("tier2", provider(srv), max_tokens=200)], retry=ONE_TRY, timeout_s=SLOW,
                                 first_word_s=None)  # no live deadline: this test is about the dropped stream
        short = [SourceDoc(1, "manual/passwords.html", "Passwords", PASSAGE, PASSAGE)]
        stream = router.answer_stream("Tell me everything about passwords.", short, organization_id=ORG,
                                      modality="text")
        spoken: list[str] = []
        async for delta in stream:
            spoken.append(delta)
            if len(spoken) == 3:
                srv.kill()
        ans = stream.result
        assert ans is not None and ans.escalate and ans.tier is None
        assert len(spoken) > 3 and spoken[-1] == router.apology  # the words out stay; the apology follows
        assert "tier2" in (ans.error or "") and ("Connection" in ans.error or "mid-answer" in ans.error), ans.error
        await router.aclose()
    finally:
        srv.kill()
