"""Breaker states as every process recorded them (``breaker_openings``, migration 0015), for the places that
have no router of their own (``callwise health``).

A router's breakers write each opening and closing to Postgres (``callwise.routing.resilience.SharedBreakers``),
so the row of a breaker says what the processes that call the provider know: ``opened_at`` null is closed; an
opening younger than the reset time is open; an older one is half-open (the next call is the trial). A
provider without a row never had its breaker opened.
"""

from __future__ import annotations

from typing import Any

from callwise.routing.resilience import CircuitBreaker

SOURCE = "breaker_openings in Postgres, as every process recorded them (no row: never opened)"


async def recorded_states(pool: Any, *, reset_after_s: float | None = None) -> dict[str, str]:
    """``{"provider:model": "closed" | "open" | "half_open"}`` for every breaker that was ever opened."""
    reset = CircuitBreaker("default").reset_after_s if reset_after_s is None else reset_after_s
    rows = await pool.fetch("select name, extract(epoch from now() - opened_at)::float8 as opened_ago "
                            "from breaker_openings")
    return {r["name"]: "closed" if r["opened_ago"] is None else "open" if r["opened_ago"] < reset else "half_open"
            for r in rows}


def with_recorded(report: dict[str, Any], states: dict[str, str], *, only_unknown: bool = False) -> dict[str, Any]:
    """``api.stats.model_health``'s report with each model's recorded breaker state (closed when never opened).
    ``only_unknown``: keep the states a serving router gave, fill in the models it has no breaker for."""
    filled = 0
    for model in report["models"]:
        if not only_unknown or model["breaker"] == "unknown":
            model["breaker"] = states.get(f"{model['provider']}:{model['model']}", "closed")
            filled += 1
    if not only_unknown:
        report["breaker_source"] = SOURCE
    elif filled:
        report["breaker_source"] += "; for the models it does not call, " + SOURCE
    return report
