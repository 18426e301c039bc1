"""A/B experiments: deterministic assignment, outcomes, per-variant figures and a chi-square test.

An experiment has a control and a treatment config (prompt version, temperature, rerank on/off,
chunk count ...) and a traffic split (share of users in treatment). A user's variant is a hash of
experiment name and user key, so it is stable across calls and processes without storing it.
Outcomes live in ``experiment_results``; sessions tagged with the experiment (``sessions.ab_test_id``)
are copied there by :func:`sync_outcomes`.

Significance: Pearson's chi-square on the 2x2 table variant x outcome, with Yates' continuity
correction, by ``scipy.stats.chi2_contingency`` (one degree of freedom). Below ``min_per_variant`` users per variant or an expected
cell count under 5 the verdict is "sample too small".
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import asyncpg

Variant = Literal["control", "treatment"]
VARIANTS: tuple[Variant, Variant] = ("control", "treatment")
CONFIG_KEYS = frozenset({"prompt_version", "temperature", "rerank", "chunk_count", "top_k", "tiers", "model"})
#: what a live call applies (callwise.calls: retrieval top_k/chunk_count and rerank, the router's temperature
#: and prompt version); the others are recorded on the session as not applied
APPLIED_KEYS = frozenset({"prompt_version", "temperature", "rerank", "chunk_count", "top_k"})


class ExperimentError(ValueError):
    """Unknown experiment or invalid experiment definition."""


def assign_variant(experiment: str, user_key: str, traffic_split: float = 0.5) -> Variant:
    """``treatment`` for a ``traffic_split`` share of users, decided by sha256(experiment:user)."""
    if not 0 < traffic_split < 1:
        raise ValueError("traffic_split must be in (0, 1)")
    digest = hashlib.sha256(f"{experiment}:{user_key}".encode()).digest()
    bucket = int.from_bytes(digest[:8], "big") / 2**64
    return "treatment" if bucket < traffic_split else "control"


# -- statistics -------------------------------------------------------------------------------
@dataclass(frozen=True)
class ChiSquare:
    statistic: float | None
    p_value: float | None
    min_expected: float
    reason: str | None = None  # why no test was possible


def chi_square_2x2(success_a: int, n_a: int, success_b: int, n_b: int, *, correction: bool = True) -> ChiSquare:
    """Chi-square test of independence for successes out of n in two groups."""
    if min(success_a, n_a, success_b, n_b) < 0 or success_a > n_a or success_b > n_b:
        raise ValueError("counts must satisfy 0 <= successes <= n")
    table = [[success_a, n_a - success_a], [success_b, n_b - success_b]]
    n = n_a + n_b
    cols = [success_a + success_b, n - success_a - success_b]
    if n == 0 or 0 in (n_a, n_b) or 0 in cols:
        return ChiSquare(None, None, 0.0, "no variation: a variant has no users or every outcome is the same")
    from scipy.stats import chi2_contingency

    res = chi2_contingency(table, correction=correction)
    stat, p, expected = float(res.statistic), float(res.pvalue), res.expected_freq
    return ChiSquare(stat, p, float(expected.min()))


@dataclass
class VariantStats:
    variant: Variant
    n: int
    resolved: int
    resolution_n: int  # outcomes where resolution is known
    escalated: int
    csat_mean: float | None
    csat_n: int
    nps: float | None
    nps_n: int

    @property
    def resolution_rate(self) -> float | None:
        return self.resolved / self.resolution_n if self.resolution_n else None

    @property
    def escalation_rate(self) -> float | None:
        return self.escalated / self.n if self.n else None

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "resolution_rate": self.resolution_rate, "escalation_rate": self.escalation_rate}


def nps_score(scores: list[int]) -> float | None:
    """Net promoter score in [-100, 100]: % promoters (9-10) minus % detractors (0-6)."""
    if not scores:
        return None
    promoters = sum(1 for s in scores if s >= 9)
    detractors = sum(1 for s in scores if s <= 6)
    return 100.0 * (promoters - detractors) / len(scores)


@dataclass
class Comparison:
    metric: str
    test: ChiSquare
    verdict: str


@dataclass
class ABReport:
    experiment: str
    status: str
    traffic_split: float
    control_config: dict[str, Any]
    treatment_config: dict[str, Any]
    variants: dict[str, VariantStats]
    comparisons: list[Comparison] = field(default_factory=list)
    sample_too_small: bool = False
    verdict: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "experiment": self.experiment, "status": self.status, "traffic_split": self.traffic_split,
            "control_config": self.control_config, "treatment_config": self.treatment_config,
            "variants": {k: v.to_json() for k, v in self.variants.items()},
            "comparisons": [{"metric": c.metric, **asdict(c.test), "verdict": c.verdict} for c in self.comparisons],
            "sample_too_small": self.sample_too_small, "verdict": self.verdict,
        }


def compare(metric: str, a_success: int, a_n: int, b_success: int, b_n: int, *, alpha: float,
            min_per_variant: int, higher_is_better: bool = True) -> Comparison:
    test = chi_square_2x2(a_success, a_n, b_success, b_n)
    if min(a_n, b_n) < min_per_variant or test.p_value is None or test.min_expected < 5:
        why = test.reason or (f"need >= {min_per_variant} outcomes per variant and expected counts >= 5; "
                              f"have {a_n} control, {b_n} treatment")
        return Comparison(metric, test, f"sample too small to conclude ({why})")
    if test.p_value >= alpha:
        return Comparison(metric, test, f"no significant difference (p={test.p_value:.3f} >= {alpha})")
    ra, rb = a_success / a_n, b_success / b_n
    better = (rb > ra) == higher_is_better
    return Comparison(metric, test, f"treatment {'better' if better else 'worse'} "
                                    f"({rb:.1%} vs {ra:.1%}, p={test.p_value:.4f})")


def summarise(rows: list[dict[str, Any]]) -> dict[str, VariantStats]:
    out: dict[str, VariantStats] = {}
    for v in VARIANTS:
        rs = [r for r in rows if r["variant"] == v]
        csat = [int(r["csat"]) for r in rs if r.get("csat") is not None]
        nps = [int(r["nps"]) for r in rs if r.get("nps") is not None]
        known = [r for r in rs if r.get("resolved") is not None]
        out[v] = VariantStats(
            variant=v, n=len(rs), resolved=sum(1 for r in known if r["resolved"]), resolution_n=len(known),
            escalated=sum(1 for r in rs if r.get("escalated")),
            csat_mean=sum(csat) / len(csat) if csat else None, csat_n=len(csat),
            nps=nps_score(nps), nps_n=len(nps),
        )
    return out


def build_report(name: str, exp: dict[str, Any], rows: list[dict[str, Any]], *, alpha: float = 0.05,
                 min_per_variant: int = 30) -> ABReport:
    stats = summarise(rows)
    c, t = stats["control"], stats["treatment"]
    comparisons = [
        compare("resolution_rate", c.resolved, c.resolution_n, t.resolved, t.resolution_n,
                alpha=alpha, min_per_variant=min_per_variant),
        compare("escalation_rate", c.escalated, c.n, t.escalated, t.n,
                alpha=alpha, min_per_variant=min_per_variant, higher_is_better=False),
    ]
    too_small = comparisons[0].verdict.startswith("sample too small")
    verdict = comparisons[0].verdict
    return ABReport(name, exp["status"], float(exp["traffic_split"]), _json(exp["control_config"]),
                    _json(exp["treatment_config"]), stats, comparisons, too_small, verdict)


def _json(v: Any) -> dict[str, Any]:
    return json.loads(v) if isinstance(v, str) else dict(v or {})


# -- storage ------------------------------------------------------------------------------------
async def create_experiment(pool: asyncpg.Pool, org_id: str, name: str, control: dict[str, Any],
                            treatment: dict[str, Any], *, traffic_split: float = 0.5,
                            description: str = "") -> str:
    if not 0 < traffic_split < 1:
        raise ExperimentError("traffic split must be between 0 and 1 (share of users in treatment)")
    unknown = (set(control) | set(treatment)) - CONFIG_KEYS
    if unknown:
        raise ExperimentError(f"unknown config keys {sorted(unknown)}; known: {sorted(CONFIG_KEYS)}")
    row = await pool.fetchrow(
        """insert into experiments (organization_id, name, description, control_config, treatment_config,
                                    traffic_split)
           values ($1, $2, $3, $4::jsonb, $5::jsonb, $6)
           on conflict (organization_id, name) do update set description = excluded.description,
               control_config = excluded.control_config, treatment_config = excluded.treatment_config,
               traffic_split = excluded.traffic_split
           returning id""",
        org_id, name, description, json.dumps(control), json.dumps(treatment), traffic_split)
    return str(row["id"])


async def get_experiment(pool: asyncpg.Pool, org_id: str, name: str) -> dict[str, Any]:
    row = await pool.fetchrow("select * from experiments where organization_id = $1 and name = $2", org_id, name)
    if row is None:
        raise ExperimentError(f"no experiment named {name!r} in this organization")
    return dict(row)


async def assign(pool: asyncpg.Pool, org_id: str, name: str, user_key: str) -> tuple[Variant, dict[str, Any]]:
    """The user's variant and the config to run with."""
    exp = await get_experiment(pool, org_id, name)
    variant = assign_variant(name, user_key, float(exp["traffic_split"]))
    return variant, _json(exp[f"{variant}_config"])


