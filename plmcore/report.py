"""A one-file HTML report of a run, for collaborators who do not run the app.

The file is self-contained: plotly's JavaScript is inlined once, every figure is a div that uses
it, and nothing is fetched (no CDN, no fonts, no images), so it opens offline in any browser. In
this order it says:

1. the question: data set, task, classes or target, sizes per split;
2. the answer: test metrics with 95% intervals at the chosen threshold, and the verdict against
   the best baseline, in plain words;
3. the evidence: baselines, leakage (and what it means), curves, confusion matrix, calibration,
   training curves, and the test set's embeddings before and after fine-tuning when they are
   cached or quick to compute;
4. how it was made: model and revision, LoRA settings, trainable parameters, split and seeds,
   software, hardware, time, and the command that re-runs it.

A model with random weights is labelled so on the first screen. Several runs on one split give a
comparison, and a cross-validation directory its per-fold and mean +- sd figures.
"""

from __future__ import annotations

import html
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from plmcore import figures as F
from plmcore import tasks
from plmcore.errors import RunError
from plmcore.provenance import RANDOM_WEIGHTS_MARK, random_weights, with_random_mark
from plmcore.runs import RunDir, rerun_command

MAX_CURVE_POINTS = 400  # ROC/PR/calibration curves are thinned to this many points
EMBED_SECONDS = 60  # compute the embedding projection only when the estimate says it takes less on this machine


# --------------------------------------------------------------------------- the page


_CSS = """
body{font-family:-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;color:#1f2933;margin:0;background:#f7f8fa}
main{max-width:1080px;margin:0 auto;padding:24px 28px 60px;background:#fff}
h1{font-size:28px;margin:8px 0 4px}h2{font-size:21px;margin:34px 0 8px;border-bottom:2px solid #e4e7eb;padding-bottom:4px}
h3{font-size:16px;margin:20px 0 6px}p,li{line-height:1.5;font-size:15px}.muted{color:#616e7c;font-size:13px}
table{border-collapse:collapse;margin:8px 0 14px;font-size:14px}th,td{border-bottom:1px solid #e4e7eb;padding:5px 10px;
text-align:left;vertical-align:top}th{background:#f0f4f8;font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums}
.banner{background:#fde8e8;border:2px solid #c81e1e;color:#771d1d;padding:14px 18px;border-radius:6px;font-size:17px;
margin:14px 0}.verdict{background:#e8f1fb;border-left:5px solid #2a6f97;padding:10px 14px;margin:10px 0;font-size:16px}
.warn{background:#fff8e1;border-left:5px solid #b7791f;padding:8px 14px;margin:8px 0}.ok{background:#e6f6ec;
border-left:5px solid #2f855a;padding:8px 14px;margin:8px 0}.grid{display:grid;grid-template-columns:1fr 1fr;gap:10px}
code,pre{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:13px}pre{background:#f0f4f8;padding:10px;
overflow-x:auto;white-space:pre-wrap;word-break:break-all}@media(max-width:800px){.grid{grid-template-columns:1fr}}
"""


def _e(value) -> str:
    return html.escape(str(value))


def _num(value, digits: int = 3) -> str:
    return "–" if value is None or (isinstance(value, float) and np.isnan(value)) else f"{value:.{digits}f}"


def _table(rows: list[dict], numeric: tuple[str, ...] = ()) -> str:
    if not rows:
        return ""
    cols = list(rows[0])
    head = "".join(f"<th>{_e(c)}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td class='num'>{_e(r[c])}</td>" if c in numeric else f"<td>{_e(r[c])}</td>"
                                     for c in cols) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


class _Page:
    """HTML sections and figures; the figures share one inlined copy of plotly.js."""

    def __init__(self, title: str):
        self.title = title
        self.parts: list[str] = []
        self.n_figures = 0

    def add(self, text: str) -> None:
        self.parts.append(text)

    def figure(self, fig: go.Figure) -> str:
        self.n_figures += 1
        return fig.to_html(full_html=False, include_plotlyjs=False, div_id=f"fig{self.n_figures}",
                           config={"displaylogo": False, "responsive": True})

    def html(self) -> str:
        from plotly.offline import get_plotlyjs

        script = f"<script>{get_plotlyjs()}</script>" if self.n_figures else ""
        return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><meta name='viewport' "
                f"content='width=device-width,initial-scale=1'><title>{_e(self.title)}</title><style>{_CSS}</style>"
                f"{script}</head><body><main>{''.join(self.parts)}</main></body></html>")


# --------------------------------------------------------------------------- one run


