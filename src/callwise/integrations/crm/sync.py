"""CRM -> callwise: contact changes, merges and deletions applied to ``end_users``.

The CRM is the system of record for contact fields, so a change there overwrites ours; callwise keeps
only the contacts that have called (it never copies the whole CRM). A deleted contact is unlinked:
its ``end_users`` row is marked ``unlinked_at`` and its sessions lose the link, but nothing of the calls
is deleted. A merge points the merged contact's sessions at the surviving contact.

Sources: HubSpot's webhook events (``webhook_events`` below; signature checked by the API layer with
:func:`valid_hubspot_signature`) and Salesforce's delta sync on ``SystemModstamp``
(:func:`salesforce_delta`, cursor in ``crm_sync_state``).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from callwise.integrations.crm.types import Customer

HUBSPOT_WINDOW_S = 300
#: HubSpot contact properties mirrored into end_users (the CRM's name -> our column)
_HUBSPOT_COLUMNS = {"email": "email", "phone": "phone", "company": "company"}


def valid_hubspot_signature(*, client_secret: str, method: str, uri: str, body: bytes, timestamp: str,
                            signature: str, now_ms: float | None = None) -> bool:
    """HubSpot v3 through the SDK's ``Signature.is_valid`` (base64 HMAC-SHA256 over method + uri + body +
    timestamp); the timestamp must be within 5 minutes either way (the SDK alone accepts future ones)."""
    from hubspot.utils.signature import Signature  # type: ignore[import-untyped]

    try:
        ts = int(timestamp)
        text = body.decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return False
    now_ms = time.time() * 1000 if now_ms is None else now_ms
    if abs(now_ms - ts) > HUBSPOT_WINDOW_S * 1000:
        return False
    try:
        return bool(Signature.is_valid(signature=signature, client_secret=client_secret, request_body=text,
                                       http_uri=uri, http_method=method.upper(), signature_version="v3",
                                       timestamp=timestamp))
    except Exception:  # noqa: BLE001 - InvalidSignatureTimestampError (the SDK's own clock check)
        return False


@dataclass
class SyncResult:
    updated: int = 0
    unlinked: int = 0
    merged: int = 0
    ignored: int = 0
    errors: list[str] = field(default_factory=list)

    def add(self, other: SyncResult) -> None:
        self.updated += other.updated
        self.unlinked += other.unlinked
        self.merged += other.merged
        self.ignored += other.ignored
        self.errors.extend(other.errors)

    def as_dict(self) -> dict[str, Any]:
        return {"updated": self.updated, "unlinked": self.unlinked, "merged": self.merged, "ignored": self.ignored,
                "errors": self.errors}


async def unlink(conn: Any, organization_id: str, provider: str, external_id: str) -> bool:
    row = await conn.fetchrow(
        "update end_users set unlinked_at = now(), updated_at = now() where organization_id = $1 and provider = $2 "
        "and external_id = $3 and unlinked_at is null returning id", organization_id, provider, external_id)
    if row is None:
        return False
    await conn.execute("update sessions set end_user_id = null where organization_id = $1 and end_user_id = $2",
                       organization_id, row["id"])
    return True


async def merge(conn: Any, organization_id: str, provider: str, merged_ids: Iterable[str], primary_id: str) -> int:
    """Sessions of the merged contacts move to the primary contact (created from the first merged row if
    callwise had not seen it); the merged rows are unlinked."""
    primary = await conn.fetchval("select id from end_users where organization_id = $1 and provider = $2 "
                                  "and external_id = $3", organization_id, provider, primary_id)
    moved = 0
    for mid in merged_ids:
        if mid == primary_id:
            continue
        row = await conn.fetchrow("select id, email, phone, full_name, company from end_users where organization_id = $1 "
                                  "and provider = $2 and external_id = $3", organization_id, provider, mid)
        if row is None:
            continue
        if primary is None:
            await conn.execute("update end_users set external_id = $4, updated_at = now() where organization_id = $1 "
                               "and provider = $2 and external_id = $3", organization_id, provider, mid, primary_id)
            primary = row["id"]
        else:
            await conn.execute("update sessions set end_user_id = $3 where organization_id = $1 and end_user_id = $2",
                               organization_id, row["id"], primary)
            await conn.execute("update end_users set unlinked_at = now(), updated_at = now() where id = $1 "
                               "and organization_id = $2", row["id"], organization_id)
        moved += 1
    return moved


async def apply_hubspot_events(pool: Any, organization_id: str, events: Iterable[Mapping[str, Any]]) -> SyncResult:
    """Contact events from a (verified) HubSpot webhook: propertyChange, deletion, merge, privacyDeletion."""
    async with pool.acquire() as conn, conn.transaction():
        return await apply_hubspot_events_in(conn, organization_id, events)


async def apply_hubspot_events_in(conn: Any, organization_id: str, events: Iterable[Mapping[str, Any]]) -> SyncResult:
    """:func:`apply_hubspot_events` inside the caller's transaction (with the replay keys it records)."""
    result = SyncResult()
    for ev in events:
        kind = str(ev.get("subscriptionType", ""))
        oid = str(ev.get("objectId", ""))
        if not kind.startswith("contact.") or not oid:
            result.ignored += 1
            continue
        if kind in ("contact.deletion", "contact.privacyDeletion"):
            result.unlinked += await unlink(conn, organization_id, "hubspot", oid)
        elif kind == "contact.merge":
            merged = [str(x) for x in ev.get("mergedObjectIds") or []]
            primary = str(ev.get("primaryObjectId") or oid)
            result.merged += await merge(conn, organization_id, "hubspot", merged, primary)
        elif kind == "contact.propertyChange":
            prop, value = str(ev.get("propertyName", "")), ev.get("propertyValue")
            if prop in _HUBSPOT_COLUMNS:
                col = _HUBSPOT_COLUMNS[prop]  # a fixed column name from the table above, never request text
                res = await conn.execute(
                    f"update end_users set {col} = $4, updated_at = now() where organization_id = $1 "
                    "and provider = $2 and external_id = $3", organization_id, "hubspot", oid,
                    None if value in (None, "") else str(value)[:500])
                result.updated += res.endswith(" 1")
            elif prop in ("firstname", "lastname"):
                row = await conn.fetchrow("select full_name from end_users where organization_id = $1 and "
                                          "provider = 'hubspot' and external_id = $2", organization_id, oid)
                if row is not None:
                    first, _, last = (row["full_name"] or "").partition(" ")
                    first, last = (str(value or ""), last) if prop == "firstname" else (first, str(value or ""))
                    await conn.execute("update end_users set full_name = $3, updated_at = now() where "
                                       "organization_id = $1 and provider = 'hubspot' and external_id = $2",
                                       organization_id, oid, " ".join(x for x in (first, last) if x) or None)
                    result.updated += 1
            else:
                result.ignored += 1
        else:
            result.ignored += 1
    return result


