"""Thresholds meet their targets on validation; temperature scaling and reliability behave."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.special import log_softmax, softmax
from sklearn.metrics import brier_score_loss

from plmcore.calibration import (
    _candidates,
    apply_temperature,
    brier,
    choose_threshold,
    fit_temperature,
    reliability,
)
from plmcore.errors import ConfigError, DataError
from plmcore.metrics import binary_metrics

FAST = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def rates(y: np.ndarray, p: np.ndarray, t: float) -> tuple[float, float]:
    """(sensitivity, specificity) at threshold t, written out independently of plmcore."""
    pred = p >= t
    return float(np.mean(pred[y == 1])), float(np.mean(~pred[y == 0]))


def mcc(y: np.ndarray, p: np.ndarray, t: float) -> float:
    pred = p >= t
    tp, tn = float(np.sum(pred & (y == 1))), float(np.sum(~pred & (y == 0)))
    fp, fn = float(np.sum(pred & (y == 0))), float(np.sum(~pred & (y == 1)))
    denom = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return (tp * tn - fp * fn) / denom if denom else 0.0


def val_data(seed: int, n: int, separation: float, rounded: bool) -> tuple[np.ndarray, np.ndarray]:
    """Labels with both classes and probabilities that are informative to a degree."""
    rng = np.random.default_rng(seed)
    y = np.r_[0, 1, rng.integers(0, 2, n - 2)]
    p = np.clip(0.5 + separation * (y - 0.5) + rng.normal(0, 0.25, n), 0, 1)
    return y, (np.round(p, 1) if rounded else p)  # rounding makes ties


@FAST
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(4, 80),
    separation=st.floats(0, 0.8),
    rounded=st.booleans(),
    target=st.floats(0.05, 1.0),
)
def test_specificity_target_is_met_with_the_most_sensitive_threshold(
    seed: int, n: int, separation: float, rounded: bool, target: float
) -> None:
    y, p = val_data(seed, n, separation, rounded)
    result = choose_threshold(y, p, objective="specificity", target=target)
    t = result["threshold"]
    assert rates(y, p, t)[1] >= target - 1e-12
    assert result["metrics"]["specificity"] >= target - 1e-12
    lower = [c for c in _candidates(p) if c < t]
    if lower:  # the next lower threshold would miss the target, so no sensitivity is given away
        assert rates(y, p, max(lower))[1] < target


@FAST
@given(seed=st.integers(0, 10_000), n=st.integers(4, 80), rounded=st.booleans(), target=st.floats(0.05, 1.0))
def test_sensitivity_target_is_met_with_the_highest_threshold(seed: int, n: int, rounded: bool, target: float) -> None:
    y, p = val_data(seed, n, 0.4, rounded)
    t = choose_threshold(y, p, objective="sensitivity", target=target)["threshold"]
    assert rates(y, p, t)[0] >= target - 1e-12
    higher = [c for c in _candidates(p) if c > t]
    if higher:
        assert rates(y, p, min(higher))[0] < target


@FAST
@given(seed=st.integers(0, 10_000), n=st.integers(4, 80), separation=st.floats(0, 0.8), rounded=st.booleans())
def test_mcc_threshold_is_at_least_as_good_as_half_on_validation(
    seed: int, n: int, separation: float, rounded: bool
) -> None:
    y, p = val_data(seed, n, separation, rounded)
    result = choose_threshold(y, p, objective="mcc")
    assert result["metrics"]["mcc"] >= mcc(y, p, 0.5) - 1e-12
    assert result["metrics"]["mcc"] == pytest.approx(max(mcc(y, p, c) for c in _candidates(p)))
    assert result["objective"] == "mcc" and result["target"] is None


def test_threshold_result_is_json_ready_and_degenerate_cases_fall_back() -> None:
    y = np.array([0, 0, 1, 1, 1])
    p = np.array([0.1, 0.4, 0.35, 0.8, 0.9])
    result = choose_threshold(y, p, objective="specificity", target=1.0)
    assert result["threshold"] == pytest.approx(0.6)  # midpoint between 0.4 and 0.8
    assert result["metrics"]["sensitivity"] == pytest.approx(2 / 3)
    json.dumps(result, allow_nan=False)
    one_class = choose_threshold(np.ones(4, dtype=int), np.array([0.2, 0.4, 0.6, 0.8]), objective="mcc")
    assert one_class["threshold"] == 0.5 and "no negatives" in one_class["note"]
    constant = choose_threshold(y, np.full(5, 0.3), objective="specificity", target=0.9)
    assert binary_metrics(y, np.full(5, 0.3), constant["threshold"])["specificity"] == 1.0


def test_threshold_settings_are_checked() -> None:
    y, p = np.array([0, 1]), np.array([0.2, 0.7])
    with pytest.raises(ConfigError, match="objective='f1'"):
        choose_threshold(y, p, objective="f1")
    for bad in (0, 1.5, None, -0.1):
        with pytest.raises(ConfigError, match="needs a target specificity above 0 and at most 1"):
            choose_threshold(y, p, objective="specificity", target=bad)
    with pytest.raises(ConfigError, match="only used with"):
        choose_threshold(y, p, objective="mcc", target=0.9)
    with pytest.raises(DataError, match="between 0 and 1"):
        choose_threshold(y, np.array([0.2, 1.7]))
    with pytest.raises(DataError, match="labels 0"):
        choose_threshold(np.array([0, 2]), p)


# --------------------------------------------------------------------------- temperature


def nll(logits: np.ndarray, y: np.ndarray) -> float:
    return float(-log_softmax(logits, axis=1)[np.arange(len(y)), y].mean())


def test_temperature_scaling_repairs_overconfident_logits() -> None:
    rng = np.random.default_rng(0)
    true_logits = rng.normal(0, 1.5, size=(400, 3))
    y = np.array([rng.choice(3, p=row) for row in softmax(true_logits, axis=1)])
    overconfident = 4.0 * true_logits
    T = fit_temperature(overconfident, y)
    assert 2.5 < T < 6.0
    assert nll(overconfident / T, y) < nll(overconfident, y) - 0.2
    np.testing.assert_allclose(apply_temperature(overconfident, T), softmax(overconfident / T, axis=1))


def test_binary_logits_and_bad_temperatures() -> None:
    rng = np.random.default_rng(1)
    z = rng.normal(0, 2, 200)
    y = (rng.random(200) < 1 / (1 + np.exp(-z))).astype(int)
    T = fit_temperature(5 * z, y)
    assert T > 2.5
    two_column = apply_temperature(np.column_stack([np.zeros_like(z), 5 * z]), T)[:, 1]
    np.testing.assert_allclose(apply_temperature(5 * z, T), two_column)
    with pytest.raises(ConfigError, match="positive finite"):
        apply_temperature(z, 0.0)
    with pytest.raises(DataError, match="one label per logit row"):
        fit_temperature(z, y[:5])


# --------------------------------------------------------------------------- reliability


@FAST
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(1, 200),
    n_bins=st.integers(1, 20),
    edge_values=st.booleans(),
)
def test_reliability_bins_sum_to_n(seed: int, n: int, n_bins: int, edge_values: bool) -> None:
    rng = np.random.default_rng(seed)
    p = rng.random(n)
    if edge_values:
        p[: min(n, 3)] = [0.0, 1.0, 0.5][: min(n, 3)]
    y = (rng.random(n) < p).astype(int)
    result = reliability(y, p, n_bins=n_bins)
    assert sum(result["counts"]) == n == result["n"]
    assert len(result["edges"]) == n_bins + 1 and len(result["mean_predicted"]) == n_bins
    for lo, hi, mean, count in zip(
        result["edges"][:-1], result["edges"][1:], result["mean_predicted"], result["counts"]
    ):
        assert (mean is None) == (count == 0)
        if mean is not None:
            assert lo - 1e-12 <= mean <= hi + 1e-12
    json.dumps(result, allow_nan=False)


def test_reliability_of_a_calibrated_model_and_brier() -> None:
    y = np.array([0, 0, 0, 1, 1, 1, 1, 0])
    p = np.array([0.1, 0.1, 0.2, 0.9, 0.8, 1.0, 0.6, 0.3])
    result = reliability(y, p, n_bins=2)
    assert result["counts"] == [4, 4]
    assert result["observed_fraction"] == [0.0, 1.0]
    assert result["ece"] == pytest.approx(0.5 * 0.175 + 0.5 * 0.175)
    assert brier(y, p) == pytest.approx(brier_score_loss(y, p))
    P = np.column_stack([1 - p, p])
    assert brier(y, P) == pytest.approx(2 * brier_score_loss(y, p))
    with pytest.raises(ConfigError, match="n_bins"):
        reliability(y, p, n_bins=0)
