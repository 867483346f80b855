"""Plotly figures for the app (no Streamlit here, so they can be tested and reused)."""

from __future__ import annotations

import html
import math

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from plmcore.metrics import METRIC_LABELS

TEMPLATE = "plotly_white"
PALETTE = px.colors.qualitative.Safe


def text(value) -> str:
    """User text (ids, class and model names) as plotly shows it literally: plotly reads a subset of
    HTML in titles, legends and axis labels, so '<' and '&' are written as entities."""
    return html.escape(str(value), quote=False)


def _layout(fig: go.Figure, title: str | None = None, height: int = 360) -> go.Figure:
    # legend under the plot, so it never runs into the title
    fig.update_layout(template=TEMPLATE, title=None if title is None else text(title), height=height, margin=dict(l=10, r=10, t=40 if title else 10, b=10),
                      legend=dict(orientation="h", yanchor="top", y=-0.18, x=0))
    return fig


# Training curves: Okabe-Ito colours with at least 3:1 contrast against white (WCAG 2.1 for graphics),
# blue for training and vermillion for validation, so the two never share a colour.
CURVE_COLORS = ("#0072B2", "#D55E00", "#007A5A", "#B3287F", "#5F5F5F")
TRAIN_COLOR, VAL_COLOR = CURVE_COLORS[0], CURVE_COLORS[1]


def contrast_ratio(color: str, background: str = "#FFFFFF") -> float:
    """WCAG contrast ratio of two '#RRGGBB' colours (1 to 21)."""
    def luminance(hex_color: str) -> float:
        rgb = [int(hex_color.lstrip("#")[i:i + 2], 16) / 255 for i in (0, 2, 4)]
        lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]

    hi, lo = sorted((luminance(color), luminance(background)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def smooth(values: list[float], weight: float) -> list[float]:
    """Exponential moving average (TensorBoard's smoothing): 0 keeps the values, 0.9 smooths strongly.
    Debiased, so the first points are not pulled towards zero."""
    out, avg = [], 0.0
    for i, v in enumerate(values, start=1):
        avg = weight * avg + (1 - weight) * v
        out.append(avg / (1 - weight**i) if weight else v)
    return out


def _epoch_axis(fig: go.Figure, x: str, epochs: int | None, last: float) -> None:
    """An epoch axis from 0 to the planned number of epochs, whole-number ticks, from the first point;
    a step axis in whole steps."""
    if x != "epoch":
        fig.update_xaxes(title="step", tickformat="d", rangemode="tozero")
        return
    end = max(epochs or 0, math.ceil(last) if last else 1, 1)
    dtick = next(d for d in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000) if end / d <= 12)
    fig.update_xaxes(title="epoch", range=[0, end], tick0=0, dtick=dtick, tickformat="d")


def loss_curves(runs: dict[str, list[dict]], x: str = "step", *, epochs: int | None = None,
                smoothing: float = 0.0) -> go.Figure:
    """Training and validation loss of one or more runs against step or epoch.

    One run: training in blue, validation in vermillion (dashed, with markers). Several runs: a colour
    per run, training solid and validation dashed. `smoothing` (0-0.95) draws the training loss
    smoothed, with the raw values faint behind it; `epochs` sets the epoch axis' extent from the start."""
    fig = go.Figure()
    last = 0.0
    for i, (name, records) in enumerate(runs.items()):
        single = len(runs) == 1
        color = TRAIN_COLOR if single else CURVE_COLORS[i % len(CURVE_COLORS)]
        val_color = VAL_COLOR if single else color
        prefix = "" if single else f"{text(name)}: "
        train = [r for r in records if r.get("kind") == "train" and r.get(x) is not None]
        evals = [r for r in records if r.get("kind") == "eval" and r.get("val_loss") is not None]
        last = max([last, *(r[x] for r in train + evals)])
        if train:
            xs, ys = [r[x] for r in train], [r["train_loss"] for r in train]
            if smoothing:
                fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line=dict(color=color, width=1), opacity=0.3,
                                         name=f"{prefix}training loss (raw)", showlegend=False, hoverinfo="skip"))
                ys = smooth(ys, smoothing)
            fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines+markers", marker=dict(size=4),
                                     name=f"{prefix}training loss" + (" (smoothed)" if smoothing else ""),
                                     line=dict(color=color, width=2)))
        if evals:
            fig.add_trace(go.Scatter(x=[r[x] for r in evals], y=[r["val_loss"] for r in evals],
                                     mode="lines+markers", marker=dict(size=8, symbol="diamond"),
                                     name=f"{prefix}validation loss", line=dict(color=val_color, dash="dash", width=2)))
    _epoch_axis(fig, x, epochs, last)
    fig.update_yaxes(title="loss", rangemode="tozero")
    return _layout(fig, "Loss")