def _thin(report: dict) -> dict:
    """The report with long curves thinned to MAX_CURVE_POINTS points (for the file's size)."""
    report = json.loads(json.dumps(report))
    for curve in (report.get("curves") or {}).values():
        n = len(next(iter(curve.values())))
        if n > MAX_CURVE_POINTS:
            keep = np.unique(np.linspace(0, n - 1, MAX_CURVE_POINTS).astype(int))
            for k, values in curve.items():
                curve[k] = [values[i] for i in keep]
    return report


def _question(page: _Page, run: RunDir, config, lab: tasks.Labelling) -> None:
    from plmcore.splits import load_split

    split = load_split(run.split_path)
    counts = split["split"].value_counts()
    page.add("<h2>1. The question</h2>")
    what = {"classification": f"which of the classes {', '.join(lab.classes)} a sequence belongs to",
            "regression": "a number for each sequence",
            "multilabel": f"which of the labels {', '.join(lab.classes)} apply to each sequence",
            "residue": f"a class ({', '.join(lab.classes)}) for "
                       + (f"each {lab.residues} residue" if lab.residues else "every residue") + " of whole proteins"}
    page.add(f"<p>Predict {_e(what[lab.task])}.</p>")
    data = config.data
    source = data.dataset or ", ".join(Path(p).name for p in data.train) or "the run's split.csv"
    rows = []
    for name, words in (("train", "training"), ("val", "validation"), ("test", "test")):
        part = split[split["split"] == name]
        row = {"split": words, "records": int(counts.get(name, 0))}
        if lab.task == "classification":
            row.update({f"class {c}": int((part["label"] == c).sum()) for c in lab.classes})
        elif lab.task == "regression":
            values = pd.to_numeric(part["label"], errors="coerce")
            row.update(range=f"{values.min():.3g} to {values.max():.3g}" if len(values) else "")
        elif lab.task == "multilabel":
            row.update({c: int(sum(c in tasks.split_labels(v) for v in part["label"])) for c in lab.classes})
        rows.append(row)
    page.add(f"<p>Data: <b>{_e(source)}</b>; task: <b>{_e(lab.task)}</b>.</p>" + _table(rows))


def _answer(page: _Page, run: RunDir, lab: tasks.Labelling, report: dict | None) -> None:
    page.add("<h2>2. The answer</h2>")
    if report is None:
        page.add("<p>The run has no test split, so there are no test metrics.</p>")
        return
    shown = report
    note = ""
    if report.get("at_threshold") and lab.binary:
        at = report["at_threshold"]
        shown = dict(report, metrics=at["metrics"], ci95=at["ci95"])
        note = f" at the decision threshold {at['threshold']:.2f}, chosen on the validation split ({_e(at['objective'])})"
    elif lab.binary:
        note = " at the decision threshold 0.50"
    items = (f"{report['n']} test residues of {report['n_proteins']} proteins" if report.get("n_proteins")
             else f"{report['n']} test sequences")
    names = list(shown["metrics"]) if lab.task in ("regression", "multilabel") else list(F.CLASSIFICATION_SHOWN)
    rows = [{"metric": tasks.metric_words(m), "value": _num(shown["metrics"].get(m)),
             "95% interval": " to ".join(_num(v) for v in (shown.get("ci95") or {}).get(m, (None, None)))}
            for m in names if m in shown["metrics"]]
    page.add(f"<p>{items}{note}; 95% bootstrap intervals ({report['n_boot']} resamples"
             f"{' of proteins' if report.get('n_proteins') else ''}).</p>" + _table(rows, ("value",)))
    comparison = run.comparison()
    if comparison and comparison.get("verdict"):
        page.add(f"<div class='verdict'><b>Verdict.</b> {_e(comparison['verdict'])}</div>")
    leak = run.leakage()
    if leak and leak.get("leaks"):
        po = leak["protein_overlap"]
        page.add(f"<div class='warn'><b>Leakage.</b> {po['n_test_items']} of {leak['n_test']} test items come from "
                 "proteins that are also in training: read the numbers above as optimistic (see section 3).</div>")


