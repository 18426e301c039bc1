"""The transcript check that holds a turn open while the sentence plainly goes on."""

from __future__ import annotations

import pytest
from livekit.agents import llm

from callwise.agent.completeness import CompletenessDetector, transcript_complete
from callwise.agent.voice import build_turn_handling
from callwise.wiring.settings import Settings


@pytest.mark.parametrize("text, complete", [
    ("Okay, and where can I", False),
    ("And when someone leaves the company,", False),
    ("I was charged twice for my", False),
    ("I'd like to, um", False),
    ("Can I still get a full refund?", True),
    ("How long does a refund take to reach my card?", True),
    ("That's all I needed, thanks.", True),
    ("", False),
])
def test_open_endings(text: str, complete: bool) -> None:
    assert transcript_complete(text) is complete


async def test_the_framework_protocol_scores_the_last_user_message() -> None:
    detector = CompletenessDetector()
    ctx = llm.ChatContext()
    ctx.add_message(role="assistant", content="How can I help?")
    ctx.add_message(role="user", content="Which plan do we need for the")
    assert await detector.predict_end_of_turn(ctx) == 0.0
    assert 0.0 < (await detector.unlikely_threshold("en") or 0) <= 1.0  # below it the framework waits
    ctx.add_message(role="user", content="Which plan do we need to turn that on?")
    assert await detector.predict_end_of_turn(ctx) == 1.0
    assert await detector.supports_language("en") and not await detector.supports_language("de")


def test_turn_handling_modes() -> None:
    settings = Settings(_env_file=None)
    assert build_turn_handling(settings, "vad")["turn_detection"] == "vad"
    text = build_turn_handling(settings, "text")
    assert isinstance(text["turn_detection"], CompletenessDetector) and text["endpointing"]["max_delay"] == 1.5
    audio = build_turn_handling(settings, "audio")
    assert audio["turn_detection"].model == "turn-detector-v1-mini"  # offline: the local model
    assert audio["preemptive_generation"] == {"enabled": True}  # safe: replies are drafts (callwise.calls.draft)
    assert "endpointing" not in audio  # the framework's defaults unless asked
    tuned = build_turn_handling(settings, "vad", preemptive=False, min_delay=0.2, max_delay=1.0)
    assert tuned["preemptive_generation"] == {"enabled": False}
    assert tuned["endpointing"] == {"min_delay": 0.2, "max_delay": 1.0}