def _metric_range(values: list[float], metrics) -> list[float] | None:
    """A y range fitted to the values, with some room, kept inside the metrics' bounds (-1..1 for MCC,
    0..1 for the others that are bounded); None for unbounded metrics (plotly fits those)."""
    if not values or set(metrics) & {"rmse", "mae"}:
        return None
    lo_bound = -1.0 if set(metrics) & {"mcc", "pearson", "spearman", "r2"} else 0.0
    lo, hi = min(values), max(values)
    pad = max(0.05, 0.15 * (hi - lo))
    return [max(lo_bound, lo - pad), min(1.0, hi + pad)]


def val_metric_curves(records: list[dict], metrics=("mcc", "roc_auc", "accuracy"), x: str = "step", *,
                      epochs: int | None = None) -> go.Figure:
    """Validation metrics after each epoch, on an axis fitted to their values."""
    evals = [r for r in records if r.get("kind") == "eval"]
    fig = go.Figure()
    values = []
    for i, m in enumerate(metrics):
        key = f"val_{m}"
        pts = [(r[x], r[key]) for r in evals if r.get(key) is not None and r.get(x) is not None]
        if pts:
            values += [p[1] for p in pts]
            fig.add_trace(go.Scatter(x=[p[0] for p in pts], y=[p[1] for p in pts], mode="lines+markers",
                                     marker=dict(size=8), name=METRIC_LABELS.get(m, m),
                                     line=dict(color=CURVE_COLORS[i % len(CURVE_COLORS)], width=2,
                                               dash=("solid", "dot", "dashdot", "longdash", "dash")[i % 5])))
    _epoch_axis(fig, x, epochs, max((r[x] for r in evals if r.get(x) is not None), default=0))
    fig.update_yaxes(title="validation metric", range=_metric_range(values, metrics))
    return _layout(fig, "Validation metrics")


def confusion(report: dict, title: str = "Confusion matrix") -> go.Figure:
    cm = np.array(report["confusion_matrix"])
    classes = report["classes"]
    fig = go.Figure(go.Heatmap(z=cm, x=[f"pred {text(c)}" for c in classes], y=[f"true {text(c)}" for c in classes],
                               colorscale="Blues", showscale=False, text=cm, texttemplate="%{text}",
                               textfont=dict(size=18)))
    fig.update_yaxes(autorange="reversed")
    return _layout(fig, title, height=320)


# the two curves of a binary test report: (x key, y key, score metric, its short name, axes, title)
_CURVES = {
    "roc": ("fpr", "tpr", "roc_auc", "AUC", "false positive rate (1 - specificity)",
            "true positive rate (sensitivity)", "ROC curve"),
    "pr": ("recall", "precision", "pr_auc", "AP", "recall (sensitivity)", "precision", "Precision-recall curve"),
}


def _curves(reports: dict[str, dict], kind: str) -> go.Figure:
    x_key, y_key, metric, short, x_title, y_title, title = _CURVES[kind]
    fig = go.Figure()
    if kind == "roc":  # the diagonal of a guess
        fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line=dict(color="lightgray", dash="dot"),
                                 showlegend=False, hoverinfo="skip"))
    for i, (name, rep) in enumerate(reports.items()):
        curve = (rep.get("curves") or {}).get(kind)
        if not curve:
            continue
        score = rep["metrics"].get(metric)
        fig.add_trace(go.Scatter(x=curve[x_key], y=curve[y_key], mode="lines", name=f"{text(name)} ({short} {score:.3f})",
                                 line=dict(color=PALETTE[i % len(PALETTE)]), line_shape="hv" if kind == "pr" else None))
    fig.update_xaxes(title=x_title, range=[0, 1])
    fig.update_yaxes(title=y_title, range=[0, 1.02])
    return _layout(fig, title)


