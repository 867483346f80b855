"""After training: can the result be trusted? Threshold, calibration, leakage, baselines, verdict.

Everything here uses the run's own split. Choices (decision threshold, temperature, the
baselines' regularisation, which baseline is "best") are made on the validation split only;
the test split is touched once, to report.

Files written into the run directory:
    threshold.json    chosen decision threshold (and temperature), with validation metrics
    test_report.json  test metrics at 0.5, plus at the chosen threshold, plus calibration
    leakage.json      proteins, overlapping windows and identity shared by train and test
    baselines.json    composition / one-hot / frozen-embedding logistic regressions
    comparison.json   paired bootstrap of the fine-tuned model against each baseline, verdict
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import pandas as pd

from plmcore import tasks
from plmcore.baselines import compare_task, compare_to_baselines, run_baselines, run_task_baselines
from plmcore.calibration import apply_temperature, choose_threshold, fit_temperature, reliability
from plmcore.leakage import leakage_report
from plmcore.metrics import evaluation_report
from plmcore.runs import RunDir, write_json

log = logging.getLogger("plmcore.assess")


def choose_decision(config, classes: list[str], positive: str | None, val_y: np.ndarray,
                    val_logits: np.ndarray | None) -> dict:
    """Temperature (optional) and decision threshold, both fitted on validation predictions."""
    out = {"threshold": 0.5, "objective": "fixed", "target": None, "temperature": None, "note": None}
    if val_logits is None or not len(val_y):
        out["note"] = "no validation split: threshold 0.5, no calibration"
        return out
    if config.temperature_scaling:
        out["temperature"] = fit_temperature(val_logits, val_y)
    probs = apply_temperature(val_logits, out["temperature"] or 1.0)
    if len(classes) != 2 or config.threshold_objective == "fixed":
        out["note"] = "multi-class: the most probable class is predicted" if len(classes) != 2 else None
        return out
    pos = classes.index(positive)
    choice = choose_threshold((val_y == pos).astype(int), probs[:, pos], objective=config.threshold_objective,
                              target=config.threshold_target)
    out.update(threshold=float(choice["threshold"]), objective=choice["objective"], target=choice.get("target"),
               val_metrics=choice.get("metrics"), note=choice.get("note"))
    return out


def test_report(y: np.ndarray, probs: np.ndarray, classes: list[str], positive: str | None, decision: dict,
                model: str, seed: int, units=None) -> dict:
    """Test metrics at 0.5 and at the chosen threshold, with intervals, curves and calibration.

    With `units` (per-residue tasks: the protein of each residue), intervals resample units.
    """
    report = evaluation_report(y, probs, classes, positive=positive, seed=seed, units=units)
    report["model"] = model
    if len(classes) == 2:
        pos = classes.index(positive)
        chosen = evaluation_report(y, probs, classes, positive=positive, threshold=decision["threshold"], seed=seed,
                                   units=units)
        report["at_threshold"] = {k: chosen[k] for k in ("threshold", "metrics", "ci95", "confusion_matrix")}
        report["at_threshold"]["objective"] = decision["objective"]
        report["calibration"] = reliability((y == pos).astype(int), probs[:, pos])
        report["calibration"]["brier"] = report["metrics"]["brier"]
        report["calibration"]["temperature"] = decision.get("temperature")
    return report


def assess(
    run: RunDir,
    config,
    table: pd.DataFrame,
    lab: tasks.Labelling,
    logits: dict[str, np.ndarray],
    labels: dict[str, np.ndarray],
    embed_fn: Callable[[list[str]], np.ndarray] | None = None,
    on_stage: Callable[[str], None] | None = None,
) -> dict:
    """Write threshold, test report, leakage, baselines and comparison; return a status summary.

    `logits` and `labels` per split (val, test) as the trainer holds them: per-residue tasks
    have one array per record.
    """
    stage = on_stage or (lambda s: None)
    if lab.task != "classification":
        return _assess_task(run, config, table, lab, logits, labels, embed_fn, stage)
    classes, positive = lab.classes, lab.positive
    decision = choose_decision(config, classes, positive, labels.get("val", np.zeros(0)), logits.get("val"))
    write_json(run.decision_path, decision)
    T = decision.get("temperature") or 1.0
    probs = {name: apply_temperature(lg, T) for name, lg in logits.items()}
    summary: dict = {"threshold": decision["threshold"]}
    for name, p in probs.items():
        rows = table[table["split"] == name]
        predictions_frame(lab, rows.reset_index(drop=True), labels[name], p, decision).to_csv(
            run.predictions_path(name), index=False)
    if "test" not in probs:
        return summary
    report = test_report(labels["test"], probs["test"], classes, positive, decision, config.model, config.seed)
    write_json(run.report_path, report)
    summary.update(test_mcc=report["metrics"]["mcc"], test_roc_auc=report["metrics"].get("roc_auc"),
                   test_accuracy=report["metrics"]["accuracy"])

    _leakage(run, config, table, summary, stage)

    if not config.baselines:
        return summary
    stage("fitting baselines on the same split")
    base = run_baselines(table, embed_fn=embed_fn, positive=positive, seed=config.seed)
    write_json(run.baselines_path, base)
    ids = table.loc[table["split"] == "test", "id"].tolist()
    by_id = {i: row.tolist() for i, row in zip(ids, probs["test"])}
    comparisons = compare_to_baselines(by_id, base, name="fine-tuned model",
                                       threshold=decision["threshold"] if len(classes) == 2 else 0.5,
                                       seed=config.seed)
    best, how = best_baseline(base)
    result = {"best_baseline": best, "best_chosen_by": how, "comparisons": comparisons,
              "verdict": comparisons[best]["verdict"] if best else None}
    write_json(run.comparison_path, result)
    summary["verdict"] = result["verdict"]
    log.info("Verdict: %s", result["verdict"])
    return summary


def _leakage(run: RunDir, config, table: pd.DataFrame, summary: dict, stage) -> None:
    """What the test split shares with everything the model or its choices saw (train and validation)."""
    stage("checking the split for leakage")
    train, test = table[table["split"] != "test"], table[table["split"] == "test"]
    try:
        leak = leakage_report(train, test, group_column=config.data.group_column,
                              test_file=bool(config.data.test or config.data.test_class_files),
                              grouped=config.data.split_method != "random")
        write_json(run.leakage_path, leak)
        summary["leaks"] = leak["leaks"]
        for w in leak["warnings"]:
            log.warning("Leakage: %s", w)
    except Exception as exc:  # noqa: BLE001 - an odd table must not cost the run its result
        log.warning("Leakage report skipped: %s", exc)


def _assess_task(run: RunDir, config, table: pd.DataFrame, lab: tasks.Labelling, logits: dict, labels: dict,
                 embed_fn, stage) -> dict:
    """assess() for regression, multi-label and per-residue tasks."""
    rows = {name: table[table["split"] == name].reset_index(drop=True) for name in logits}
    residue = lab.task == "residue"
    decision: dict = {"threshold": None, "objective": "none", "target": None, "temperature": None, "note": None}
    if residue:
        val = [tasks.flatten_residues(lab, labels["val"], logits["val"])] if "val" in logits else []
        decision = choose_decision(config, lab.classes, lab.positive, val[0][0] if val else np.zeros(0),
                                   val[0][1] if val else None)
        T = decision.get("temperature") or 1.0
        logits = {k: [v / T for v in lg] for k, lg in logits.items()}
    out = {name: tasks.outputs(lab, lg) for name, lg in logits.items()}
    if lab.task == "multilabel":
        objective = "fixed" if config.threshold_objective == "fixed" else "mcc"
        decision.update(objective=objective, thresholds=tasks.label_thresholds(
            labels["val"], out["val"], objective) if "val" in out else [0.5] * len(lab.classes),
            note="one threshold per label, chosen on validation" if "val" in out else "no validation split: 0.5")
    elif lab.task == "regression":
        decision["note"] = "regression: values are predicted, there is no decision threshold"
    write_json(run.decision_path, decision)
    for name in out:
        predictions_frame(lab, rows[name], labels[name], out[name], decision).to_csv(run.predictions_path(name),
                                                                                      index=False)
    summary: dict = {"threshold": decision.get("threshold")}
    if "test" not in out:
        return summary
    y, pred, units = _test_items(lab, labels["test"], out["test"])
    if lab.task == "regression":
        report = tasks.regression_report(y, pred, seed=config.seed)
    elif lab.task == "multilabel":
        report = tasks.multilabel_report(y, pred, lab.classes, decision["thresholds"], seed=config.seed)
    else:
        report = test_report(y, pred, lab.classes, lab.positive, decision, config.model, config.seed, units=units)
        report.update(task="residue", n_proteins=len(rows["test"]), residues=lab.residues)
        summary.update(test_mcc=report["metrics"]["mcc"], test_roc_auc=report["metrics"].get("roc_auc"))
    report["model"] = config.model
    write_json(run.report_path, report)
    key = "mcc" if lab.task == "residue" and len(lab.classes) > 2 else tasks.DECISION[lab.task]
    summary.update(test_metric_name=key, test_metric=report["metrics"].get(key))
    _leakage(run, config, table, summary, stage)
    if not config.baselines:
        return summary
    stage("fitting baselines on the same split")
    base = run_task_baselines(table, lab, embed_fn=embed_fn, seed=config.seed)
    write_json(run.baselines_path, base)
    comparisons = compare_task(lab, y, pred, base, units=units, thresholds=decision.get("thresholds") or
                               decision.get("threshold"), seed=config.seed)
    best, how = best_baseline(base)
    result = {"best_baseline": best, "best_chosen_by": how, "comparisons": comparisons,
              "verdict": comparisons[best]["verdict"] if best else None}
    write_json(run.comparison_path, result)
    summary["verdict"] = result["verdict"]
    log.info("Verdict: %s", result["verdict"])
    return summary


def _test_items(lab: tasks.Labelling, y, out):
    """The test items as the metrics see them: values in the target's units, label matrices, or the
    residues that are examples with the protein each belongs to."""
    if lab.task == "regression":
        return tasks.to_output(lab, np.asarray(y, dtype=float)), np.asarray(out), None
    if lab.task == "multilabel":
        return np.asarray(y), np.asarray(out), None
    return tasks.flatten_residues(lab, y, out)


def predictions_frame(lab: tasks.Labelling, rows: pd.DataFrame, y, out, decision: dict) -> pd.DataFrame:
    """Predictions beside the truth, one row per record (per residue, for per-residue tasks): the
    form of the run's val/test_predictions.csv, which report_from_predictions reads back."""
    if lab.task == "regression":
        return pd.DataFrame({"id": rows["id"], "sequence": rows["sequence"], "label": rows["label"],
                             "predicted": np.asarray(out)})
    if lab.task != "residue":
        P = np.asarray(out)
        df = pd.DataFrame({"id": rows["id"], "sequence": rows["sequence"],
                           "label": rows["label"] if lab.task == "multilabel" else [lab.classes[i] for i in y]})
        for j, c in enumerate(lab.classes):
            df[f"prob_{c}"] = P[:, j]
        if lab.task == "multilabel":
            th = decision["thresholds"]
            df["predicted"] = [tasks.SEPARATOR.join(c for j, c in enumerate(lab.classes) if row[j] >= th[j])
                               for row in P]
        else:
            df["predicted"] = [decide_class(lab, row, decision.get("threshold")) for row in P]
        return df
    records = []
    for i, (t, probs) in enumerate(zip(y, out)):
        seq = rows["sequence"][i]
        for p in np.flatnonzero(np.asarray(t) != tasks.IGNORE):
            records.append({"id": rows["id"][i], "position": int(p) + 1, "residue": seq[p],
                            "label": lab.classes[t[p]],
                            **{f"prob_{c}": float(probs[p, j]) for j, c in enumerate(lab.classes)},
                            "predicted": decide_class(lab, probs[p], decision.get("threshold"))})
    return pd.DataFrame(records, columns=["id", "position", "residue", "label",
                                          *(f"prob_{c}" for c in lab.classes), "predicted"])


