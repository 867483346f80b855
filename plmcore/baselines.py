"""Simple baselines beside every fine-tuned model, and paired comparisons with intervals.

With ~50 test windows a bootstrap interval on ROC-AUC is about +-0.12 wide, so a fine-tuned
model is only "better" when the paired interval of the difference excludes zero. The
baselines are plain scikit-learn logistic regressions on amino-acid composition, one-hot
windows or frozen embeddings; the regularisation strength is chosen on the validation split
(never on the test split).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm
from sklearn.base import ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from plmcore.data import AMINO_ACIDS, PAD_CHAR, classes_of, positive_class
from plmcore.errors import ConfigError, DataError, LabelError
from plmcore.metrics import (
    METRIC_LABELS,
    binary_metrics,
    compute_metrics,
    evaluation_report,
    multiclass_metrics,
    multiclass_resampled,
    percentile_interval,
    resample_counts,
    resampled_metrics,
    weighted_binary,
)

__all__ = [
    "DEFAULT_CS",
    "LEADERBOARD_METRICS",
    "MAX_ITER",
    "compare_to_baselines",
    "composition_features",
    "fit_logistic",
    "leaderboard",
    "onehot_features",
    "paired_bootstrap",
    "run_baselines",
    "verdict",
]

DEFAULT_CS = (0.001, 0.01, 0.1, 1, 10, 100)
SELECTION_METRICS = ("roc_auc", "mcc", "accuracy", "neg_log_loss")
LEADERBOARD_METRICS = ("roc_auc", "mcc", "accuracy", "sensitivity", "specificity", "pr_auc")
COMPARED_METRICS = ("roc_auc", "mcc", "accuracy")
# lbfgs reaches its tolerance in well under 100 iterations on these problems; the margin
# keeps large C on one-hot features from stopping early.
MAX_ITER = 5000
ONEHOT_SYMBOLS = AMINO_ACIDS + PAD_CHAR
_INNER_FOLDS = 5

_AA_INDEX = np.full(256, -1, dtype=np.int16)
for _i, _aa in enumerate(AMINO_ACIDS):
    _AA_INDEX[ord(_aa)] = _i


# --------------------------------------------------------------------------- features


def composition_features(seqs: Sequence[str]) -> np.ndarray:
    """(n, 20) amino-acid frequencies (order of data.AMINO_ACIDS); X and rare residues ignored."""
    out = np.zeros((len(seqs), len(AMINO_ACIDS)))
    for i, seq in enumerate(seqs):
        codes = _AA_INDEX[np.frombuffer(str(seq).upper().encode("ascii", errors="replace"), dtype=np.uint8)]
        codes = codes[codes >= 0]
        if codes.size:
            out[i] = np.bincount(codes, minlength=len(AMINO_ACIDS)) / codes.size
    return out


def onehot_features(seqs: Sequence[str]) -> np.ndarray:
    """(n, length * 21) one-hot windows, position-major; symbols AMINO_ACIDS + X (rare -> X)."""
    lengths = {len(str(s)) for s in seqs}
    if len(lengths) > 1:
        raise ConfigError(
            f"One-hot features need aligned windows of one length; these sequences have lengths "
            f"{min(lengths)}-{max(lengths)}. Cut windows of one length around the sites (e.g. with "
            "plmcore.data.site_window), or use composition features."
        )
    length = lengths.pop() if lengths else 0
    symbols = np.full(256, len(AMINO_ACIDS), dtype=np.int64)  # anything else counts as X
    for i, aa in enumerate(AMINO_ACIDS):
        symbols[ord(aa)] = i
    text = "".join(str(s).upper() for s in seqs).encode("ascii", errors="replace")
    codes = symbols[np.frombuffer(text, dtype=np.uint8)].reshape(len(seqs), length)
    out = np.zeros((len(seqs), length, len(ONEHOT_SYMBOLS)))
    rows, cols = np.indices(codes.shape)
    out[rows, cols, codes] = 1.0
    return out.reshape(len(seqs), length * len(ONEHOT_SYMBOLS))


# --------------------------------------------------------------------------- fitting


def fit_logistic(
    X_train: np.ndarray,
    y_train: Sequence[int],
    X_val: np.ndarray | None = None,
    y_val: Sequence[int] | None = None,
    *,
    Cs: Sequence[float] = DEFAULT_CS,
    metric: str = "roc_auc",
    seed: int = 0,
    scale: bool = False,
) -> tuple[ClassifierMixin, float, dict]:
    """Logistic regression with C chosen on the validation split; returns (model, C, selection).

    Labels are class indices. ``scale`` standardises features first (for embeddings). Without
    a validation split (``X_val`` None or empty) C is chosen by stratified 5-fold CV on the
    training split. Ties go to the smaller C (stronger regularisation). The selection dict
    holds "metric", "selection" (how C was chosen, in words) and "scores" {C: score}.
    """
    if metric not in SELECTION_METRICS:
        raise ConfigError(f"metric={metric!r} is not allowed; use one of {', '.join(SELECTION_METRICS)}.")
    Cs = _check_cs(Cs)
    X_train = np.asarray(X_train, dtype=float)
    y_train = np.asarray(y_train, dtype=np.int64)
    if X_train.ndim != 2 or len(X_train) != len(y_train) or len(y_train) == 0:
        raise DataError(
            f"X_train must be a (records, features) array with one label per record; got shape "
            f"{X_train.shape} and {len(y_train)} labels."
        )
    if len(np.unique(y_train)) < 2:
        raise DataError("The training split holds a single class; a classifier needs at least two.")
    has_val = X_val is not None and y_val is not None and len(y_val) > 0
    n_classes = int(max(y_train.max(), np.max(y_val) if has_val else 0)) + 1
    scores: dict[float, float] = {}
    selection = ""
    if len(Cs) == 1:
        model = _fit(X_train, y_train, Cs[0], scale, seed)
        return model, Cs[0], {"metric": metric, "selection": f"fixed C={Cs[0]:g} (the only value given)", "scores": {}}
    if has_val:
        X_val = np.asarray(X_val, dtype=float)
        y_val = np.asarray(y_val, dtype=np.int64)
        for C in Cs:
            model = _fit(X_train, y_train, C, scale, seed)
            scores[C] = _selection_score(metric, y_val, _proba(model, X_val, n_classes))
        selection = f"validation split ({len(y_val)} records, {METRIC_LABELS.get(metric, metric)})"
        if all(math.isnan(s) for s in scores.values()):
            has_val = False  # e.g. a one-class validation split: ROC-AUC is undefined
            scores = {}
            selection = f"the validation split cannot measure {METRIC_LABELS.get(metric, metric)} (one class), so "
    if not has_val:
        folds = min(_INNER_FOLDS, int(np.bincount(y_train).min()))
        if folds < 2:
            C = 1.0
            model = _fit(X_train, y_train, C, scale, seed)
            how = selection + "fixed C=1 (a class has a single training record, too few for cross-validation)"
            return model, C, {"metric": metric, "selection": how, "scores": {}}
        splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
        split = list(splitter.split(X_train, y_train))
        for C in Cs:
            oof = np.zeros((len(y_train), n_classes))
            for tr, te in split:
                model = _fit(X_train[tr], y_train[tr], C, scale, seed)
                oof[te] = _proba(model, X_train[te], n_classes)
            scores[C] = _selection_score(metric, y_train, oof)
        why = "" if selection else "no validation split; "
        selection += (
            f"{folds}-fold stratified cross-validation on the training split ({why}"
            f"{METRIC_LABELS.get(metric, metric)} of pooled out-of-fold predictions)"
        )
    valid = {C: s for C, s in scores.items() if not math.isnan(s)}
    best = max(valid.values()) if valid else float("nan")
    C = min(C for C, s in valid.items() if s >= best - 1e-12) if valid else 1.0
    model = _fit(X_train, y_train, C, scale, seed)
    return model, C, {"metric": metric, "selection": selection, "scores": scores}


def _fit(X: np.ndarray, y: np.ndarray, C: float, scale: bool, seed: int) -> ClassifierMixin:
    lr = LogisticRegression(C=C, max_iter=MAX_ITER, random_state=seed)
    model: ClassifierMixin = make_pipeline(StandardScaler(), lr) if scale else lr
    with warnings.catch_warnings():
        # a C grid deliberately includes weakly regularised fits on separable data
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y)
    return model


def _proba(model: ClassifierMixin, X: np.ndarray, n_classes: int) -> np.ndarray:
    """Probabilities in the full class order, zero for a class the model never saw."""
    lr = model[-1] if isinstance(model, Pipeline) else model
    out = np.zeros((len(X), n_classes))
    out[:, lr.classes_] = model.predict_proba(X)
    return out


def _selection_score(metric: str, y: np.ndarray, P: np.ndarray) -> float:
    k = P.shape[1]
    present = np.unique(y)
    if metric == "roc_auc":
        if len(present) < 2:
            return float("nan")
        if k == 2:
            return float(skm.roc_auc_score(y, P[:, 1]))
        if len(present) < k:
            return float("nan")
        return float(skm.roc_auc_score(y, P, multi_class="ovr", average="macro", labels=list(range(k))))
    if metric == "mcc":
        return float(skm.matthews_corrcoef(y, P.argmax(1)))
    if metric == "accuracy":
        return float(np.mean(P.argmax(1) == y))
    return float(-skm.log_loss(y, np.clip(P, 1e-15, 1), labels=list(range(k))))


def _check_cs(Cs: Sequence[float]) -> tuple[float, ...]:
    values = tuple(Cs) if not isinstance(Cs, (int, float)) else (Cs,)
    if not values or any(isinstance(c, bool) or not isinstance(c, (int, float)) or not c > 0 for c in values):
        raise ConfigError(f"Cs must be a non-empty list of positive numbers, e.g. {DEFAULT_CS}; got {Cs!r}.")
    return tuple(float(c) for c in values)


# --------------------------------------------------------------------------- baselines


def run_baselines(
    split_table: pd.DataFrame,
    *,
    embed_fn: Callable[[list[str]], np.ndarray] | None = None,
    positive: str | None = None,
    Cs: Sequence[float] = DEFAULT_CS,
    metric: str = "roc_auc",
    n_boot: int = 2000,
    seed: int = 0,
) -> dict:
    """Fit and score the baselines on a split table (id, sequence, label, split); JSON-ready.

    Runs "composition + logistic regression", "one-hot + logistic regression" (equal-length windows only) and, with
    ``embed_fn`` (sequences -> (n, d) frozen embeddings), "frozen embeddings + logistic regression" with
    standardised features. Each entry holds the chosen C and how it was chosen, validation
    metrics, test probabilities per id (class order = data.classes_of) and the test
    evaluation report with 95% bootstrap intervals (threshold 0.5).
    """
    missing = [c for c in ("id", "sequence", "label", "split") if c not in split_table.columns]
    if missing:
        raise DataError(
            f"The split table lacks the column(s) {missing}; it needs id, sequence, label and split. "
            "Make it with plmcore.data.split_table or plmcore.splits.split_grouped."
        )
    table = split_table.reset_index(drop=True)
    labels = [None if _missing(v) else str(v).strip() for v in table["label"]]
    unlabelled = [str(table["id"][i]) for i, lab in enumerate(labels) if lab is None]
    if unlabelled:
        raise LabelError(
            f"{len(unlabelled)} records have no label (e.g. {', '.join(unlabelled[:3])}); baselines "
            "need a label for every train, val and test record."
        )
    classes = classes_of(labels)
    if len(classes) < 2:
        raise DataError(f"All records carry the class {classes}; baselines need at least two classes.")
    if positive is not None and positive not in classes:
        raise ConfigError(f"positive={positive!r} is not one of the classes {classes}.")
    positive = (positive or positive_class(classes)) if len(classes) == 2 else None
    index = {c: i for i, c in enumerate(classes)}
    y = np.array([index[lab] for lab in labels], dtype=np.int64)
    split = table["split"].astype(str).to_numpy()
    parts = {name: np.flatnonzero(split == name) for name in ("train", "val", "test")}
    for name in ("train", "test"):
        if len(parts[name]) == 0:
            raise DataError(f"The split table has no {name} records; baselines need train and test splits.")
    absent = [c for i, c in enumerate(classes) if not np.any(y[parts["train"]] == i)]
    if absent:
        raise DataError(
            f"The training split has no records of class {', '.join(repr(c) for c in absent)}; a "
            "classifier cannot predict a class it never saw. Re-split stratified by label."
        )
    sequences = [str(s) for s in table["sequence"]]
    ids = [str(v) for v in table["id"]]
    pos_idx = classes.index(positive) if positive is not None else 1

    features: list[tuple[str, Callable[[], np.ndarray], bool]] = [
        ("composition + logistic regression", lambda: composition_features(sequences), False),
    ]
    skipped: dict[str, str] = {}
    lengths = {len(s) for s in sequences}
    if len(lengths) == 1:
        features.append(("one-hot + logistic regression", lambda: onehot_features(sequences), False))
    else:
        skipped["one-hot + logistic regression"] = (
            f"sequences have lengths {min(lengths)}-{max(lengths)}; one-hot features need aligned windows of one length"
        )
    if embed_fn is not None:
        features.append(("frozen embeddings + logistic regression", lambda: _embeddings(embed_fn, sequences), True))

    results: dict[str, dict] = {}
    tr, va, te = parts["train"], parts["val"], parts["test"]
    for name, make, scale in features:
        X = make()
        model, C, selection = fit_logistic(
            X[tr],
            y[tr],
            X[va] if len(va) else None,
            y[va] if len(va) else None,
            Cs=Cs,
            metric=metric,
            seed=seed,
            scale=scale,
        )
        P_test = _proba(model, X[te], len(classes))
        val_metrics = None
        if len(va):
            P_val = _proba(model, X[va], len(classes))
            val_metrics = _jsonable(compute_metrics(y[va], P_val, positive_index=pos_idx))
        results[name] = {
            "name": name,
            "n_features": int(X.shape[1]),
            "standardised": scale,
            "C": C,
            "c_selection": selection["selection"],
            "selection_metric": selection["metric"],
            "val_scores": {f"{c:g}": _num(s) for c, s in selection["scores"].items()},
            "val_metrics": val_metrics,
            "test_probabilities": {ids[i]: [float(p) for p in row] for i, row in zip(te, P_test)},
            "test": evaluation_report(y[te], P_test, classes, positive=positive, n_boot=n_boot, seed=seed),
        }
    return {
        "classes": classes,
        "positive": positive,
        "n_train": len(tr),
        "n_val": len(va),
        "n_test": len(te),
        "test_ids": [ids[i] for i in te],
        "test_y": [int(v) for v in y[te]],
        "baselines": results,
        "skipped": skipped,
    }


def _embeddings(embed_fn: Callable[[list[str]], np.ndarray], sequences: list[str]) -> np.ndarray:
    X = np.asarray(embed_fn(list(sequences)), dtype=float)
    if X.ndim != 2 or X.shape[0] != len(sequences):
        raise DataError(
            f"embed_fn must return one embedding row per sequence, shape ({len(sequences)}, d); got "
            f"shape {X.shape}. Pool per-residue embeddings (e.g. mean) before returning them."
        )
    if not np.all(np.isfinite(X)):
        raise DataError("embed_fn returned NaN or infinite values; check the model and its pooling.")
    return X


# --------------------------------------------------------------------------- comparisons


def paired_bootstrap(
    y: Sequence[int],
    prob_a: np.ndarray,
    prob_b: np.ndarray,
    *,
    n_boot: int = 2000,
    seed: int = 0,
    threshold_a: float = 0.5,
    threshold_b: float = 0.5,
    positive_index: int = 1,
) -> dict:
    """Compare two models on the same test items with the same bootstrap resamples.

    ``prob_a``/``prob_b`` are positive-class probabilities (y 0/1) or (n, k) class
    probabilities (y class indices; binary when k == 2, positive column ``positive_index``).
    For ROC-AUC, MCC and accuracy: each model's value, the difference a - b, its 95%
    percentile interval and the fraction of resamples in which a (or b) is ahead. The
    decision metric is ROC-AUC for binary tasks and MCC (argmax predictions, so no threshold)
    for multi-class ones.
    """
    y = np.asarray(y).astype(np.int64)
    A, B = np.asarray(prob_a, dtype=float), np.asarray(prob_b, dtype=float)
    if A.shape != B.shape or A.shape[0] != len(y) or A.ndim not in (1, 2):
        raise DataError(
            f"Both models need probabilities for the same {len(y)} test items; got shapes {A.shape} and "
            f"{B.shape}. Score both models on the same test split, in the same order."
        )
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 1:
        raise ConfigError(f"n_boot must be a positive integer; got {n_boot!r}.")
    counts = resample_counts(len(y), n_boot, seed)
    multiclass = A.ndim == 2 and A.shape[1] > 2
    if multiclass:
        point_a, point_b = multiclass_metrics(y, A), multiclass_metrics(y, B)
        boot_a, boot_b = multiclass_resampled(y, A, counts), multiclass_resampled(y, B, counts)
        decision = "mcc"
    else:
        if A.ndim == 2:
            A, B, y = A[:, positive_index], B[:, positive_index], (y == positive_index).astype(np.int64)
        point_a, point_b = binary_metrics(y, A, threshold_a), binary_metrics(y, B, threshold_b)
        boot_a = resampled_metrics(y, A, counts, threshold_a)
        boot_b = resampled_metrics(y, B, counts, threshold_b)
        decision = "roc_auc"
    compared = {}
    for name in COMPARED_METRICS:
        diff = np.asarray(boot_a[name]) - np.asarray(boot_b[name])
        valid = diff[~np.isnan(diff)]
        lo, hi = percentile_interval(valid)
        compared[name] = {
            "a": _num(point_a[name]),
            "b": _num(point_b[name]),
            "difference": _num(point_a[name] - point_b[name]),
            "ci95": [_num(lo), _num(hi)],
            "p_a_better": _num(np.mean(valid > 0)) if valid.size else None,
            "p_b_better": _num(np.mean(valid < 0)) if valid.size else None,
        }
    return {
        "n": int(len(y)),
        "n_boot": n_boot,
        "seed": seed,
        "task": "multiclass" if multiclass else "binary",
        "decision_metric": decision,
        "thresholds": None if multiclass else [float(threshold_a), float(threshold_b)],
        "metrics": compared,
    }


def compare_to_baselines(
    test_probabilities: Mapping[str, Sequence[float]],
    baselines: dict,
    *,
    name: str = "fine-tuned model",
    threshold: float = 0.5,
    n_boot: int = 2000,
    seed: int = 0,
) -> dict[str, dict]:
    """Paired bootstrap and verdict of one model against every baseline of :func:`run_baselines`.

    ``test_probabilities`` maps each test id to its class probabilities (class order of
    ``baselines["classes"]``); items are matched by id. Returns {baseline name: comparison
    with an added "verdict"}.
    """
    ids = baselines["test_ids"]
    missing = [rid for rid in ids if rid not in test_probabilities]
    if missing:
        raise DataError(
            f"{len(missing)} test ids of the baselines have no probabilities from {name} (e.g. "
            f"{', '.join(missing[:3])}); score the model on the same test split as the baselines."
        )
    y = np.asarray(baselines["test_y"], dtype=np.int64)
    P = np.asarray([test_probabilities[rid] for rid in ids], dtype=float)
    positive = baselines.get("positive")
    pos_idx = baselines["classes"].index(positive) if positive is not None else 1
    out = {}
    for baseline, entry in baselines["baselines"].items():
        B = np.asarray([entry["test_probabilities"][rid] for rid in ids], dtype=float)
        comparison = paired_bootstrap(y, P, B, n_boot=n_boot, seed=seed, threshold_a=threshold, positive_index=pos_idx)
        comparison["verdict"] = verdict(comparison, len(ids), name, baseline)
        out[baseline] = comparison
    return out


def verdict(comparison: dict, n: int, name_a: str, name_b: str) -> str:
    """One plain-language sentence: is a better than b, by how much, with what certainty."""
    from plmcore.tasks import metric_words

    metric = comparison["decision_metric"]
    entry = comparison["metrics"][metric]
    label = metric_words(metric)
    n = f"{n} {comparison['unit']}" if comparison.get("unit") else n
    lo, hi = entry["ci95"]
    a, b, diff = entry["a"], entry["b"], entry["difference"]
    if any(v is None for v in (a, b, diff, lo, hi)):
        return (
            f"Cannot compare {name_a} and {name_b} on this test set (n={n}): {label} is undefined "
            "(the test set needs records of every class)."
        )
    if lo > 0 or hi < 0:
        better, worse, sign = (name_a, name_b, 1) if lo > 0 else (name_b, name_a, -1)
        first, second = (a, b) if sign > 0 else (b, a)
        low, high = sorted((sign * lo, sign * hi))
        return (
            f"{better} is better than {worse} on this test set (n={n}): {label} {first:.2f} vs "
            f"{second:.2f}, difference {_signed(sign * diff)} (95% CI {_signed(low)} to {_signed(high)})."
        )
    return (
        f"No clear difference between {name_a} and {name_b} on this test set (n={n}): {label} "
        f"{a:.2f} vs {b:.2f}, difference {_signed(diff)} (95% CI {_signed(lo)} to {_signed(hi)})."
    )


def leaderboard(entries: Mapping[str, dict] | Iterable[dict]) -> pd.DataFrame:
    """One row per model with each metric and its 95% interval, best ROC-AUC first.

    ``entries``: {name: evaluation report} or dicts with "name" and a report under "test" or
    "report" (e.g. ``run_baselines(...)["baselines"].values()`` plus the fine-tuned run).
    Columns: model, n, then per metric ``m``, ``m_lo``, ``m_hi``.
    """
    from plmcore.tasks import MULTILABEL_METRICS, REGRESSION_METRICS

    items = list(entries.items()) if isinstance(entries, Mapping) else [_named_report(e) for e in entries]
    task = items[0][1].get("task", "classification") if items else "classification"
    metrics = {"regression": REGRESSION_METRICS, "multilabel": MULTILABEL_METRICS[:4]}.get(task, LEADERBOARD_METRICS)
    rows = []
    for name, report in items:
        if "metrics" not in report:
            raise DataError(
                f"The entry for {name!r} is not an evaluation report (no 'metrics'); pass the dict "
                "from plmcore.metrics.evaluation_report."
            )
        row: dict[str, Any] = {"model": name, "n": report.get("n")}
        for metric in metrics:
            value = report["metrics"].get(metric)
            lo, hi = report.get("ci95", {}).get(metric, (None, None))
            row[metric] = _nan(value)
            row[f"{metric}_lo"] = _nan(lo)
            row[f"{metric}_hi"] = _nan(hi)
        rows.append(row)
    columns = ["model", "n"] + [f"{m}{s}" for m in metrics for s in ("", "_lo", "_hi")]
    frame = pd.DataFrame(rows, columns=columns)
    frame.attrs["metrics"] = list(metrics)
    return frame.sort_values(metrics[0], ascending=False, na_position="last", kind="stable").reset_index(drop=True)


def _named_report(entry: dict) -> tuple[str, dict]:
    if not isinstance(entry, Mapping) or "name" not in entry:
        raise DataError("Each leaderboard entry needs a 'name' and an evaluation report under 'test' or 'report'.")
    report = entry.get("report", entry.get("test"))
    if report is None:
        raise DataError(f"The leaderboard entry {entry['name']!r} has no report under 'test' or 'report'.")
    return str(entry["name"]), report


# --------------------------------------------------------------------------- small helpers


def _missing(value: object) -> bool:
    if value is None or value is pd.NA:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def _num(value: Any) -> float | None:
    """A float for JSON, None for NaN (json.dumps would write the non-standard NaN)."""
    value = float(value)
    return None if math.isnan(value) else value


def _nan(value: Any) -> float:
    return float("nan") if value is None else float(value)


def _jsonable(metrics: dict) -> dict:
    return {k: (int(v) if isinstance(v, (int, np.integer)) else _num(v)) for k, v in metrics.items()}


def _signed(value: float) -> str:
    text = f"{value:+.2f}"
    if text in ("+0.00", "-0.00") and value != 0:
        text = f"{value:+.3f}"  # keep a bound's side of zero visible
    return text.replace("-", "\u2212")


# --------------------------------------------------------------------------- other tasks

DEFAULT_ALPHAS = (0.01, 0.1, 1.0, 10.0, 100.0, 1000.0)
RESIDUE_WINDOW = 7  # residues either side of each example in the per-residue baseline
# what each task's comparison reports; the first is the decision metric
COMPARED = {"regression": ("spearman", "pearson", "rmse"), "multilabel": ("macro_roc_auc", "macro_pr_auc", "micro_f1"),
            "residue": ("roc_auc", "mcc", "accuracy")}


def _sequence_features(sequences: list[str], embed_fn, what: str) -> tuple[list, dict]:
    """The baselines' feature sets for sequence-level tasks: composition, one-hot (aligned windows) and
    frozen embeddings; with the reason any was skipped."""
    features: list[tuple[str, Callable[[], np.ndarray], bool]] = [
        (f"composition + {what}", lambda: composition_features(sequences), False)]
    skipped: dict[str, str] = {}
    lengths = {len(s) for s in sequences}
    if len(lengths) == 1:
        features.append((f"one-hot + {what}", lambda: onehot_features(sequences), False))
    else:
        skipped[f"one-hot + {what}"] = (f"sequences have lengths {min(lengths)}-{max(lengths)}; one-hot features "
                                        "need aligned windows of one length")
    if embed_fn is not None:
        features.append((f"frozen embeddings + {what}", lambda: _embeddings(embed_fn, sequences), True))
    return features, skipped


def _parts(table: pd.DataFrame) -> dict[str, np.ndarray]:
    split = table["split"].astype(str).to_numpy()
    parts = {name: np.flatnonzero(split == name) for name in ("train", "val", "test")}
    for name in ("train", "test"):
        if len(parts[name]) == 0:
            raise DataError(f"The split table has no {name} records; baselines need train and test splits.")
    return parts


def _pick(candidates, fit, score, *, higher: bool = True):
    """The candidate whose fitted model scores best on validation (ties: the first, most regularised)."""
    scores = {}
    best, best_score = candidates[0], -np.inf
    for c in candidates:
        s = score(fit(c))
        scores[c] = s
        value = (s if higher else -s) if not math.isnan(s) else -np.inf
        if value > best_score + 1e-12:
            best, best_score = c, value
    return best, scores


def run_task_baselines(table: pd.DataFrame, lab, *, embed_fn=None, n_boot: int = 2000, seed: int = 0) -> dict:
    """Baselines for regression (ridge regression), multi-label (one logistic regression per label)
    and per-residue tasks (logistic regression on one-hot windows around each residue), fitted on
    the split's training part, tuned on validation, reported on test with intervals."""
    from plmcore import tasks

    table = table.reset_index(drop=True)
    parts = _parts(table)
    if lab.task == "residue":
        return _residue_baselines(table, lab, parts, n_boot=n_boot, seed=seed)
    sequences = [str(s) for s in table["sequence"]]
    ids = [str(v) for v in table["id"]]
    tr, va, te = parts["train"], parts["val"], parts["test"]
    y = tasks.targets(lab, table["label"].tolist(), sequences)
    what = "ridge regression" if lab.task == "regression" else "logistic regression per label"
    features, skipped = _sequence_features(sequences, embed_fn, what)
    results = {}
    for name, make, scale in features:
        X = make()
        if lab.task == "regression":
            entry = _ridge(X, y, tr, va, te, scale, lab)
            truth = tasks.to_output(lab, y[te]) if lab.target_mean is not None else y[te]
            entry["test"] = tasks.regression_report(truth, entry.pop("test_values"), n_boot=n_boot, seed=seed)
        else:
            entry = _per_label(X, y, tr, va, te, scale, seed)
            entry["test"] = tasks.multilabel_report(y[te], entry.pop("test_values"), lab.classes, entry["thresholds"],
                                                    n_boot=n_boot, seed=seed)
        entry.update(name=name, n_features=int(X.shape[1]), standardised=scale)
        entry["test_predictions"] = {ids[i]: v for i, v in zip(te, entry.pop("test_list"))}
        results[name] = entry
    return {"task": lab.task, "classes": lab.classes, "n_train": len(tr), "n_val": len(va), "n_test": len(te),
            "test_ids": [ids[i] for i in te], "baselines": results, "skipped": skipped}


