"""Metrics agree with scikit-learn; bootstrap intervals behave."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from plmcore.metrics import (
    binary_metrics,
    bootstrap_ci,
    evaluation_report,
    format_report,
    multiclass_metrics,
    resample_counts,
    resampled_metrics,
)

Y = np.array([1, 0, 1, 1, 0, 0, 1, 0, 1, 0, 0, 1])
P = np.array([0.9, 0.2, 0.6, 0.4, 0.5, 0.1, 0.8, 0.7, 0.55, 0.3, 0.5, 0.45])


def test_binary_metrics_agree_with_sklearn():
    m = binary_metrics(Y, P, threshold=0.5)
    pred = (P >= 0.5).astype(int)
    tn, fp, fn, tp = skm.confusion_matrix(Y, pred).ravel()
    assert m["mcc"] == pytest.approx(skm.matthews_corrcoef(Y, pred))
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(Y, pred))
    assert m["sensitivity"] == pytest.approx(skm.recall_score(Y, pred))
    assert m["specificity"] == pytest.approx(tn / (tn + fp))
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(Y, P))
    assert m["pr_auc"] == pytest.approx(skm.average_precision_score(Y, P))
    assert m["f1"] == pytest.approx(skm.f1_score(Y, pred))
    assert m["brier"] == pytest.approx(skm.brier_score_loss(Y, P))
    assert (m["tp"], m["fp"], m["tn"], m["fn"]) == (tp, fp, tn, fn)


def test_vectorised_resample_metrics_equal_sklearn_on_each_resample():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 60)
    p = np.round(rng.random(60), 1)  # many ties
    counts = resample_counts(60, 30, seed=1)
    res = resampled_metrics(y, p, counts, threshold=0.5)
    for b in range(30):
        idx = np.repeat(np.arange(60), counts[b])
        yb, pb = y[idx], p[idx]
        assert res["roc_auc"][b] == pytest.approx(skm.roc_auc_score(yb, pb))
        assert res["pr_auc"][b] == pytest.approx(skm.average_precision_score(yb, pb))
        assert res["mcc"][b] == pytest.approx(skm.matthews_corrcoef(yb, pb >= 0.5))
        assert res["accuracy"][b] == pytest.approx(skm.accuracy_score(yb, pb >= 0.5))


def test_multiclass_macro_metrics_agree_with_sklearn():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 80)
    probs = rng.dirichlet([1, 1, 1], 80)
    probs[np.arange(80), y] += 0.3
    probs /= probs.sum(1, keepdims=True)
    m = multiclass_metrics(y, probs)
    pred = probs.argmax(1)
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert m["mcc"] == pytest.approx(skm.matthews_corrcoef(y, pred))
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, probs, multi_class="ovr", average="macro"))
    assert m["sensitivity"] == pytest.approx(skm.recall_score(y, pred, average="macro"))
    assert m["f1"] == pytest.approx(skm.f1_score(y, pred, average="macro"))


def test_bootstrap_interval_contains_the_estimate_and_shrinks_with_n():
    rng = np.random.default_rng(1)

    def width(n):
        y = rng.integers(0, 2, n)
        p = np.clip(y * 0.3 + rng.random(n) * 0.7, 0, 1)
        ci = bootstrap_ci(y, p, n_boot=500, seed=0)
        point = binary_metrics(y, p)
        for name in ("mcc", "roc_auc", "accuracy"):
            lo, hi = ci[name]
            assert lo <= point[name] <= hi
        return ci["roc_auc"][1] - ci["roc_auc"][0]

    assert width(2000) < width(50)


def test_report_has_everything_the_app_plots():
    rep = evaluation_report(Y, np.c_[1 - P, P], ["neg", "pos"], positive="pos", n_boot=200)
    assert rep["positive"] == "pos" and rep["n"] == len(Y)
    assert set(rep["ci95"]) >= {"mcc", "specificity", "sensitivity", "accuracy", "roc_auc", "pr_auc"}
    assert len(rep["curves"]["roc"]["fpr"]) == len(rep["curves"]["roc"]["tpr"])
    assert sum(map(sum, rep["confusion_matrix"])) == len(Y)
    text = format_report(rep)
    assert "ROC-AUC" in text and "95%" in text
