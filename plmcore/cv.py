"""k-fold cross-validation of the LoRA model and the baselines: the honest estimate on ~200 examples.

Folds are stratified by label and grouped by protein where the ids carry accessions, so no
protein is tested on a model that saw it. Each fold is an ordinary run directory
(`fold_1/`, `fold_2/`, ...) with its own validation split for early stopping, threshold and
the baselines' regularisation; the fold's held-out part is its test set.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd

from plmcore import splits as S
from plmcore import tasks
from plmcore.config import TrainConfig
from plmcore.errors import ConfigError, RunError
from plmcore.runs import Cancelled, RunDir, lifecycle, read_json_file, workspace, write_json
from plmcore.splits import cv_folds, protein_groups, split_grouped

log = logging.getLogger("plmcore.cv")

SUMMARY_METRICS = ("roc_auc", "mcc", "accuracy", "sensitivity", "specificity", "pr_auc")


class CVDir(RunDir):
    """A cross-validation directory: config.json, table.csv (the data), cv_settings.json (folds,
    grouping), status.json, train.log, cv.json (results so far) and one run directory per fold."""

    table_path = property(lambda self: self.path / "table.csv")
    settings_path = property(lambda self: self.path / "cv_settings.json")
    results_path = property(lambda self: self.path / "cv.json")

    def settings(self) -> dict:
        raw = read_json_file(self.settings_path, f"{self.name}/cv_settings.json")
        ok = isinstance(raw, dict) and isinstance(raw.get("folds"), int) and raw["folds"] >= 2 \
            and isinstance(raw.get("grouped"), bool)
        if not ok:
            raise RunError(f"Cross-validation {self.name} is damaged: cv_settings.json needs folds (>= 2) and "
                           "grouped (true/false). Delete it and start it again.")
        return raw

    def table(self) -> pd.DataFrame:
        return pd.read_csv(self.table_path, dtype=str, keep_default_na=False)

    def results(self) -> dict | None:
        """cv.json: per-fold and mean +- sd figures, or None before the first fold has finished."""
        return self.read_report("cv.json")

    def fold(self, i: int) -> RunDir:
        return RunDir(self.path / f"fold_{i}")


def cv_root(ws: Path | str | None = None) -> Path:
    """Where cross-validations are kept: `ws`/cv, by default in the CLI's workspace."""
    return Path(ws or workspace()) / "cv"


def create_cv(config: TrainConfig, table: pd.DataFrame, *, folds: int = 5, grouped: bool = True,
              cv_dir: Path | str | None = None, root: Path | str | None = None) -> RunDir:
    """Write a cross-validation directory (config, data, settings), ready for a worker."""
    from plmcore.runs import new_run_dir

    run = CVDir(cv_dir if cv_dir else new_run_dir(root or cv_root(), f"cv-{config.model}").path)
    run.path.mkdir(parents=True, exist_ok=True)
    config.save(run.config_path)
    table[[c for c in table.columns if c != "split"]].to_csv(run.table_path, index=False)
    write_json(run.settings_path, {"folds": folds, "grouped": grouped})
    run.write_status("queued", kind="cv", folds=folds, fold=0, created_at=time.time())
    return run


def fold_splits(table: pd.DataFrame, config: TrainConfig, folds: int, grouped: bool) -> tuple[list[pd.DataFrame], str]:
    """One split table per fold (train/val/test) and a description of how folds were made."""
    spec = config.data
    task = tasks.resolve(config.task, table["label"].tolist(), table["sequence"].tolist())
    grouped = grouped or task == "residue"  # a protein's residues never straddle folds
    strata = fold_strata(table, task)
    groups = protein_groups(table, spec.group_column) if grouped else None
    kind = "stratified" if task == "classification" else ("stratified by target quintile" if task == "regression"
                                                         else "not stratified")
    how = f"{kind}, grouped by protein" if grouped else kind
    try:
        pairs = cv_folds(table, folds, seed=spec.split_seed, groups=groups, strata=strata)
    except ConfigError:
        if not grouped:
            raise
        pairs = cv_folds(table, folds, seed=spec.split_seed, strata=strata)
        groups, how = None, f"{kind} (too few proteins to group by protein)"
    out = []
    for i, (rest_idx, test_idx) in enumerate(pairs):
        rest = table.iloc[rest_idx].reset_index(drop=True)
        val_fraction = spec.val_fraction or 0.1
        if groups is not None:
            inner = split_grouped(rest, np.asarray(groups)[rest_idx], val_fraction=val_fraction, test_fraction=0.0,
                                  seed=spec.split_seed + i, stratify=task == "classification")
        else:
            inner = S.split_table(rest, val_fraction=val_fraction, test_fraction=0.0, seed=spec.split_seed + i,
                                  stratify=task == "classification")
        test = table.iloc[test_idx].assign(split="test")
        out.append(pd.concat([inner, test], ignore_index=True))
    return out, how