def _ridge(X, y, tr, va, te, scale: bool, lab) -> dict:
    from sklearn.linear_model import Ridge

    from plmcore import tasks

    def fit(alpha):
        model = make_pipeline(StandardScaler(), Ridge(alpha=alpha)) if scale else Ridge(alpha=alpha)
        return model.fit(X[tr], y[tr])

    if len(va) > 2:
        alpha, scores = _pick(DEFAULT_ALPHAS, fit, lambda m: tasks.regression_metrics(y[va], m.predict(X[va]))["rmse"],
                              higher=False)
        how = f"validation split ({len(va)} records, RMSE)"
    else:
        alpha, scores, how = 1.0, {}, "fixed alpha=1 (no validation split)"
    model = fit(alpha)
    values = tasks.to_output(lab, model.predict(X[te]))
    val_metrics = None
    if len(va) > 2:
        val_metrics = _jsonable(tasks.regression_metrics(tasks.to_output(lab, y[va]),
                                                         tasks.to_output(lab, model.predict(X[va]))))
    return {"alpha": alpha, "c_selection": how, "val_scores": {f"{a:g}": _num(s) for a, s in scores.items()},
            "val_metrics": val_metrics, "test_values": values, "test_list": [float(v) for v in values]}


def _per_label(X, Y, tr, va, te, scale: bool, seed: int) -> dict:
    from plmcore import tasks

    L = Y.shape[1]

    def fit(C):
        models = []
        for j in range(L):
            yj = Y[tr, j].astype(int)
            models.append(_fit(X[tr], yj, C, scale, seed) if len(np.unique(yj)) == 2 else float(yj.mean()))
        return models

    def predict(models, rows):
        return np.stack([m[:, 1] if not isinstance(m, float) else m for m in
                         (_proba(mod, X[rows], 2) if not isinstance(mod, float) else np.full(len(rows), mod)
                          for mod in models)], 1)

    if len(va) > 2:
        C, scores = _pick(DEFAULT_CS, fit, lambda ms: tasks.multilabel_metrics(
            Y[va], predict(ms, va), [0.5] * L)["macro_roc_auc"])
        how = f"validation split ({len(va)} records, macro ROC-AUC)"
    else:
        C, scores, how = 1.0, {}, "fixed C=1 (no validation split)"
    models = fit(C)
    P_val = predict(models, va) if len(va) else np.zeros((0, L))
    thresholds = tasks.label_thresholds(Y[va], P_val, "mcc") if len(va) else [0.5] * L
    P = predict(models, te)
    val_metrics = _jsonable({k: v for k, v in tasks.multilabel_metrics(Y[va], P_val, thresholds).items()
                             if ":" not in k}) if len(va) > 2 else None
    return {"C": C, "c_selection": how, "val_scores": {f"{c:g}": _num(s) for c, s in scores.items()},
            "val_metrics": val_metrics, "thresholds": thresholds, "test_values": P,
            "test_list": [[float(v) for v in row] for row in P]}


