"""End of turn from the transcript: a sentence that stops on "and", "the", "my", "where can I" or "um"
is not over.

The framework's audio end-of-turn model (``turn-detector-v1-mini``) scores our synthetic voices'
mid-sentence pauses and finished questions alike, and silence alone (VAD) ends the turn at any
0.5 s pause. ``CompletenessDetector`` is a turn detector on the framework's text protocol
(``predict_end_of_turn(chat_ctx)``, called once the transcript is in): an unfinished transcript
scores 0 (the framework then waits its ``max_delay`` for more speech), anything else 1 (it ends
the turn after ``min_delay``). It cannot hear that "Can you tell me how long?" was meant to go on;
it only stops the turns that plainly end mid-phrase.
"""

from __future__ import annotations

import re
from typing import Any

# words a finished English sentence (or a short answer) does not end on: articles, conjunctions,
# possessives, a few prepositions never stranded, subject pronouns waiting for their verb, fillers.
# Prepositions that questions strand ("who is it for?", "turn that on?") and auxiliaries that short
# answers end on ("yes, I do") are not here.
OPEN_ENDINGS = frozenset("""
a an the and or but so because if when while although though than that which whose
my our your their his her its of into onto between i we they he she um uh er erm uhm hmm
""".split())



def transcript_complete(text: str) -> bool:
    """False when ``text`` plainly stops mid-phrase (a trailing comma or dash, or an open last word)."""
    stripped = text.strip()
    if not stripped:
        return False
    if stripped.endswith((",", "-", "\u2014", "\u2026", "...", ";", ":")):
        return False
    words = re.findall(r"[a-z']+", stripped.lower())
    if not words:
        return False
    return words[-1] not in OPEN_ENDINGS


def last_user_text(chat_ctx: Any) -> str:
    for item in reversed(getattr(chat_ctx, "items", [])):
        if getattr(item, "type", None) == "message" and item.role == "user":
            return item.text_content or ""
    return ""


class CompletenessDetector:
    """A turn detector on the framework's text protocol (``livekit.agents.voice.turn._TurnDetector``)."""

    def __init__(self, *, threshold: float = 0.5) -> None:
        self._threshold = threshold

    @property
    def model(self) -> str:
        return "callwise-transcript-completeness"

    @property
    def provider(self) -> str:
        return "callwise"

    async def unlikely_threshold(self, language: Any) -> float | None:
        return self._threshold

    async def supports_language(self, language: Any) -> bool:
        return language is None or str(language).lower().startswith("en")

    async def predict_end_of_turn(self, chat_ctx: Any, *, timeout: float | None = None) -> float:
        return 1.0 if transcript_complete(last_user_text(chat_ctx)) else 0.0