def _evidence(page: _Page, run: RunDir, lab: tasks.Labelling, report: dict | None, records: list[dict]) -> None:
    from plmcore.assess import split_leaderboard
    from plmcore.baselines import leaderboard

    page.add("<h2>3. The evidence</h2>")
    entries = split_leaderboard(run, [run])
    if len(entries) > 1:
        board = leaderboard(entries)
        page.add("<h3>Baselines on the same split</h3><p class='muted'>Every model scored on the same test items; "
                 "the baselines chose their regularisation on the validation split only.</p>")
        page.add(_table(F.leaderboard_table(board).to_dict("records")))
        page.add(page.figure(F.interval_plot(board)))
    leak = run.leakage()
    page.add("<h3>Leakage</h3>")
    if leak is None:
        page.add("<p>No leakage report (the run has no test split).</p>")
    elif leak.get("warnings"):
        page.add("<p>What the test split shares with training. A test item from a protein (or a stretch of "
                 "sequence) the model was trained on is partly remembered rather than predicted, so the scores "
                 "above overstate performance on new proteins.</p>")
        page.add("".join(f"<div class='warn'>{_e(w)}</div>" for w in leak["warnings"]))
    else:
        page.add("<div class='ok'>No test item shares a protein with, overlaps, or closely resembles a training "
                 "item.</div>")
    if report is not None:
        thin = _thin(report)
        if lab.task == "regression":
            page.add("<h3>Predicted against true</h3><div class='grid'>" + page.figure(F.predicted_vs_true(thin))
                     + page.figure(F.residuals(thin)) + "</div>")
        elif lab.task == "multilabel":
            page.add("<h3>Per label</h3>" + page.figure(F.per_label(thin)))
        else:
            if thin.get("curves"):
                page.add("<h3>ROC and precision-recall curves</h3><div class='grid'>"
                         + page.figure(F.roc_curves({"fine-tuned": thin})) + page.figure(F.pr_curves({"fine-tuned": thin}))
                         + "</div>")
            at = thin.get("at_threshold")
            source = dict(at, classes=thin["classes"]) if at else thin
            threshold = at["threshold"] if at else 0.5
            page.add("<h3>Confusion matrix</h3>" + page.figure(F.confusion(source, f"Confusion matrix at "
                                                                                     f"{threshold:.2f}")))
            if thin.get("calibration"):
                cal = thin["calibration"]
                page.add("<h3>Calibration</h3><p>Do the probabilities mean what they say? Brier score "
                         f"{_num(cal.get('brier'))}, expected calibration error {_num(cal.get('ece'))} (lower is "
                         "better).</p>" + page.figure(F.reliability_diagram(cal)))
    if records:
        shown = tasks.LIVE_METRICS[lab.task]
        page.add("<h3>Training</h3><div class='grid'>" + page.figure(F.loss_curves({run.name: records}, x="epoch"))
                 + (page.figure(F.val_metric_curves(records, metrics=shown, x="epoch"))
                    if any(r.get("kind") == "eval" for r in records) else "") + "</div>")
    _embeddings(page, run, lab)


def _embeddings(page: _Page, run: RunDir, lab: tasks.Labelling) -> None:
    """The test set's embeddings before and after fine-tuning (PCA), from the cache or computed if quick."""
    from plmcore.embed import EmbeddingCache, cache_key, model_identity, project
    from plmcore.splits import load_split

    split = load_split(run.split_path)
    test = split[split["split"] == "test"].reset_index(drop=True)
    page.add("<h3>Embeddings of the test set, before and after fine-tuning</h3>")
    if len(test) < 5 or lab.task == "residue":
        page.add("<p class='muted'>Not shown: " + ("too few test sequences." if len(test) < 5 else
                                                 "per-residue runs are judged residue by residue above.") + "</p>")
        return
    config = run.config()
    seqs = test["sequence"].tolist()
    caches = [EmbeddingCache(run.path.parent.parent / "cache" / "embeddings"), EmbeddingCache()]
    found = {}
    for name, source in (("base model", config.model), ("fine-tuned", str(run.path))):
        key = cache_key(model_identity(source, config.pooling), seqs)
        found[name] = next((X for c in caches if (X := c.get(key)) is not None), None)
    if any(X is None for X in found.values()):
        seconds = _embed_seconds(config.model, seqs)
        if seconds is None or seconds > EMBED_SECONDS:
            page.add("<p class='muted'>Not shown: the embeddings are not cached, and computing them here would take "
                     f"{'too long' if seconds is None else f'about {seconds:.0f} s'}. Open the run on the app's "
                     "Embeddings page once, then make the report again.</p>")
            return
        found = _compute_embeddings(run, seqs, config)
    colour = tasks.plot_labels(test["label"].tolist(), seqs)
    frame = test[["id", "sequence"]].assign(label=colour, split="test")
    figs = []
    for name, X in found.items():
        coords = project(X, "pca", 2)
        figs.append(page.figure(F.projection(coords, frame, "label", f"{name} · PCA")))
    page.add("<p class='muted'>First two principal components of the pooled embeddings, coloured by the label.</p>"
             "<div class='grid'>" + "".join(figs) + "</div>")


