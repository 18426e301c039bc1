"""One priority per escalation reason, for every ticket system (Zendesk, a HubSpot ticket, a Salesforce Case).

Levels are Zendesk's (``urgent``, ``high``, ``normal``); :func:`crm_priority` gives HubSpot's
``hs_ticket_priority`` values, which Salesforce's default Case picklist reads with ``urgent`` as ``High``.
"""

from __future__ import annotations

CASE_PRIORITY = {"security_privacy": "urgent", "outage": "urgent", "legal_refund": "high", "billing_dispute": "high",
                 "frustration": "high", "explicit_request": "normal", "repeated_failure": "normal",
                 "low_confidence": "normal", "router_failure": "normal"}
_CRM = {"urgent": "URGENT", "high": "HIGH", "normal": "MEDIUM"}


def case_priority(reason: str | None) -> str:
    return CASE_PRIORITY.get(reason or "", "normal")


def crm_priority(reason: str | None) -> str:
    return _CRM[case_priority(reason)]
