"""Webhook replay guard: each signed event is accepted once (``webhook_events``, unique per provider and key).

Signatures themselves are checked where the vendor's format lives (``callwise.integrations.twilio.valid_signature``,
``callwise.integrations.sendgrid.valid_event_signature``); this records that an event was seen, inside the
transaction that stores what it carried, so a replay of a validly signed request stores nothing.
"""

from __future__ import annotations

from typing import Any


async def first_delivery(conn: Any, organization_id: str, provider: str, event_key: str) -> bool:
    row = await conn.fetchrow(
        "insert into webhook_events (organization_id, provider, event_key) values ($1, $2, $3) "
        "on conflict (provider, event_key) do nothing returning id", organization_id, provider, event_key[:300])
    return row is not None


async def twilio_org(pool: Any, account_sid: str, number: str) -> str | None:
    """The organization whose Twilio account and number received a message; None when no org, or more than
    one (a number must belong to one organization), claims it."""
    rows = await pool.fetch(
        "select organization_id from integration_credentials where provider = 'twilio' "
        "and metadata->>'account_sid' = $1 and metadata->>'from_number' = $2 limit 2", account_sid, number)
    return str(rows[0]["organization_id"]) if len(rows) == 1 else None