def _embed_seconds(model: str, sequences: list[str]) -> float | None:
    """About how long embedding these sequences twice takes here (None when it cannot be estimated)."""
    from plmcore.estimate import arch_for, forward_flops, measured_matmul_gflops

    arch = arch_for(model)
    if arch is None:
        return None
    tokens = sum(len(s) + 2 for s in sequences)
    # a forward pass reaches roughly a third of the matmul peak on this kind of batch (bench/README.md)
    return 2 * forward_flops(arch, tokens) / (measured_matmul_gflops() * 1e9 / 3)


def _compute_embeddings(run: RunDir, seqs: list[str], config) -> dict:
    from plmcore.embed import Embedder, EmbeddingCache, cached_embeddings, load_embedder
    from plmcore.predict import load_run

    cache = EmbeddingCache(run.path.parent.parent / "cache" / "embeddings")
    base, _ = cached_embeddings(config.model, seqs, pooling=config.pooling, cache=cache,
                                embedder_factory=lambda: load_embedder(config.model, pooling=config.pooling))
    tuned, _ = cached_embeddings(str(run.path), seqs, pooling=config.pooling, cache=cache,
                                 embedder_factory=lambda: Embedder.from_run(load_run(run), config.pooling))
    return {"base model": base, "fine-tuned": tuned}


def _how(page: _Page, run: RunDir, config, status: dict) -> None:
    prov = config.provenance or {}
    model = prov.get("model") or {}
    soft = prov.get("software") or {}
    page.add("<h2>4. How it was made</h2>")
    rows = [
        {"": "model", "value": f"{config.model} ({model.get('kind', '?')}"
                               + (f", revision {model['revision']}" if model.get("revision") else "")
                               + (f", folder SHA-256 {str(model.get('sha256'))[:16]}…" if model.get("sha256") else "")
                               + ")"},
        {"": "LoRA", "value": f"rank {config.lora_r}, alpha {config.lora_alpha:g}, dropout {config.lora_dropout:g}, "
                              f"targets {', '.join(config.lora_targets or ()) or 'the family defaults'}; pooling "
                              f"{config.pooling}"},
        {"": "trainable parameters", "value": f"{status.get('trainable_parameters', 0):,} of "
                                              f"{status.get('total_parameters', 0):,}"},
        {"": "training", "value": f"{config.epochs} epochs, learning rate {config.learning_rate:g}, batch "
                                  f"{config.batch_size} x {config.grad_accum}, {config.schedule} schedule, "
                                  f"early stopping on {tasks.metric_words(status.get('best_metric_name') or config.early_stopping_metric)}"},
        {"": "split", "value": f"{config.data.split_method}, validation {config.data.val_fraction:g}, split seed "
                               f"{config.data.split_seed}, training seed {config.seed}"},
        {"": "software", "value": ", ".join(f"{k} {v}" for k, v in soft.items() if k != "platform") or "not recorded"},
        {"": "hardware", "value": f"{status.get('device', '?')}, {prov.get('threads', '?')} CPU threads, "
                                  f"{(prov.get('host') or {}).get('cpus', '?')} CPUs; {soft.get('platform', '')}"},
        {"": "time", "value": f"{status.get('duration_s', 0):.0f} s, finished "
                              + time.strftime("%Y-%m-%d %H:%M", time.localtime(status.get("ended_at") or 0))},
    ]
    page.add(_table(rows) + f"<p>Re-run it exactly:</p><pre>{_e(rerun_command(run))}</pre>")


def _random_banner(model: str) -> str:
    return (f"<div class='banner'><b>{_e(RANDOM_WEIGHTS_MARK)}.</b> This run used "
            f"<code>{_e(model)}</code>, a model with random weights, built to try the tool and measure its speed. "
            "Its numbers say nothing about how a pretrained model would predict.</div>")


def run_report(run: RunDir) -> str:
    """The HTML report of one run."""
    run.require()
    status = run.status()
    if status.get("state") != "finished":
        raise RunError(f"run {run.name} is {status.get('state')}; a report needs a finished run")
    config = run.config()
    lab = tasks.Labelling.from_dict(run.labels())
    report = run.report()
    page = _Page(with_random_mark(f"{run.name}: report", run))
    page.add(f"<h1>{_e(with_random_mark(run.name, run))}</h1><p class='muted'>plmcore run report, made "
             f"{time.strftime('%Y-%m-%d %H:%M')}. Self-contained: it opens offline.</p>")
    if random_weights(run):
        page.add(_random_banner(config.model))
    _question(page, run, config, lab)
    _answer(page, run, lab, report)
    _evidence(page, run, lab, report, run.read_metrics())
    _how(page, run, config, status)
    return page.html()


