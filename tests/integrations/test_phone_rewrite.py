"""Stored phone numbers in the formats people typed, before numbers were normalised on the way in, rewritten
to E.164 by ``callwise.integrations.phone_rewrite`` on real Postgres; what cannot be read stays and is reported."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from callwise.integrations.outbox import audit
from callwise.integrations.phone_rewrite import normalize_phones
from callwise.integrations.webhooks import twilio_org


async def seed_old_rows(pool: Any) -> dict[str, Any]:
    """One org with a number in every place one is stored, written the way people write them."""
    org = str(await pool.fetchval("insert into organizations (slug, name) values ($1, $1) returning id",
                                  f"phones-{uuid.uuid4().hex[:8]}"))
    sid = "AC" + uuid.uuid4().hex
    await pool.execute(
        "insert into integration_credentials (organization_id, provider, access_token_encrypted, metadata) "
        "values ($1, 'twilio', $2, $3::jsonb)", org, b"sealed", json.dumps({"account_sid": sid,
                                                                            "from_number": "(555) 010-0100"}))
    users = {}
    for ext, phone in (("typed", "555.010.0199"), ("spaced", "+1 555 010 0142"), ("good", "+15550100111"),
                       ("short-code", "12345"), ("words", "call me at work")):
        users[ext] = str(await pool.fetchval(
            "insert into end_users (organization_id, external_id, phone) values ($1, $2, $3) returning id",
            org, ext, phone))
    session = str(await pool.fetchval("insert into sessions (organization_id, room, kind) values ($1, 'r', 'support') "
                                      "returning id", org))
    survey = str(await pool.fetchval(
        "insert into survey_requests (organization_id, session_id, channel, contact, reference) "
        "values ($1, $2, 'sms', '(555) 010-0123', 'REF1') returning id", org, session))
    outbox = {}
    for status in ("pending", "delivered"):
        outbox[status] = str(await pool.fetchval(
            "insert into outbox (organization_id, action, payload, idempotency_key, status) "
            "values ($1, 'twilio.sms', $2::jsonb, $3, $4) returning id", org,
            json.dumps({"to": "555-010-0123", "body": "Rate us"}), f"k-{status}", status))
    for key in ("phone:(555) 010-0100", "phone:+15550100100", "phone:555 010 0177", "email:a@example.com"):
        await pool.execute("insert into crm_cache (organization_id, caller_key, customer) values ($1, $2, $3::jsonb)",
                           org, key, json.dumps({"name": key}))
    return {"org": org, "sid": sid, "users": users, "survey": survey, "pending": outbox["pending"], "delivered": outbox["delivered"]}


async def test_old_formats_become_e164_and_unreadable_ones_stay(pg_pool) -> None:
    rows = await seed_old_rows(pg_pool)
    org = rows["org"]
    assert await twilio_org(pg_pool, rows["sid"], "+15550100100") is None  # the webhook's 403 before the rewrite

    report = await normalize_phones(pg_pool, region="US", organization_id=org, audit=audit, actor="test")

    assert await twilio_org(pg_pool, rows["sid"], "+15550100100") == org
    phones = {r["external_id"]: r["phone"] for r in await pg_pool.fetch(
        "select external_id, phone from end_users where organization_id = $1", org)}
    assert phones == {"typed": "+15550100199", "spaced": "+15550100142", "good": "+15550100111",
                      "short-code": "12345", "words": "call me at work"}
    assert await pg_pool.fetchval("select contact from survey_requests where id = $1", rows["survey"]) == "+15550100123"
    assert await pg_pool.fetchval("select payload->>'to' from outbox where id = $1", rows["pending"]) == "+15550100123"
    # what was sent stays as it was sent
    assert await pg_pool.fetchval("select payload->>'to' from outbox where id = $1", rows["delivered"]) == "555-010-0123"
    cache = {r["caller_key"]: json.loads(r["customer"])["name"] for r in await pg_pool.fetch(
        "select caller_key, customer from crm_cache where organization_id = $1", org)}
    assert cache == {"phone:+15550100100": "phone:+15550100100", "phone:+15550100177": "phone:555 010 0177",
                     "email:a@example.com": "email:a@example.com"}

    assert sorted((c.place, c.before) for c in report.unparseable) == [
        ("end_users.phone", "12345"), ("end_users.phone", "call me at work")]
    assert len(report.rewritten) == 6 and [c.before for c in report.dropped] == ["(555) 010-0100"]
    assert report.already_e164 == 2  # the good contact and the E.164 cache key
    logged = await pg_pool.fetchrow("select actor, details from audit_log where organization_id = $1 "
                                    "and action = 'phones.normalize'", org)
    assert logged["actor"] == "test" and json.loads(logged["details"]) == {
        "region": "US", "rewritten": 6, "unparseable": 2, "dropped": 1}


async def test_a_second_run_changes_nothing(pg_pool) -> None:
    rows = await seed_old_rows(pg_pool)
    await normalize_phones(pg_pool, organization_id=rows["org"])
    again = await normalize_phones(pg_pool, organization_id=rows["org"])
    assert again.rewritten == [] and again.dropped == [] and len(again.unparseable) == 2
    assert again.already_e164 == 8


async def test_a_dry_run_reports_and_changes_nothing(pg_pool) -> None:
    rows = await seed_old_rows(pg_pool)
    report = await normalize_phones(pg_pool, organization_id=rows["org"], dry_run=True, audit=audit)
    assert len(report.rewritten) == 6 and len(report.dropped) == 1
    assert await pg_pool.fetchval("select phone from end_users where id = $1", rows["users"]["typed"]) == "555.010.0199"
    assert await pg_pool.fetchval("select count(*) from audit_log where organization_id = $1", rows["org"]) == 0


@pytest.mark.parametrize(("region", "stored", "expected"), [
    ("GB", "020 7946 0018", "+442079460018"),
    ("US", "020 7946 0018", None),  # not a US number: left as it is
    ("DE", "030 901820", "+4930901820"),
])
async def test_the_default_region_reads_national_numbers(pg_pool, region, stored, expected) -> None:
    org = str(await pg_pool.fetchval("insert into organizations (slug, name) values ($1, $1) returning id",
                                     f"phones-{uuid.uuid4().hex[:8]}"))
    await pg_pool.execute("insert into end_users (organization_id, external_id, phone) values ($1, 'x', $2)", org, stored)
    report = await normalize_phones(pg_pool, region=region, organization_id=org)
    assert await pg_pool.fetchval("select phone from end_users where organization_id = $1", org) == (expected or stored)
    assert (len(report.rewritten), len(report.unparseable)) == ((1, 0) if expected else (0, 1))
