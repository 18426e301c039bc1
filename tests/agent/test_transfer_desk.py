"""The warm transfer's offline desk LLM through the framework's own session: it briefs the on-duty person once,
then turns their reply into the tool call ``WarmTransferTask`` expects, in the languages callwise serves."""

from __future__ import annotations

from typing import Any

import pytest
from livekit.agents import Agent, AgentSession, function_tool

from callwise.agent.plugins.llm_transfer_desk import ASK_AGAIN, TransferDeskLLM, heard_no, heard_voicemail, heard_yes

BRIEF = "Hello, this is the support assistant with a transfer. Can you take the call now?"


class Desk(Agent):
    """The task's three tools, with the same names and arguments, recording what was called."""

    def __init__(self, language: str = "en") -> None:
        super().__init__(instructions="brief the on-duty person", llm=TransferDeskLLM(BRIEF, language=language))
        self.called: list[tuple[str, dict[str, Any]]] = []

    @function_tool
    async def connect_to_caller(self) -> None:
        """Called when the human agent wants to connect to the caller."""
        self.called.append(("connect_to_caller", {}))

    @function_tool
    async def decline_transfer(self, reason: str) -> None:
        """The human agent declines.

        Args:
            reason: why
        """
        self.called.append(("decline_transfer", {"reason": reason}))

    @function_tool
    async def voicemail_detected(self) -> None:
        """The call reached voicemail."""
        self.called.append(("voicemail_detected", {}))


async def _desk(language: str = "en") -> tuple[AgentSession, Desk]:
    session: AgentSession = AgentSession()
    desk = Desk(language)
    await session.start(desk)
    return session, desk


async def test_the_person_hears_the_briefing_first_even_when_they_pick_up_with_yes() -> None:
    session, desk = await _desk()
    try:
        result = await session.run(user_input="Yes? Dana here.")
        said = result.expect.next_event().is_message(role="assistant").event().item
        assert said.text_content == BRIEF
        assert desk.called == []
    finally:
        await session.aclose()


@pytest.mark.parametrize("language, reply, tool", [
    ("en", "yes, put them through", "connect_to_caller"),
    ("en", "no, I'm on another call", "decline_transfer"),
    ("es", "sí, pásamelo", "connect_to_caller"),
    ("es", "no, estoy en otra llamada", "decline_transfer"),
    ("fr", "oui, passez-le-moi", "connect_to_caller"),
    ("fr", "non, je suis sur un autre appel", "decline_transfer"),
    ("de", "ja, stellen Sie durch", "connect_to_caller"),
    ("de", "nein, ich bin in einem anderen Anruf", "decline_transfer"),
    ("ja", "はい、つないでください", "connect_to_caller"),
    ("ja", "いいえ、別の電話中です", "decline_transfer"),
    ("zh", "好的，转过来吧", "connect_to_caller"),
    ("zh", "不行，我在忙", "decline_transfer"),
])
async def test_the_persons_answer_becomes_the_tasks_tool_call(language: str, reply: str, tool: str) -> None:
    session, desk = await _desk(language)
    try:
        await session.run(user_input="Hello?")
        result = await session.run(user_input=reply)
        result.expect.next_event().is_function_call(name=tool)
        assert [name for name, _ in desk.called] == [tool]
        if tool == "decline_transfer":
            assert desk.called[0][1]["reason"] == reply, "their own words are the reason on the case"
    finally:
        await session.aclose()


async def test_a_voicemail_greeting_is_detected_before_any_briefing() -> None:
    session, desk = await _desk()
    try:
        result = await session.run(user_input="You've reached Dana, please leave a message after the tone.")
        result.expect.next_event().is_function_call(name="voicemail_detected")
        assert desk.called == [("voicemail_detected", {})]
    finally:
        await session.aclose()


async def test_an_unclear_answer_is_asked_again_then_declined_as_unanswered() -> None:
    session, desk = await _desk()
    try:
        await session.run(user_input="Hello?")
        for _ in range(2):
            result = await session.run(user_input="hmm, what was the account again")
            said = result.expect.next_event().is_message(role="assistant").event().item
            assert said.text_content == ASK_AGAIN
        result = await session.run(user_input="let me think")
        result.expect.next_event().is_function_call(name="decline_transfer")
        assert desk.called == [("decline_transfer", {"reason": "no clear answer from the on-duty person"})]
    finally:
        await session.aclose()


def test_phrases() -> None:
    assert heard_yes("yeah, go ahead") and not heard_yes("no, sorry")
    assert heard_no("sorry, I can't take it right now") and heard_no("I'm on another call")
    assert not heard_no("yes please") and heard_voicemail("the person you are calling is not available to take your call")


def test_a_desk_without_a_briefing_is_refused() -> None:
    with pytest.raises(ValueError, match="briefing"):
        TransferDeskLLM("  ")
