"""The golden dataset: a versioned JSON-lines file, its validation, and its copy in ``golden_dataset``.

One example per line: ``id``, ``query``, ``expected_answer``, ``relevant_documents`` (document
paths as ingested, e.g. ``examples/kb/billing/refunds.md``, or bare file names), ``category``
(simple | moderate | complex | edge_case), ``expected_tier`` (tier1..tier3) and ``tags``.
The dataset version is the first 12 hex digits of the file's sha256, so a run records exactly
which examples it used.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import asyncpg
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

BUNDLED = Path(__file__).parent / "data" / "golden.jsonl"
Category = Literal["simple", "moderate", "complex", "edge_case"]


class GoldenError(ValueError):
    """The golden file cannot be used (missing, unreadable, invalid lines, duplicate ids)."""


class GoldenExample(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=120)
    query: str = Field(min_length=1)
    expected_answer: str = Field(min_length=1)
    relevant_documents: list[str] = Field(default_factory=list)
    category: Category
    expected_tier: Literal["tier1", "tier2", "tier3"]
    tags: list[str] = Field(default_factory=list)

    @field_validator("query", "expected_answer")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be blank")
        return v.strip()


@dataclass(frozen=True)
class GoldenSet:
    examples: list[GoldenExample]
    version: str
    source: str

    def __len__(self) -> int:
        return len(self.examples)


def parse_lines(lines: Iterable[str], source: str = "<input>") -> list[GoldenExample]:
    examples: list[GoldenExample] = []
    errors: list[str] = []
    seen: set[str] = set()
    for n, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("//"):
            continue
        try:
            ex = GoldenExample.model_validate(json.loads(line))
        except json.JSONDecodeError as exc:
            errors.append(f"line {n}: not JSON ({exc.msg})")
            continue
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = ".".join(str(p) for p in first["loc"]) or "example"
            errors.append(f"line {n}: {loc}: {first['msg']}")
            continue
        if ex.id in seen:
            errors.append(f"line {n}: duplicate id {ex.id!r}")
            continue
        seen.add(ex.id)
        examples.append(ex)
    if errors:
        more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
        raise GoldenError(f"{source}: " + "; ".join(errors[:5]) + more)
    return examples


def load(path: Path | str | None = None) -> GoldenSet:
    """Read and validate a golden file (default: the bundled one). An empty file is an error."""
    p = Path(path) if path is not None else BUNDLED
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise GoldenError(f"cannot read golden file {p}: {exc.strerror or exc}") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise GoldenError(f"{p}: not UTF-8 text") from exc
    examples = parse_lines(text.splitlines(), str(p))
    if not examples:
        raise GoldenError(f"{p}: the golden set is empty (no examples)")
    return GoldenSet(examples, hashlib.sha256(raw).hexdigest()[:12], str(p))


def dump_lines(examples: Sequence[GoldenExample]) -> str:
    return "".join(json.dumps(e.model_dump(), ensure_ascii=False) + "\n" for e in examples)


# -- matching golden documents to ingested ones --------------------------------------------------
def _posix(s: str) -> str:
    return s.replace("\\", "/").strip()


def resolve_documents(wanted: Sequence[str], known_sources: Iterable[str]) -> tuple[list[str], list[str]]:
    """Map golden document references to ingested sources: exact path, else path suffix, else file name.

    Returns (resolved sources, references that match nothing). An ambiguous bare file name
    resolves to every source with that name.
    """
    sources = [_posix(s) for s in known_sources]
    exact = set(sources)
    resolved: list[str] = []
    missing: list[str] = []
    for ref in wanted:
        r = _posix(ref)
        if r in exact:
            hits = [r]
        else:
            suffix = [s for s in sources if s.endswith("/" + r.lstrip("./"))]
            hits = suffix or [s for s in sources if PurePosixPath(s).name == PurePosixPath(r).name]
        if hits:
            resolved.extend(h for h in hits if h not in resolved)
        else:
            missing.append(ref)
    return resolved, missing


# -- the database copy -----------------------------------------------------------------------------
async def import_to_db(pool: asyncpg.Pool, org_id: str, golden: GoldenSet, *, replace: bool = False) -> int:
    """Upsert every example into ``golden_dataset``; ``replace`` first removes examples not in the file."""
    async with pool.acquire() as con, con.transaction():
        if replace:
            await con.execute("delete from golden_dataset where organization_id = $1 and not (example_id = any($2))",
                              org_id, [e.id for e in golden.examples])
        await con.executemany(
            """insert into golden_dataset (organization_id, example_id, query, expected_answer, relevant_documents,
                                           category, expected_tier, tags, dataset_version)
               values ($1, $2, $3, $4, $5::jsonb, $6, $7, $8::jsonb, $9)
               on conflict (organization_id, example_id) do update set
                   query = excluded.query, expected_answer = excluded.expected_answer,
                   relevant_documents = excluded.relevant_documents, category = excluded.category,
                   expected_tier = excluded.expected_tier, tags = excluded.tags,
                   dataset_version = excluded.dataset_version""",
            [(org_id, e.id, e.query, e.expected_answer, json.dumps(e.relevant_documents), e.category,
              e.expected_tier, json.dumps(e.tags), golden.version) for e in golden.examples])
    return len(golden.examples)


async def export_from_db(pool: asyncpg.Pool, org_id: str) -> list[GoldenExample]:
    rows = await pool.fetch(
        """select example_id, query, expected_answer, relevant_documents, category, expected_tier, tags
             from golden_dataset where organization_id = $1 order by example_id""", org_id)
    return [GoldenExample(id=r["example_id"], query=r["query"], expected_answer=r["expected_answer"],
                          relevant_documents=_list(r["relevant_documents"]), category=r["category"],
                          expected_tier=r["expected_tier"], tags=_list(r["tags"])) for r in rows]


def _list(v: Any) -> list[str]:
    """A jsonb list as asyncpg returns it (text) or already decoded."""
    return [str(x) for x in (json.loads(v) if isinstance(v, str) else (v or []))]
