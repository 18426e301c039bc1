"""The learned page ranking: features from what the retriever returned, the shipped tree ensemble
read without scikit-learn, the fallback to the blend, and a follow-up's prior."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from callwise.knowledge.pages import DEFAULT, fuse_prior, page_order, page_ranking, prior_from, rank_pages
from callwise.knowledge.ranking import FEATURES, LearnedPageRanker, TreeEnsemble, page_features


def chunk(doc: str, title: str, text: str, bm25: int | None, vec: int | None, cos: float = 0.5) -> SimpleNamespace:
    stages = {}
    if bm25:
        stages["bm25"] = SimpleNamespace(rank=bm25, score=10.0 / bm25)
    if vec:
        stages["vector"] = SimpleNamespace(rank=vec, score=cos)
    return SimpleNamespace(document=doc, title=title, title_path=[title, "Restarting"], text=text, stages=stages,
                           parent_text=text)


CHUNKS = [
    chunk("stopping.html", "Stopping and Restarting Apache HTTP Server", "Graceful restart lets open connections finish.",
          1, 2, 0.62),
    chunk("mod/core.html", "core - Apache HTTP Server", "Directives of the core: Timeout, KeepAlive.", 2, 5, 0.41),
    chunk("stopping.html", "Stopping and Restarting Apache HTTP Server", "Send the USR1 signal to the parent.", None, 1, 0.64),
]


def test_one_row_per_page_in_order_of_the_best_chunk() -> None:
    docs, rows = page_features("how do I restart apache gracefully", CHUNKS)
    assert docs == ["stopping.html", "mod/core.html"]
    assert all(len(r) == len(FEATURES) for r in rows)
    f = dict(zip(FEATURES, rows[0], strict=True))
    assert f["n_chunks"] == 2 and f["bm25_rr"] == 1.0 and f["vec_rr"] == 1.0 and f["title_hit"] > 0
    assert f["q_howto"] == 1.0 and f["vec"] == pytest.approx(0.64)


def test_the_shipped_evaluator_agrees_with_scikit_learn(tmp_path: Path) -> None:
    from sklearn.ensemble import GradientBoostingRegressor

    rng = np.random.default_rng(0)
    X = rng.random((300, len(FEATURES)))
    y = (X[:, FEATURES.index("bm25_rr")] + X[:, FEATURES.index("title_hit")] > 1.0).astype(float) * 2
    model = GradientBoostingRegressor(n_estimators=20, max_depth=3, random_state=0).fit(X, y)
    trees = [{"feature": t.tree_.feature.tolist(), "threshold": t.tree_.threshold.tolist(),
              "left": t.tree_.children_left.tolist(), "right": t.tree_.children_right.tolist(),
              "value": t.tree_.value[:, 0, 0].tolist()} for t in model.estimators_[:, 0]]
    path = tmp_path / "ranker.json"
    path.write_text(json.dumps({"features": list(FEATURES), "init": float(model.init_.constant_[0][0]),
                                "rate": model.learning_rate, "trees": trees}))
    ranker = LearnedPageRanker.load(path)
    assert ranker is not None
    for row in X[:20]:
        assert ranker.model.predict(row.tolist()) == pytest.approx(float(model.predict(row[None, :])[0]), abs=1e-9)
    assert [d for d, _ in ranker.rank("restart apache", CHUNKS)][0] in {"stopping.html", "mod/core.html"}
    assert page_ranking("restart apache", CHUNKS, ranker=ranker) == [d for d, _ in ranker.rank("restart apache", CHUNKS)]


def test_a_missing_file_means_the_blend_and_a_bad_one_a_clear_error(tmp_path: Path) -> None:
    assert LearnedPageRanker.load(tmp_path / "absent.json") is None
    assert page_ranking("q", CHUNKS, ranker=None) == [h.document for h in rank_pages(CHUNKS, DEFAULT)]
    with pytest.raises(ValueError, match="unknown features: shoe_size"):
        TreeEnsemble.from_dict({"features": ["shoe_size"], "init": 0.0, "rate": 0.1, "trees": []})


def test_a_prior_lifts_the_previous_pages_only_among_those_retrieved() -> None:
    own = ["a.html", "b.html", "c.html"]
    prior = prior_from(["c.html", "z.html"])
    assert fuse_prior(own, prior, 0.0) == own
    assert fuse_prior(own, prior, 0.6)[0] == "c.html" and "z.html" not in fuse_prior(own, prior, 0.6)
    assert fuse_prior(own, prior, 0.1)[0] == "a.html"  # a light prior does not overturn the follow-up's own words
    order = page_order(CHUNKS, DEFAULT, ["mod/core.html", "stopping.html"])
    assert order[0] == 1  # the given page order, each page's chunks together
