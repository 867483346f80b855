"""Evaluation metrics, curves and bootstrap confidence intervals.

Point estimates and curves come from scikit-learn. The bootstrap needs each metric on
thousands of resamples, so the binary metrics are also written as vectorised functions of
per-item resample counts (one row per resample); tests check them against scikit-learn.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn import metrics as skm

BINARY_METRICS = ("mcc", "specificity", "sensitivity", "accuracy", "roc_auc", "pr_auc", "f1", "precision")
METRIC_LABELS = {
    "mcc": "MCC",
    "specificity": "Specificity",
    "sensitivity": "Sensitivity",
    "accuracy": "Accuracy",
    "roc_auc": "ROC-AUC",
    "pr_auc": "PR-AUC",
    "f1": "F1",
    "precision": "Precision",
    "brier": "Brier",
}


def safe_div(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return np.divide(a, b, out=np.zeros(np.broadcast(a, b).shape), where=b != 0)


def weighted_binary(y: np.ndarray, score: np.ndarray, w: np.ndarray, threshold: float) -> dict:
    """Binary metrics for each row of weights `w` (shape (B, n), integer resample counts)."""
    pos = y == 1
    pred = score >= threshold
    tp = w[:, pos & pred].sum(1)
    fn = w[:, pos & ~pred].sum(1)
    fp = w[:, ~pos & pred].sum(1)
    tn = w[:, ~pos & ~pred].sum(1)
    n = tp + fn + fp + tn
    denom = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    out = {
        "mcc": safe_div(tp * tn - fp * fn, denom),
        "specificity": safe_div(tn, tn + fp),
        "sensitivity": safe_div(tp, tp + fn),
        "accuracy": safe_div(tp + tn, n),
        "precision": safe_div(tp, tp + fp),
        "f1": safe_div(2 * tp, 2 * tp + fp + fn),
        "brier": safe_div((w * (score - y) ** 2).sum(1), n),
    }
    out.update(weighted_ranking(pos, score, w))
    return out


def weighted_ranking(pos: np.ndarray, score: np.ndarray, w: np.ndarray) -> dict:
    """ROC-AUC (ties count half) and average precision, for each row of weights."""
    order = np.argsort(-score, kind="mergesort")
    s = score[order]
    wp = (w[:, order] * pos[order]).astype(float)
    wn = (w[:, order] * ~pos[order]).astype(float)
    # group tied scores: a threshold sits between distinct values only
    last_of_group = np.r_[s[1:] != s[:-1], True]
    tp = np.cumsum(wp, 1)[:, last_of_group]
    fp = np.cumsum(wn, 1)[:, last_of_group]
    p_tot, n_tot = tp[:, -1:], fp[:, -1:]
    tp0 = np.hstack([np.zeros_like(p_tot), tp])
    fp0 = np.hstack([np.zeros_like(n_tot), fp])
    # trapezoid in (fp, tp) space = Mann-Whitney AUC with half credit for ties
    area = ((fp0[:, 1:] - fp0[:, :-1]) * (tp0[:, 1:] + tp0[:, :-1]) / 2).sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        roc = np.where((p_tot[:, 0] > 0) & (n_tot[:, 0] > 0), area / (p_tot[:, 0] * n_tot[:, 0]), np.nan)
        precision = safe_div(tp, tp + fp)
        recall_step = safe_div(tp0[:, 1:] - tp0[:, :-1], p_tot)
        ap = np.where(p_tot[:, 0] > 0, (recall_step * precision).sum(1), np.nan)
    return {"roc_auc": roc, "pr_auc": ap}


def binary_metrics(y_true, prob, threshold: float = 0.5) -> dict:
    """MCC, specificity, sensitivity, accuracy, ROC-AUC, PR-AUC, F1, precision and counts.

    Args:
        y_true: 0/1 labels (1 = positive class).
        prob: predicted probability of the positive class.
        threshold: a window is called positive when prob >= threshold.
    """
    y = np.asarray(y_true).astype(int)
    p = np.asarray(prob, dtype=float)
    pred = (p >= threshold).astype(int)
    tn, fp, fn, tp = skm.confusion_matrix(y, pred, labels=[0, 1]).ravel()
    both = len(np.unique(y)) == 2
    with warnings.catch_warnings():  # one class on both sides: MCC is 0 by definition, say nothing
        warnings.simplefilter("ignore", UserWarning)
        mcc = float(skm.matthews_corrcoef(y, pred))
    return {
        "mcc": mcc,
        "specificity": float(safe_div(tn, tn + fp)),
        "sensitivity": float(safe_div(tp, tp + fn)),
        "accuracy": float(skm.accuracy_score(y, pred)),
        "roc_auc": float(skm.roc_auc_score(y, p)) if both else float("nan"),
        "pr_auc": float(skm.average_precision_score(y, p)) if y.any() else float("nan"),
        "f1": float(skm.f1_score(y, pred, zero_division=0)),
        "precision": float(skm.precision_score(y, pred, zero_division=0)),
        "brier": float(skm.brier_score_loss(y, p)) if both else float(np.mean((p - y) ** 2)),
        "tp": int(tp), "fp": int(fp), "tn": int(tn), "fn": int(fn),
    }


def multiclass_metrics(y_true, probs) -> dict:
    """Accuracy, MCC and macro averages of the one-vs-rest metrics for k classes."""
    y = np.asarray(y_true).astype(int)
    P = np.asarray(probs, dtype=float)
    k = P.shape[1]
    pred = P.argmax(1)
    per_class = [binary_metrics(y == c, P[:, c], threshold=0.5) for c in range(k)]
    # one-vs-rest counts must use the argmax prediction, not a 0.5 threshold per column
    for c, m in enumerate(per_class):
        yc, pc = y == c, pred == c
        tp, fp = int((yc & pc).sum()), int((~yc & pc).sum())
        fn, tn = int((yc & ~pc).sum()), int((~yc & ~pc).sum())
        m.update(
            sensitivity=float(safe_div(tp, tp + fn)), specificity=float(safe_div(tn, tn + fp)),
            f1=float(safe_div(2 * tp, 2 * tp + fp + fn)), precision=float(safe_div(tp, tp + fp)),
        )
    macro = {name: float(np.nanmean([m[name] for m in per_class]))
             for name in ("specificity", "sensitivity", "roc_auc", "pr_auc", "f1", "precision")}
    return {
        "accuracy": float(skm.accuracy_score(y, pred)),
        "mcc": float(skm.matthews_corrcoef(y, pred)),
        **macro,
        "brier": float(np.mean(((np.eye(k)[y] - P) ** 2).sum(1))),
    }


def compute_metrics(y_true, probs, *, positive_index: int = 1, threshold: float = 0.5) -> dict:
    """Binary metrics (positive class = `positive_index`) for 2 classes, macro metrics otherwise."""
    P = np.asarray(probs, dtype=float)
    y = np.asarray(y_true).astype(int)
    if P.ndim == 2 and P.shape[1] > 2:
        return multiclass_metrics(y, P)
    prob = P[:, positive_index] if P.ndim == 2 else P
    return binary_metrics((y == positive_index).astype(int) if P.ndim == 2 else y, prob, threshold)


def bootstrap_ci(
    y_true,
    probs,
    *,
    positive_index: int = 1,
    threshold: float = 0.5,
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
    units=None,
) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap intervals for every metric, resampling test items with replacement.

    With `units` (one key per item, e.g. the protein of each residue) whole units are resampled.
    """
    y = np.asarray(y_true).astype(int)
    P = np.asarray(probs, dtype=float)
    counts = unit_counts(units, len(y), n_boot, seed)
    if P.ndim == 2 and P.shape[1] > 2:
        stats = multiclass_resampled(y, P, counts)
    else:
        prob = P[:, positive_index] if P.ndim == 2 else P
        yb = (y == positive_index).astype(int) if P.ndim == 2 else y
        stats = weighted_binary(yb, prob, counts, threshold)
    return {name: percentile_interval(vals, level) for name, vals in stats.items()}