def report_from_predictions(lab: tasks.Labelling, decision: dict, df: pd.DataFrame, *,
                            threshold: float | None = None, n_boot: int = 2000) -> dict:
    """A test report (with intervals) from a predictions table in the form of predictions_frame."""
    if lab.task == "regression":
        return tasks.regression_report(df["label"].astype(float), df["predicted"].astype(float), n_boot=n_boot)
    P = df[[f"prob_{c}" for c in lab.classes]].to_numpy(dtype=float)
    if lab.task == "multilabel":
        Y = tasks.targets(lab, df["label"].tolist())
        return tasks.multilabel_report(Y, P, lab.classes, decision.get("thresholds") or [0.5] * len(lab.classes),
                                       n_boot=n_boot)
    index = {c: i for i, c in enumerate(lab.classes)}
    y = np.array([index[str(v)] for v in df["label"]])
    t = threshold if threshold is not None else float(decision.get("threshold") or 0.5)
    report = evaluation_report(y, P, lab.classes, positive=lab.positive, threshold=t, n_boot=n_boot,
                               units=df["id"].to_numpy() if lab.task == "residue" else None)
    if lab.task == "residue":
        report.update(task="residue", n_proteins=int(df["id"].nunique()))
    return report


def decide_class(lab: tasks.Labelling, probs: np.ndarray, threshold: float | None) -> str:
    """The predicted class for one row of class probabilities: the threshold on the positive class
    for two classes, else the most probable class."""
    if len(lab.classes) == 2 and threshold is not None:
        pos = lab.positive_index
        return lab.classes[pos] if probs[pos] >= threshold else lab.classes[1 - pos]
    return lab.classes[int(np.argmax(probs))]


