"""Outbox handlers for CRM write-backs: ``crm.log_call`` (a HubSpot call engagement or a Salesforce
Task) and ``crm.open_case`` (a HubSpot ticket or a Salesforce Case). Each vendor write is idempotent
with our id (see the vendor modules), so a retry after a crash never makes a second record."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from callwise.integrations.actions import _raise_vendor
from callwise.integrations.credentials import CredentialStore
from callwise.integrations.crm.connect import CRMConfig, crm_for
from callwise.integrations.crm.types import CallLog, CaseRequest, CRMError
from callwise.integrations.outbox import Delivered, Handler, OutboxItem, PermanentError

LOG_CALL = "crm.log_call"
OPEN_CASE = "crm.open_case"


def call_payload(*, provider: str, customer_id: str, call: CallLog) -> dict[str, Any]:
    return {"provider": provider, "customer_id": customer_id,
            "call": {"call_id": call.call_id, "started_at": call.started_at.isoformat(), "duration_s": call.duration_s,
                     "title": call.title, "body": call.body, "direction": call.direction, "status": call.status}}


def build_crm_handlers(creds: CredentialStore, cfg: CRMConfig) -> dict[str, Handler]:
    async def with_crm(item: OutboxItem, write: Callable[[Any], Awaitable[str]]) -> tuple[str, str]:
        """Run one CRM write with the org's client; vendor errors become the outbox's (re-auth marked)."""
        crm = await crm_for(creds, item.organization_id, cfg)
        if crm is None:
            raise PermanentError("no CRM is connected (or it needs re-authorisation) for this organization")
        try:
            wanted = item.payload.get("provider")
            if wanted and wanted != crm.provider:
                raise PermanentError(f"the call was linked to {wanted}, but the connected CRM is {crm.provider}")
            return crm.provider, await write(crm)
        except CRMError as exc:
            await _raise_vendor(exc, creds, item, crm.provider)
            raise
        finally:
            await crm.aclose()

    async def log_call(item: OutboxItem) -> Delivered:
        c = item.payload["call"]
        call = CallLog(call_id=c["call_id"], started_at=datetime.fromisoformat(c["started_at"]),
                       duration_s=float(c["duration_s"]), title=c["title"], body=c["body"],
                       direction=c.get("direction", "INBOUND"), status=c.get("status", "COMPLETED"))
        provider, vendor_id = await with_crm(item, lambda crm: crm.log_call(item.payload["customer_id"], call))
        return Delivered(vendor_id=vendor_id, result={"provider": provider},
                         audit={"provider": provider, "customer": item.payload["customer_id"], "call": call.call_id})

    async def open_case(item: OutboxItem) -> Delivered:
        c = item.payload["case"]
        case = CaseRequest(case_id=c["case_id"], subject=c["subject"], description=c["description"],
                           priority=c.get("priority", "MEDIUM"), extra=c.get("extra") or {})
        provider, vendor_id = await with_crm(item, lambda crm: crm.open_case(item.payload.get("customer_id"), case))
        return Delivered(vendor_id=vendor_id, result={"provider": provider}, audit={"provider": provider, "case": case.case_id})

    return {LOG_CALL: log_call, OPEN_CASE: open_case}
