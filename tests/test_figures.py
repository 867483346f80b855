"""The training curves: an epoch axis with whole-number ticks from the first logged step, colours that pass
WCAG's 3:1 against white and tell training from validation, smoothing, and a metric axis fitted to the data."""

from __future__ import annotations

import pytest

from plmcore import figures as F

FIRST_STEP = [{"kind": "train", "step": 1, "epoch": 0.0417, "train_loss": 0.69, "elapsed_s": 1.0}]


def records(epochs: int = 3, steps_per_epoch: int = 4) -> list[dict]:
    out = []
    for e in range(epochs):
        for s in range(1, steps_per_epoch + 1):
            step = e * steps_per_epoch + s
            out.append({"kind": "train", "step": step, "epoch": round(e + s / steps_per_epoch, 4),
                        "train_loss": 0.7 - 0.01 * step + (0.03 if s % 2 else 0)})
        out.append({"kind": "eval", "step": (e + 1) * steps_per_epoch, "epoch": e + 1, "val_loss": 0.65 - 0.02 * e,
                    "val_mcc": 0.30 + 0.05 * e, "val_roc_auc": 0.70 + 0.03 * e, "val_accuracy": 0.65 + 0.02 * e})
    return out


def test_the_epoch_axis_spans_the_planned_epochs_with_whole_ticks_from_the_first_step():
    fig = F.loss_curves({"run": FIRST_STEP}, x="epoch", epochs=10)
    axis = fig.layout.xaxis
    assert axis.title.text == "epoch"
    assert list(axis.range) == [0, 10]  # the whole run's width, not a half-width chart around one point
    assert axis.tick0 == 0 and axis.dtick == 1 and axis.tickformat == "d"  # ticks 0, 1, 2 … never 4.5
    trace = fig.data[0]
    assert "markers" in trace.mode and list(trace.x) == [0.0417]  # one point is visible
    many = F.loss_curves({"run": records()}, x="epoch", epochs=60).layout.xaxis
    assert many.dtick == 5 and float(many.dtick).is_integer()


def test_curve_colours_pass_3_to_1_and_training_differs_from_validation():
    assert F.contrast_ratio("#88CCEE") == pytest.approx(1.76, abs=0.01)  # the old train-loss colour failed
    for colour in F.CURVE_COLORS:
        assert F.contrast_ratio(colour) >= 3.0, colour
    fig = F.loss_curves({"run": records()}, x="epoch", epochs=3)
    train, val = fig.data
    assert train.name == "training loss" and val.name == "validation loss"
    assert train.line.color != val.line.color
    assert F.contrast_ratio(train.line.color) >= 3 and F.contrast_ratio(val.line.color) >= 3
    metrics = F.val_metric_curves(records(), x="epoch", epochs=3)
    assert len({t.line.color for t in metrics.data}) == 3
    assert all(F.contrast_ratio(t.line.color) >= 3 for t in metrics.data)
    several = F.loss_curves({"a": records(), "b": records()}, x="epoch")
    assert len({t.line.color for t in several.data}) == 2  # a colour per run, validation dashed
    assert all(F.contrast_ratio(t.line.color) >= 3 for t in several.data)


def test_smoothing_keeps_the_raw_values_faint_behind_the_smoothed_line():
    plain = F.loss_curves({"run": records()}, x="epoch")
    smoothed = F.loss_curves({"run": records()}, x="epoch", smoothing=0.8)
    raw, line = smoothed.data[0], smoothed.data[1]
    assert raw.opacity < 1 and list(raw.y) == list(plain.data[0].y)
    assert max(line.y) - min(line.y) < max(raw.y) - min(raw.y)  # the zigzag is evened out
    assert F.smooth([1.0, 1.0, 1.0], 0.9) == pytest.approx([1.0, 1.0, 1.0])  # debiased: no pull to 0


def test_the_metric_axis_fits_the_values_within_their_bounds():
    fig = F.val_metric_curves(records(), x="epoch", epochs=3)
    lo, hi = fig.layout.yaxis.range
    assert -1 < lo < 0.30 and 0.76 < hi <= 1.0 and hi - lo < 1.0  # not the whole -1…1
    assert fig.layout.xaxis.dtick == 1
    regression = F.val_metric_curves([{"kind": "eval", "epoch": 1, "val_rmse": 4.2}], metrics=("rmse",), x="epoch")
    assert regression.layout.yaxis.range is None  # unbounded: plotly fits it