def residue_window_features(sequence: str, positions: np.ndarray, half: int = RESIDUE_WINDOW) -> np.ndarray:
    """(len(positions), (2*half+1) * 21) one-hot windows centred on the given 0-based positions."""
    from plmcore.data import site_window

    windows = [site_window(sequence, int(p) + 1, 2 * half + 1) for p in positions]
    return onehot_features(windows) if windows else np.zeros((0, (2 * half + 1) * len(ONEHOT_SYMBOLS)))


def _residue_rows(table, lab, rows) -> tuple[np.ndarray, np.ndarray, np.ndarray, list]:
    from plmcore import tasks

    sequences = [str(table["sequence"][i]) for i in rows]
    tracks = tasks.targets(lab, [str(table["label"][i]) for i in rows], sequences)
    X, y, units, positions = [], [], [], []
    for k, (seq, t) in enumerate(zip(sequences, tracks)):
        pos = np.flatnonzero(t != tasks.IGNORE)
        X.append(residue_window_features(seq, pos))
        y.append(t[pos])
        units.append(np.full(len(pos), k))
        positions.append(pos)
    return np.concatenate(X), np.concatenate(y), np.concatenate(units), positions


def _residue_baselines(table, lab, parts, *, n_boot: int, seed: int) -> dict:
    Xtr, ytr, _, _ = _residue_rows(table, lab, parts["train"])
    Xva, yva, _, _ = _residue_rows(table, lab, parts["val"]) if len(parts["val"]) else (None, None, None, None)
    Xte, yte, units, positions = _residue_rows(table, lab, parts["test"])
    name = f"one-hot ±{RESIDUE_WINDOW} residues + logistic regression"
    metric = "roc_auc" if len(lab.classes) == 2 else "mcc"
    model, C, selection = fit_logistic(Xtr, ytr, Xva, yva, metric=metric, seed=seed)
    P = _proba(model, Xte, len(lab.classes))
    val_metrics = None
    if Xva is not None and len(yva):
        val_metrics = _jsonable(compute_metrics(yva, _proba(model, Xva, len(lab.classes)),
                                                positive_index=lab.positive_index))
    ids = [str(table["id"][i]) for i in parts["test"]]
    by_protein, start = {}, 0
    for rid, pos in zip(ids, positions):
        by_protein[rid] = [[float(v) for v in row] for row in P[start:start + len(pos)]]
        start += len(pos)
    report = evaluation_report(yte, P, lab.classes, positive=lab.positive, n_boot=n_boot, seed=seed, units=units)
    report["n_proteins"] = len(ids)
    entry = {"name": name, "n_features": int(Xtr.shape[1]), "standardised": False, "C": C,
             "c_selection": selection["selection"], "val_metrics": val_metrics, "test": report,
             "test_predictions": by_protein}
    return {"task": "residue", "classes": lab.classes, "positive": lab.positive, "n_train": len(parts["train"]),
            "n_val": len(parts["val"]), "n_test": len(parts["test"]), "test_ids": ids, "baselines": {name: entry},
            "skipped": {}}


