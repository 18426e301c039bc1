"""Golden file validation, document matching and the database copy."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from callwise.evaluation import golden

EX = {"id": "g1", "query": "How long do refunds take?", "expected_answer": "Within 14 days.",
      "relevant_documents": ["examples/kb/billing/refunds.md"], "category": "simple", "expected_tier": "tier1",
      "tags": ["billing"]}


def _write(tmp_path: Path, lines: list[str]) -> Path:
    p = tmp_path / "g.jsonl"
    p.write_text("\n".join(lines) + "\n")
    return p


def test_load_and_version(tmp_path: Path) -> None:
    p = _write(tmp_path, [json.dumps(EX), "", json.dumps({**EX, "id": "g2"})])
    gs = golden.load(p)
    assert [e.id for e in gs.examples] == ["g1", "g2"] and len(gs.version) == 12


@pytest.mark.parametrize("lines,needle", [
    ([], "empty"),
    (["{not json"], "line 1: not JSON"),
    ([json.dumps({**EX, "category": "easy"})], "line 1: category"),
    ([json.dumps({k: v for k, v in EX.items() if k != "query"})], "line 1: query"),
    ([json.dumps(EX), json.dumps(EX)], "duplicate id"),
    ([json.dumps({**EX, "query": "   "})], "must not be blank"),
])
def test_bad_files(tmp_path: Path, lines: list[str], needle: str) -> None:
    with pytest.raises(golden.GoldenError, match=needle):
        golden.load(_write(tmp_path, lines))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(golden.GoldenError, match="cannot read"):
        golden.load(tmp_path / "nope.jsonl")


def test_resolve_documents() -> None:
    known = ["examples/kb/billing/refunds.md", "examples/kb/sso/okta-setup.md", "/abs/kb/billing/tax-and-vat.md"]
    assert golden.resolve_documents(["examples/kb/billing/refunds.md", "okta-setup.md", "billing/tax-and-vat.md"],
                                    known) == (["examples/kb/billing/refunds.md", "examples/kb/sso/okta-setup.md",
                                                "/abs/kb/billing/tax-and-vat.md"], [])
    assert golden.resolve_documents(["missing.md"], known) == ([], ["missing.md"])


def test_bundled_set_shape() -> None:
    gs = golden.load()
    assert len(gs) >= 200
    cats = Counter(e.category for e in gs.examples)
    share = {c: n / len(gs) for c, n in cats.items()}
    assert 0.35 <= share["simple"] <= 0.45 and 0.30 <= share["moderate"] <= 0.40
    assert 0.15 <= share["complex"] <= 0.25 and 0.03 <= share["edge_case"] <= 0.08
    kb = Path(__file__).resolve().parents[2]
    for e in gs.examples:
        for d in e.relevant_documents:
            assert (kb / d).is_file(), f"{e.id}: {d} is not in the sample knowledge base"


async def test_db_roundtrip(pg_pool, org_id, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    gs = golden.load(_write(tmp_path, [json.dumps(EX), json.dumps({**EX, "id": "g2", "tags": []})]))
    assert await golden.import_to_db(pg_pool, org_id, gs) == 2
    again = golden.load(_write(tmp_path, [json.dumps({**EX, "expected_answer": "Two weeks."})]))
    await golden.import_to_db(pg_pool, org_id, again, replace=True)
    out = await golden.export_from_db(pg_pool, org_id)
    assert [e.id for e in out] == ["g1"] and out[0].expected_answer == "Two weeks."
    assert out[0].relevant_documents == EX["relevant_documents"]