def unit_counts(units, n: int, n_boot: int, seed: int) -> np.ndarray:
    """(n_boot, n) multiplicities of the items, resampling whole units (e.g. proteins) when given."""
    if units is None:
        return resample_counts(n, n_boot, seed)
    _, inverse = np.unique(np.asarray(units), return_inverse=True)
    return resample_counts(int(inverse.max()) + 1 if len(inverse) else 0, n_boot, seed)[:, inverse]


def resample_counts(n: int, n_boot: int, seed: int) -> np.ndarray:
    """(n_boot, n) multiplicities of each item in each bootstrap resample."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_boot, n))
    counts = np.zeros((n_boot, n), dtype=np.int32)
    np.add.at(counts, (np.arange(n_boot)[:, None], idx), 1)
    return counts


def percentile_interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    values = np.asarray(values, dtype=float)
    values = values[~np.isnan(values)]
    if values.size == 0:
        return (float("nan"), float("nan"))
    lo, hi = np.percentile(values, [50 * (1 - level), 100 - 50 * (1 - level)])
    return (float(lo), float(hi))


def resampled_metrics(y_true, prob, counts: np.ndarray, threshold: float = 0.5) -> dict[str, np.ndarray]:
    """Binary metrics on each bootstrap resample given by `counts` (for paired comparisons)."""
    return weighted_binary(np.asarray(y_true).astype(int), np.asarray(prob, float), counts, threshold)


def multiclass_resampled(y: np.ndarray, P: np.ndarray, counts: np.ndarray) -> dict[str, np.ndarray]:
    k = P.shape[1]
    pred = P.argmax(1)
    acc = (counts * (pred == y)).sum(1) / counts.sum(1)
    per = [weighted_binary((y == c).astype(int), P[:, c], counts, 0.5) for c in range(k)]
    # sensitivity etc. one-vs-rest must follow the argmax; rebuild them from argmax hits
    for c in range(k):
        hit = (pred == c).astype(float)
        per[c].update(weighted_binary((y == c).astype(int), hit, counts, 0.5))
        per[c].update(weighted_ranking(y == c, P[:, c], counts))
    out = {"accuracy": acc}
    for name in ("specificity", "sensitivity", "roc_auc", "pr_auc", "f1", "precision"):
        out[name] = np.nanmean(np.stack([m[name] for m in per]), 0)
    out["mcc"] = _multiclass_mcc(y, pred, counts, k)
    return out


def _multiclass_mcc(y, pred, counts, k) -> np.ndarray:
    # Gorodkin's R_k from the weighted confusion matrix, one per resample
    C = np.zeros((counts.shape[0], k, k))
    for i in range(k):
        for j in range(k):
            C[:, i, j] = counts[:, (y == i) & (pred == j)].sum(1)
    t, p = C.sum(2), C.sum(1)
    c = np.trace(C, axis1=1, axis2=2)
    s = C.sum((1, 2))
    num = c * s - (t * p).sum(1)
    den = np.sqrt((s**2 - (p * p).sum(1)) * (s**2 - (t * t).sum(1)))
    return safe_div(num, den)


def curves(y_true, prob) -> dict:
    """ROC and precision-recall curve points for plotting (binary)."""
    y = np.asarray(y_true).astype(int)
    p = np.asarray(prob, dtype=float)
    fpr, tpr, roc_t = skm.roc_curve(y, p)
    precision, recall, pr_t = skm.precision_recall_curve(y, p)
    return {
        "roc": {"fpr": fpr.tolist(), "tpr": tpr.tolist(), "threshold": np.nan_to_num(roc_t, posinf=1.0).tolist()},
        "pr": {"precision": precision.tolist(), "recall": recall.tolist(), "threshold": pr_t.tolist()},
    }


def evaluation_report(
    y_true,
    probs,
    classes: list[str],
    *,
    positive: str | None = None,
    threshold: float = 0.5,
    n_boot: int = 2000,
    seed: int = 0,
    units=None,
) -> dict:
    """Metrics, 95% bootstrap intervals, confusion matrix and curves, as a JSON-ready dict.

    Args:
        y_true: class indices into `classes`.
        probs: (n, k) class probabilities.
        positive: the positive class for binary tasks (default: the second class).
        units: resample these units (e.g. the protein of each residue) instead of single items.
    """
    y = np.asarray(y_true).astype(int)
    P = np.asarray(probs, dtype=float)
    binary = len(classes) == 2
    pos_idx = classes.index(positive) if (binary and positive in classes) else 1
    point = compute_metrics(y, P, positive_index=pos_idx, threshold=threshold)
    ci = bootstrap_ci(y, P, positive_index=pos_idx, threshold=threshold, n_boot=n_boot, seed=seed, units=units)
    if binary:
        pred = (P[:, pos_idx] >= threshold).astype(int)
        pred_idx = np.where(pred == 1, pos_idx, 1 - pos_idx)
    else:
        pred_idx = P.argmax(1)
    cm = skm.confusion_matrix(y, pred_idx, labels=list(range(len(classes))))
    report = {
        "n": int(len(y)),
        "classes": list(classes),
        "positive": classes[pos_idx] if binary else None,
        "threshold": float(threshold) if binary else None,
        "metrics": point,
        "ci95": {k: list(v) for k, v in ci.items()},
        "confusion_matrix": cm.tolist(),
        "n_boot": n_boot,
    }
    if binary and len(np.unique(y)) == 2:
        report["curves"] = curves(y == pos_idx, P[:, pos_idx])
    return report


def format_report(report: dict, title: str | None = None) -> str:
    """Plain-text metrics table with confidence intervals, for the command line."""
    if report.get("task") in ("regression", "multilabel"):
        from plmcore.tasks import format_task_report

        return format_task_report(report, title)
    lines = []
    if title:
        lines.append(title)
    n = report["n"]
    extra = f", threshold {report['threshold']:.2f}" if report.get("threshold") is not None else ""
    what = f"{n} residues of {report['n_proteins']} proteins" if report.get("n_proteins") is not None else f"n = {n}"
    lines.append(f"{what}{extra}; 95% bootstrap intervals ({report['n_boot']} resamples"
                 + (" of proteins)" if report.get("n_proteins") is not None else ")"))
    lines.append(f"{'metric':<13}{'value':>8}   95% CI")
    names = [m for m in (*BINARY_METRICS, "brier") if m in report["metrics"]]
    for name in names:
        value = report["metrics"][name]
        lo, hi = report["ci95"].get(name, (float("nan"), float("nan")))
        ci = f"[{lo:.3f}, {hi:.3f}]" if not np.isnan(lo) else ""
        lines.append(f"{METRIC_LABELS[name]:<13}{value:>8.3f}   {ci}")
    cm = report["confusion_matrix"]
    width = max(max(len(c) for c in report["classes"]), len(str(max(max(r) for r in cm)))) + 2
    lines.append("confusion matrix (rows: true, columns: predicted)")
    lines.append(" " * width + "".join(f"{c:>{width}}" for c in report["classes"]))
    for c, row in zip(report["classes"], cm):
        lines.append(f"{c:>{width}}" + "".join(f"{v:>{width}}" for v in row))
    return "\n".join(lines)
