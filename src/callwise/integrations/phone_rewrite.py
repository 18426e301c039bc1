"""Stored phone numbers rewritten to E.164 (``callwise phones normalize``): the data written before numbers
were normalised on the way in.

Every place a number is matched by string equality is covered:

* ``integration_credentials.metadata.from_number`` (Twilio): inbound webhooks find the org by our number,
  which Twilio always sends as E.164, so ``(555) 010-0100`` stored by hand never matched;
* ``end_users.phone`` (CRM contacts that called);
* ``survey_requests.contact`` of SMS surveys (an SMS reply is matched by its ``From``);
* ``outbox.payload.to`` of Twilio SMS rows still waiting to be sent;
* ``crm_cache`` rows keyed ``phone:<number>``: the lookup keys by E.164 now, so an old key is re-keyed (or,
  where the E.164 row exists already, dropped: it is a cache).

A number ``phonenumbers`` cannot read as a possible number (a short code, an alphanumeric sender, a typo) is
left as it is and reported. Each row is updated only if it still holds the value read (a concurrent write
wins), so the rewrite is safe to run on a live system and idempotent: a second run changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from callwise.integrations.phone import DEFAULT_REGION, e164


@dataclass(frozen=True)
class Change:
    place: str  # "end_users.phone", ...
    row: str  # the row's id (crm_cache: the old key)
    organization_id: str
    before: str
    after: str | None  # None: left as it is (unparseable) or dropped (a cache row whose E.164 twin exists)


@dataclass
class PhoneReport:
    region: str
    dry_run: bool
    rewritten: list[Change] = field(default_factory=list)
    unparseable: list[Change] = field(default_factory=list)
    dropped: list[Change] = field(default_factory=list)
    already_e164: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"region": self.region, "dry_run": self.dry_run, "already_e164": self.already_e164,
                "rewritten": [asdict(c) for c in self.rewritten], "unparseable": [asdict(c) for c in self.unparseable],
                "dropped": [asdict(c) for c in self.dropped]}

    def organizations(self) -> dict[str, dict[str, int]]:
        """Counts per organization (what the audit log records)."""
        out: dict[str, dict[str, int]] = {}
        for name, changes in (("rewritten", self.rewritten), ("unparseable", self.unparseable),
                              ("dropped", self.dropped)):
            for c in changes:
                counts = out.setdefault(c.organization_id, {"rewritten": 0, "unparseable": 0, "dropped": 0})
                counts[name] += 1
        return out


@dataclass(frozen=True)
class _Place:
    """One stored number: how to read the rows, and how to write one back if it still holds the old value."""

    name: str
    select: str  # returns id, organization_id, value; $1 is the organization id or null for all
    update: str  # $1 id, $2 old value, $3 new value; returns a row when it changed


PLACES = (
    _Place("integration_credentials.from_number",
           "select id::text, organization_id::text, metadata->>'from_number' as value from integration_credentials "
           "where provider = 'twilio' and metadata ? 'from_number' and ($1::uuid is null or organization_id = $1)",
           "update integration_credentials set metadata = jsonb_set(metadata, '{from_number}', to_jsonb($3::text)), "
           "updated_at = now() where id = $1::uuid and metadata->>'from_number' = $2 returning id"),
    _Place("end_users.phone",
           "select id::text, organization_id::text, phone as value from end_users "
           "where phone is not null and ($1::uuid is null or organization_id = $1)",
           "update end_users set phone = $3 where id = $1::uuid and phone = $2 returning id"),
    _Place("survey_requests.contact",
           "select id::text, organization_id::text, contact as value from survey_requests "
           "where channel = 'sms' and ($1::uuid is null or organization_id = $1)",
           "update survey_requests set contact = $3, updated_at = now() where id = $1::uuid and contact = $2 "
           "returning id"),
    _Place("outbox.payload.to",
           "select id::text, organization_id::text, payload->>'to' as value from outbox "
           "where action = 'twilio.sms' and status = 'pending' and payload ? 'to' "
           "and ($1::uuid is null or organization_id = $1)",
           "update outbox set payload = jsonb_set(payload, '{to}', to_jsonb($3::text)), updated_at = now() "
           "where id = $1::uuid and status = 'pending' and payload->>'to' = $2 returning id"),
)

_CACHE_SELECT = ("select organization_id::text, caller_key from crm_cache where caller_key like 'phone:%' "
                 "and ($1::uuid is null or organization_id = $1) order by organization_id, caller_key")
# the old row moves to the E.164 key; where that row exists already (or appears meanwhile) the old one is just gone
_CACHE_MOVE = """
with old as (delete from crm_cache where organization_id = $1::uuid and caller_key = $2 returning customer, fetched_at)
insert into crm_cache (organization_id, caller_key, customer, fetched_at)
select $1::uuid, $3, customer, fetched_at from old
on conflict (organization_id, caller_key) do nothing
returning caller_key
"""


async def normalize_phones(pool: Any, *, region: str = DEFAULT_REGION, organization_id: str | None = None,
                           dry_run: bool = False, actor: str = "maintenance",
                           audit: Callable[..., Any] | None = None) -> PhoneReport:
    """Rewrite every stored number to E.164 (one transaction); ``dry_run`` reports what would change.
    ``audit(conn, org_id, actor=, action=, target_type=, target_id=, details=)`` records each org's counts."""
    report = PhoneReport(region=region, dry_run=dry_run)
    async with pool.acquire() as conn, conn.transaction():
        for place in PLACES:
            for r in await conn.fetch(place.select, organization_id):
                await _one(conn, report, place, r["id"], r["organization_id"], r["value"])
        await _cache(conn, report, organization_id)
        if dry_run:
            return report
        if audit is not None:
            for org, counts in report.organizations().items():
                await audit(conn, org, actor=actor, action="phones.normalize", target_type="phone_numbers",
                            target_id=None, details={"region": region, **counts})
    return report


async def _one(conn: Any, report: PhoneReport, place: _Place, row: str, org: str, value: str | None) -> None:
    if value is None:
        return
    after = e164(value, report.region)
    if after is None:
        report.unparseable.append(Change(place.name, row, org, value, None))
    elif after == value:
        report.already_e164 += 1
    elif report.dry_run or await conn.fetchval(place.update, row, value, after) is not None:
        report.rewritten.append(Change(place.name, row, org, value, after))


async def _cache(conn: Any, report: PhoneReport, organization_id: str | None) -> None:
    """``phone:<number>`` keys re-keyed to E.164; a key whose E.164 row exists already is dropped."""
    for r in await conn.fetch(_CACHE_SELECT, organization_id):
        org, key = r["organization_id"], r["caller_key"]
        number = key.removeprefix("phone:")
        after = e164(number, report.region)
        if after is None:
            report.unparseable.append(Change("crm_cache.caller_key", key, org, number, None))
        elif after == number:
            report.already_e164 += 1
        elif report.dry_run:
            twin = await conn.fetchval("select 1 from crm_cache where organization_id = $1::uuid and caller_key = $2",
                                       org, f"phone:{after}")
            (report.dropped if twin else report.rewritten).append(
                Change("crm_cache.caller_key", key, org, number, None if twin else after))
        else:
            moved = await conn.fetchval(_CACHE_MOVE, org, key, f"phone:{after}")
            (report.rewritten if moved else report.dropped).append(
                Change("crm_cache.caller_key", key, org, number, after if moved else None))
