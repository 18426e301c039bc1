"""Slack: incoming webhooks (alerts, simple on-duty notices) and the Web API's ``chat.postMessage``.

Wire formats: an incoming webhook takes a JSON POST and answers 200 ``ok`` or a 4xx with a short reason
(https://api.slack.com/messaging/webhooks). ``chat.postMessage`` (https://api.slack.com/methods/chat.postMessage)
takes ``Authorization: Bearer xoxb-...`` and answers HTTP 200 with ``{"ok": true, "channel", "ts"}`` or
``{"ok": false, "error": "channel_not_found"}``; 429 carries ``Retry-After``. The base URL is a setting
(``CALLWISE_SLACK_BASE_URL``, default ``https://slack.com``) so a local server can stand in.

``chat.postMessage`` has no idempotency key, so each on-duty notice carries our key in the message
``metadata`` (``event_type: callwise_case``); before a retry :meth:`SlackBot.find_posted` reads the
channel's recent history with metadata and skips the post if the notice is already there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from callwise.integrations.errors import VendorError

DEFAULT_BASE_URL = "https://slack.com"
_AUTH_ERRORS = {"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired"}

SlackError = VendorError  # one error type for every vendor (callwise.integrations.errors)


def _retry_after(resp: httpx.Response) -> float | None:
    try:
        return float(resp.headers["retry-after"])
    except (KeyError, ValueError):
        return None


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
            raise SlackError(f"Slack webhook answered {resp.status_code}: {resp.text[:200]}",
                             retryable=resp.status_code == 429 or resp.status_code >= 500,
                             retry_after=_retry_after(resp), auth=resp.status_code in (403, 404))


@dataclass
class SlackBot:
    token: str
    base_url: str = DEFAULT_BASE_URL
    timeout_s: float = 10.0
    http: httpx.AsyncClient | None = None  # a shared client (connection pool); one per call when None

    async def _call(self, method: str, *, json: dict[str, Any] | None = None,
                    params: dict[str, Any] | None = None) -> dict[str, Any]:
        url = f"{self.base_url.rstrip('/')}/api/{method}"
        headers = {"Authorization": f"Bearer {self.token}"}
        try:
            if self.http is not None:
                resp = await self.http.request("POST" if json is not None else "GET", url, json=json, params=params,
                                               headers=headers, timeout=self.timeout_s)
            else:
                async with httpx.AsyncClient(timeout=self.timeout_s) as client:
                    resp = await client.request("POST" if json is not None else "GET", url, json=json, params=params,
                                                headers=headers)
        except httpx.HTTPError as exc:
            raise SlackError(f"Slack unreachable: {type(exc).__name__}") from exc
        if resp.status_code == 429 or resp.status_code >= 500:
            raise SlackError(f"Slack {method} answered {resp.status_code}", retry_after=_retry_after(resp))
        try:
            body = resp.json()
        except ValueError:
            raise SlackError(f"Slack {method} answered {resp.status_code} without JSON") from None
        if not body.get("ok"):
            error = str(body.get("error") or f"http {resp.status_code}")
            raise SlackError(f"Slack {method}: {error}", retryable=error in ("ratelimited", "internal_error"),
                             auth=error in _AUTH_ERRORS)
        return body

    async def post_message(self, channel: str, text: str, blocks: list[dict[str, Any]] | None = None,
                           key: str | None = None) -> dict[str, Any]:
        payload: dict[str, Any] = {"channel": channel, "text": text, "unfurl_links": False}
        if blocks:
            payload["blocks"] = blocks
        if key:
            payload["metadata"] = {"event_type": "callwise_case", "event_payload": {"key": key}}
        return await self._call("chat.postMessage", json=payload)

    async def find_posted(self, channel: str, key: str, oldest: float) -> dict[str, Any] | None:
        """The message we already posted with ``key`` since ``oldest`` (epoch seconds), if any."""
        body = await self._call("conversations.history", params={
            "channel": channel, "oldest": f"{oldest:.6f}", "include_all_metadata": "true", "limit": 200})
        for msg in body.get("messages", []):
            meta = msg.get("metadata") or {}
            if meta.get("event_type") == "callwise_case" and (meta.get("event_payload") or {}).get("key") == key:
                return msg
        return None


def section(markdown: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": markdown[:3000]}}


def on_duty_notice(payload: dict[str, Any], case_link: str | None) -> tuple[str, list[dict[str, Any]]]:
    """The on-duty message for a case: reason, the words that triggered it, a short summary, the customer,
    and a link to the case (live) or the callback note. Never a join link: the room token is minted only for
    the agent who claims the case."""
    case = payload.get("case", "case")
    live = payload.get("handoff") == "live"
    head = f"{'Caller waiting' if live else 'Callback needed'}: {case} ({payload.get('reason', '?')})"
    matched = ", ".join(f'"{m}"' for m in payload.get("matched") or []) or "-"
    recent = [str(x)[:300] for x in (payload.get("recent") or [])][-3:]
    customer = payload.get("customer") or {}
    who = ", ".join(str(customer[k]) for k in ("name", "email", "phone") if customer.get(k)) or "unknown caller"
    lines = [f"*{head}*", f"Rule: {payload.get('rule', '-')}; words: {matched}", f"Customer: {who}"]
    if recent:
        lines.append("Call so far:\n" + "\n".join(f"> {r}" for r in recent))
    if live:
        where = f"<{case_link}|Open {case}>; " if case_link else ""
        lines.append(f"{where}claim it to get your join link: `callwise escalations claim --org ORG {case} --agent NAME`")
    elif not live:
        lines.append(f"Service hours: {payload.get('service_hours', '-')}")
    text = "\n".join(lines)
    return head, [section(text)]
