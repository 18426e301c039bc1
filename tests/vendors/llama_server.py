"""A real OpenAI-compatible server for tests: llama.cpp's own (``python -m llama_cpp.server``) with
the small packaged Gemma 3 270M model. Not a fake: the point is the protocol as a real server
speaks it (streaming, usage, context-length errors, a dropped connection), not answer quality.

    with LlamaServer.start(model_path, n_ctx=1024) as srv:
        client = openai.OpenAI(base_url=srv.base_url, api_key="none")

``HAS_LLAMA_SERVER`` is False where the ``local-llm`` extra (llama-cpp-python[server]) is missing;
tests skip then, as the local tier's tests do.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

HAS_LLAMA_SERVER = all(importlib.util.find_spec(m) is not None
                       for m in ("llama_cpp", "fastapi", "uvicorn", "sse_starlette", "starlette_context"))
SKIP_REASON = "llama-cpp-python[server] is not installed (pip install 'callwise[local-llm]')"
ALIAS = "gemma3-270m"


def gemma_path(cache_dir: Path) -> Path:
    """The packaged Gemma GGUF, assembled once (``CALLWISE_TEST_MODEL_DIR`` shares it across runs)."""
    from callwise.routing.providers.local import default_model_path

    return default_model_path(Path(os.environ.get("CALLWISE_TEST_MODEL_DIR", str(cache_dir))))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LlamaServer:
    proc: subprocess.Popen[bytes]
    port: int
    n_ctx: int
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @classmethod
    def start(cls, model: Path, *, n_ctx: int = 1024, log_dir: Path, chat_format: str = "gemma",
              alias: str = ALIAS, ready_s: float = 90.0, extra: tuple[str, ...] = ()) -> LlamaServer:
        port = free_port()
        log_path = log_dir / f"llama-server-{port}.log"
        cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--model_alias", alias,
               "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(n_ctx), "--n_threads", "2",
               "--chat_format", chat_format, *extra]
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        srv = cls(proc, port, n_ctx, log_path)
        deadline = time.monotonic() + ready_s
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited with {proc.returncode}: {log_path.read_text()[-2000:]}")
            try:
                if httpx.get(srv.base_url + "/models", timeout=1.0).status_code == 200:
                    return srv
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        srv.kill()
        raise RuntimeError(f"llama_cpp.server not ready after {ready_s:.0f}s: {log_path.read_text()[-2000:]}")

    def kill(self) -> None:
        """SIGKILL (llama.cpp's server waits for an in-flight generation on SIGTERM)."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def __enter__(self) -> LlamaServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()