def compare_task(lab, y, model_pred, baselines: dict, *, name: str = "fine-tuned model", units=None,
                 thresholds=None, n_boot: int = 2000, seed: int = 0) -> dict[str, dict]:
    """Paired bootstrap of the model against each baseline on the same test items (or proteins), for
    regression, multi-label and per-residue tasks; the same form as paired_bootstrap, with a verdict."""
    from plmcore import tasks
    from plmcore.metrics import unit_counts

    compared = COMPARED[lab.task]
    y = np.asarray(y)
    counts = unit_counts(units, len(y), n_boot, seed)
    ids = baselines["test_ids"]

    def stats(pred, th, W):
        """The compared metrics on each row of weights W."""
        if lab.task == "regression":
            return tasks.regression_resampled(y, pred, W)
        if lab.task == "multilabel":
            return tasks.multilabel_resampled(y, pred, W, th)
        if len(lab.classes) == 2:
            pos = lab.positive_index
            return weighted_binary((y == pos).astype(int), pred[:, pos], W, th or 0.5)
        return multiclass_resampled(y, pred, W)

    def resampled(pred, th):
        return stats(pred, th, counts)

    def point(pred, th):
        return {k: float(v[0]) for k, v in stats(pred, th, np.ones((1, len(y)))).items()}

    a_boot, a_point = resampled(model_pred, thresholds), point(model_pred, thresholds)
    out = {}
    for baseline, entry in baselines["baselines"].items():
        raw = entry["test_predictions"]
        if lab.task == "residue":
            b_pred = np.asarray([row for rid in ids for row in raw[rid]], dtype=float)
        else:
            b_pred = np.asarray([raw[rid] for rid in ids], dtype=float)
        b_th = entry.get("thresholds") if lab.task == "multilabel" else None
        b_boot, b_point = resampled(b_pred, b_th), point(b_pred, b_th)
        metrics = {}
        for m in compared:
            diff = np.asarray(a_boot[m]) - np.asarray(b_boot[m])
            valid = diff[~np.isnan(diff)]
            lo, hi = percentile_interval(valid)
            metrics[m] = {"a": _num(a_point[m]), "b": _num(b_point[m]), "difference": _num(a_point[m] - b_point[m]),
                          "ci95": [_num(lo), _num(hi)],
                          "p_a_better": _num(np.mean(valid < 0 if m in ("rmse", "mae") else valid > 0))
                          if valid.size else None}
        comparison = {"n": int(len(np.unique(units)) if units is not None else len(y)), "n_boot": n_boot,
                      "seed": seed, "task": lab.task, "decision_metric": compared[0], "metrics": metrics,
                      "unit": "proteins" if units is not None else None}
        comparison["verdict"] = verdict(comparison, comparison["n"], name, baseline)
        out[baseline] = comparison
    return out
