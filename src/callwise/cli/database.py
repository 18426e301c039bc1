"""`callwise config`, `callwise migrate`, `callwise db status`, `callwise db stop`."""

from __future__ import annotations

import typer
from rich.table import Table

from callwise.cli.common import console, echo_json, load_settings, run
from callwise.migrations import runner
from callwise.wiring.runtime import open_runtime

db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)


def config(json_out: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Print the effective settings, secrets masked."""
    settings = load_settings()
    masked = settings.masked()
    if json_out:
        echo_json(masked)
        return
    table = Table("setting", "value", title="effective settings")
    for k, v in masked.items():
        table.add_row(k, "" if v is None else str(v))
    console.print(table)


def migrate() -> None:
    """Apply pending migrations (also done at start-up)."""
    settings = load_settings()

    async def go() -> None:
        async with open_runtime(settings, migrate=False) as rt:
            applied = await runner.migrate(rt.pool)
            if not applied:
                console.print("database is up to date")
            for m in applied:
                console.print(f"applied {m.filename}")

    run(go)


@db_app.command("status")
def status() -> None:
    """List applied and pending migrations."""
    settings = load_settings()

    async def go() -> None:
        async with open_runtime(settings, migrate=False) as rt:
            states = await runner.status(rt.pool)
        table = Table("version", "file", "state", "applied at")
        for s in states:
            table.add_row(f"{s.migration.version:04d}", s.migration.filename,
                          "applied" if s.applied else "pending", str(s.applied_at or ""))
        console.print(table)
        pending = sum(not s.applied for s in states)
        console.print(f"{len(states) - pending} applied, {pending} pending")

    run(go)


@db_app.command("stop")
def stop() -> None:
    """Stop the embedded Postgres now, even while callwise processes use it (it also stops when the last one exits)."""
    from callwise.cli.common import fail
    from callwise.infra.db import EmbeddedPostgres

    settings = load_settings()
    if settings.database_url is not None:
        fail("DATABASE_URL is set: that server is not callwise's to stop")
    stopped, users = EmbeddedPostgres(settings.data_dir).force_stop()
    if not stopped:
        console.print(f"the embedded Postgres in {settings.data_dir} is not running")
        return
    still = f" (it was in use by pid {', '.join(map(str, users))})" if users else ""
    console.print(f"stopped the embedded Postgres in {settings.data_dir}{still}")


def register(app: typer.Typer) -> None:
    app.command("config")(config)
    app.command("migrate")(migrate)
    app.add_typer(db_app, name="db")
