"""The voice of the warm transfer's side room, offline and deterministic, behind livekit's ``llm.LLM``.

``WarmTransferTask`` briefs the on-duty person through an LLM that may call the task's tools
(``connect_to_caller``, ``decline_transfer``, ``voicemail_detected``). Without a configured generative tier this
one does it: once the person has picked up and spoken, it says the briefing (the case, why it came to a person,
the last lines of the call: ``callwise.agent.warm_transfer.briefing``) and asks whether to put the caller
through; then it maps the person's reply to a tool call: yes -> ``connect_to_caller``, no ->
``decline_transfer`` with their words as the reason, a voicemail greeting -> ``voicemail_detected``. A reply
that is neither gets the question again, and after ``max_asks`` of them the transfer is declined as unanswered.

Yes is read with the call-wide yes phrases (``callwise.calls.stages.escalate.is_yes`` in English,
``callwise.calls.languages.is_yes`` in the others); no and voicemail greetings with the patterns below, which
are about a person at the desk rather than a caller.
"""

from __future__ import annotations

import json
import re
import unicodedata
import uuid
from typing import Any

from livekit.agents import APIConnectOptions, llm
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, NOT_GIVEN, NotGivenOr

from callwise.calls import languages
from callwise.calls.stages.escalate import is_yes as is_yes_en

ASK_AGAIN = "Sorry, I didn't catch that. Can you take the caller now? Please say yes or no."

_NO: dict[str, re.Pattern[str]] = {
    "en": re.compile(r"^\W*(?:no|nope|sorry|not now|not right now|can'?t|cannot|i can'?t|unfortunately)\b|"
                     r"\b(?:another call|on a call|can'?t take|cannot take|not available|too busy|i'?m busy|"
                     r"call (?:them|him|her) back|decline)\b", re.IGNORECASE),
    "es": re.compile(r"^\W*no\b|\b(?:otra llamada|no puedo|ocupad[oa])\b", re.IGNORECASE),
    "fr": re.compile(r"^\W*non\b|\b(?:un autre appel|je ne peux pas|occup[ée]e?)\b", re.IGNORECASE),
    "de": re.compile(r"^\W*nein\b|\b(?:anderen anruf|kann (?:gerade )?nicht|besetzt|keine zeit)\b", re.IGNORECASE),
    "ja": re.compile(r"いいえ|無理|出られません|対応できません|別の電話"),
    "zh": re.compile(r"不行|不能|没空|不方便|在忙|另一个电话"),
}
_VOICEMAIL = re.compile(
    r"\b(?:voicemail|voice mail|leave (?:a|your) message|after the (?:tone|beep)|mailbox|"
    r"not available to take your call|buz[oó]n de voz|messagerie|anrufbeantworter)\b|"
    r"留守番電話|语音信箱", re.IGNORECASE)


def heard_yes(text: str, language: str = "en") -> bool:
    t = unicodedata.normalize("NFC", text[:500])
    return is_yes_en(t) or (language != "en" and languages.is_yes(t, language))


def heard_no(text: str, language: str = "en") -> bool:
    t = unicodedata.normalize("NFC", text[:500])
    return bool(_NO["en"].search(t) or (language in _NO and _NO[language].search(t)))


def heard_voicemail(text: str) -> bool:
    return bool(_VOICEMAIL.search(unicodedata.normalize("NFC", text[:500])))


class TransferDeskLLM(llm.LLM):
    """Briefs the on-duty person with ``briefing``, then turns their answer into the warm transfer's tool call."""

    def __init__(self, briefing: str, *, language: str = "en", max_asks: int = 2) -> None:
        super().__init__()
        if not briefing.strip():
            raise ValueError("the transfer desk needs a briefing to say")
        self.briefing = briefing
        self.language = languages.language_of(language)
        self.max_asks = max_asks

    @property
    def model(self) -> str:
        return "callwise-transfer-desk"

    @property
    def provider(self) -> str:
        return "callwise"

    def chat(self, *, chat_ctx: llm.ChatContext, tools: list[Any] | None = None,
             conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
             parallel_tool_calls: NotGivenOr[bool] = NOT_GIVEN, tool_choice: NotGivenOr[Any] = NOT_GIVEN,
             extra_kwargs: NotGivenOr[dict[str, Any]] = NOT_GIVEN) -> llm.LLMStream:
        return _DeskStream(self, chat_ctx=chat_ctx, tools=tools or [], conn_options=conn_options)

    def next_move(self, chat_ctx: llm.ChatContext, tool_names: set[str]) -> tuple[str, dict[str, Any]] | str:
        """``(tool, arguments)`` to call, or the words to say, for the side room's conversation so far."""
        said = [m.text_content or "" for m in chat_ctx.messages() if m.role == "assistant"]
        heard = [m.text_content or "" for m in chat_ctx.messages() if m.role == "user"]
        last = heard[-1] if heard else ""
        if last and heard_voicemail(last) and "voicemail_detected" in tool_names:
            return "voicemail_detected", {}
        if not any(self.briefing in s for s in said):
            return self.briefing
        if heard_yes(last, self.language) and not heard_no(last, self.language):
            if "connect_to_caller" in tool_names:
                return "connect_to_caller", {}
        elif heard_no(last, self.language) and "decline_transfer" in tool_names:
            return "decline_transfer", {"reason": last.strip()[:200] or "declined"}
        asked = sum(1 for s in said if s == ASK_AGAIN)
        if asked >= self.max_asks and "decline_transfer" in tool_names:
            return "decline_transfer", {"reason": "no clear answer from the on-duty person"}
        return ASK_AGAIN


class _DeskStream(llm.LLMStream):
    async def _run(self) -> None:
        desk: TransferDeskLLM = self._llm  # type: ignore[assignment]
        names = {t.id for t in self._tools if hasattr(t, "id")}
        move = desk.next_move(self._chat_ctx, names)
        request_id = uuid.uuid4().hex[:12]
        if isinstance(move, str):
            delta = llm.ChoiceDelta(role="assistant", content=move)
        else:
            name, args = move
            delta = llm.ChoiceDelta(role="assistant", tool_calls=[llm.FunctionToolCall(
                name=name, arguments=json.dumps(args), call_id=f"desk_{request_id}")])
        self._event_ch.send_nowait(llm.ChatChunk(id=request_id, delta=delta))