async def record_outcome(pool: asyncpg.Pool, org_id: str, experiment_id: str, user_key: str, *,
                         resolved: bool | None, escalated: bool = False, csat: int | None = None,
                         nps: int | None = None, session_id: str | None = None,
                         variant: Variant | None = None) -> Variant:
    exp = await pool.fetchrow("select name, traffic_split from experiments where id = $1 and organization_id = $2",
                              experiment_id, org_id)
    if exp is None:
        raise ExperimentError(f"no experiment {experiment_id} in this organization")
    variant = variant or assign_variant(exp["name"], user_key, float(exp["traffic_split"]))
    await pool.execute(
        """insert into experiment_results (organization_id, experiment_id, session_id, user_key, variant,
                                           resolved, escalated, csat, nps)
           values ($1, $2, $3, $4, $5, $6, $7, $8, $9)""",
        org_id, experiment_id, session_id, user_key, variant, resolved, escalated, csat, nps)
    return variant


async def sync_outcomes(pool: asyncpg.Pool, org_id: str, experiment_id: str) -> int:
    """Copy ended sessions of the experiment that have no result row yet; returns rows added."""
    status = await pool.execute(
        """insert into experiment_results (organization_id, experiment_id, session_id, user_key, variant,
                                           resolved, escalated, csat, nps)
           select s.organization_id, s.ab_test_id, s.id,
                  coalesce(u.external_id, s.end_user_id::text, s.id::text), s.ab_variant_id,
                  s.resolved_by_ai,
                  exists (select 1 from escalations e where e.session_id = s.id) or s.status = 'escalated',
                  (select r.rating from survey_responses r where r.session_id = s.id order by r.created_at desc limit 1),
                  (select r.nps from survey_responses r where r.session_id = s.id and r.nps is not null
                    order by r.created_at desc limit 1)
             from sessions s left join end_users u on u.id = s.end_user_id
            where s.organization_id = $1 and s.ab_test_id = $2 and s.status <> 'active'
              and not exists (select 1 from experiment_results x where x.session_id = s.id)""",
        org_id, experiment_id)
    return int(status.split()[-1])


