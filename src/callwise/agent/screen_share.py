"""The customer's screen share or camera in a room, read into the call's turns (issue 25).

The worker connects audio-only; :func:`attach_screen_share` subscribes to the customer's video tracks (a
screen share first, else the camera), reads the frames with ``rtc.VideoStream`` and keeps only the latest.
A frame is read with OCR (``callwise.calls.screen.ScreenReader``, Tesseract in a worker thread) when:

* every ``interval_s`` seconds, the screen has changed since the last frame read (a grey 64x36 thumbnail,
  mean difference over ``CHANGE_THRESHOLD``: a cursor or a caret does not count);
* a turn refers to the screen ("can you see my screen", "este error aquí"): the turn's screen stage waits
  (at most ``callwise.calls.stages.screen.PREPARE_S``) for the latest frame to be read, if it is new.

The text reaches the turn as the separate, marked source the screen stage takes (``call.ctx.screen`` is the
:class:`ScreenShare`). Frames are kept in memory only; the call's ``modality`` becomes ``screen_share`` or
``video`` so the prompt addenda for those apply.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterable, Callable
from dataclasses import dataclass, field
from typing import Any

from livekit import rtc

from callwise.calls.screen import (
    CHANGE_THRESHOLD,
    FrameRejected,
    ScreenReader,
    ScreenText,
    check_frame,
    frame_change,
    frame_signature,
    refers_to_screen,
    tesseract_languages,
)

log = logging.getLogger("callwise.screen")

INTERVAL_S = 3.0


def to_image(frame: rtc.VideoFrame) -> Any:
    """A PIL RGB image of a LiveKit video frame (I420 from a track, RGBA from a test, any buffer type)."""
    from PIL import Image

    rgba = frame if frame.type == rtc.VideoBufferType.RGBA else frame.convert(rtc.VideoBufferType.RGBA)
    return Image.frombuffer("RGBA", (rgba.width, rgba.height), bytes(rgba.data), "raw", "RGBA", 0, 1).convert("RGB")


def from_image(img: Any) -> rtc.VideoFrame:
    """A LiveKit RGBA video frame of a PIL image (what a screen-share track carries, before encoding)."""
    rgba = img.convert("RGBA")
    return rtc.VideoFrame(rgba.width, rgba.height, rtc.VideoBufferType.RGBA, rgba.tobytes())


@dataclass
class ScreenShare:
    """One call's shared screen: the latest frame of a video track, read with OCR when it changed or a turn
    asks. Stands as ``CallContext.screen`` (``for_turn`` and ``prepare`` are what the screen stage calls)."""

    reader: ScreenReader = field(default_factory=ScreenReader)
    interval_s: float = INTERVAL_S
    change_threshold: float = CHANGE_THRESHOLD
    clock: Callable[[], float] = time.monotonic
    source: str = "screen_share"  # or "video" (a camera)
    language: Callable[[], str] | None = None  # the call's language, once settled: OCR reads it besides English
    frames_seen: int = 0
    frames_read: int = 0
    _latest: rtc.VideoFrame | None = None
    _latest_seq: int = 0
    _read_seq: int = 0
    _read_signature: Any = None
    _last_check: float | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _pending: asyncio.Task[Any] | None = None

    @property
    def latest(self) -> ScreenText | None:
        return self.reader.latest

    def push(self, frame: rtc.VideoFrame) -> None:
        """A frame from the track: kept as the latest; every ``interval_s`` a changed screen is read (in the
        background, one read at a time)."""
        self.frames_seen += 1
        self._latest, self._latest_seq = frame, self._latest_seq + 1
        now = self.clock()
        if self._last_check is not None and now - self._last_check < self.interval_s:
            return
        self._last_check = now
        if self._pending is None or self._pending.done():
            self._pending = asyncio.ensure_future(self.sample())

    async def sample(self, *, force: bool = False) -> ScreenText | None:
        """Read the latest frame if it is new and (unless ``force``) the screen changed since the last read."""
        async with self._lock:
            frame, seq = self._latest, self._latest_seq
            if frame is None or seq == self._read_seq:
                return self.reader.latest
            self._read_seq = seq
            try:
                img = to_image(frame)
                check_frame(img)
            except FrameRejected as exc:
                log.info("shared screen frame ignored: %s", exc)
                self.reader.rejected.append(str(exc))
                return self.reader.latest
            except Exception as exc:  # noqa: BLE001 - a frame that cannot be converted is one bad frame
                log.warning("shared screen frame could not be converted: %s", exc)
                return self.reader.latest
            sig = frame_signature(img)
            if (not force and self._read_signature is not None
                    and frame_change(sig, self._read_signature) < self.change_threshold):
                return self.reader.latest
            self._read_signature = sig
            self.frames_read += 1
            if self.language is not None:
                self.reader.languages = tesseract_languages(self.language())
            return await asyncio.get_running_loop().run_in_executor(None, self.reader.update, img)

    async def prepare(self, text: str) -> None:
        """Before a turn that refers to the screen: the latest frame read, if it is newer than the last read."""
        if refers_to_screen(text):
            await self.sample()

    def for_turn(self, text: str) -> ScreenText | None:
        return self.reader.for_turn(text)

    def image(self, frame_sha: str) -> Any | None:
        return self.reader.image(frame_sha)

    async def run(self, frames: AsyncIterable[Any]) -> None:
        """Feed a track's frames (``rtc.VideoFrameEvent`` or ``rtc.VideoFrame``) until the stream ends."""
        async for ev in frames:
            self.push(ev.frame if isinstance(ev, rtc.VideoFrameEvent) else ev)

    async def aclose(self) -> None:
        if self._pending is not None and not self._pending.done():
            self._pending.cancel()
            await asyncio.gather(self._pending, return_exceptions=True)


