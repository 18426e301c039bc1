"""`callwise integrations set|list|remove`: per-org vendor credentials, encrypted at rest.

Secrets are read from stdin (``name=value`` lines, or the bare value for a one-secret provider), never
from the command line (shell history, ``ps``) and never echoed; settings that are not secret (a Zendesk
subdomain, a Twilio account SID and number, a sender address, a Slack channel) are ``--field name=value``.
A Twilio number is stored as E.164. Each change writes ``audit_log`` (who, what: field and secret names,
never values).
"""

from __future__ import annotations

import sys
from typing import Any

import typer
from rich.table import Table

from callwise.cli.common import CommandError, console, echo_json, existing_org, fail, load_settings, run
from callwise.wiring.runtime import open_runtime

app = typer.Typer(help="Vendor credentials per organization (Zendesk, Slack, Twilio, SendGrid).", no_args_is_help=True)
ORG = typer.Option(None, "--org", help="Organization slug (default: CALLWISE_DEFAULT_ORG).")
JSON = typer.Option(False, "--json", help="Print JSON.")


def _fields(pairs: list[str]) -> dict[str, str]:
    out = {}
    for p in pairs:
        name, sep, value = p.partition("=")
        if not sep or not name.strip():
            raise typer.BadParameter(f"{p!r}: expected name=value", param_hint="--field")
        out[name.strip()] = value.strip()
    return out


def _actor() -> str:
    import getpass

    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


async def _audit(pool: Any, org_id: str, action: str, provider: str, details: dict[str, Any]) -> None:
    from callwise.integrations.outbox import audit

    await audit(pool, org_id, actor=_actor(), action=action, target_type="integration", target_id=provider,
                details=details)


def _read_secrets(provider: str) -> dict[str, str]:
    import getpass

    from callwise.integrations.credentials import PROVIDERS, parse_secret_lines

    spec = PROVIDERS[provider]
    if sys.stdin.isatty():  # prompt without echo
        out = {}
        for name in spec.secrets:
            value = getpass.getpass(f"{provider} {name} (empty to skip): ")
            if value.strip():
                out[name] = value.strip()
        return out
    return parse_secret_lines(sys.stdin.read(), spec)


@app.command("set")
def set_credentials(provider: str = typer.Argument(..., help="zendesk, slack, twilio or sendgrid."), org: str | None = ORG,
                    field: list[str] = typer.Option([], "--field", help="A non-secret setting, name=value (repeat)."),
                    json_out: bool = JSON) -> None:
    """Store PROVIDER's credentials for the org; secrets come from stdin (name=value lines)."""
    from callwise.integrations.credentials import PROVIDERS, CredentialError

    if provider not in PROVIDERS:
        raise typer.BadParameter(f"one of {', '.join(PROVIDERS)}", param_hint="PROVIDER")
    fields = _fields(field)
    try:
        secrets = _read_secrets(provider)
    except CredentialError as exc:
        fail(str(exc))
    settings = load_settings()
    if fields.get("from_number"):
        from callwise.integrations.phone import e164

        fields["from_number"] = e164(fields["from_number"], settings.default_phone_region) or fields["from_number"]

    async def go() -> list[Any]:
        from callwise.wiring.integrations import credential_store

        async with open_runtime(settings) as rt:
            store = credential_store(settings, rt.pool)
            org_id = await rt.org_id(org)
            try:
                await store.set(org_id, provider, secrets=secrets, fields=fields)
            except CredentialError as exc:
                raise CommandError(str(exc)) from None
            await _audit(rt.pool, org_id, "integration.set", provider,
                         {"fields": sorted(fields), "secrets": sorted(secrets)})
            return [i for i in await store.list(org_id) if i.provider == provider]

    infos = run(go)
    if json_out:
        echo_json({"stored": [i.as_dict() for i in infos]})
    else:
        console.print(f"{provider} credentials stored for {org or settings.default_org} (encrypted)")


