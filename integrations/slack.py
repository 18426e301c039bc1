"""Slack notifications through an incoming webhook (https://api.slack.com/messaging/webhooks)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx


class SlackError(RuntimeError):
    """Slack refused the message or could not be reached."""


@dataclass
class SlackWebhook:
    url: str
    timeout_s: float = 10.0

    async def post(self, text: str, blocks: list[dict[str, Any]] | None = None) -> None:
        """Post one message; ``text`` is the notification fallback when ``blocks`` are given."""
        payload: dict[str, Any] = {"text": text}
        if blocks:
            payload["blocks"] = blocks
        try:
            async with httpx.AsyncClient(timeout=self.timeout_s) as client:
                resp = await client.post(self.url, json=payload)
        except httpx.HTTPError as exc:
            raise SlackError(f"Slack webhook unreachable: {type(exc).__name__}") from exc
        # Slack answers 200 "ok"; errors come as 4xx with a short reason ("invalid_payload", "no_service").
        if resp.status_code != 200:
            raise SlackError(f"Slack webhook answered {resp.status_code}: {resp.text[:200]}")


def section(markdown: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": markdown[:3000]}}
