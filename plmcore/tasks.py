"""What a run predicts: the task, its labels and targets, its loss, its outputs and its metrics.

Four tasks share one pipeline (config, run directory, live charts, a test report with
bootstrap intervals, baselines and a paired verdict, leakage, cross-validation, export, Predict):

- classification: one class per sequence, two or more classes (metrics in plmcore.metrics);
- regression: one number per sequence (melting temperature, activity, fluorescence);
- multilabel: several labels per sequence, written "membrane;nucleus";
- residue: a class for every residue, as a label track as long as the sequence ("." = no label),
  with only the residue types asked for (e.g. S/T/Y) counting as examples.

The task comes from the labels (``detect``) unless the user chooses it. Intervals come from
the bootstrap over the test items (over proteins, for per-residue tasks) with the resample
counts of plmcore.metrics, so every model on a split is compared on the same resamples.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields

import numpy as np

from plmcore.config import LOWER_IS_BETTER, TASKS
from plmcore.errors import ConfigError, LabelError
from plmcore.metrics import (
    binary_metrics,
    percentile_interval,
    resample_counts,
    safe_div,
    weighted_binary,
    weighted_ranking,
)

SEPARATOR = ";"  # between the labels of one record, multi-label
NO_LABEL = "."  # a residue without a label, per-residue
IGNORE = -100  # target of a token that is not an example (torch's ignore_index)

REGRESSION_METRICS = ("spearman", "pearson", "r2", "rmse", "mae")
MULTILABEL_METRICS = ("macro_roc_auc", "macro_pr_auc", "macro_f1", "micro_roc_auc", "micro_pr_auc", "micro_f1",
                      "macro_mcc")
# the metric each task is judged by: early stopping ("auto"), baselines' choice, the verdict
DECISION = {"classification": "roc_auc", "regression": "spearman", "multilabel": "macro_roc_auc",
            "residue": "roc_auc"}
STOP_DEFAULT = {"classification": "mcc", "regression": "spearman", "multilabel": "macro_roc_auc",
                "residue": "roc_auc"}  # residues are mostly negatives: MCC at 0.5 stays 0 while ranking improves
METRIC_WORDS = {"spearman": "Spearman ρ", "pearson": "Pearson r", "r2": "R²", "rmse": "RMSE", "mae": "MAE",
                "macro_roc_auc": "macro ROC-AUC", "macro_pr_auc": "macro PR-AUC", "macro_f1": "macro F1",
                "micro_roc_auc": "micro ROC-AUC", "micro_pr_auc": "micro PR-AUC", "micro_f1": "micro F1",
                "macro_mcc": "macro MCC"}
_REGRESSION_MIN_DISTINCT = 10


# --------------------------------------------------------------------------- which task


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def detect(labels: Sequence[str | None], sequences: Sequence[str]) -> tuple[str, str]:
    """The task the labels describe, and why, in words."""
    present = [lab for lab in labels if lab is not None]
    if not present:
        return "classification", "there are no labels"
    pairs = [(lab, seq) for lab, seq in zip(labels, sequences) if lab is not None]
    # a track is as long as its sequence; class names that happen to be (pos, neg for 3-residue
    # peptides) are short, repeat, and have no '.'
    tracks = all(len(lab) == len(seq) > 1 for lab, seq in pairs) and (
        any(NO_LABEL in lab for lab in present) or len(set(present)) > 20 or min(len(lab) for lab in present) >= 10
    ) and not all(_number(lab) is not None for lab in present)
    if tracks:
        symbols = sorted(set("".join(present)) - {NO_LABEL})
        if 1 <= len(symbols) <= 20:
            return "residue", (f"every label is a track as long as its sequence, with the residue classes "
                               f"{', '.join(symbols)}")
    if any(SEPARATOR in lab for lab in present):
        names = sorted({x.strip() for lab in present for x in lab.split(SEPARATOR) if x.strip()})
        return "multilabel", f"records carry several labels separated by '{SEPARATOR}' ({len(names)} labels)"
    numbers = [_number(lab) for lab in present]
    if all(v is not None for v in numbers):
        values = np.array(numbers)
        distinct = len(np.unique(values))
        fractional = bool(np.any(values != np.round(values)))
        if fractional or (distinct > _REGRESSION_MIN_DISTINCT and distinct > 0.5 * len(values)):
            return "regression", (f"the labels are numbers ({distinct} distinct values from {values.min():g} to "
                                  f"{values.max():g})")
    classes = sorted(set(present))
    return "classification", f"{len(classes)} classes"


def resolve(task: str, labels: Sequence[str | None], sequences: Sequence[str]) -> str:
    """The task to train: the one asked for, or (for "auto") the one the labels describe."""
    if task not in TASKS:
        raise ConfigError(f"task={task!r} is not allowed; choose one of {', '.join(TASKS)}")
    return detect(labels, sequences)[0] if task == "auto" else task


def stop_metric(config, task: str) -> str:
    """The validation metric that picks the best checkpoint, checked against the task."""
    metric = config.early_stopping_metric
    if metric == "auto":
        return STOP_DEFAULT[task]
    allowed = {"classification": {"mcc", "roc_auc", "pr_auc", "accuracy", "f1"},
               "residue": {"mcc", "roc_auc", "pr_auc", "accuracy", "f1"},
               "regression": set(REGRESSION_METRICS), "multilabel": set(MULTILABEL_METRICS)}[task] | {"val_loss"}
    if metric not in allowed:
        raise ConfigError(f"early_stopping_metric={metric!r} does not apply to a {task} task; choose auto or one "
                          f"of {', '.join(sorted(allowed))}")
    return metric


# the validation metrics shown while a run trains, per task
LIVE_METRICS = {"classification": ("mcc", "roc_auc", "accuracy"), "residue": ("mcc", "roc_auc", "accuracy"),
                "regression": ("spearman", "pearson", "rmse"), "multilabel": ("macro_roc_auc", "macro_f1", "micro_f1")}


def lower_is_better(metric: str) -> bool:
    return metric.removeprefix("val_") in LOWER_IS_BETTER


def plot_labels(labels: Sequence[str | None], sequences: Sequence[str]) -> list:
    """Labels as a plot colours them: per-residue tracks become their number of labelled residues
    other than the first (negative) class; other labels stay as they are."""
    if detect(labels, sequences)[0] != "residue":
        return list(labels)
    symbols = sorted(set("".join(lab for lab in labels if lab)) - {NO_LABEL})
    negative = symbols[0] if symbols else "0"
    return [sum(c not in (NO_LABEL, negative) for c in (lab or "")) for lab in labels]


def split_labels(label: str | None) -> list[str]:
    """The labels of one multi-label record."""
    return [x.strip() for x in (label or "").split(SEPARATOR) if x.strip()]


# --------------------------------------------------------------------------- labels and targets


@dataclass
class Labelling:
    """How a run's labels map to what the model predicts (saved as labels.json)."""

    task: str = "classification"
    classes: list[str] = field(default_factory=list)  # classes, label names or residue classes; [] for regression
    positive: str | None = None  # binary classification or binary per-residue
    window_length: int | None = None
    aligned: bool = False
    center_residues: list[str] = field(default_factory=list)
    window_ends: str = "pad"  # site windows near protein ends: "pad"ded with X, or "cut" short (data.window_info)
    target_mean: float | None = None  # regression, when targets are standardised
    target_sd: float | None = None
    residues: str | None = None  # per-residue: the residue types that count

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict) -> Labelling:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in known})

    @property
    def n_outputs(self) -> int:
        return 1 if self.task == "regression" else len(self.classes)

    @property
    def positive_index(self) -> int:
        return self.classes.index(self.positive) if self.positive in self.classes else len(self.classes) - 1

    @property
    def binary(self) -> bool:
        return self.task in ("classification", "residue") and len(self.classes) == 2


