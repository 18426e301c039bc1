"""Shared CLI plumbing: settings loading, one-line errors, running coroutines."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable, Coroutine
from typing import Any, NoReturn, TypeVar

import typer
from pydantic import ValidationError
from pydantic_settings import SettingsError
from rich.console import Console

from callwise.infra.db import DatabaseError
from callwise.infra.logs import configure_logging, settings_secrets
from callwise.migrations.runner import MigrationError
from callwise.wiring.settings import Settings, env_name

T = TypeVar("T")
console = Console()
err_console = Console(stderr=True)


class CommandError(RuntimeError):
    """An error the CLI prints as one line and exits non-zero on."""


def fail(message: str, code: int = 2) -> NoReturn:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def validation_message(exc: ValidationError) -> str:
    parts = []
    for e in exc.errors():
        field = str(e["loc"][0]) if e.get("loc") else ""
        var = env_name(field) if field in Settings.model_fields else field or "settings"
        parts.append(f"{var}: {e['msg']}")
    return "invalid configuration: " + "; ".join(parts)


def load_settings() -> Settings:
    try:
        settings = Settings()
    except ValidationError as exc:
        fail(validation_message(exc))
    except SettingsError as exc:
        fail(f"invalid configuration: {exc}")
    configure_logging(settings.log_level, json_lines=settings.log_json, secrets=settings_secrets(settings))
    return settings


def _store_error() -> type[Exception]:
    """The knowledge store's one-line errors (imported only once an exception is on its way)."""
    from callwise.knowledge.pgstore import StoreError

    return StoreError


def run(fn: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine, turning expected failures into one clear line and exit code 2."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from callwise.infra.signals import Stopped, run_until_signal

    try:
        return asyncio.run(run_until_signal(fn))  # SIGTERM/SIGINT: a clean shutdown (issue 20)
    except (DatabaseError, MigrationError, CommandError, _store_error()) as exc:
        fail(str(exc))
    except Stopped as exc:
        err_console.print(str(exc))
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        err_console.print("interrupted")
        raise typer.Exit(130) from None


def echo_json(obj: Any) -> None:
    import json

    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")


async def existing_org(pool: Any, settings: Settings, org: str | None, hint: str = "") -> str:
    """The id of ``org`` (default: CALLWISE_DEFAULT_ORG); a CommandError naming it when it does not exist."""
    from callwise.infra.db import find_organization

    slug = org or settings.default_org
    org_id = await find_organization(pool, slug)
    if org_id is None:
        raise CommandError(f"unknown organization {slug!r}{hint}")
    return org_id
