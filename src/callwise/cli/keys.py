"""`callwise keys create|list|revoke --org ORG`: per-organization API keys with a role (viewer, agent, admin).

The key is printed once at creation and stored only as a hash; each change is written to ``audit_log`` with
the acting user (``--actor``, default the OS user).
"""

from __future__ import annotations

import getpass
from typing import Any

import typer
from rich.table import Table

from callwise.cli.common import CommandError, console, echo_json, existing_org, load_settings, run
from callwise.wiring.runtime import open_runtime

app = typer.Typer(help="Per-organization API keys: viewer reads; agent claims and resolves cases; admin manages "
                       "integrations, keys and budgets.", no_args_is_help=True)
ORG = typer.Option(None, "--org", help="Organization slug (default: CALLWISE_DEFAULT_ORG).")
JSON = typer.Option(False, "--json", help="Print JSON.")
ACTOR = typer.Option(None, "--actor", help="Who is doing this, for the audit log (default: the OS user).")


def _actor(actor: str | None) -> str:
    try:
        return actor or f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def _with_keys(org: str | None, fn: Any) -> Any:
    from callwise.api.auth import ApiKeyError, KeyStore

    settings = load_settings()

    async def go() -> Any:
        async with open_runtime(settings) as rt:
            org_id = await existing_org(rt.pool, settings, org)
            try:
                return await fn(KeyStore(rt.pool), org_id)
            except ApiKeyError as exc:
                raise CommandError(str(exc)) from None

    return run(go)


@app.command("create")
def create(role: str = typer.Option(..., "--role", help="viewer, agent or admin."), org: str | None = ORG,
           name: str = typer.Option("", "--name", help="Who the key is for; an agent key acts as this agent."),
           actor: str | None = ACTOR, json_out: bool = JSON) -> None:
    """A new key for the org; printed once, keep it."""

    async def fn(keys: Any, org_id: str) -> dict[str, Any]:
        key, info = await keys.create(org_id, role, name=name, actor=_actor(actor))
        return {"key": key, **info.as_dict()}

    d = _with_keys(org, fn)
    if json_out:
        echo_json(d)
        return
    console.print(f"{d['role']} key {d['prefix']} created; it is shown only now:", highlight=False)
    console.print(d["key"], highlight=False, markup=False)


@app.command("list")
def list_keys(org: str | None = ORG, revoked: bool = typer.Option(False, "--revoked", help="Include revoked keys."),
              json_out: bool = JSON) -> None:
    """The org's keys (prefix, role, name; never the key)."""

    async def fn(keys: Any, org_id: str) -> list[dict[str, Any]]:
        return [k.as_dict() for k in await keys.list(org_id, revoked=revoked)]

    rows = _with_keys(org, fn)
    if json_out:
        echo_json({"keys": rows})
        return
    if not rows:
        console.print("no keys")
        return
    table = Table()
    for col in ("prefix", "role", "name", "created", "by", "last used", "revoked"):
        table.add_column(col, no_wrap=True)
    for k in rows:
        table.add_row(k["prefix"], k["role"], k["name"], f"{k['created_at']:%Y-%m-%d %H:%M}", k["created_by"],
                      f"{k['last_used_at']:%Y-%m-%d %H:%M}" if k["last_used_at"] else "",
                      f"{k['revoked_at']:%Y-%m-%d %H:%M}" if k["revoked_at"] else "")
    console.print(table)


@app.command("revoke")
def revoke(key: str = typer.Argument(..., help="The key's prefix (or id)."), org: str | None = ORG,
           actor: str | None = ACTOR, json_out: bool = JSON) -> None:
    """Revoke a key: refused from the next request on."""

    async def fn(keys: Any, org_id: str) -> dict[str, Any]:
        return (await keys.revoke(org_id, key, actor=_actor(actor))).as_dict()

    d = _with_keys(org, fn)
    echo_json(d) if json_out else console.print(f"key {d['prefix']} revoked", highlight=False)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="keys")