def best_baseline(base: dict) -> tuple[str | None, str]:
    """The baseline to beat, chosen on validation (never on test) by ROC-AUC, else MCC."""
    entries = base["baselines"]
    if not entries:
        return None, "no baselines"
    task = base.get("task", "classification")
    key = tasks.DECISION[task] if task in ("regression", "multilabel") or len(base["classes"]) == 2 else "mcc"

    def score(entry):
        v = (entry.get("val_metrics") or {}).get(key)
        return -np.inf if v is None or np.isnan(v) else v

    if all(score(e) == -np.inf for e in entries.values()):
        name = next(iter(entries))
        return name, "no validation split: the first baseline"
    name = max(entries, key=lambda n: score(entries[n]))
    return name, f"highest validation {tasks.metric_words(key)}"


def leaderboard_entries(run: RunDir) -> dict[str, dict]:
    """{model name: test evaluation report} for the fine-tuned model and the run's baselines."""
    entries = {}
    report = run.report()
    if report:
        entries["fine-tuned (LoRA)"] = report
    for name, entry in ((run.baselines() or {}).get("baselines") or {}).items():
        entries[name] = entry["test"]
    return entries


def format_assessment(run: RunDir) -> str:
    """Leaderboard with intervals, the verdict and the leakage warnings, as plain text."""
    from plmcore.baselines import leaderboard

    lines = []
    entries = leaderboard_entries(run)
    if len(entries) > 1:
        from plmcore.figures import board_metrics

        board = leaderboard(entries)
        shown = board_metrics(board)[:3]
        lines.append(f"Leaderboard on the same test split (n={board['n'].iloc[0]}), 95% bootstrap intervals:")
        lines.append(f"{'model':<30}" + "".join(f"{tasks.metric_words(m):>24}" for m in shown))
        for _, row in board.iterrows():
            cells = [f"{row[m]:.3f} [{row[m + '_lo']:.3f}, {row[m + '_hi']:.3f}]" for m in shown]
            lines.append(f"{row['model']:<30}" + "".join(f"{c:>24}" for c in cells))
    comparison = run.comparison()
    if comparison:
        if comparison.get("verdict"):
            lines.append(f"Verdict (against {comparison['best_baseline']}, chosen by {comparison['best_chosen_by']}):")
            lines.append(f"  {comparison['verdict']}")
    leak = run.leakage()
    if leak:
        lines.append("Leakage check of this split: " + ("problems found" if leak["leaks"] else "no leakage found"))
        lines += [f"  - {w}" for w in leak["warnings"]]
    return "\n".join(lines)


def split_fingerprint(run: RunDir) -> str | None:
    """Same value for runs trained and tested on the same split (ids, labels and split of each record)."""
    import hashlib

    if not run.split_path.exists():
        return None
    table = pd.read_csv(run.split_path, dtype=str, keep_default_na=False, usecols=["id", "label", "split"])
    rows = sorted(zip(table["id"], table["label"], table["split"]))
    return hashlib.sha256(repr(rows).encode()).hexdigest()[:16]


def split_leaderboard(run: RunDir, runs: list[RunDir]) -> dict[str, dict]:
    """Every finished run on the same split as `run`, plus `run`'s baselines: {name: test report}."""
    key = split_fingerprint(run)
    entries = {}
    for other in runs:
        if other.status().get("state") == "finished" and other.report() and split_fingerprint(other) == key:
            label = "fine-tuned (LoRA)" if other.path == run.path else f"fine-tuned: {other.name}"
            entries[label] = other.report()
    for name, report in leaderboard_entries(run).items():
        entries.setdefault(name, report)
    return entries
