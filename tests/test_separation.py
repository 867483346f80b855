"""The class-separation score of the Embeddings page, the held-out mask, the disk-cached projection and the
before/after figure."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from plmcore import figures as F
from plmcore.embed import EmbeddingCache, cached_projection, held_out, separation


def clusters(shift: float, n: int = 60, d: int = 16, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """Two classes of Gaussian points whose centres lie `shift` apart (0: the same cloud)."""
    rng = np.random.default_rng(seed)
    y = np.array(["a", "b"] * (n // 2))
    X = rng.normal(size=(n, d)).astype(np.float32)
    X[y == "b", 0] += shift
    X[:, 1] += 5  # away from the origin, so cosine distance sees the shift
    return X, y.tolist()


def test_well_separated_classes_score_higher_than_mixed_ones():
    sep, y = clusters(12.0)
    mixed, _ = clusters(0.0)
    good, bad = separation(sep, y), separation(mixed, y)
    assert good["knn_accuracy"] > 0.95 and good["silhouette"] > 0.3
    assert bad["knn_accuracy"] < 0.75 and abs(bad["silhouette"]) < 0.1
    assert good["chance"] == pytest.approx(0.5) and good["n"] == 60


def test_only_held_out_points_are_scored():
    X, y = clusters(12.0)
    # the training points are mixed up on purpose: if they were scored, the score would fall
    rng = np.random.default_rng(1)
    train = np.zeros(len(y), bool)
    train[:30] = True
    X[train] = rng.normal(size=(30, X.shape[1])).astype(np.float32)
    all_points = separation(X, y)
    held = separation(X, y, ~train)
    assert held["n"] == 30 and held["knn_accuracy"] > 0.95
    assert all_points["knn_accuracy"] < held["knn_accuracy"]


def test_too_few_labelled_points_give_no_score():
    X, y = clusters(5.0, n=8)
    out = separation(X, [None] * 6 + y[6:], None)
    assert out["knn_accuracy"] is None and out["silhouette"] is None and out["n"] == 2


def test_held_out_means_not_in_the_runs_train_or_validation_split():
    split = pd.DataFrame({"sequence": ["AAA", "CCC", "DDD"], "split": ["train", "val", "test"]})
    assert held_out(split, ["AAA", "DDD", "EEE", "CCC"]).tolist() == [False, True, True, False]


def test_projection_is_cached_on_disk(tmp_path):
    X, _ = clusters(3.0, n=40)
    cache = EmbeddingCache(tmp_path)
    first, hit = cached_projection(X, "pca", 2, cache=cache)
    again, hit_again = cached_projection(X, "pca", 2, cache=cache)
    assert not hit and hit_again and np.allclose(first, again)
    _, other = cached_projection(X, "pca", 3, cache=cache)
    assert not other


def test_before_after_figure_shares_colours_and_legend_and_links_selection():
    X, y = clusters(6.0, n=20)
    frame = pd.DataFrame({"id": [f"p{i}" for i in range(20)], "sequence": ["ACD"] * 20, "label": y,
                          "split": ["train"] * 10 + ["test"] * 10, "held_out": [False] * 10 + [True] * 10,
                          "error": ["right", "wrong"] * 10})
    panels = {"before fine-tuning": X[:, :2], "after fine-tuning": X[:, 2:4]}
    fig = F.projection_pair(panels, frame, "error", held_out_only=True, selected=["p12", "p13"])
    legend = [t.name for t in fig.data if t.showlegend]
    assert sorted(legend) == sorted(["right", "wrong", F.NOT_HELD_OUT])  # one legend entry per colour
    for name in ("right", "wrong"):
        a, b = [t for t in fig.data if t.name == name]
        assert a.marker.color == b.marker.color and a.xaxis != b.xaxis
        # training points are not coloured by error; the selection is highlighted in both panels
        assert set(a.customdata[:, -1]) <= {f"p{i}" for i in range(10, 20)}
        assert [a.customdata[i, -1] for i in a.selectedpoints] == [b.customdata[i, -1] for i in b.selectedpoints]
    grey = [t for t in fig.data if t.name == F.NOT_HELD_OUT]
    assert len(grey) == 2 and len(grey[0].x) == 10
    chosen = {t.customdata[i, -1] for t in fig.data for i in (t.selectedpoints or ())}
    assert chosen == {"p12", "p13"}
