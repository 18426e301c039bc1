"""The customer's screen share in the live worker (issue 25): real ``rtc.VideoFrame`` objects built from the example
screenshots, read with real Tesseract when the screen changed or a turn refers to it, into the turn's screen stage."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
from livekit import rtc
from PIL import Image

from callwise.agent.screen_share import ScreenShare, from_image, to_image
from callwise.calls.screen import ScreenReader

SCREENS = Path(__file__).resolve().parents[2] / "examples" / "screens"
needs_tesseract = pytest.mark.skipif(shutil.which("tesseract") is None, reason="apt-get install tesseract-ocr")


def _frame(name: str) -> rtc.VideoFrame:
    return from_image(Image.open(SCREENS / name))


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_video_frame_round_trips_to_the_same_pixels_and_i420_converts() -> None:
    img = Image.open(SCREENS / "e-4290-dialog.png").convert("RGB")
    frame = from_image(img)
    assert (frame.width, frame.height, frame.type) == (img.width, img.height, rtc.VideoBufferType.RGBA)
    assert to_image(frame).tobytes() == img.tobytes()
    i420 = frame.convert(rtc.VideoBufferType.I420)  # what a track's decoder hands out
    back = to_image(i420)
    assert back.size == img.size


async def _settle(share: ScreenShare) -> None:
    if share._pending is not None:
        await share._pending


@needs_tesseract
async def test_a_changed_screen_is_read_every_interval_and_a_still_one_only_once() -> None:
    clock = _Clock()
    share = ScreenShare(interval_s=3.0, clock=clock)
    share.push(_frame("e-4290-dialog.png"))  # first frame: read at once
    await _settle(share)
    assert share.latest is not None and "E-4290" in share.latest.codes and share.frames_read == 1
    for t in (1.0, 3.5, 7.0):  # the same screen, frame after frame: never read again
        clock.now = t
        share.push(_frame("e-4290-dialog.png"))
        await _settle(share)
    assert share.frames_read == 1 and share.frames_seen == 4
    clock.now = 8.0  # another error on screen, within the interval: kept, not read yet
    share.push(_frame("e-2001-banner.png"))
    await _settle(share)
    assert "E-4290" in share.latest.codes  # type: ignore[union-attr]
    clock.now = 10.5  # the interval has passed
    share.push(_frame("e-2001-banner.png"))
    await _settle(share)
    assert share.frames_read == 2 and "E-2001" in share.latest.codes  # type: ignore[union-attr]


@needs_tesseract
async def test_a_turn_that_refers_to_the_screen_reads_the_new_frame_at_once() -> None:
    clock = _Clock()
    share = ScreenShare(interval_s=30.0, clock=clock)
    share.push(_frame("e-1042-terminal.png"))
    await _settle(share)
    clock.now = 2.0
    share.push(_frame("e-5003-dialog.png"))  # inside the interval: not read on its own
    await share.prepare("How do I export my data?")  # a turn about something else leaves it
    assert "E-1042" in share.latest.codes  # type: ignore[union-attr]
    await share.prepare("¿Puede ver mi pantalla? Me sale este error")
    seen = share.for_turn("¿Puede ver mi pantalla? Me sale este error")
    assert seen is not None and "E-5003" in seen.codes and share.frames_read == 2


async def test_a_black_frame_is_ignored_with_a_log_line(caplog: pytest.LogCaptureFixture) -> None:
    share = ScreenShare(reader=ScreenReader(ocr=lambda img, langs: "E-4290 Rate limit exceeded"))
    share.push(from_image(Image.new("RGB", (1280, 720), (0, 0, 0))))
    with caplog.at_level(logging.INFO, logger="callwise.screen"):
        await _settle(share)
    assert share.latest is None and "black frame" in caplog.text and share.frames_read == 0


async def test_frames_from_a_stream_are_fed_until_it_ends() -> None:
    share = ScreenShare(reader=ScreenReader(ocr=lambda img, langs: "E-3107 Payment declined"))

    async def stream():  # type: ignore[no-untyped-def]
        for name in ("e-3107-dialog.png", "e-3107-dialog.png"):
            yield rtc.VideoFrameEvent(frame=_frame(name), timestamp_us=0, rotation=rtc.VideoRotation.VIDEO_ROTATION_0)

    await share.run(stream())
    await _settle(share)
    assert share.frames_seen == 2 and share.latest is not None and share.latest.codes == ("E-3107",)


@needs_tesseract
async def test_a_live_shared_screen_puts_the_dialogs_page_first_in_the_turn(support_deps, knowledge, pg_pool) -> None:
    from callwise.calls.context import CallContext, TurnContext, TurnOutcome
    from callwise.calls.stages.intake import Guard
    from callwise.calls.stages.retrieve import Retrieve
    from callwise.calls.stages.screen import ReadScreen
    from callwise.calls.stages.understand import UnderstandQuery
    from tests.calls.error_pages import error_pages_org

    org = await error_pages_org(knowledge, pg_pool, prefix="share")
    call = CallContext(deps=support_deps, organization_id=org, session_id=None, persist=False)
    share = ScreenShare(interval_s=60.0, language=lambda: call.language)
    call.screen = share
    share.push(_frame("e-1042-banner.png"))
    await _settle(share)
    share.push(_frame("e-4290-dialog.png"))  # the screen changed; the turn asks about it before the interval
    text = "Can you see my screen? What does this error mean?"
    ctx = TurnContext(call=call, text=text, outcome=TurnOutcome(transcript=text))
    for stage in (Guard(), UnderstandQuery(), ReadScreen(), Retrieve()):  # the support turn's stages, in order
        await stage.run(ctx)
    assert ctx.outcome.screen is not None and "E-4290" in ctx.outcome.screen["codes"]
    assert ctx.retrieved[0].document == "examples/kb/error-codes/e-4290-rate-limit-exceeded.md"


@needs_tesseract
async def test_a_still_image_is_the_calls_shared_screen_for_simulate_live() -> None:
    from callwise.agent.screen_share import share_still_image
    from callwise.calls.context import CallContext

    call = CallContext(deps=None, organization_id="org", session_id=None, persist=False)  # type: ignore[arg-type]

    class _Call:
        ctx = call

    share = await share_still_image(_Call(), SCREENS / "e-5003-terminal.png")
    from callwise.routing.speakable import needs_speakable

    # spoken answers: screen_share once its answers are made speakable, the video addendum until then
    assert call.screen is share and call.modality == ("screen_share" if needs_speakable("screen_share") else "video")
    assert share.latest is not None and "E-5003" in share.latest.codes and share.frames_read == 1
