"""A rule-based query-type classifier: cheap enough to run on every turn.

exact_match: the query names a code, SKU, error number or a quoted phrase (lexical search wins);
technical: product/integration vocabulary or code-like text; conversational: first-person,
chatty phrasing; conceptual: everything else ("what is", "why", "how does ... work").
"""

from __future__ import annotations

import re

from callwise.knowledge.types import QueryType

_CODE = re.compile(r"\b(?=[A-Za-z0-9_-]*\d)[A-Za-z0-9]+(?:[-_][A-Za-z0-9]+)+\b|\b[A-Z]{1,4}\d{2,}\b|\b\d{3,}\b")
_QUOTED = re.compile(r"[\"“”'`][^\"“”'`]{3,}[\"“”'`]")
_TECH = frozenset(
    """api apis sdk cli sso saml oidc oauth scim jwt token tokens webhook webhooks endpoint endpoints json yaml
    xml csv http https url dns cname txt mx ssl tls certificate cert proxy firewall ip header headers timeout
    latency rate limit limits config configure configuration integration integrations install plugin
    script regex database sql export import sync redirect callback idp metadata cache browser
    error errors exception stack debug log logs version upgrade 2fa mfa totp authenticator key keys secret""".split()
)
_CONVERSATIONAL = re.compile(
    r"^(hi|hello|hey|thanks|thank you|please|ok|okay|so|um|uh|well|yeah|yes|no)\b|"
    r"\b(i'm|i am|i've|i have|i was|i can't|i cannot|i want|i need|i tried|my|me|we're|our)\b",
    re.IGNORECASE,
)


def classify_query(query: str) -> QueryType:
    q = query.strip()
    if _CODE.search(q) or _QUOTED.search(q):
        return "exact_match"
    words = re.findall(r"[a-z0-9]+", q.lower())
    tech_hits = sum(1 for w in words if w in _TECH)
    if tech_hits >= 1 and (tech_hits >= 2 or not _CONVERSATIONAL.search(q)):
        return "technical"
    if _CONVERSATIONAL.search(q):
        return "conversational"
    return "conceptual"
