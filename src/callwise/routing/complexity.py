"""Query complexity: the seed's additive factors, matched on whole words so "if" no longer fires
inside "difference". Returns its factors so a routing decision can be explained."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

TECHNICAL_TERMS: frozenset[str] = frozenset({
    "api", "apis", "webhook", "webhooks", "sso", "saml", "oauth", "scim", "endpoint", "endpoints",
    "integration", "integrations", "token", "tokens", "sdk", "dns", "ssl", "tls", "certificate",
    "configuration", "configure", "database", "sync", "synchronization", "latency", "timeout",
    "encryption", "csv", "export", "import", "migration", "rate limit", "rate limits", "payload",
    "authentication", "2fa", "mfa", "ip allowlist", "firewall", "proxy", "redirect uri", "zapier",
    "sandbox", "json", "http", "https", "header", "headers", "server", "cname", "domain",
})
# Questions about code go straight to the top tier.
CODE_TERMS: frozenset[str] = frozenset({
    "code", "script", "snippet", "function", "stack trace", "stacktrace", "traceback", "exception",
    "regex", "sql", "curl", "python", "javascript", "typescript", "debug", "compile", "graphql",
})
CONDITIONALS: frozenset[str] = frozenset({"if", "unless", "whether", "otherwise", "in case", "assuming", "suppose"})

SIMPLE_MAX = 0.3
MODERATE_MAX = 0.7


def _count(terms: frozenset[str], text: str) -> list[str]:
    found = []
    for term in sorted(terms):
        if re.search(r"(?<![\w-])" + re.escape(term) + r"(?![\w-])", text):
            found.append(term)
    return found


@dataclass
class Complexity:
    score: float
    tier: str
    factors: dict[str, float] = field(default_factory=dict)
    matched: dict[str, list[str]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {"score": self.score, "tier": self.tier, "factors": dict(self.factors), "matched": dict(self.matched)}


def analyze(query: str, *, simple_max: float = SIMPLE_MAX, moderate_max: float = MODERATE_MAX) -> Complexity:
    text = " ".join(query.lower().split())
    words = re.findall(r"[\w'-]+", text)
    factors: dict[str, float] = {}
    matched: dict[str, list[str]] = {}
    if len(words) > 30:
        factors["length"] = 0.2
    if text.count("?") > 1 or re.search(r"\band\b", text):
        factors["multi_question"] = 0.3
    technical = _count(TECHNICAL_TERMS, text)
    if technical:
        factors["technical"] = min(0.4, 0.15 * len(technical))
        matched["technical"] = technical
    conditionals = _count(CONDITIONALS, text)
    if conditionals:
        factors["conditional"] = 0.1
        matched["conditional"] = conditionals
    code = _count(CODE_TERMS, text)
    if code:
        matched["code"] = code
    score = round(min(1.0, sum(factors.values())), 4)
    if code:
        tier = "tier3"
    elif score < simple_max:
        tier = "tier1"
    elif score < moderate_max:
        tier = "tier2"
    else:
        tier = "tier3"
    return Complexity(score=score, tier=tier, factors=factors, matched=matched)