def roc_curves(reports: dict[str, dict]) -> go.Figure:
    return _curves(reports, "roc")


def pr_curves(reports: dict[str, dict]) -> go.Figure:
    return _curves(reports, "pr")


CLASSIFICATION_SHOWN = ("mcc", "specificity", "sensitivity", "accuracy", "roc_auc", "pr_auc", "f1")


def metrics_table(reports: dict[str, dict], names=None) -> pd.DataFrame:
    """Rows: metrics (default: the classification metrics, or every metric of a regression or
    multi-label report); columns: one per report, 'value [lo, hi]'."""
    from plmcore.tasks import metric_words

    first = next(iter(reports.values()), {})
    if names is None:
        names = list(first["metrics"]) if first.get("task") in ("regression", "multilabel") else CLASSIFICATION_SHOWN
    rows = {}
    for name in names:
        row = {}
        for label, rep in reports.items():
            v = rep["metrics"].get(name)
            lo, hi = (rep.get("ci95") or {}).get(name) or (None, None)
            if v is None:
                row[label] = ""
            elif lo is None:
                row[label] = f"{v:.3f}"
            else:
                row[label] = f"{v:.3f}  [{lo:.3f}, {hi:.3f}]"
        rows[metric_words(name)] = row
    return pd.DataFrame(rows).T


def at_decision(report: dict) -> tuple[dict, str]:
    """A test report seen at the run's decision threshold (the one chosen on validation, which Predict
    uses), and words that name it: every table of a run's headline metrics shows this, so a number and
    its threshold always travel together. Returns (report with those metrics, e.g. 'at threshold 0.53,
    chosen on validation (best MCC on validation)')."""
    from plmcore.config import THRESHOLD_OBJECTIVES

    task = report.get("task", "classification")
    if task == "regression":
        return report, ""
    if task == "multilabel":
        return report, "at each label's threshold, chosen on validation"
    at = report.get("at_threshold")
    if not at:
        return dict(report, threshold=0.5), ("at threshold 0.50" if len(report.get("classes") or ()) == 2
                                             else "predicting the most probable class")
    objective = THRESHOLD_OBJECTIVES.get(at.get("objective"), at.get("objective") or "")
    view = dict(report, metrics=at["metrics"], ci95=at["ci95"], confusion_matrix=at["confusion_matrix"],
                threshold=at["threshold"])
    if at.get("objective") == "fixed" or abs(at["threshold"] - 0.5) < 1e-9 and not objective:
        return view, f"at threshold {at['threshold']:.2f}"
    return view, f"at threshold {at['threshold']:.2f}, chosen on validation ({objective})"


def predicted_vs_true(report: dict, title: str = "Predicted against true (test split)") -> go.Figure:
    """A regression report's test points, with the line of perfect prediction."""
    pts = report["points"]
    y, p = np.asarray(pts["true"]), np.asarray(pts["predicted"])
    lo, hi = float(min(y.min(), p.min())), float(max(y.max(), p.max()))
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", line=dict(color="#888", dash="dot"),
                             name="perfect prediction", hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=y, y=p, mode="markers", marker=dict(color=PALETTE[0], size=7, opacity=0.75),
                             name="test records", hovertemplate="true %{x:.3g}<br>predicted %{y:.3g}<extra></extra>"))
    fig.update_xaxes(title="true value")
    fig.update_yaxes(title="predicted value")
    return _layout(fig, title)


def residuals(report: dict, title: str = "Residuals (predicted − true)") -> go.Figure:
    """A regression report's residuals against the true value: bias and spread at a glance."""
    pts = report["points"]
    y, p = np.asarray(pts["true"]), np.asarray(pts["predicted"])
    fig = go.Figure(go.Scatter(x=y, y=p - y, mode="markers", marker=dict(color=PALETTE[1], size=7, opacity=0.75),
                               hovertemplate="true %{x:.3g}<br>residual %{y:.3g}<extra></extra>", name="residual"))
    fig.add_hline(y=0, line=dict(color="#888", dash="dot"))
    fig.update_xaxes(title="true value")
    fig.update_yaxes(title="residual")
    return _layout(fig, title)