def call_modality(kind: str) -> str:
    """The call's modality for a shared track: ``screen_share`` once its answers are made speakable (this agent
    talks), else ``video``, whose addendum is the spoken one (a screen-share answer read out as Markdown would be
    worse than the video addendum)."""
    from callwise.routing.speakable import needs_speakable

    return kind if kind == "video" or needs_speakable(kind) else "video"


def _source_kind(source: int) -> str | None:
    if source == rtc.TrackSource.SOURCE_SCREENSHARE:
        return "screen_share"
    if source == rtc.TrackSource.SOURCE_CAMERA:
        return "video"
    return None


class ScreenShareAttachment:
    """The room side of a :class:`ScreenShare`: subscriptions, the video stream task, closing."""

    def __init__(self, room: rtc.Room, participant: rtc.RemoteParticipant, call: Any, share: ScreenShare) -> None:
        self.room, self.participant, self.call, self.share = room, participant, call, share
        self.track_sid: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._stream: rtc.VideoStream | None = None

    def on_published(self, pub: rtc.RemoteTrackPublication, participant: rtc.RemoteParticipant) -> None:
        if participant.identity == self.participant.identity and _source_kind(pub.source) is not None:
            pub.set_subscribed(True)  # the worker joined audio-only

    def on_subscribed(self, track: rtc.Track, pub: rtc.RemoteTrackPublication,
                      participant: rtc.RemoteParticipant) -> None:
        kind = _source_kind(pub.source)
        if participant.identity != self.participant.identity or track.kind != rtc.TrackKind.KIND_VIDEO or kind is None:
            return
        if self._task is not None and not (kind == "screen_share" and self.share.source == "video"):
            return  # one track at a time; a screen share replaces the camera
        if self._task is not None:
            self._task.cancel()
        self.track_sid, self.share.source = track.sid, kind
        self.call.ctx.modality = call_modality(kind)  # the screen-share / video prompt addenda
        self._stream = rtc.VideoStream(track)
        self._task = asyncio.create_task(self.share.run(self._stream))
        log.info("reading the customer's %s (track %s)", kind.replace("_", " "), track.sid)

    def on_unsubscribed(self, track: rtc.Track, _pub: rtc.RemoteTrackPublication,
                        _participant: rtc.RemoteParticipant) -> None:
        if track.sid == self.track_sid and self._task is not None:
            self._task.cancel()
            self._task, self.track_sid = None, None

    async def aclose(self) -> None:
        self.room.off("track_published", self.on_published)
        self.room.off("track_subscribed", self.on_subscribed)
        self.room.off("track_unsubscribed", self.on_unsubscribed)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._stream is not None:
            await self._stream.aclose()
        await self.share.aclose()


def attach_screen_share(room: rtc.Room, participant: rtc.RemoteParticipant, call: Any, *,
                        share: ScreenShare | None = None) -> ScreenShareAttachment:
    """Subscribe to ``participant``'s screen share or camera (now and when published later) and make the call's
    turns see it: ``call.ctx.screen`` is the :class:`ScreenShare`. OCR reads English plus the call's language."""
    share = share or ScreenShare(language=lambda: str(call.ctx.language))
    call.ctx.screen = share
    att = ScreenShareAttachment(room, participant, call, share)
    room.on("track_published", att.on_published)
    room.on("track_subscribed", att.on_subscribed)
    room.on("track_unsubscribed", att.on_unsubscribed)
    for pub in sorted(participant.track_publications.values(),
                      key=lambda p: _source_kind(p.source) != "screen_share"):  # a screen share first
        if _source_kind(pub.source) is None:
            continue
        if pub.track is not None:
            att.on_subscribed(pub.track, pub, participant)  # type: ignore[arg-type]
        else:
            pub.set_subscribed(True)
    return att


async def share_still_image(call: Any, image: Any, *, modality: str = "screen_share") -> ScreenShare:
    """A still image as the caller's shared screen for the whole call (``callwise simulate --live --screen``): one
    frame pushed through the same :class:`ScreenShare` the worker attaches to a track, read once now."""
    from callwise.calls.screen import load_frame

    share = ScreenShare(language=lambda: str(call.ctx.language))
    call.ctx.screen = share
    call.ctx.modality = call_modality(modality)
    share.push(from_image(load_frame(image)))
    await share.sample()
    return share