def run_cv(cv_dir: Path | str, *, progress: bool = False, trust_remote_code: bool = False) -> dict:
    """Train every fold in turn (in this process), then summarise; SIGTERM cancels cleanly."""
    from plmcore.train import create_run, train_run

    cv = CVDir(cv_dir).require()
    t0 = time.time()
    with lifecycle(cv, kind="cv") as stop:
        # between folds this stop flag ends it; during a fold, the fold's own lifecycle stops the fold
        config, settings = cv.config(), cv.settings()
        splits, how = fold_splits(cv.table(), config, settings["folds"], settings["grouped"])
        log.info("Cross-validation: %d folds, %s", len(splits), how)
        results = []
        for i, split in enumerate(splits, start=1):
            fold = cv.fold(i)
            if fold.status_path.exists() and fold.status().get("state") == "finished":
                results.append(fold_result(fold))  # resumed CV: keep finished folds
                continue
            cv.write_status("running", fold=i, folds=len(splits), fold_run=str(fold.path), how=how)
            if not fold.exists():
                create_run(config, split=split, run_dir=fold.path, created_by="cv")
            # each fold is an ordinary run (its own log, checkpoints, SIGTERM handling)
            state = train_run(fold.path, resume=True, progress=progress, trust_remote_code=trust_remote_code)["state"]
            if state == "cancelled" or stop["flag"]:
                raise Cancelled()
            results.append(fold_result(fold))
            write_json(cv.results_path, summarise(results, how, settings))
        write_json(cv.results_path, summarise(results, how, settings))
        cv.write_status("finished", ended_at=time.time(), duration_s=round(time.time() - t0, 1))
        log.info("Cross-validation finished in %.0f s", time.time() - t0)
    return cv.read_status()


def fold_result(run: RunDir) -> dict:
    """Test metrics of the fine-tuned model and each baseline for one fold."""
    report = run.report()
    out = {"fold": run.name, "n_test": report["n"], "models": {"fine-tuned (LoRA)": report["metrics"]},
           "duration_s": run.status().get("duration_s"), "task": report.get("task", "classification")}
    baselines = run.read_report("baselines.json")
    if baselines:
        for name, entry in baselines["baselines"].items():
            out["models"][name] = entry["test"]["metrics"]
    return out


def fold_strata(table: pd.DataFrame, task: str) -> np.ndarray | None:
    """What folds are stratified by: the class, a regression target's quintile, or nothing."""
    if task == "classification":
        return None  # cv_folds stratifies by label
    if task == "regression":
        return S.target_quintiles(table["label"])
    return np.zeros(len(table), dtype=np.int64)


def summarise(results: list[dict], how: str, settings: dict) -> dict:
    """Mean, standard deviation and per-fold values of each metric for each model."""
    models = list(dict.fromkeys(m for r in results for m in r["models"]))
    task = results[0].get("task", "classification") if results else "classification"
    metrics = {"regression": tasks.REGRESSION_METRICS, "multilabel": tasks.MULTILABEL_METRICS[:4]}.get(
        task, SUMMARY_METRICS)
    summary = {}
    for model in models:
        summary[model] = {}
        for metric in metrics:
            values = [r["models"].get(model, {}).get(metric) for r in results]
            clean = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
            summary[model][metric] = {
                "mean": float(np.mean(clean)) if clean else None,
                "sd": float(np.std(clean, ddof=1)) if len(clean) > 1 else None,
                "folds": values,
            }
    return {"folds": settings["folds"], "how": how, "completed": len(results), "per_fold": results,
            "task": task, "metrics": list(metrics), "summary": summary}


def format_cv(summary: dict) -> str:
    shown = (summary.get("metrics") or ["roc_auc", "mcc", "accuracy"])[:3]
    lines = [f"Cross-validation: {summary['completed']}/{summary['folds']} folds, {summary['how']}",
             f"{'model':<30}" + "".join(f"{tasks.metric_words(m):>20}" for m in shown)]
    for model, metrics in summary["summary"].items():
        cells = []
        for m in shown:
            s = metrics[m]
            cells.append("" if s["mean"] is None else f"{s['mean']:.3f} ± {s['sd'] or 0:.3f}")
        lines.append(f"{model:<30}" + "".join(f"{c:>20}" for c in cells))
    first = shown[0]
    lines.append(f"per fold ({tasks.metric_words(first)}): " + "; ".join(
        f"{model}: " + ", ".join("–" if v is None else f"{v:.2f}" for v in metrics[first]["folds"])
        for model, metrics in summary["summary"].items()))
    return "\n".join(lines)