def per_label(report: dict, metric: str = "roc_auc") -> go.Figure:
    """A multi-label report's metric per label, with 95% intervals."""
    from plmcore.tasks import metric_words

    names = list(report["per_label"])
    values = [report["per_label"][n]["metrics"].get(metric) for n in names]
    cis = [report["per_label"][n]["ci95"].get(metric) or (None, None) for n in names]
    lo = [v - c[0] if v is not None and c[0] is not None else 0 for v, c in zip(values, cis)]
    hi = [c[1] - v if v is not None and c[1] is not None else 0 for v, c in zip(values, cis)]
    fig = go.Figure(go.Bar(x=[text(n) for n in names], y=values, marker_color=PALETTE[0],
                           error_y=dict(type="data", symmetric=False, array=hi, arrayminus=lo),
                           hovertemplate="%{x}: %{y:.3f}<extra></extra>"))
    fig.update_yaxes(title=f"test {metric_words(metric)}", range=[0, 1.02])
    fig.update_xaxes(type="category")
    return _layout(fig, f"{metric_words(metric)} per label (95% intervals)")


def class_colors(labels) -> dict[str, str]:
    """One fixed colour per class, the same in every chart."""
    from plmcore.data import classes_of

    return {c: PALETTE[i % len(PALETTE)] for i, c in enumerate(classes_of(pd.Series(list(labels)).dropna().unique()))}


def class_balance(counts: pd.DataFrame) -> go.Figure:
    counts = counts.assign(label=counts["label"].map(text))
    fig = px.bar(counts, x="label", y="count", color="label", color_discrete_map=class_colors(counts["label"]),
                 text="count")
    fig.update_layout(showlegend=False)
    fig.update_xaxes(type="category")
    return _layout(fig, "Class balance", height=300)


def value_histogram(table: pd.DataFrame) -> go.Figure:
    """The distribution of a regression target."""
    values = pd.to_numeric(table["label"], errors="coerce").dropna()
    fig = go.Figure(go.Histogram(x=values, nbinsx=min(40, max(5, values.nunique())), marker_color=PALETTE[0]))
    fig.update_xaxes(title="target value")
    fig.update_yaxes(title="records")
    return _layout(fig, "Target values", height=300)


def length_histogram(table: pd.DataFrame) -> go.Figure:
    lengths = table["sequence"].str.len()
    df = pd.DataFrame({"length": lengths, "label": table["label"].fillna("(none)").map(text)})
    fig = px.histogram(df, x="length", color="label", barmode="overlay", nbins=min(60, max(5, lengths.nunique())),
                       color_discrete_map=class_colors(df["label"]))
    fig.update_xaxes(title="sequence length (residues)")
    return _layout(fig, "Length distribution", height=300)


def enrichment_heatmap(enrichment: pd.DataFrame, positive: str) -> go.Figure:
    limit = float(np.nanmax(np.abs(enrichment.to_numpy()))) or 1.0
    fig = go.Figure(go.Heatmap(
        z=enrichment.to_numpy(), x=[str(c) for c in enrichment.columns], y=list(enrichment.index),
        colorscale="RdBu_r", zmid=0, zmin=-limit, zmax=limit,
        colorbar=dict(title="log2<br>enrichment"),
        hovertemplate="position %{x}<br>residue %{y}<br>log2(pos/neg) %{z:.2f}<extra></extra>",
    ))
    fig.update_xaxes(title="position relative to the centre residue", type="category")
    fig.update_yaxes(title="residue", autorange="reversed")
    return _layout(fig, f"Residue enrichment in class '{positive}' vs the rest, per window position", height=520)