async def report(pool: asyncpg.Pool, org_id: str, name: str, *, alpha: float = 0.05,
                 min_per_variant: int = 30) -> ABReport:
    exp = await get_experiment(pool, org_id, name)
    await sync_outcomes(pool, org_id, str(exp["id"]))
    rows = [dict(r) for r in await pool.fetch(
        "select variant, resolved, escalated, csat, nps from experiment_results "
        "where organization_id = $1 and experiment_id = $2", org_id, exp["id"])]
    return build_report(name, exp, rows, alpha=alpha, min_per_variant=min_per_variant)


# -- live calls ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Assignment:
    """A caller's variant of one running experiment and the config that variant runs with."""

    experiment_id: str
    experiment: str
    variant: Variant
    config: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


async def assign_call(pool: asyncpg.Pool, org_id: str, user_key: str) -> list[Assignment]:
    """The caller's variant of every running experiment of the organization (oldest experiment first),
    by the same deterministic hash as ``assign_variant``: a caller keeps their variant across calls."""
    rows = await pool.fetch(
        "select id, name, traffic_split, control_config, treatment_config from experiments "
        "where organization_id = $1 and status = 'running' order by created_at, name", org_id)
    out = []
    for r in rows:
        variant = assign_variant(r["name"], user_key, float(r["traffic_split"]))
        out.append(Assignment(str(r["id"]), r["name"], variant, _json(r[f"{variant}_config"])))
    return out


def call_config(assignments: list[Assignment]) -> tuple[dict[str, Any], list[str]]:
    """One configuration for the call; where two experiments set the same key the older one wins and
    the conflict is named."""
    config: dict[str, Any] = {}
    conflicts: list[str] = []
    for a in assignments:
        for key, value in a.config.items():
            if key in config and config[key] != value:
                conflicts.append(f"{a.experiment}.{key} (kept {config[key]!r})")
                continue
            config[key] = value
    return config, conflicts


async def record_call_outcomes(pool: asyncpg.Pool, org_id: str, session_id: str, user_key: str,
                               assignments: list[Assignment]) -> int:
    """At call end: one ``experiment_results`` row per experiment the call ran in, from the ended
    session (resolved by the AI, escalated, the survey's rating and NPS). Returns rows written."""
    if not assignments:
        return 0
    s = await pool.fetchrow(
        """select s.resolved_by_ai, s.status,
                  exists (select 1 from escalations e where e.organization_id = s.organization_id
                          and e.session_id = s.id) as escalated,
                  (select r.rating from survey_responses r where r.organization_id = s.organization_id
                      and r.session_id = s.id order by r.created_at desc limit 1) as csat,
                  (select r.nps from survey_responses r where r.organization_id = s.organization_id
                      and r.session_id = s.id and r.nps is not null order by r.created_at desc limit 1) as nps
             from sessions s where s.organization_id = $1 and s.id = $2""", org_id, session_id)
    if s is None:
        return 0
    escalated = bool(s["escalated"]) or s["status"] == "escalated"
    async with pool.acquire() as con, con.transaction():
        for a in assignments:
            await con.execute(
                """insert into experiment_results (organization_id, experiment_id, session_id, user_key, variant,
                                                   resolved, escalated, csat, nps)
                   select $1, $2, $3, $4, $5, $6, $7, $8, $9
                    where not exists (select 1 from experiment_results x where x.organization_id = $1
                                      and x.experiment_id = $2 and x.session_id = $3)""",
                org_id, a.experiment_id, session_id, user_key, a.variant, s["resolved_by_ai"], escalated,
                s["csat"], s["nps"])
    return len(assignments)
