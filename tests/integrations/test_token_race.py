"""Two processes refresh one org's Zendesk token at the same moment (Zendesk rotates: only the first refresh
is accepted). The loser must carry on with the winner's stored pair, not mark the integration needs_reauth."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

from cryptography.fernet import Fernet

from callwise.calls.store import ConversationStore
from callwise.handoff.cases import CaseDesk
from callwise.integrations.credentials import CredentialStore
from callwise.integrations.outbox import enqueue, list_items
from tests.vendors.zendesk import ZendeskServer

ROOT = Path(__file__).resolve().parents[2]


async def _ticket_row(pool, org: str) -> str:  # type: ignore[no-untyped-def]
    session = await ConversationStore(pool, org).start_session(room="r", kind="support")
    async with pool.acquire() as conn, conn.transaction():
        case = await CaseDesk(pool, org).open(conn, session_id=session, reason="explicit_request", handoff="callback",
                                              details={}, status="callback")
        return await enqueue(conn, organization_id=org, action="zendesk.ticket",  # type: ignore[return-value]
                             payload={"case_id": case.id, "case": case.label, "reason": "explicit_request",
                                      "customer": {"name": "Dana", "email": "dana@example.com"}, "recent": []},
                             idempotency_key=f"{case.id}:ticket", case_id=case.id)


async def test_two_processes_refreshing_at_once_both_deliver_and_nobody_needs_reauth(pg_pool, pg_url, org_id):
    key = Fernet.generate_key().decode()
    creds = CredentialStore(pg_pool, Fernet(key.encode()))
    with ZendeskServer() as z:
        await creds.set(org_id, "zendesk", secrets={"access_token": z.access_token, "refresh_token": z.refresh_token,
                                                    "client_secret": z.CLIENT_SECRET},
                        fields={"subdomain": "acme", "client_id": z.CLIENT_ID})
        z.expire_access()  # both processes meet a 401 and refresh
        z.refresh_delay_s = 0.5  # both refresh requests are in flight together
        rows = [await _ticket_row(pg_pool, org_id) for _ in range(2)]
        start_at = time.time() + 3.0
        procs = [await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.integrations._token_race_worker", pg_url, key, org_id, row, z.url,
            str(start_at), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for row in rows]
        outs = [await p.communicate() for p in procs]
        results = [o[0].decode().strip().splitlines()[-1] if o[0] else o[1].decode()[-500:] for o in outs]
        assert z.refreshes == 1 and z.refused_refreshes == 1, (z.refreshes, z.refused_refreshes, results)
    assert results == ["delivered", "delivered"], results
    [info] = [i for i in await creds.list(org_id) if i.provider == "zendesk"]
    assert info.status == "active"
    cred = await creds.get(org_id, "zendesk")
    assert cred is not None and cred.secrets["refresh_token"] == z.refresh_token  # the winner's live pair is stored
    assert {r["status"] for r in await list_items(pg_pool, org_id)} == {"delivered"}