def labelling(task: str, train_labels: Sequence[str], all_labels: Sequence[str], *, residues: str | None = None,
              standardize: bool = True, train_sequences: Sequence[str] = ()) -> Labelling:
    """The labelling of a run from its labels (targets are standardised on the training split only).

    Per-residue: without `residues`, the residue types that carry labels in the training tracks
    count, when they are a few (e.g. S/T/Y of phosphosite tracks); else every residue does.
    """
    from plmcore.data import classes_of, positive_class

    if task == "regression":
        values = np.array([_number(v) for v in train_labels], dtype=float)
        mean, sd = (float(values.mean()), float(values.std()) or 1.0) if standardize else (None, None)
        return Labelling(task, [], None, target_mean=mean, target_sd=sd)
    if task == "multilabel":
        names = sorted({x for lab in all_labels for x in split_labels(lab)})
        if len(names) < 2:
            raise LabelError(f"a multi-label task needs at least two different labels; found {names}")
        return Labelling(task, names)
    if task == "residue":
        symbols = classes_of(sorted(set("".join(all_labels)) - {NO_LABEL}))
        if len(symbols) < 2:
            raise LabelError(f"a per-residue task needs at least two residue classes in the tracks; found {symbols}")
        if residues is None and train_sequences:
            labelled = {aa for seq, t in zip(train_sequences, train_labels) for aa, c in zip(seq, t) if c != NO_LABEL}
            residues = "".join(sorted(labelled)) if len(labelled) <= 10 else None
        return Labelling(task, symbols, positive_class(symbols), residues=residues)
    classes = classes_of(all_labels)
    return Labelling(task, classes, positive_class(classes))


