"""Vendor pauses per organization, in Postgres, so every process honours them.

Each call runs in its own job process, and a CRM client is built per call: a "stop calling" learned by one
(HubSpot's DAILY rate limit, Salesforce's ``REQUEST_LIMIT_EXCEEDED``, a long ``Retry-After``) must hold for
the next. :class:`VendorPauses` keeps ``vendor_pauses`` rows (org, vendor, paused_until); a client asks
:meth:`left` before calling and records a pause with :meth:`pause`. The database clock decides, so
processes on machines with skewed clocks agree.
"""

from __future__ import annotations

from typing import Any


class VendorPauses:
    def __init__(self, pool: Any) -> None:
        self.pool = pool

    async def left(self, organization_id: str, vendor: str) -> float | None:
        """Seconds until the org may call ``vendor`` again; None when it is not paused."""
        left = await self.pool.fetchval(
            "select extract(epoch from paused_until - now()) from vendor_pauses "
            "where organization_id = $1 and vendor = $2 and paused_until > now()", organization_id, vendor)
        return float(left) if left is not None else None

    async def pause(self, organization_id: str, vendor: str, seconds: float, reason: str) -> None:
        """Pause ``vendor`` for the org for ``seconds`` (a longer pause already recorded is kept)."""
        await self.pool.execute(
            "insert into vendor_pauses (organization_id, vendor, paused_until, reason) "
            "values ($1, $2, now() + make_interval(secs => $3), $4) on conflict (organization_id, vendor) do update "
            "set paused_until = greatest(vendor_pauses.paused_until, excluded.paused_until), "
            "reason = excluded.reason, updated_at = now()", organization_id, vendor, float(seconds), reason[:300])

    async def clear(self, organization_id: str, vendor: str) -> None:
        await self.pool.execute("delete from vendor_pauses where organization_id = $1 and vendor = $2",
                                organization_id, vendor)


class OrgPause:
    """One org's pause for one vendor, as a CRM client sees it."""

    def __init__(self, pauses: VendorPauses, organization_id: str, vendor: str) -> None:
        self.pauses, self.organization_id, self.vendor = pauses, organization_id, vendor

    async def left(self) -> float | None:
        return await self.pauses.left(self.organization_id, self.vendor)

    async def set(self, seconds: float, reason: str) -> None:
        await self.pauses.pause(self.organization_id, self.vendor, seconds, reason)
