"""A dispatcher process killed (SIGKILL) after Zendesk created the ticket and before the row was marked:
the lease runs out, another dispatcher finds the ticket by external_id, and no second ticket is made."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from cryptography.fernet import Fernet

from callwise.calls.store import ConversationStore
from callwise.handoff.cases import CaseDesk
from callwise.integrations.actions import VendorConfig, build_handlers
from callwise.integrations.credentials import CredentialStore
from callwise.integrations.outbox import Dispatcher, enqueue, list_items
from tests.vendors.zendesk import ZendeskServer

ROOT = Path(__file__).resolve().parents[2]

CHILD = textwrap.dedent("""
    import asyncio, os, signal, sys
    import asyncpg
    from cryptography.fernet import Fernet
    from callwise.integrations.actions import VendorConfig, build_handlers
    from callwise.integrations.credentials import CredentialStore
    from callwise.integrations.outbox import Dispatcher

    url, key, org, zendesk = sys.argv[1:5]

    class DiesBeforeMarking(Dispatcher):
        async def _delivered(self, item, done, stats):
            print("sent", done.vendor_id, flush=True)
            os.kill(os.getpid(), signal.SIGKILL)

    async def main():
        pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
        creds = CredentialStore(pool, Fernet(key.encode()))
        d = DiesBeforeMarking(pool, build_handlers(pool, creds, VendorConfig(zendesk_base_url=zendesk)),
                              organization_id=org, lease_s=2.0)
        await d.run_once()

    asyncio.run(main())
""")


async def test_killed_dispatcher_process_does_not_duplicate_the_ticket(pg_pool, pg_url, org_id):
    key = Fernet.generate_key()
    creds = CredentialStore(pg_pool, Fernet(key))
    with ZendeskServer() as z:
        await creds.set(org_id, "zendesk", secrets={"access_token": z.access_token}, fields={"subdomain": "acme"})
        session = await ConversationStore(pg_pool, org_id).start_session(room="r", kind="support")
        async with pg_pool.acquire() as conn, conn.transaction():
            case = await CaseDesk(pg_pool, org_id).open(conn, session_id=session, reason="outage", handoff="callback",
                                                        details={"rule": "reported outage"}, status="callback")
            await enqueue(conn, organization_id=org_id, action="zendesk.ticket",
                          payload={"case_id": case.id, "case": case.label, "reason": "outage", "handoff": "callback"},
                          idempotency_key=f"{case.id}:ticket", case_id=case.id)
        child = subprocess.run([sys.executable, "-c", CHILD, pg_url, key.decode(), org_id, z.url], cwd=ROOT,
                               capture_output=True, text=True, timeout=120)
        assert child.returncode == -9, child.stderr  # SIGKILL, after the vendor answered
        assert child.stdout.startswith("sent ")
        assert z.creates == 1
        [row] = await list_items(pg_pool, org_id)
        assert row["status"] == "in_flight"  # nobody marked it
        d = Dispatcher(pg_pool, build_handlers(pg_pool, creds, VendorConfig(zendesk_base_url=z.url)),
                       organization_id=org_id)
        stats = await d.drain(timeout_s=15)
        assert stats.delivered == 1 and z.creates == 1  # found by external_id, not created again
        [row] = await list_items(pg_pool, org_id)
        assert row["status"] == "delivered" and row["attempts"] == 2
        assert (await CaseDesk(pg_pool, org_id).get(case.id)).ticket_id == json.loads(json.dumps(row["vendor_id"]))