def projection(coords: np.ndarray, frame: pd.DataFrame, color: str, title: str) -> go.Figure:
    """Scatter of 2D or 3D coordinates; hover shows id and sequence."""
    df = frame.copy()
    for col in ("id", "label", "predicted"):
        if col in df.columns:
            df[col] = df[col].map(text)
    df["x"], df["y"] = coords[:, 0], coords[:, 1]
    hover = {"id": True, "sequence": True, "x": False, "y": False}
    for col in ("label", "split", "predicted", "error"):
        if col in df.columns:
            hover[col] = True
    df["sequence"] = df["sequence"].str.slice(0, 60)
    kw = dict(color=color if color in df.columns else None, hover_data=hover, color_discrete_sequence=PALETTE)
    numbers = pd.to_numeric(df[color], errors="coerce") if color in df.columns else None
    if numbers is not None and numbers.notna().all() and numbers.nunique() > 10:
        df[color] = numbers  # a regression target, an error, a count: a continuous colour scale
        kw["color_continuous_scale"] = "Viridis"
    elif color in ("label", "predicted"):
        kw["color_discrete_map"] = class_colors(pd.concat([df["label"], df.get("predicted", df["label"])]))
    if coords.shape[1] == 3:
        df["z"] = coords[:, 2]
        hover["z"] = False
        fig = px.scatter_3d(df, x="x", y="y", z="z", **kw)
        fig.update_traces(marker=dict(size=3))
    else:
        fig = px.scatter(df, x="x", y="y", **kw)
        fig.update_traces(marker=dict(size=7, opacity=0.8))
    fig.update_xaxes(showticklabels=False, title=None)
    fig.update_yaxes(showticklabels=False, title=None)
    return _layout(fig, title, height=480)


NOT_HELD_OUT = "used in training (not coloured)"


def projection_pair(panels: dict[str, np.ndarray], frame: pd.DataFrame, color: str, *, held_out_only: bool = False,
                    selected=None, title: str | None = None) -> go.Figure:
    """Side-by-side projections (e.g. before and after fine-tuning) of the same points in one figure: both
    coloured by the same column with one legend, each point carrying its id (customdata), so a selection in
    either panel is shown in both.

    Args:
        panels: {panel title: (n, 2) or (n, 3) coordinates}, rows in `frame`'s order.
        frame: id, sequence, label, split, held_out (bool) and optionally predicted, error.
        color: the column to colour by.
        held_out_only: colour only the points the model was not trained on; the others are grey.
        selected: ids to highlight in every panel (the rest fade); None or empty: no selection.
    """
    from plotly.subplots import make_subplots

    df = frame.reset_index(drop=True).copy()
    dims = next(iter(panels.values())).shape[1]
    kind = "scene" if dims == 3 else "xy"
    fig = make_subplots(rows=1, cols=len(panels), subplot_titles=[text(t) for t in panels],
                        horizontal_spacing=0.04, specs=[[{"type": kind}] * len(panels)])
    values = df[color] if color in df.columns else df["label"]
    numbers = pd.to_numeric(values, errors="coerce")
    continuous = bool(numbers.notna().all() and numbers.nunique() > 10)
    mask = df["held_out"].to_numpy(dtype=bool) if held_out_only and "held_out" in df else np.ones(len(df), bool)
    hover = "<b>%{customdata[0]}</b><br>label %{customdata[1]}<br>%{customdata[2]}"
    extra = [c for c in ("predicted", "error") if c in df.columns]
    for j, c in enumerate(extra):
        hover += f"<br>{c} %{{customdata[{3 + j}]}}"
    # the raw id last, for mapping a selection back to the points
    custom = np.column_stack([df["id"].map(text), df["label"].map(text), df["split"].map(text),
                              *[df[c].map(lambda v: f"{v:.3g}" if isinstance(v, float) else text(v)) for c in extra],
                              df["id"].astype(str)])
    chosen = set(map(str, selected or ()))
    if continuous:
        groups = [("", mask), (NOT_HELD_OUT, ~mask)]
    else:
        shown = values.where(mask, NOT_HELD_OUT).astype(str)
        cats = [c for c in class_colors(shown[mask]) if c != NOT_HELD_OUT] + ([NOT_HELD_OUT] if (~mask).any() else [])
        groups = [(c, (shown == c).to_numpy()) for c in cats]
    colors = class_colors([c for c, _ in groups if c not in ("", NOT_HELD_OUT)]) if not continuous else {}
    for col, coords in enumerate(panels.values(), start=1):
        for group, rows in groups:
            if not rows.any():
                continue
            idx = np.flatnonzero(rows)
            marker = dict(size=3 if dims == 3 else 7, opacity=0.85)
            if group == NOT_HELD_OUT:
                marker.update(color="#c8c8c8", opacity=0.5)
            elif continuous:
                marker.update(color=numbers.to_numpy()[idx], colorscale="Viridis", showscale=col == 1,
                              colorbar=dict(title=text(color), orientation="h", y=-0.15, len=0.5) if col == 1 else None,
                              cmin=float(numbers[mask].min()), cmax=float(numbers[mask].max()))
            else:
                marker.update(color=colors.get(group, PALETTE[0]))
            xyz = dict(x=coords[idx, 0], y=coords[idx, 1])
            common = dict(mode="markers", marker=marker, customdata=custom[idx], hovertemplate=hover + "<extra></extra>",
                          name=text(group or color), legendgroup=group or color,
                          showlegend=col == 1 and not (continuous and group == ""))
            if dims == 3:
                trace = go.Scatter3d(z=coords[idx, 2], **xyz, **common)
            else:
                trace = go.Scatter(**xyz, **common)
                if chosen:
                    trace.selectedpoints = [i for i, rid in enumerate(df["id"].astype(str).to_numpy()[idx])
                                            if rid in chosen]
                    trace.unselected = dict(marker=dict(opacity=0.12))
            fig.add_trace(trace, row=1, col=col)
    fig.update_xaxes(showticklabels=False, title=None, showgrid=False, zeroline=False)
    fig.update_yaxes(showticklabels=False, title=None, showgrid=False, zeroline=False)
    if dims == 3:
        fig.update_scenes(xaxis_showticklabels=False, yaxis_showticklabels=False, zaxis_showticklabels=False,
                          xaxis_title="", yaxis_title="", zaxis_title="")
    _layout(fig, title, height=540)
    fig.update_layout(margin=dict(l=10, r=10, t=80 if title else 30, b=10), title=dict(y=0.98, yanchor="top"),
                      legend=dict(title=text(color), orientation="h", yanchor="top", y=-0.04, x=0),
                      dragmode="lasso" if dims == 2 else None, clickmode="event+select", uirevision=color)
    return fig


