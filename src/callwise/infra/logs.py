"""Structured logging: one line per event, plain ``key=value`` or JSON, secrets redacted.

Redaction happens in a filter on the root handler, so it covers third-party loggers too:
every secret value from the settings is replaced, and common key shapes (``sk-...``,
``Bearer ...``, ``api_key=...``, URL passwords) are masked even when we never saw the value.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from collections.abc import Iterable
from typing import Any

_PATTERNS = [
    (re.compile(r"\b(sk|pk|rk)-(?:ant-|proj-|live-|test-)?[A-Za-z0-9_\-]{12,}"), "****"),
    (re.compile(r"(?i)\b(bearer|token)\s+[A-Za-z0-9._\-]{12,}"), r"\1 ****"),
    (re.compile(r"(?i)((?:api[_-]?key|secret|password|token|authorization)[\"']?\s*[:=]\s*[\"']?)[^\s\"'&,}]+"), r"\1****"),
    (re.compile(r"(://[^:/@\s]+:)[^@\s]+(@)"), r"\1****\2"),
    (re.compile(r"hooks\.slack\.com/services/[A-Za-z0-9/]+"), "hooks.slack.com/services/****"),
]

_RESERVED = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class SecretRedactor(logging.Filter):
    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        known = sorted(_KNOWN_SECRETS - set(self._secrets), key=len, reverse=True)  # registered after start-up
        for s in [*self._secrets, *known]:
            text = text.replace(s, "****")
        for pattern, repl in _PATTERNS:
            text = pattern.sub(repl, text)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.redact(record.getMessage())
        record.args = None
        for key, value in list(vars(record).items()):
            if key not in _RESERVED and isinstance(value, str):
                setattr(record, key, self.redact(value))
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = self.redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


_KNOWN_SECRETS: set[str] = set()


def register_secrets(values: Iterable[str]) -> None:
    """Secret values this process holds; ``redact`` masks them wherever text leaves (logs, errors)."""
    _KNOWN_SECRETS.update(v for v in values if v and len(v) >= 4)


def redact(text: str) -> str:
    """``text`` with every registered secret and every common key shape masked (vendor error
    bodies echo keys back: such text must not reach a report, a stored row or a response)."""
    return SecretRedactor(_KNOWN_SECRETS).redact(text)


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _RESERVED and not k.startswith("_")}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        event: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        event.update(_extras(record))
        if record.exc_text:
            event["exc"] = record.exc_text
        return json.dumps(event, default=str)


class KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ts = time.strftime("%H:%M:%S", time.localtime(record.created))
        parts = [f"{ts} {record.levelname.lower():7s} {record.name}: {record.getMessage()}"]
        parts += [f"{k}={v}" for k, v in _extras(record).items()]
        line = " ".join(parts)
        if record.exc_text:
            line += " exc=" + json.dumps(record.exc_text)
        return line


class _CurrentStderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to ``sys.stderr`` as it is at each record: a test runner or a CLI runner swaps it and closes
    the one it had, and a handler holding that closed stream fails on every later record."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def configure_logging(level: str = "INFO", *, json_lines: bool = False, secrets: Iterable[str] = (),
                      stream: Any = None) -> SecretRedactor:
    """Install one redacting handler on the root logger (idempotent)."""
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "_callwise", False):
            root.removeHandler(h)
    handler = logging.StreamHandler(stream) if stream is not None else _CurrentStderr()
    handler._callwise = True  # type: ignore[attr-defined]
    secrets = list(secrets)
    register_secrets(secrets)
    redactor = SecretRedactor(secrets)
    handler.addFilter(redactor)
    handler.setFormatter(JsonFormatter() if json_lines else KeyValueFormatter())
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("httpx", "httpcore", "urllib3", "asyncio", "filelock", "sentence_transformers", "faster_whisper"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    return redactor


def settings_secrets(settings: Any) -> list[str]:
    from pydantic import SecretStr

    return [v.get_secret_value() for v in (getattr(settings, n) for n in type(settings).model_fields)
            if isinstance(v, SecretStr)]
