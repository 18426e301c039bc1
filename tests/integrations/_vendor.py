"""A generic idempotent vendor for outbox tests: ``POST /actions`` with an ``Idempotency-Key`` header creates
one record per key (a repeat answers 200 with the first record), ``GET /actions?key=`` looks one up.

``down`` (503), ``fail_rate`` (503 on that share of calls, seeded) and ``rate_limit_once`` (429 with
Retry-After) script the faults; ``creates`` counts real creations per key, which is what "exactly once"
is checked against. With ``dedupe=False`` the vendor ignores the key (as most real vendors do): a double
delivery shows as two creations.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from typing import Any

import httpx

from callwise.integrations.outbox import Delivered, OutboxItem, PermanentError, RetryableError
from tests.vendors._http import FakeServer, Reply, Request


class IdempotentVendor(FakeServer):
    def __init__(self, *, fail_rate: float = 0.0, seed: int = 7, dedupe: bool = True) -> None:
        super().__init__()
        self.dedupe = dedupe
        self.failed = 0  # 503s answered before anything was created
        self.down = False
        self.fail_rate = fail_rate
        self.rng = random.Random(seed)
        self.records: dict[str, dict[str, Any]] = {}
        self.creates: Counter[str] = Counter()
        self.rate_limit_next: float | None = None
        self.reject_next = False
        self.lock = threading.Lock()

    def handle(self, request: Request) -> Reply:
        with self.lock:
            if self.down:
                return Reply(503, {"error": "service unavailable"})
            if self.rate_limit_next is not None:
                wait, self.rate_limit_next = self.rate_limit_next, None
                return Reply(429, {"error": "rate limited"}, headers={"Retry-After": str(int(wait))})
            if self.reject_next:
                self.reject_next = False
                return Reply(422, {"error": "RecordInvalid"})
            if self.fail_rate and self.rng.random() < self.fail_rate:
                self.failed += 1
                return Reply(503, {"error": "flaky"})
            if request.method == "GET":
                key = (request.query.get("key") or [""])[0]
                rec = self.records.get(key)
                return Reply(200, {"results": [rec] if rec else []})
            key = request.headers.get("idempotency-key", "")
            if self.dedupe and key in self.records:
                return Reply(200, self.records[key])
            self.creates[key] += 1
            rec = {"id": f"v-{len(self.records) + 1}", "key": key, "body": request.body}
            self.records[key] = rec
            return Reply(201, rec)


def vendor_handler(base_url: str, *, lookup_first: bool = True, token: str = "sk-test-secret-token") -> Any:
    """A real HTTP handler for ``test.action`` rows: look the key up (after a first attempt), then create."""

    async def handle(item: OutboxItem) -> Delivered:
        headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": item.idempotency_key}
        async with httpx.AsyncClient(base_url=base_url, timeout=5) as client:
            try:
                if lookup_first and item.attempts > 1:
                    found = await client.get("/actions", params={"key": item.idempotency_key}, headers=headers)
                    _raise_for(found)
                    if found.json()["results"]:
                        rec = found.json()["results"][0]
                        return Delivered(vendor_id=rec["id"], result={"found": True})
                resp = await client.post("/actions", json=item.payload, headers=headers)
            except httpx.HTTPError as exc:
                raise RetryableError(f"unreachable: {type(exc).__name__}") from exc
            _raise_for(resp)
            return Delivered(vendor_id=resp.json()["id"], result={"status": resp.status_code})

    return handle


def _raise_for(resp: httpx.Response) -> None:
    if resp.status_code == 429:
        raise RetryableError("rate limited", retry_after=float(resp.headers.get("retry-after", "1")))
    if resp.status_code >= 500:
        raise RetryableError(f"vendor answered {resp.status_code}")
    if resp.status_code >= 400:
        raise PermanentError(f"vendor refused: {resp.status_code} {resp.text[:100]}")
