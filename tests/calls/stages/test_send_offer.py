"""A command a voice answer does not read out is offered by text message, and a "yes" sends it through the outbox
to the Twilio stand-in (the real turn path: SupportCall, the support stages, the extractive answerer)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from callwise.calls.stages.send_offer import NOT_SENT, OFFER, SENT, CommandSender, code_blocks, command_text
from callwise.integrations.actions import VendorConfig, build_handlers
from callwise.integrations.credentials import CredentialStore
from callwise.integrations.outbox import Backoff, Dispatcher
from callwise.routing.types import CustomerContext, SourceDoc
from tests.vendors import twilio as tw
from tests.vendors.twilio import TwilioServer

CALLER = "+15557654321"
ARTICLE = """# Rotating API keys from the command line

Rotating your workspace's API keys is done with the Orbitly command line tool.

```
orbitly keys rotate --workspace acme --expire-old 24h
```

The old keys keep working for the grace period you give, then stop.
"""


@pytest.fixture(scope="module")
def twilio():  # type: ignore[no-untyped-def]
    t = TwilioServer().start()
    yield t
    t.stop()


@pytest.fixture
async def world(knowledge, router, pg_pool, tmp_path: Path, twilio):  # type: ignore[no-untyped-def]
    from callwise.calls import SupportDeps

    org = str(await pg_pool.fetchval("insert into organizations (slug, name) values ($1, 'Orbitly') returning id",
                                     "send-" + uuid.uuid4().hex[:8]))
    doc = tmp_path / "cli" / "rotate-api-keys.md"
    doc.parent.mkdir()
    doc.write_text(ARTICLE)
    await knowledge.ingestor.ingest(str(doc), org)
    creds = CredentialStore(pg_pool, Fernet(Fernet.generate_key()))
    await creds.set(org, "twilio", secrets={"auth_token": tw.AUTH_TOKEN},
                    fields={"account_sid": tw.ACCOUNT_SID, "from_number": "+1555" + str(uuid.uuid4().int)[:7]})
    deps = SupportDeps(retriever=knowledge.retriever, router=router, pool=pg_pool, sender=CommandSender(pg_pool, creds))
    dispatch = Dispatcher(pg_pool, build_handlers(pg_pool, creds, VendorConfig(twilio_base_url=twilio.url)),
                          organization_id=org, backoff=Backoff(base_s=0.05, max_s=0.1, jitter=0))
    return {"org": org, "deps": deps, "dispatch": dispatch, "twilio": twilio, "pool": pg_pool}


async def _call(w, phone: str | None = CALLER):  # type: ignore[no-untyped-def]
    from callwise.calls import SupportCall

    customer = CustomerContext(name="Ana", extra={"phone": phone} if phone else {})
    return await SupportCall.start(w["deps"], organization_id=w["org"], room="send-" + uuid.uuid4().hex[:6],
                                   modality="voice", customer=customer)


QUESTION = "what's the command to rotate our API keys"


async def test_a_yes_sends_the_command_the_voice_answer_did_not_read(world) -> None:
    w = world
    call = await _call(w)
    first = await call.run_turn(QUESTION)
    assert OFFER["sms"] in first.answer
    assert "orbitly keys rotate" not in first.answer and "--workspace" not in first.answer
    second = await call.run_turn("yes please")
    await call.end()
    assert SENT["sms"] in second.answer and not second.escalated
    await w["dispatch"].drain(timeout_s=10)
    sent = [m for m in w["twilio"].messages if m["to"] == CALLER and "orbitly keys rotate" in m["body"]]
    assert len(sent) == 1
    assert "orbitly keys rotate --workspace acme --expire-old 24h" in sent[0]["body"]
    rows = await w["pool"].fetch("select action, status from outbox where organization_id = $1", w["org"])
    assert [(r["action"], r["status"]) for r in rows] == [("twilio.sms", "delivered")]


async def test_a_no_sends_nothing_and_another_question_drops_the_offer(world) -> None:
    w = world
    call = await _call(w)
    assert OFFER["sms"] in (await call.run_turn(QUESTION)).answer
    assert NOT_SENT in (await call.run_turn("no thanks")).answer
    assert OFFER["sms"] in (await call.run_turn(QUESTION)).answer
    later = await call.run_turn("how long do the old keys keep working")
    await call.end()
    assert SENT["sms"] not in later.answer and call.ctx.memory.offered_send is None
    assert await w["pool"].fetchval("select count(*) from outbox where organization_id = $1", w["org"]) == 0


async def test_no_offer_without_a_way_to_reach_the_caller(world) -> None:
    call = await _call(world, phone=None)
    first = await call.run_turn(QUESTION)
    await call.end()
    assert OFFER["sms"] not in first.answer and OFFER["email"] not in first.answer
    assert "orbitly keys rotate" not in first.answer  # still not read out


def test_what_is_sent_is_the_code_left_out_else_the_source_pages_code() -> None:
    assert code_blocks("text\n```\na b\n```\nmore\n```sql\nselect 1;\n```") == ["a b", "select 1;"]
    src = [SourceDoc(1, "doc-a", "Page A", "prose only"), SourceDoc(2, "doc-b", "Page B", "```\nrun --this\n```")]
    assert command_text([], src) == ("Page B", "run --this")
    assert command_text(["```\nmodel --said this\n```"], src) == ("Page A", "model --said this")
    assert command_text([], src[:1]) is None


async def test_a_generative_answers_code_block_is_not_said_and_is_what_gets_sent(world) -> None:
    """A model that writes a fenced command anyway: the caller hears the prose and the offer; a yes sends the model's
    own command (``SpeakableStream.code``) through the Twilio stand-in."""
    from dataclasses import replace

    from callwise.calls import SupportCall
    from callwise.routing.providers.openai import OpenAIProvider
    from callwise.routing.router import CascadingRouter, Tier
    from tests.routing.conftest import FAST_RETRY
    from tests.vendors.openai import FakeOpenAI

    fake = FakeOpenAI("Rotate them with the command line tool.\n```\norbitly keys rotate --workspace acme --now\n```\n"
                      "The old keys then stop working.", logprob=-0.01).start()
    try:
        tier = Tier("tier1", OpenAIProvider("model-tier1", api_key="test", base_url=fake.base_url))
        w = {**world, "deps": replace(world["deps"], router=CascadingRouter([tier], retry=FAST_RETRY))}
        call = await SupportCall.start(w["deps"], organization_id=w["org"], room="send-llm", modality="voice",
                                       customer=CustomerContext(name="Ana", extra={"phone": CALLER}))
        first = await call.run_turn("how do I rotate our API keys")
        assert "orbitly keys rotate" not in first.answer and "```" not in first.answer
        assert first.answer.startswith("Rotate them with the command line tool.") and OFFER["sms"] in first.answer
        second = await call.run_turn("yes")
        await call.end()
    finally:
        fake.stop()
    assert SENT["sms"] in second.answer
    await w["dispatch"].drain(timeout_s=10)
    bodies = [m["body"] for m in w["twilio"].messages if m["to"] == CALLER]
    assert any("orbitly keys rotate --workspace acme --now" in b for b in bodies)
