"""A generative second opinion for turns the learned detector is unsure about.

Only where a generative tier is configured: one short structured call on the cheapest generative tier
(temperature 0, a few tokens of JSON), within a budget of about 300 ms. It is asked only when the
detector's best probability lies between its reason's low and high thresholds, and it may answer
"none". Offline (no generative tier) there is no judge and the detector decides alone. A judge that
times out, fails or answers something unreadable decides nothing.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from callwise.handoff.detector import REASONS
from callwise.routing.providers.base import Provider
from callwise.routing.types import Message

log = logging.getLogger("callwise.handoff")

SYSTEM = (
    "You review a customer support phone call for escalation to a human. Reasons: security_privacy (account "
    "takeover, hacking, data exposure, personal-data request), legal_refund (legal threat, formal complaint, "
    "chargeback or card dispute, demand for money back), explicit_request (the caller asks for a person), outage "
    "(the service is down for more than this caller), billing_dispute (a disputed charge), frustration (the caller "
    "is upset with the service), repeated_failure (the same need is still unresolved after answers). Questions "
    "about features, policies or the caller's own activity are none. Reply with JSON only: "
    '{"reason": "<one reason or none>"}'
)
_JSON = re.compile(r"\{[^{}]*\}")


@dataclass(frozen=True)
class Verdict:
    reason: str | None  # None: the judge says no escalation
    latency_ms: float
    model: str


class EscalationJudge:
    """One structured call on ``provider`` per unsure turn, bounded by ``budget_s``."""

    def __init__(self, provider: Provider, *, budget_s: float = 0.3, max_tokens: int = 16) -> None:
        self.provider = provider
        self.budget_s = budget_s
        self.max_tokens = max_tokens

    @staticmethod
    def cheapest(tiers: Sequence[Any], *, budget_s: float = 0.3) -> EscalationJudge | None:
        """A judge on the cheapest generative tier of a router's ``tiers``; None when none is generative."""
        generative = [t for t in tiers if getattr(t.provider, "generative", False)]
        if not generative:
            return None
        best = min(generative, key=lambda t: t.price.input + t.price.output)
        return EscalationJudge(best.provider, budget_s=budget_s)

    async def judge(self, turns: Sequence[str], answers: Sequence[str], candidate: str | None) -> Verdict | None:
        """The judge's reason for the call's last customer turn; None when it gave no usable answer in time."""
        lines = []
        for i, t in enumerate(turns[-4:]):
            lines.append(f"Customer: {t[:600]}")
            if i < len(answers[-3:]):
                lines.append(f"Agent: {answers[-3:][i][:300]}")
        user = "\n".join(lines) + (f"\n\nThe classifier leans to: {candidate}." if candidate else "")
        start = time.perf_counter()
        try:
            gen = await asyncio.wait_for(
                self.provider.generate([Message("system", SYSTEM), Message("user", user)], temperature=0.0,
                                       max_tokens=self.max_tokens),
                timeout=self.budget_s)
        except Exception:  # noqa: BLE001 - a late or failed judge decides nothing; the detector stands
            log.info("escalation judge gave no answer within %.0f ms", self.budget_s * 1000, exc_info=True)
            return None
        reason = parse_reason(gen.text)
        if reason is False or reason is True:
            return None
        return Verdict(reason, (time.perf_counter() - start) * 1000, self.provider.key)


def parse_reason(text: str) -> str | None | bool:
    """``{"reason": "outage"}`` -> "outage"; "none" -> None; anything unreadable -> False."""
    m = _JSON.search(text or "")
    if not m:
        return False
    try:
        value = json.loads(m.group(0)).get("reason")
    except (ValueError, AttributeError):
        return False
    if not isinstance(value, str):
        return False
    value = value.strip().lower()
    if value in ("none", "no", "null", ""):
        return None
    return value if value in REASONS else False
