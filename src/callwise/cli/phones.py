"""`callwise phones normalize`: stored phone numbers rewritten to E.164 (``callwise.integrations.phone_rewrite``)."""

from __future__ import annotations

from typing import Any

import typer
from rich.table import Table

from callwise.cli.common import console, echo_json, existing_org, fail, load_settings, run
from callwise.wiring.runtime import open_runtime

app = typer.Typer(help="Phone numbers stored by callwise.", no_args_is_help=True)


def _actor() -> str:
    import getpass

    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


@app.command("normalize")
def normalize(
    org: str = typer.Option(None, "--org", help="Only this organization (default: every organization)."),
    region: str = typer.Option(None, "--region", help="Region of numbers written without a country code "
                                                      "(default CALLWISE_DEFAULT_PHONE_REGION)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Report what would change; change nothing."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Rewrite the phone numbers stored before numbers were normalised (the Twilio number, CRM contacts, SMS
    surveys, pending SMS, the CRM cache) to E.164. Idempotent; numbers that cannot be read are left as they
    are and listed. Each organization's counts go to its audit log."""
    import phonenumbers

    from callwise.integrations.outbox import audit
    from callwise.integrations.phone_rewrite import normalize_phones

    settings = load_settings()
    region = (region or settings.default_phone_region).upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        fail(f"--region {region!r} is not a region phonenumbers knows (two letters, e.g. US, GB, DE)")

    async def go() -> Any:
        async with open_runtime(settings) as rt:
            org_id = await existing_org(rt.pool, settings, org) if org else None
            return await normalize_phones(rt.pool, region=region, organization_id=org_id, dry_run=dry_run,
                                          actor=_actor(), audit=audit)

    report = run(go)
    if json_out:
        echo_json(report.as_dict())
        return
    verb = "would rewrite" if dry_run else "rewrote"
    console.print(f"{verb} {len(report.rewritten)} numbers to E.164 (region {region}); "
                  f"{report.already_e164} already E.164; {len(report.unparseable)} left as they are"
                  + (f"; {len(report.dropped)} stale cache rows dropped" if report.dropped else ""), highlight=False)
    if report.rewritten:
        table = Table("where", "row", "before", "after", title="rewritten")
        for c in report.rewritten:
            table.add_row(c.place, c.row, c.before, c.after or "")
        console.print(table)
    if report.unparseable:
        table = Table("where", "row", "value", title="not a phone number phonenumbers can read: left as it is")
        for c in report.unparseable:
            table.add_row(c.place, c.row, c.before)
        console.print(table)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="phones")