# --------------------------------------------------------------------------- several runs, cross-validation


def comparison_report(runs: list[RunDir]) -> str:
    """Several runs side by side: test metrics with intervals, curves and training losses."""
    from plmcore.assess import split_fingerprint

    reports = {r.name: r.report() for r in runs}
    missing = [n for n, rep in reports.items() if rep is None]
    if missing:
        raise RunError(f"{', '.join(missing)} have no test report; compare finished runs with a test split")
    page = _Page("Runs compared")
    page.add("<h1>Runs compared</h1>")
    models = {r.name: r.config().model for r in runs}
    randoms = sorted({models[r.name] for r in runs if random_weights(r)})
    if randoms:
        page.add(_random_banner(", ".join(randoms)))
    same = len({split_fingerprint(r) for r in runs}) == 1
    page.add("<p>" + ("All runs were tested on the same split, so their numbers compare directly." if same else
                      "<b>The runs were tested on different splits</b>: their numbers do not compare directly.")
             + "</p>")
    rows = [{"run": r.name, "model": models[r.name], "task": (reports[r.name] or {}).get("task", "classification"),
             "pooling": r.config().pooling, "LoRA rank": r.config().lora_r, "epochs": r.config().epochs}
            for r in runs]
    page.add(_table(rows))
    table = F.metrics_table({n: _thin(rep) for n, rep in reports.items()})
    page.add("<h2>Test metrics (95% intervals)</h2>" + _table(table.reset_index(names="metric").to_dict("records")))
    thin = {n: _thin(rep) for n, rep in reports.items()}
    if all(rep.get("curves") for rep in thin.values()):
        page.add("<div class='grid'>" + page.figure(F.roc_curves(thin)) + page.figure(F.pr_curves(thin)) + "</div>")
    page.add("<h2>Training</h2>" + page.figure(F.loss_curves({r.name: r.read_metrics() for r in runs}, x="epoch")))
    for r in runs:
        page.add(f"<p class='muted'>{_e(r.name)}: <code>{_e(rerun_command(r))}</code></p>")
    return page.html()


def cv_report(cv_dir: Path) -> str:
    """A cross-validation: per-fold and mean +- sd figures for the fine-tuned model and the baselines."""
    from plmcore.cv import CVDir

    cv = CVDir(cv_dir).require()
    summary = cv.results()
    if summary is None:
        raise RunError(f"{cv.name} has no results yet; a report needs at least one finished fold")
    config = cv.config()
    page = _Page(f"{cv.name}: cross-validation")
    page.add(f"<h1>{_e(cv.name)}</h1><p class='muted'>Cross-validation report, made "
             f"{time.strftime('%Y-%m-%d %H:%M')}.</p>")
    if random_weights(config):
        page.add(_random_banner(config.model))
    shown = summary.get("metrics") or ["roc_auc", "mcc", "accuracy"]
    page.add(f"<h2>Mean ± standard deviation over {summary['completed']} of {summary['folds']} folds</h2>"
             f"<p>Folds {_e(summary['how'])}; every model saw the same folds.</p>")
    rows = [{"model": model, **{tasks.metric_words(m): (f"{s[m]['mean']:.3f} ± {s[m]['sd'] or 0:.3f}"
                                                       if s[m]["mean"] is not None else "–") for m in shown}}
            for model, s in summary["summary"].items()]
    page.add(_table(rows) + page.figure(F.cv_folds(summary, shown[0])))
    per_fold = [{"fold": r["fold"], "test items": r["n_test"],
                 **{m: _num(v.get(shown[0])) for m, v in r["models"].items()}} for r in summary["per_fold"]]
    page.add(f"<h2>{_e(tasks.metric_words(shown[0]))} per fold</h2>" + _table(per_fold))
    return page.html()


def write_report(paths: list[Path], out: Path) -> Path:
    """Write the report of one run, several runs, or a cross-validation directory to `out`."""
    from plmcore.cv import CVDir

    if len(paths) == 1 and CVDir(paths[0]).settings_path.exists():
        text = cv_report(paths[0])
    elif len(paths) == 1:
        text = run_report(RunDir(paths[0]))
    else:
        text = comparison_report([RunDir(p).require() for p in paths])
    out = Path(out)
    out.write_text(text, encoding="utf-8")
    return out