def targets(lab: Labelling, labels: Sequence[str], sequences: Sequence[str] | None = None):
    """What the model is trained towards, per record.

    classification: class indices; regression: floats (standardised); multilabel: (n, L) 0/1;
    residue: one int array per record, a class per residue and IGNORE where a residue is not an
    example (no label, or not one of the residue types that count).
    """
    if lab.task == "classification":
        index = {c: i for i, c in enumerate(lab.classes)}
        return np.array([index[v] for v in labels], dtype=np.int64)
    if lab.task == "regression":
        values = np.array([_number(v) for v in labels], dtype=np.float32)
        if lab.target_mean is not None:
            values = (values - lab.target_mean) / lab.target_sd
        return values.astype(np.float32)
    if lab.task == "multilabel":
        index = {c: i for i, c in enumerate(lab.classes)}
        out = np.zeros((len(labels), len(lab.classes)), dtype=np.float32)
        for i, label in enumerate(labels):
            for name in split_labels(label):
                if name in index:
                    out[i, index[name]] = 1.0
        return out
    lut = np.full(256, IGNORE, dtype=np.int64)
    for i, c in enumerate(lab.classes):
        lut[ord(c)] = i
    out = []
    for label, seq in zip(labels, sequences):
        t = lut[np.frombuffer(label.encode("latin-1"), dtype=np.uint8)]
        if lab.residues:
            wanted = np.isin(np.frombuffer(seq.encode("latin-1"), dtype=np.uint8),
                             np.frombuffer(lab.residues.encode(), dtype=np.uint8))
            t = np.where(wanted, t, IGNORE)
        out.append(t)
    return out


def to_output(lab: Labelling, value: float) -> float:
    """A regression output in the target's own units."""
    return value * lab.target_sd + lab.target_mean if lab.target_mean is not None else value


def outputs(lab: Labelling, logits):
    """Predictions in their natural form: class or label probabilities, or values in the target's units.

    For a per-residue task `logits` is a list of (residues, k) arrays and so is the result.
    """
    from scipy.special import expit, softmax

    if lab.task == "residue":
        return [softmax(x, axis=-1) for x in logits]
    if lab.task == "regression":
        values = np.asarray(logits, dtype=float)[:, 0]
        return values * lab.target_sd + lab.target_mean if lab.target_mean is not None else values
    if lab.task == "multilabel":
        return expit(np.asarray(logits, dtype=float))
    return softmax(np.asarray(logits, dtype=float), axis=1)


