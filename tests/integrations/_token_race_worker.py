"""One process of the two-process token race: deliver one ``zendesk.ticket`` row with the real handler.

``python -m tests.integrations._token_race_worker PG_URL FERNET_KEY ORG ROW_ID ZENDESK_URL START_AT`` waits
until the wall clock reaches ``START_AT`` (so both processes refresh at once) and prints ``delivered`` or
``failed``.
"""

from __future__ import annotations

import asyncio
import sys
import time

from cryptography.fernet import Fernet


async def main(pg_url: str, key: str, org: str, row_id: str, zendesk_url: str, start_at: float) -> str:
    from callwise.infra.db import create_pool
    from callwise.integrations.actions import VendorConfig, build_handlers
    from callwise.integrations.credentials import CredentialStore
    from callwise.integrations.outbox import Dispatcher

    pool = await create_pool(pg_url, min_size=1, max_size=2)
    try:
        creds = CredentialStore(pool, Fernet(key.encode()))
        handlers = build_handlers(pool, creds, VendorConfig(zendesk_base_url=zendesk_url))
        dispatch = Dispatcher(pool, {"zendesk.ticket": handlers["zendesk.ticket"]}, organization_id=org)
        time.sleep(max(0.0, start_at - time.time()))
        done = await dispatch.deliver_now([row_id], timeout_s=15)
        return "delivered" if done.get(row_id) else "failed"
    finally:
        await pool.close()


if __name__ == "__main__":
    a = sys.argv[1:]
    print(asyncio.run(main(a[0], a[1], a[2], a[3], a[4], float(a[5]))))
