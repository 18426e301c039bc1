"""The CRM interface every vendor module implements, and the typed records that cross it.

The CRM is the system of record for contact fields; callwise reads customers from it and writes
back only what happened on a call (an engagement or task, and a ticket or case for an escalation).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Protocol

from callwise.integrations.errors import VendorError

CRMError = VendorError  # one error type for every vendor (callwise.integrations.errors)


@dataclass
class Customer:
    """A caller as the CRM knows them (the fields the prompt's customer block can use)."""

    provider: str
    external_id: str
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    company: str | None = None
    plan: str | None = None
    lifetime_value: float | None = None
    account_age_days: int | None = None
    open_tickets: int | None = None
    owner: str | None = None
    updated_at: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["updated_at"] = self.updated_at.isoformat() if self.updated_at else None
        return data

    def prompt_fields(self) -> dict[str, str]:
        """What goes into the prompt's customer block: the known fields only, as short strings."""
        out: dict[str, str] = {}
        if self.name:
            out["name"] = self.name
        if self.company:
            out["company"] = self.company
        if self.plan:
            out["plan"] = self.plan
        if self.lifetime_value is not None:
            out["lifetime_value"] = f"${self.lifetime_value:,.0f}"
        if self.account_age_days is not None:
            out["account_age"] = f"{self.account_age_days} days"
        if self.open_tickets is not None:
            out["open_tickets"] = str(self.open_tickets)
        return out


@dataclass
class CallLog:
    """A finished call, written back as a HubSpot call engagement or a Salesforce Task."""

    call_id: str
    started_at: datetime
    duration_s: float
    title: str
    body: str
    direction: str = "INBOUND"
    status: str = "COMPLETED"


@dataclass
class CaseRequest:
    """An escalation opened as a HubSpot ticket or a Salesforce Case."""

    case_id: str
    subject: str
    description: str
    priority: str = "MEDIUM"  # LOW | MEDIUM | HIGH
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class FieldMap:
    """Which CRM property means what. Per-org configuration; these defaults are the vendors' stock fields
    where one exists and a conventional custom field name where none does."""

    plan: str = ""
    lifetime_value: str = ""
    company: str = ""
    owner: str = ""

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None, defaults: FieldMap) -> FieldMap:
        data = data or {}
        unknown = set(data) - {"plan", "lifetime_value", "company", "owner"}
        if unknown:
            raise ValueError(f"unknown CRM field mapping(s): {', '.join(sorted(unknown))}")
        return cls(**{k: str(data.get(k, getattr(defaults, k))) for k in ("plan", "lifetime_value", "company", "owner")})


class CRM(Protocol):
    """One organization's CRM. Implementations: ``hubspot.HubSpotCRM``, ``salesforce.SalesforceCRM``."""

    provider: str

    async def find_customer(self, *, phone: str | None = None, email: str | None = None,
                            external_id: str | None = None) -> Customer | None: ...

    async def upsert_contact(self, customer: Customer) -> str: ...

    async def log_call(self, customer_id: str, call: CallLog) -> str: ...

    async def open_case(self, customer_id: str | None, case: CaseRequest) -> str: ...

    async def aclose(self) -> None: ...


def pick_most_recent(candidates: list[Customer]) -> tuple[Customer | None, bool]:
    """The most recently updated of several matches, and whether the match was ambiguous."""
    if not candidates:
        return None, False
    ordered = sorted(candidates, key=lambda c: c.updated_at or datetime.min, reverse=True)
    return ordered[0], len(candidates) > 1


def digits(phone: str) -> str:
    """A phone number reduced to its digits (with a leading + kept) for matching."""
    phone = phone.strip()
    plus = "+" if phone.startswith("+") else ""
    return plus + "".join(ch for ch in phone if ch.isdigit())