def protein_scan(scan: pd.DataFrame, protein_id: str, length: int, threshold: float, *, top: int = 5,
                 title: str | None = None) -> go.Figure:
    """Probability at every candidate residue along one protein: a lollipop per site (each site is
    scored on its own, so no line joins them), the decision threshold, and the `top` best sites named."""
    rows = scan[scan["protein_id"] == protein_id].sort_values("position")
    above = rows["probability"] >= threshold
    stems_x, stems_y = [], []
    for x, y in zip(rows["position"], rows["probability"]):
        stems_x += [x, x, None]
        stems_y += [0, y, None]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=stems_x, y=stems_y, mode="lines", line=dict(color="#b0b0b0", width=1),
                             hoverinfo="skip", showlegend=False))
    for mask, name, color in ((~above, "below the threshold", "#2a6f97"), (above, "at or above", "#c0392b")):
        part = rows[mask.to_numpy()]
        fig.add_trace(go.Scatter(
            x=part["position"], y=part["probability"], mode="markers", marker=dict(color=color, size=9),
            text=[f"{r}{p}" for r, p in zip(part["residue"], part["position"])], name=name,
            hovertemplate="%{text}<br>p = %{y:.3f}<extra></extra>"))
    best = rows.nlargest(top, "probability")
    fig.add_trace(go.Scatter(x=best["position"], y=best["probability"], mode="text",
                             text=[f"{r}{p}" for r, p in zip(best["residue"], best["position"])],
                             textposition="top center", hoverinfo="skip", showlegend=False))
    fig.add_hline(y=threshold, line=dict(color="#c0392b", dash="dash"), annotation_text=f"threshold {threshold:.2f}")
    fig.update_xaxes(title="position in protein", range=[0, length + 1])
    fig.update_yaxes(title="probability", range=[0, 1.1])
    return _layout(fig, title or protein_id, height=320)