def loss_fn(lab: Labelling, *, class_weight=None, regression_loss: str = "mse"):
    """The training loss for the task, as a function (logits, targets) -> scalar tensor."""
    from torch import nn

    if lab.task == "regression":
        inner = nn.HuberLoss() if regression_loss == "huber" else nn.MSELoss()
        return lambda logits, y: inner(logits.float()[:, 0], y)
    if lab.task == "multilabel":
        inner = nn.BCEWithLogitsLoss()
        return lambda logits, y: inner(logits.float(), y)
    if lab.task == "residue":
        inner = nn.CrossEntropyLoss(weight=class_weight, ignore_index=IGNORE)
        return lambda logits, y: inner(logits.float().reshape(-1, logits.shape[-1]), y.reshape(-1))
    inner = nn.CrossEntropyLoss(weight=class_weight)
    return lambda logits, y: inner(logits.float(), y)


# --------------------------------------------------------------------------- metrics: regression


def _weighted_ranks(values: np.ndarray, W: np.ndarray) -> np.ndarray:
    """Average ranks (1-based, ties shared) of `values` within each resample described by weights W (B, n)."""
    order = np.argsort(values, kind="stable")
    v = values[order]
    starts = np.flatnonzero(np.r_[True, v[1:] != v[:-1]])
    group = np.cumsum(np.r_[True, v[1:] != v[:-1]]) - 1
    gw = np.add.reduceat(W[:, order].astype(float), starts, axis=1)
    grank = np.cumsum(gw, 1) - gw + (gw + 1) / 2
    ranks = np.empty((W.shape[0], len(values)))
    ranks[:, order] = grank[:, group]
    return ranks


def _weighted_pearson(a: np.ndarray, b: np.ndarray, W: np.ndarray) -> np.ndarray:
    s = W.sum(1, keepdims=True)
    ma, mb = (W * a).sum(1, keepdims=True) / s, (W * b).sum(1, keepdims=True) / s
    da, db = a - ma, b - mb
    cov = (W * da * db).sum(1)
    return safe_div(cov, np.sqrt((W * da**2).sum(1) * (W * db**2).sum(1)))


def regression_resampled(y: np.ndarray, pred: np.ndarray, W: np.ndarray) -> dict[str, np.ndarray]:
    """Spearman, Pearson, R², RMSE and MAE on each resample (rows of W; counts or weights)."""
    y, pred, W = np.asarray(y, float), np.asarray(pred, float), np.asarray(W, float)
    s = W.sum(1)
    err = pred - y
    mean_y = (W * y).sum(1) / s
    ss_tot = (W * (y - mean_y[:, None]) ** 2).sum(1)
    ss_res = (W * err**2).sum(1)
    return {
        "spearman": _weighted_pearson(_weighted_ranks(y, W), _weighted_ranks(pred, W), W),
        "pearson": _weighted_pearson(y[None, :], pred[None, :], W),
        "r2": np.where(ss_tot > 0, 1 - safe_div(ss_res, ss_tot), np.nan),
        "rmse": np.sqrt(ss_res / s),
        "mae": (W * np.abs(err)).sum(1) / s,
    }


def regression_metrics(y, pred) -> dict[str, float]:
    y = np.asarray(y, float)
    return {k: float(v[0]) for k, v in regression_resampled(y, pred, np.ones((1, len(y)))).items()}


# --------------------------------------------------------------------------- metrics: multi-label


def multilabel_resampled(Y: np.ndarray, P: np.ndarray, W: np.ndarray, thresholds: Sequence[float]) -> dict:
    """Per-label and macro/micro ROC-AUC, PR-AUC, F1 and MCC on each resample (rows of W)."""
    Y, P = np.asarray(Y, int), np.asarray(P, float)
    L = Y.shape[1]
    per = [weighted_binary(Y[:, j], P[:, j], W, thresholds[j]) for j in range(L)]
    out = {f"{m}:{j}": per[j][m] for j in range(L) for m in ("roc_auc", "pr_auc", "f1", "mcc")}
    with warnings.catch_warnings():  # a resample without a label's positives has no ROC-AUC for it
        warnings.simplefilter("ignore", RuntimeWarning)
        for m in ("roc_auc", "pr_auc", "f1", "mcc"):
            out[f"macro_{m}"] = np.nanmean(np.stack([p[m] for p in per]), 0)
    calls = (P >= np.asarray(thresholds)[None, :]).astype(float)
    Wflat = np.repeat(W, L, axis=1)
    micro = weighted_binary(Y.ravel(), calls.ravel(), Wflat, 0.5)
    ranking = weighted_ranking(Y.ravel() == 1, P.ravel(), Wflat)
    out.update(micro_f1=micro["f1"], micro_roc_auc=ranking["roc_auc"], micro_pr_auc=ranking["pr_auc"])
    return out


