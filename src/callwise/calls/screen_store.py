"""The shared screen kept with the turn (migration 0017): the OCR text the turn used, on the customer's turn row;
the frame itself only where the organization allows it (``organizations.store_screen_frames``, default off)."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

log = logging.getLogger("callwise.screen")


async def frames_allowed(pool: Any, organization_id: str) -> bool:
    """The organization keeps shared-screen frames (off by default, and off on a database before 0017)."""
    try:
        return bool(await pool.fetchval("select store_screen_frames from organizations where id = $1", organization_id))
    except Exception:  # noqa: BLE001 - a database before migration 0017: nothing is kept
        log.warning("could not read the organization's frame setting; frames are not stored", exc_info=True)
        return False


async def save_turn_screen(pool: Any, organization_id: str, session_id: str, screen: dict[str, Any]) -> bool:
    """``screen`` (the turn's ``TurnOutcome.screen``: redacted text, codes, frame hash) on the call's latest
    customer turn, the one this turn stored first (``RecordCustomerWords``). False when no such row."""
    status = await pool.execute(
        "update turns set screen = $3::jsonb where id = (select id from turns where organization_id = $1 "
        "and session_id = $2 and role = 'user' order by seq desc limit 1)",
        organization_id, session_id, json.dumps(screen))
    return str(status).endswith(" 1")


async def save_frame(pool: Any, organization_id: str, session_id: str, frame_sha: str, image: Any) -> None:
    """The frame as PNG, once per call and frame."""
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    await pool.execute(
        "insert into screen_frames (organization_id, session_id, frame_sha, png, width, height) "
        "values ($1, $2, $3, $4, $5, $6) on conflict (session_id, frame_sha) do nothing",
        organization_id, session_id, frame_sha, buf.getvalue(), image.width, image.height)
