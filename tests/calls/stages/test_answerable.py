"""The answerability stage and the follow-up prior, on real parts (Postgres, the sample KB, the offline router)."""

from __future__ import annotations

from callwise.calls.context import CallContext, TurnContext, TurnOutcome
from callwise.calls.stages.answer import Answer
from callwise.calls.stages.answerable import Answerable
from callwise.calls.stages.retrieve import Retrieve, prior_weight
from callwise.routing.answerability import REPLIES

REFUNDS = "examples/kb/billing/refunds.md"
OKTA = "examples/kb/sso/okta-setup.md"


def make(deps, org: str, text: str, call: CallContext | None = None) -> TurnContext:  # type: ignore[no-untyped-def]
    call = call or CallContext(deps=deps, organization_id=org, session_id=None, persist=False)
    return TurnContext(call=call, text=text, outcome=TurnOutcome(transcript=text), guarded=text, query=text)


async def test_off_topic_and_account_actions_get_one_sentence_and_an_offer(support_deps, kb_org) -> None:
    for text, verdict in (("what's the weather like in Dublin today?", "world_knowledge"),
                          ("close my account right now please", "account_action")):
        ctx = make(support_deps, kb_org, text)
        await Retrieve().run(ctx)
        assert ctx.sources  # retrieval found something: the stage, not an empty result, refuses it
        await Answerable().run(ctx)
        assert ctx.done and ctx.outcome.kind == "answer" and "".join(ctx.spoken) == REPLIES[verdict]
        assert ctx.sources == [] and ctx.outcome.sources == [] and not ctx.router_ran  # no source claimed
        assert ctx.call.memory.offered_person == (verdict == "account_action")
        assert ctx.call.state.offer_pending == ctx.outcome.offered_colleague == (verdict == "account_action")


async def test_a_yes_to_the_offer_of_a_colleague_is_a_request_for_one(support_deps, kb_org) -> None:
    from callwise.calls.stages.escalate import EscalateOnWords

    ctx = make(support_deps, kb_org, "please change the card you have on file for me")
    await Retrieve().run(ctx)
    await Answerable().run(ctx)
    assert "pass you to a colleague" in "".join(ctx.spoken)
    yes = make(support_deps, kb_org, "yes please", ctx.call)
    await EscalateOnWords().run(yes)
    assert yes.done and yes.outcome.escalated and ctx.call.escalation["reason"] == "explicit_request"


async def test_a_question_the_kb_answers_goes_on_to_the_answerer(support_deps, kb_org) -> None:
    ctx = make(support_deps, kb_org, "How long does a refund take to show up on my card?")
    await Retrieve().run(ctx)
    await Answerable().run(ctx)
    assert not ctx.done and not ctx.spoken and ctx.sources[0].document == REFUNDS
    await Answer(stream=False).run(ctx)
    assert "business days" in "".join(ctx.spoken)
    assert ctx.call.memory.last_pages[0] == REFUNDS  # the next follow-up's prior


async def test_an_elliptical_follow_up_keeps_the_previous_pages(support_deps, kb_org) -> None:
    alone = make(support_deps, kb_org, "and how long does that take?")
    await Retrieve().run(alone)
    before = [s.document for s in alone.sources]
    assert before[0] != OKTA and OKTA in before  # on its own words, not the SSO page first
    call = CallContext(deps=support_deps, organization_id=kb_org, session_id=None, persist=False)
    call.memory.last_pages = [OKTA]  # the previous answer came from the SSO page
    follow = make(support_deps, kb_org, "and how long does that take?", call)
    await Retrieve().run(follow)
    after = [s.document for s in follow.sources]
    assert after.index(OKTA) < before.index(OKTA) and sorted(after) == sorted(before)  # reordered, nothing added
    call.memory.last_pages = [OKTA]
    own = make(support_deps, kb_org, "How long does a refund take to show up on my card?", call)
    await Retrieve().run(own)
    assert own.sources[0].document == REFUNDS  # a question with its own subject is not pulled back
    assert prior_weight("and how long does that take?", (0.6, 0.4, 0.2)) == 0.4
    assert prior_weight("and that?", (0.6, 0.4, 0.2)) == 0.6
    assert prior_weight("and how long does the Okta SAML setup take for us?", (0.6, 0.4, 0.2)) == 0.2
    assert prior_weight("How long does the Okta SAML setup take for a new tenant?") == 0.0


def test_a_follow_up_that_leans_back_without_a_pronoun_keeps_the_previous_pages() -> None:
    weights = (0.6, 0.4, 0.2)
    before = "how do I change the main config file of the server"
    # "the file" the previous question named, "too", "the same one": no pronoun, still about the same thing
    assert prior_weight("if I edit the file do I have to restart?", weights, previous=before) == 0.4
    assert prior_weight("if I edit the file do I have to restart?", weights) == 0.0  # nothing said before
    assert prior_weight("do the backups stay in Europe too", weights) == 0.4
    assert prior_weight("can two connections share the same one", weights) == 0.4
    # a question with its own subject, naming nothing the previous one did, is not pulled back
    assert prior_weight("how do I add a teammate to the billing plan", weights, previous=before) == 0.0