def multilabel_metrics(Y, P, thresholds) -> dict[str, float]:
    Y = np.asarray(Y)
    return {k: float(v[0]) for k, v in multilabel_resampled(Y, P, np.ones((1, len(Y))), thresholds).items()}


# --------------------------------------------------------------------------- per-residue


def flatten_residues(lab: Labelling, tracks: Sequence[np.ndarray], probs: Sequence[np.ndarray]):
    """The residues that are examples, pooled over records: (y, probabilities, record of each residue)."""
    ys, ps, units = [], [], []
    for i, (t, p) in enumerate(zip(tracks, probs)):
        keep = np.asarray(t) != IGNORE
        ys.append(np.asarray(t)[keep])
        ps.append(np.asarray(p)[: len(t)][keep])
        units.append(np.full(int(keep.sum()), i))
    k = len(lab.classes)
    if not ys:
        return np.zeros(0, int), np.zeros((0, k)), np.zeros(0, int)
    return np.concatenate(ys), np.concatenate(ps) if ps else np.zeros((0, k)), np.concatenate(units)


def chunk_spans(length: int, window: int, overlap: int) -> list[tuple[int, int]]:
    """Start and end of the chunks that cover a protein longer than the model takes."""
    if length <= window:
        return [(0, length)]
    overlap = min(max(overlap, 0), window // 2)
    step = window - overlap
    starts = list(range(0, length - window, step)) + [length - window]
    return [(s, s + window) for s in dict.fromkeys(starts)]


def merge_chunks(spans: list[tuple[int, int]], parts: list[np.ndarray], length: int) -> np.ndarray:
    """Per-residue outputs of overlapping chunks merged into one track (overlaps averaged)."""
    k = parts[0].shape[-1]
    total, seen = np.zeros((length, k)), np.zeros((length, 1))
    for (start, end), part in zip(spans, parts):
        total[start:end] += part[: end - start]
        seen[start:end] += 1
    return total / np.maximum(seen, 1)


# --------------------------------------------------------------------------- reports with intervals


def _interval(values: np.ndarray) -> list[float | None]:
    lo, hi = percentile_interval(values)
    return [None if math.isnan(lo) else lo, None if math.isnan(hi) else hi]


def regression_report(y, pred, *, n_boot: int = 2000, seed: int = 0, max_points: int = 2000) -> dict:
    """Spearman, Pearson, R², RMSE and MAE with 95% bootstrap intervals, and the points to plot."""
    y, pred = np.asarray(y, float), np.asarray(pred, float)
    boot = regression_resampled(y, pred, resample_counts(len(y), n_boot, seed))
    keep = np.linspace(0, len(y) - 1, min(len(y), max_points)).astype(int) if len(y) else np.zeros(0, int)
    return {
        "task": "regression", "n": int(len(y)), "n_boot": n_boot,
        "metrics": regression_metrics(y, pred),
        "ci95": {m: _interval(v) for m, v in boot.items()},
        "points": {"true": y[keep].tolist(), "predicted": pred[keep].tolist()},
    }


def multilabel_report(Y, P, names: list[str], thresholds: Sequence[float], *, n_boot: int = 2000,
                      seed: int = 0) -> dict:
    """Per-label and macro/micro metrics with 95% bootstrap intervals, at each label's threshold."""
    Y, P = np.asarray(Y, int), np.asarray(P, float)
    boot = multilabel_resampled(Y, P, resample_counts(len(Y), n_boot, seed), thresholds)
    point = multilabel_metrics(Y, P, thresholds)
    per_label = {}
    for j, name in enumerate(names):
        m = binary_metrics(Y[:, j], P[:, j], thresholds[j])
        per_label[name] = {
            "threshold": float(thresholds[j]), "n_positive": int(Y[:, j].sum()),
            "metrics": {k: m[k] for k in ("roc_auc", "pr_auc", "f1", "mcc", "sensitivity", "specificity")},
            "ci95": {k: _interval(boot[f"{k}:{j}"]) for k in ("roc_auc", "pr_auc", "f1", "mcc")},
        }
    return {
        "task": "multilabel", "n": int(len(Y)), "n_boot": n_boot, "labels": list(names),
        "thresholds": [float(t) for t in thresholds],
        "metrics": {m: point[m] for m in MULTILABEL_METRICS},
        "ci95": {m: _interval(boot[m]) for m in MULTILABEL_METRICS},
        "per_label": per_label,
    }


def label_thresholds(Y_val, P_val, objective: str) -> list[float]:
    """One decision threshold per label, chosen on validation (best MCC, or 0.5 when fixed or undecidable)."""
    from plmcore.calibration import choose_threshold

    Y_val, P_val = np.asarray(Y_val, int), np.asarray(P_val, float)
    out = []
    for j in range(P_val.shape[1] if P_val.ndim == 2 else 0):
        if objective == "fixed" or len(np.unique(Y_val[:, j])) < 2:
            out.append(0.5)
        else:
            out.append(float(choose_threshold(Y_val[:, j], P_val[:, j], objective="mcc")["threshold"]))
    return out


def val_scores(lab: Labelling, y, out, loss: float) -> dict:
    """The validation metrics logged at each evaluation (and used for early stopping).

    ``y`` are the training targets (standardised for a regression that standardises them) and
    ``out`` the outputs in the target's own units, so regression targets are put back in those
    units first: RMSE, MAE and R² are in the units the test report uses.
    """
    from plmcore.metrics import compute_metrics

    scores = {"val_loss": loss}
    if lab.task == "regression":
        truth = to_output(lab, np.asarray(y, dtype=float))
        scores.update({f"val_{k}": v for k, v in regression_metrics(truth, out).items()})
    elif lab.task == "multilabel":
        scores.update({f"val_{k}": v for k, v in multilabel_metrics(y, out, [0.5] * len(lab.classes)).items()
                       if ":" not in k})
    else:
        if lab.task == "residue":
            y, out, _ = flatten_residues(lab, y, out)
        if len(y):
            m = compute_metrics(y, out, positive_index=lab.positive_index)
            scores.update({f"val_{k}": v for k, v in m.items() if k not in ("tp", "fp", "tn", "fn")})
    return scores


def metric_words(metric: str) -> str:
    from plmcore.metrics import METRIC_LABELS

    return METRIC_WORDS.get(metric) or METRIC_LABELS.get(metric, metric)


def format_task_report(report: dict, title: str | None = None) -> str:
    """Plain-text metrics with intervals for a regression or multi-label test report (the CLI's)."""
    lines = [title] if title else []
    lines.append(f"n = {report['n']}; 95% bootstrap intervals ({report['n_boot']} resamples)")

    def row(name: str, value, ci) -> str:
        lo, hi = ci or (None, None)
        interval = f"[{lo:.3f}, {hi:.3f}]" if lo is not None and hi is not None else ""
        shown = "" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"
        return f"{name:<16}{shown:>8}   {interval}"

    lines.append(f"{'metric':<16}{'value':>8}   95% CI")
    for m, value in report["metrics"].items():
        lines.append(row(metric_words(m), value, report["ci95"].get(m)))
    if report.get("task") == "multilabel":
        lines.append("per label (at its validation threshold):")
        lines.append(f"{'label':<16}{'ROC-AUC':>8}   {'F1':>6}   threshold   positives")
        for name, entry in report["per_label"].items():
            m = entry["metrics"]
            lines.append(f"{name:<16}{m['roc_auc']:>8.3f}   {m['f1']:>6.3f}   {entry['threshold']:>9.2f}"
                         f"   {entry['n_positive']:>9}")
    return "\n".join(lines)