@app.command("list")
def list_credentials(org: str | None = ORG, json_out: bool = JSON) -> None:
    """Configured providers with their settings; secrets masked."""
    from callwise.integrations.credentials import CredentialError

    settings = load_settings()

    async def go() -> list[Any]:
        from callwise.wiring.integrations import credential_store

        async with open_runtime(settings) as rt:
            org_id = await existing_org(rt.pool, settings, org)
            try:
                return await credential_store(settings, rt.pool).list(org_id)
            except CredentialError as exc:
                raise CommandError(str(exc)) from None

    infos = run(go)
    if json_out:
        echo_json({"integrations": [i.as_dict() for i in infos]})
        return
    if not infos:
        console.print("no integrations configured: escalations go to callwise's own case desk")
        return
    table = Table("provider", "status", "settings", "secrets", "updated", "last error")
    for i in infos:
        table.add_row(i.provider, i.status, ", ".join(f"{k}={v}" for k, v in i.fields.items()),
                      ", ".join(f"{k}={v}" for k, v in i.secrets.items()), f"{i.updated_at:%Y-%m-%d %H:%M}",
                      i.last_error or "")
    console.print(table)


@app.command("remove")
def remove_credentials(provider: str = typer.Argument(...), org: str | None = ORG, json_out: bool = JSON) -> None:
    """Delete PROVIDER's credentials for the org."""
    settings = load_settings()

    async def go() -> bool:
        from callwise.wiring.integrations import credential_store

        async with open_runtime(settings) as rt:
            org_id = await existing_org(rt.pool, settings, org)
            removed = await credential_store(settings, rt.pool).remove(org_id, provider)
            if removed:
                await _audit(rt.pool, org_id, "integration.remove", provider, {})
            return bool(removed)

    removed = run(go)
    if json_out:
        echo_json({"removed": removed})
    elif removed:
        console.print(f"{provider} credentials removed")
    else:
        fail(f"no {provider} credentials for this organization")


@app.command("connect")
def connect(provider: str = typer.Argument(..., help="hubspot or salesforce."), org: str | None = ORG,
            json_out: bool = JSON) -> None:
    """Print the URL that connects the org's CRM by OAuth (the link expires in 10 minutes and works once);
    `callwise serve` receives the callback on CALLWISE_PUBLIC_URL/v1/oauth/PROVIDER/callback."""
    from callwise.integrations.crm.oauth import OAuthError

    settings = load_settings()

    async def go() -> str:
        from callwise.integrations.crm.oauth import sign_state
        from callwise.wiring.crm import oauth_app, state_key

        try:
            app_ = oauth_app(settings, provider)
        except OAuthError as exc:
            raise CommandError(str(exc)) from None
        async with open_runtime(settings) as rt:
            org_id = await existing_org(rt.pool, settings, org)
        return app_.authorize(sign_state(state_key(settings), organization_id=org_id, provider=provider))

    url = run(go)
    if json_out:
        echo_json({"provider": provider, "authorize_url": url})
    else:
        console.print(f"Open this link as a {provider} admin to connect it (valid 10 minutes, once):\n{url}",
                      highlight=False, soft_wrap=True)


@app.command("sync")
def sync(org: str | None = ORG, json_out: bool = JSON) -> None:
    """CRM -> callwise: Salesforce contacts changed since the last sync (cursor on SystemModstamp) update the
    callers callwise knows; deleted ones are unlinked from their calls. HubSpot changes arrive by webhook."""
    settings = load_settings()

    async def go() -> dict[str, Any]:
        from callwise.integrations.crm.types import CRMError
        from callwise.wiring.crm import sync_org

        async with open_runtime(settings) as rt:
            org_id = await existing_org(rt.pool, settings, org)
            try:
                return await sync_org(settings, rt.pool, org_id)
            except CRMError as exc:
                raise CommandError(f"sync failed: {exc}") from None

    result = run(go)
    if json_out:
        echo_json(result)
    elif result.get("note"):
        console.print(result["note"])
    else:
        console.print(f"{result['provider']}: {result['updated']} caller(s) updated, {result['unlinked']} unlinked, "
                      f"{result['ignored']} change(s) to contacts that never called")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="integrations")