def board_metrics(board: pd.DataFrame) -> list[str]:
    """The metrics a leaderboard holds (each has _lo and _hi columns), in order."""
    return [c for c in board.columns if f"{c}_lo" in board.columns]


def leaderboard_table(board: pd.DataFrame) -> pd.DataFrame:
    """Leaderboard rows as 'value [lo, hi]' strings, for display."""
    from plmcore.tasks import metric_words

    out = pd.DataFrame({"model": board["model"]})
    for m in board_metrics(board):
        if m in board.columns:
            out[metric_words(m)] = [
                "" if pd.isna(v) else f"{v:.3f} [{lo:.3f}, {hi:.3f}]"
                for v, lo, hi in zip(board[m], board[f"{m}_lo"], board[f"{m}_hi"])
            ]
    return out


def interval_plot(board: pd.DataFrame, metric: str | None = None) -> go.Figure:
    """Each model's metric (default: the board's first) with its 95% interval, one row per model."""
    from plmcore.tasks import metric_words

    metric = metric or board_metrics(board)[0]
    b = board.iloc[::-1]
    fig = go.Figure(go.Scatter(
        x=b[metric], y=b["model"], mode="markers", marker=dict(size=11, color=PALETTE[0]),
        error_x=dict(type="data", symmetric=False, array=b[f"{metric}_hi"] - b[metric],
                     arrayminus=b[metric] - b[f"{metric}_lo"], thickness=2),
        hovertemplate="%{y}: %{x:.3f}<extra></extra>",
    ))
    fig.update_xaxes(title=f"test {metric_words(metric)} (95% bootstrap interval)")
    return _layout(fig, None, height=90 + 45 * len(b))


def reliability_diagram(calibration: dict) -> go.Figure:
    """Observed fraction of positives against mean predicted probability, per bin."""
    pred = calibration["mean_predicted"]
    obs = calibration["observed_fraction"]
    counts = calibration["counts"]
    keep = [i for i, c in enumerate(counts) if c]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line=dict(color="lightgray", dash="dot"),
                             name="perfectly calibrated"))
    fig.add_trace(go.Scatter(x=[pred[i] for i in keep], y=[obs[i] for i in keep], mode="lines+markers",
                             marker=dict(size=[6 + 2 * min(counts[i], 20) ** 0.5 * 2 for i in keep], color=PALETTE[0]),
                             text=[f"{counts[i]} windows" for i in keep], name="this run",
                             hovertemplate="predicted %{x:.2f}<br>observed %{y:.2f}<br>%{text}<extra></extra>"))
    fig.update_xaxes(title="mean predicted probability", range=[0, 1])
    fig.update_yaxes(title="observed fraction positive", range=[0, 1.02])
    return _layout(fig, f"Reliability (Brier {calibration.get('brier', float('nan')):.3f})")


def identity_histogram(leak: dict) -> go.Figure:
    """How similar each test item is to its closest training item."""
    values = [v["max_identity"] for v in leak["identity"].get("per_test") or [] if v.get("max_identity") is not None]
    fig = px.histogram(x=values, nbins=20, range_x=[0, 1], color_discrete_sequence=[PALETTE[0]])
    fig.update_xaxes(title="identity of each test item to its closest training item")
    fig.update_yaxes(title="test items")
    return _layout(fig, "Nearest-neighbour identity, test vs training", height=300)


def cv_folds(summary: dict, metric: str = "roc_auc") -> go.Figure:
    """Per-fold values and mean ± sd of one metric for each model."""
    fig = go.Figure()
    for i, (model, metrics) in enumerate(summary["summary"].items()):
        s = metrics[metric]
        vals = [v for v in s["folds"] if v is not None]
        fig.add_trace(go.Box(y=vals, name=model, boxpoints="all", jitter=0.3, pointpos=0,
                             marker=dict(color=PALETTE[i % len(PALETTE)]), line=dict(color=PALETTE[i % len(PALETTE)]),
                             boxmean="sd"))
    from plmcore.tasks import metric_words

    fig.update_yaxes(title=f"{metric_words(metric)} per fold")
    fig.update_layout(showlegend=False)
    return _layout(fig, f"Cross-validation: {metric_words(metric)} per fold")