async def apply_customers(pool: Any, organization_id: str, customers: Iterable[Customer]) -> SyncResult:
    """Changed contacts (a delta sync): the fields of contacts callwise knows are overwritten."""
    result = SyncResult()
    async with pool.acquire() as conn, conn.transaction():
        for c in customers:
            res = await conn.execute(
                "update end_users set email = $4, phone = $5, full_name = $6, company = $7, crm_updated_at = $8, "
                "updated_at = now() where organization_id = $1 and provider = $2 and external_id = $3",
                organization_id, c.provider, c.external_id, c.email, c.phone, c.name, c.company, c.updated_at)
            if res.endswith(" 1"):
                result.updated += 1
            else:
                result.ignored += 1
    return result


async def salesforce_delta(pool: Any, organization_id: str, crm: Any, *, max_pages: int = 50) -> SyncResult:
    """Contacts changed since the stored ``SystemModstamp`` cursor, applied page by page; the cursor is
    stored after each page, so an interrupted sync resumes where it stopped."""
    result = SyncResult()
    cursor = await pool.fetchval("select cursor from crm_sync_state where organization_id = $1 and provider = $2",
                                 organization_id, "salesforce")
    for _ in range(max_pages):
        changed, deleted, new_cursor = await crm.changed_since(cursor)
        if not changed and not deleted:
            break
        result.add(await apply_customers(pool, organization_id, changed))
        async with pool.acquire() as conn, conn.transaction():
            for external_id in deleted:
                result.unlinked += await unlink(conn, organization_id, "salesforce", external_id)
        cursor = new_cursor
        await pool.execute(
            "insert into crm_sync_state (organization_id, provider, cursor, synced_at) values ($1, $2, $3, now()) "
            "on conflict (organization_id, provider) do update set cursor = excluded.cursor, synced_at = now(), "
            "last_error = null", organization_id, "salesforce", cursor)
    return result
