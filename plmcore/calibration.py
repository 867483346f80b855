"""Decision thresholds and probability calibration, fitted on the validation split only.

A classifier's 0.5 cut is rarely what a biologist wants: screening wants few missed sites
(a sensitivity target), confirmation wants few false alarms (a specificity target). The
threshold is chosen on validation predictions and then applied, unchanged, to the test set.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import expit, log_softmax, softmax

from plmcore.errors import ConfigError, DataError
from plmcore.metrics import binary_metrics

__all__ = [
    "OBJECTIVES",
    "apply_temperature",
    "brier",
    "choose_threshold",
    "fit_temperature",
    "reliability",
]

OBJECTIVES = ("mcc", "specificity", "sensitivity")
FALLBACK_THRESHOLD = 0.5
# log T is searched in [log 0.01, log 100]: beyond that the model is effectively constant or
# a hard argmax, and the validation set cannot tell those apart.
_LOG_T_BOUNDS = (math.log(0.01), math.log(100.0))


def choose_threshold(
    y_val: Sequence[int],
    p_val: Sequence[float],
    *,
    objective: str = "mcc",
    target: float | None = None,
) -> dict:
    """Pick the positive-call threshold on validation predictions (a window is positive when p >= t).

    objective "mcc": maximise MCC (ties: the threshold nearest 0.5); "specificity": the
    lowest threshold whose specificity is >= ``target`` (the most sensitive one meeting it);
    "sensitivity": the highest threshold whose sensitivity is >= ``target``. Candidates are
    the midpoints between sorted distinct probabilities, plus one below and one above them
    all. When the validation split lacks a class the threshold falls back to 0.5 with a note.

    Returns threshold, objective, target, the validation metrics at it, n_val and note.
    """
    if objective not in OBJECTIVES:
        raise ConfigError(f"objective={objective!r} is not allowed; use one of {', '.join(OBJECTIVES)}.")
    if objective == "mcc":
        if target is not None:
            raise ConfigError(
                f"target={target!r} is only used with objective='specificity' or 'sensitivity'; MCC "
                "is maximised without a target."
            )
    elif isinstance(target, bool) or not isinstance(target, (int, float)) or not 0 < float(target) <= 1:
        raise ConfigError(
            f"objective={objective!r} needs a target {objective} above 0 and at most 1 (e.g. 0.9); got "
            f"target={target!r}."
        )
    y, p = _binary_inputs(y_val, p_val, "choose_threshold")
    n_pos, n_neg = int(y.sum()), int(len(y) - y.sum())
    note = None
    missing = []
    if objective in ("mcc", "sensitivity") and n_pos == 0:
        missing.append("positives")
    if objective in ("mcc", "specificity") and n_neg == 0:
        missing.append("negatives")
    if missing:
        threshold = FALLBACK_THRESHOLD
        note = (
            f"The validation split has no {' or '.join(missing)}, so the {objective} cannot be "
            f"measured; the threshold stays at {FALLBACK_THRESHOLD}. Use a validation split with both classes."
        )
    else:
        candidates = _candidates(p)
        pos = np.sort(p[y == 1])
        neg = np.sort(p[y == 0])
        tp = (n_pos - np.searchsorted(pos, candidates, side="left")).astype(float)
        tn = np.searchsorted(neg, candidates, side="left").astype(float)
        fn, fp = n_pos - tp, n_neg - tn
        if objective == "mcc":
            denom = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
            mcc = np.divide(tp * tn - fp * fn, denom, out=np.zeros(len(candidates)), where=denom > 0)
            best = np.flatnonzero(mcc >= mcc.max() - 1e-12)
            threshold = float(candidates[best[np.argmin(np.abs(candidates[best] - 0.5))]])
        elif objective == "specificity":
            # specificity never falls as the threshold rises; the top candidate reaches 1
            ok = np.flatnonzero(tn / n_neg >= float(target) - 1e-12)
            threshold = float(candidates[ok[0]])
        else:
            ok = np.flatnonzero(tp / n_pos >= float(target) - 1e-12)
            threshold = float(candidates[ok[-1]])
    metrics = binary_metrics(y, p, threshold)
    return {
        "threshold": threshold,
        "objective": objective,
        "target": None if target is None else float(target),
        "metrics": {k: (v if isinstance(v, int) else _num(v)) for k, v in metrics.items()},
        "n_val": int(len(y)),
        "note": note,
    }


def _candidates(p: np.ndarray) -> np.ndarray:
    """Midpoints between distinct probabilities, plus one below and one above them all."""
    values = np.unique(p)
    mids = values[:-1] + (values[1:] - values[:-1]) / 2
    # where two values are adjacent floats the midpoint may round onto the lower one
    mids = np.where(mids > values[:-1], mids, values[1:])
    low = values[0] / 2 if values[0] > 0 else 0.0
    high = (values[-1] + 1) / 2 if values[-1] < 1 else float(np.nextafter(values[-1], np.inf))
    return np.unique(np.concatenate([[low], mids, [high]]))


# --------------------------------------------------------------------------- temperature


def fit_temperature(logits_val: np.ndarray, y_val: Sequence[int]) -> float:
    """The temperature T > 0 minimising the validation NLL of softmax(logits / T).

    ``logits_val`` is (n, k) class logits, or (n,) logits of the positive class (binary).
    """
    z = _logit_matrix(logits_val)
    y = np.asarray(y_val).astype(np.int64)
    if len(y) != len(z) or len(y) == 0:
        raise DataError(f"fit_temperature needs one label per logit row; got {len(z)} rows and {len(y)} labels.")
    if y.min() < 0 or y.max() >= z.shape[1]:
        raise DataError(f"Labels must be class indices 0..{z.shape[1] - 1}; got values from {y.min()} to {y.max()}.")
    rows = np.arange(len(y))

    def nll(log_t: float) -> float:
        return float(-log_softmax(z / math.exp(log_t), axis=1)[rows, y].mean())

    result = minimize_scalar(nll, bounds=_LOG_T_BOUNDS, method="bounded", options={"xatol": 1e-6})
    return float(math.exp(result.x))


def apply_temperature(logits: np.ndarray, T: float) -> np.ndarray:
    """Calibrated probabilities: softmax(logits / T) for (n, k) logits, sigmoid(z / T) for (n,)."""
    if isinstance(T, bool) or not isinstance(T, (int, float, np.floating)) or not (0 < T < math.inf):
        raise ConfigError(f"The temperature must be a positive finite number; got {T!r}.")
    z = np.asarray(logits, dtype=float)
    if z.ndim == 1:
        return expit(z / T)
    if z.ndim != 2:
        raise DataError(f"logits must be (n,) or (n, classes); got shape {z.shape}.")
    return softmax(z / T, axis=1)


def _logit_matrix(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, dtype=float)
    if z.ndim == 1:
        # one positive-class logit: softmax over (0, z) is sigmoid(z)
        z = np.stack([np.zeros_like(z), z], axis=1)
    if z.ndim != 2 or not np.all(np.isfinite(z)):
        raise DataError(f"logits must be finite, shaped (n,) or (n, classes); got shape {np.shape(logits)}.")
    return z


# --------------------------------------------------------------------------- reliability


def reliability(y: Sequence[int], p: Sequence[float], n_bins: int = 10) -> dict:
    """Reliability diagram data: equal-width bins of the positive-class probability (JSON-ready).

    Bin i holds predictions in [edge_i, edge_i+1), the last bin also 1.0. Empty bins have
    None as mean prediction and observed fraction. Also the expected calibration error (ece).
    """
    if isinstance(n_bins, bool) or not isinstance(n_bins, int) or n_bins < 1:
        raise ConfigError(f"n_bins must be a positive integer; got {n_bins!r}.")
    y_arr, p_arr = _binary_inputs(y, p, "reliability")
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    index = np.digitize(p_arr, edges[1:-1])
    counts = np.bincount(index, minlength=n_bins)
    sum_p = np.bincount(index, weights=p_arr, minlength=n_bins)
    sum_y = np.bincount(index, weights=y_arr, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_p = sum_p / counts
        observed = sum_y / counts
    filled = counts > 0
    ece = float(np.sum(counts[filled] / len(p_arr) * np.abs(observed[filled] - mean_p[filled])))
    return {
        "edges": edges.tolist(),
        "mean_predicted": [float(v) if f else None for v, f in zip(mean_p, filled)],
        "observed_fraction": [float(v) if f else None for v, f in zip(observed, filled)],
        "counts": counts.astype(int).tolist(),
        "n": int(len(p_arr)),
        "ece": ece,
    }


def brier(y: Sequence[int], p: np.ndarray) -> float:
    """Brier score: mean squared error of the positive-class probability (for (n, k), summed over classes)."""
    P = np.asarray(p, dtype=float)
    if P.ndim == 2:
        labels = np.asarray(y).astype(np.int64)
        if len(labels) != len(P):
            raise DataError(f"brier needs one label per row; got {len(P)} rows and {len(labels)} labels.")
        return float(np.mean(((np.eye(P.shape[1])[labels] - P) ** 2).sum(1)))
    y_arr, p_arr = _binary_inputs(y, P, "brier")
    return float(np.mean((p_arr - y_arr) ** 2))


# --------------------------------------------------------------------------- helpers


def _binary_inputs(y: Sequence[int], p: Sequence[float], what: str) -> tuple[np.ndarray, np.ndarray]:
    y_arr = np.asarray(y)
    p_arr = np.asarray(p, dtype=float)
    if y_arr.ndim != 1 or p_arr.ndim != 1 or len(y_arr) != len(p_arr):
        raise DataError(
            f"{what} needs 0/1 labels and positive-class probabilities of equal length; got shapes "
            f"{y_arr.shape} and {p_arr.shape}."
        )
    if len(y_arr) == 0:
        raise DataError(f"{what} needs at least one prediction; the validation split is empty.")
    if not np.all(np.isin(y_arr, (0, 1))):
        raise DataError(f"{what} needs labels 0 (negative) and 1 (positive); got {sorted(set(y_arr.tolist()))[:5]}.")
    if not np.all(np.isfinite(p_arr)) or p_arr.min() < 0 or p_arr.max() > 1:
        raise DataError(f"{what} needs probabilities between 0 and 1; got values from {p_arr.min()} to {p_arr.max()}.")
    return y_arr.astype(np.int64), p_arr


def _num(value: Any) -> float | None:
    value = float(value)
    return None if math.isnan(value) else value
