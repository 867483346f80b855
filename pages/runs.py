"""Runs & evaluation: every run, one run's test metrics with intervals and curves, runs side by side."""

import pandas as pd
import streamlit as st

from plmcore import figures as F
from plmcore import hub, ui
from plmcore.archive import export_zip, import_zip
from plmcore.assess import split_leaderboard
from plmcore.baselines import leaderboard
from plmcore.cv import CVDir
from plmcore.provenance import describe
from plmcore.report import run_report
from plmcore.runs import ACTIVE_STATES, RunDir, delete_run, list_runs, rerun_command
from plmcore.tasks import metric_words

st.title("Runs & evaluation")


def runs_table(runs: list[RunDir]) -> None:
    """One row per run; a damaged run shows as such and does not stop the others."""
    rows = []
    for r in runs:
        s = r.summary()
        rows.append({
            "run": s["run"], "status": s["state"], "model": s["model"], "dataset": s["dataset"],
            "started": s["started"], "duration": ui.format_seconds(s["duration_s"]) if s["duration_s"] else "",
            "best validation": f"{s['best_metric'] or ''} {s['best_value']:.3f}" if s["best_value"] is not None else "",
            "test MCC": s["test_mcc"], "test ROC-AUC": s["test_roc_auc"],
        })
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch",
                 column_config={"test MCC": st.column_config.NumberColumn(format="%.3f"),
                                "test ROC-AUC": st.column_config.NumberColumn(format="%.3f")})


def damaged(run: RunDir, problem: str) -> None:
    """A run whose files do not validate: what is wrong, and a way to delete it."""
    st.error(ui.md(problem))
    delete_control(run)


def delete_control(run: RunDir) -> None:
    sure = st.checkbox(f"Yes, delete run {ui.md(run.name)} and all its files", key="runs_delete_ok")
    if st.button("Delete run", key="runs_delete", disabled=not sure):
        delete_run(run)
        st.success(f"Deleted {ui.md(run.name)}.")
        st.rerun()


def one_run(run: RunDir) -> None:
    problem = run.problem()
    if problem:
        damaged(run, problem)
        return
    status = run.status()
    if status.get("state") in ACTIVE_STATES:
        st.caption("This run is training: its live view is below. The test metrics, baselines and leakage report "
                   "appear here when it has finished.")
        ui.run_live(run, key="runs")
        return
    report = run.report()
    records = run.read_metrics()
    if status.get("state") == "failed":
        st.error(f"This run failed: {ui.md(status.get('error'))}")
    tabs = st.tabs(["Test metrics", "Baselines & verdict", "Leakage", "Calibration", "Curves", "Training",
                    "Configuration", "Files"])
    with tabs[1]:
        baselines_tab(run)
    with tabs[2]:
        leakage_tab(run)
    with tabs[3]:
        calibration_tab(run, report)
    tabs = [tabs[0], *tabs[4:]]
    with tabs[0]:
        if report is None:
            st.info(f"No test report: the run is {status.get('state')}"
                    + (" or has no test split." if status.get("state") == "finished" else "."))
        elif report.get("task") in ("regression", "multilabel"):
            task_metrics(run, report)
        else:
            shown = {"at 0.50": report}
            chosen = report.get("at_threshold")
            cm_source, cm_threshold = report, 0.5
            thresholds = "threshold 0.50"
            if chosen and abs(chosen["threshold"] - 0.5) > 1e-9:
                shown[f"at {chosen['threshold']:.2f} (chosen on validation, {chosen['objective']})"] = \
                    dict(chosen, n=report["n"])
                cm_source, cm_threshold = dict(chosen, classes=report["classes"]), chosen["threshold"]
                thresholds = f"thresholds 0.50 and {cm_threshold:.2f}"
            items = (f"{report['n']} test residues of {report['n_proteins']} proteins" if report.get("n_proteins")
                     else f"{report['n']} test sequences")
            resampled = "resamples of proteins" if report.get("n_proteins") else "resamples"
            st.markdown(f"**{items}**, metrics at the decision {thresholds}; brackets: 95% bootstrap confidence "
                        f"intervals ({report['n_boot']} {resampled}).")
            c1, c2 = st.columns([3, 2])
            c1.dataframe(F.metrics_table(shown), width="stretch")
            ui.chart(F.confusion(cm_source, f"Confusion matrix at {cm_threshold:.2f}"), where=c2, key="runs_cm")
            verdict = _verdict(run)
            if verdict:
                st.info(verdict)
    with tabs[1]:
        if report and report.get("curves"):
            c1, c2 = st.columns(2)
            ui.chart(F.roc_curves({run.name: report}), where=c1, key="runs_roc")
            ui.chart(F.pr_curves({run.name: report}), where=c2, key="runs_pr")
        else:
            st.info("Curves need a finished run with a binary test set.")
    with tabs[2]:
        if records:
            x = st.radio("x axis", ["step", "epoch"], horizontal=True, key="runs_x")
            ui.chart(F.loss_curves({run.name: records}, x=x), key="runs_loss")
            ui.chart(F.val_metric_curves(records, x=x), key="runs_valm")
        else:
            st.info("No metrics logged yet.")
    with tabs[3]:
        config = run.config()
        st.markdown("**Where this run came from**")
        st.dataframe(pd.DataFrame(describe(config.provenance), columns=["", "value"]), hide_index=True,
                     width="stretch")
        st.markdown("**Re-run it exactly** (same split, same settings, same losses on the same CPU thread count):")
        st.code(rerun_command(run), language="bash")
        st.caption("All settings")
        st.json({k: v for k, v in config.to_dict().items() if k != "provenance"}, expanded=1)
        if status:
            st.caption("Status")
            st.json(status, expanded=False)
    with tabs[4]:
        finished = status.get("state") == "finished"
        c = st.columns(3)
        c[0].download_button("Report for collaborators (.html)", data=lambda: run_report(run).encode(),
                             file_name=f"{run.name}-report.html", mime="text/html", key="runs_report",
                             disabled=not finished, icon=":material/description:",
                             help="one file that opens offline in any browser: the question, the metrics with "
                                  "intervals and the verdict, the evidence and how the run was made")
        c[1].download_button("Model for the Hugging Face Hub (.zip)", data=lambda: hub.export_zip(run),
                             file_name=f"{run.name}-model.zip", mime="application/zip", key="runs_hub",
                             disabled=not finished, icon=":material/deployed_code:",
                             help="PEFT adapter, head, plmcore.json and a model card; unzip and publish with "
                                  "`hf upload USER/NAME FOLDER`")
        c[2].download_button("Run archive for this app (.zip)", data=lambda: export_zip(run),
                             file_name=f"{run.name}.zip", mime="application/zip", key="runs_download",
                             icon=":material/archive:",
                             help="config, split, adapter, head, metrics, reports and predictions; another copy "
                                  "of this app imports it")
        st.caption("Command line: " + ui.md(f"python -m plmcore report {run.path} -o report.html") + " · "
                   + ui.md(f"python -m plmcore export {run.path} --format hub -o model_folder"))
        delete_control(run)


def task_metrics(run: RunDir, report: dict) -> None:
    """The test metrics of a regression or multi-label run, with their figures."""
    st.markdown(f"**{report['n']} test sequences**; brackets: 95% bootstrap confidence intervals "
                f"({report['n_boot']} resamples).")
    c1, c2 = st.columns([2, 3])
    c1.dataframe(F.metrics_table({"test": report}), width="stretch")
    if report["task"] == "regression":
        ui.chart(F.predicted_vs_true(report), where=c2, key="runs_scatter")
        ui.chart(F.residuals(report), key="runs_residuals")
    else:
        ui.chart(F.per_label(report), where=c2, key="runs_per_label")
        rows = [{"label": name, "positives in test": e["n_positive"], "threshold (from validation)": e["threshold"],
                 **{f"{k}": e["metrics"].get(k) for k in ("roc_auc", "pr_auc", "f1", "mcc")}}
                for name, e in report["per_label"].items()]
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch",
                     column_config={k: st.column_config.NumberColumn(format="%.3f")
                                    for k in ("threshold (from validation)", "roc_auc", "pr_auc", "f1", "mcc")})
    verdict = _verdict(run)
    if verdict:
        st.info(verdict)


def _verdict(run: RunDir) -> str | None:
    comparison = run.read_report("comparison.json")
    return ui.md(comparison["verdict"]) if comparison and comparison.get("verdict") else None


def baselines_tab(run: RunDir) -> None:
    entries = split_leaderboard(run, list_runs(ui.runs_root()))
    if len(entries) < 2:
        st.info("No baselines for this run (they are fitted when a run finishes with a test split; "
                "the 'Baselines' switch on the Train page turns them off).")
        return
    board = leaderboard(entries)
    st.markdown(f"**Leaderboard on this run's test split** (n = {int(board['n'].iloc[0])}): every model trained "
                "on the same split, with 95% bootstrap intervals. Baselines chose their regularisation on the "
                "validation split only.")
    st.dataframe(F.leaderboard_table(board), hide_index=True, width="stretch")
    ui.chart(F.interval_plot(board), key="runs_intervals")
    comparison = run.read_report("comparison.json")
    if comparison:
        st.markdown(f"**Paired comparison** on the same test items, against the best baseline "
                    f"(**{ui.md(comparison['best_baseline'])}**, {ui.md(comparison['best_chosen_by'])}):")
        st.info(ui.md(comparison["verdict"]))
        rows = []
        for name, c in comparison["comparisons"].items():
            for metric, m in list(c["metrics"].items())[:2]:
                lo, hi = m["ci95"]
                rows.append({"baseline": name, "metric": metric_words(metric),
                             "fine-tuned": m["a"], "baseline value": m["b"], "difference": m["difference"],
                             "95% CI of difference": "" if lo is None else f"[{lo:+.3f}, {hi:+.3f}]",
                             "resamples fine-tuned ahead": m["p_a_better"], "verdict": c["verdict"]})
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch",
                     column_config={k: st.column_config.NumberColumn(format="%.3f")
                                    for k in ("fine-tuned", "baseline value", "difference", "resamples fine-tuned ahead")})


def leakage_tab(run: RunDir) -> None:
    leak = run.read_report("leakage.json")
    if leak is None:
        st.info("No leakage report for this run (it needs a test split).")
        return
    ui.show_leakage(leak, detailed=True)


def calibration_tab(run: RunDir, report: dict | None) -> None:
    if not report or "calibration" not in report:
        st.info("Calibration needs a finished binary run with a test split.")
        return
    cal = report["calibration"]
    c1, c2 = st.columns([3, 2])
    ui.chart(F.reliability_diagram(cal), where=c1, key="runs_reliability")
    decision = run.read_report("threshold.json") or {}
    c2.metric("Brier score (test)", f"{cal['brier']:.3f}", help="mean squared error of the probabilities; lower is better")
    c2.metric("Expected calibration error", f"{cal.get('ece', float('nan')):.3f}")
    c2.metric("Decision threshold", f"{decision.get('threshold', 0.5):.3f}",
              help=f"chosen on the validation split ({decision.get('objective', 'fixed')}); the Predict page uses it")
    if decision.get("temperature"):
        c2.metric("Temperature (fitted on validation)", f"{decision['temperature']:.2f}")
    if decision.get("note"):
        c2.caption(ui.md(decision["note"]))


def cross_validation() -> None:
    cvs = [CVDir(r.path) for r in list_runs(ui.cv_root())]
    if not cvs:
        ui.empty_state("No cross-validation yet: start one on the Train page ('Cross-validate').", "train")
        return
    cv = ui.pick_run("Cross-validation", "runs_cv", runs=cvs)
    status = cv.status()
    frac = (status.get("fold") or 0) / max(status.get("folds") or 1, 1)
    st.progress(frac if status.get("state") != "finished" else 1.0,
                text=f"{status.get('state')}: fold {status.get('fold', 0)} of {status.get('folds', '?')}")
    summary = cv.results()
    if summary is None:
        st.caption("Results appear after the first fold.")
        return
    st.markdown(f"**{summary['completed']} of {summary['folds']} folds**, {ui.md(summary['how'])}. Mean ± standard "
                "deviation over folds; every model saw the same folds.")
    shown = summary.get("metrics") or ["roc_auc", "mcc", "accuracy", "sensitivity", "specificity"]
    rows = []
    for model, metrics in summary["summary"].items():
        row = {"model": model}
        for m in shown[:5]:
            s = metrics[m]
            row[metric_words(m)] = "" if s["mean"] is None else f"{s['mean']:.3f} ± {s['sd'] or 0:.3f}"
        rows.append(row)
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    ui.chart(F.cv_folds(summary, shown[0]), key="cv_box")
    per_fold = pd.DataFrame([{"fold": r["fold"], **{m: v.get(shown[0]) for m, v in r["models"].items()}}
                             for r in summary["per_fold"]])
    st.caption(f"{metric_words(shown[0])} per fold")
    st.dataframe(per_fold, hide_index=True, width="stretch")


def compare(runs: list[RunDir]) -> None:
    names = [r.name for r in runs]
    chosen = st.multiselect("Runs to compare", names, default=names[:2] if len(names) > 1 else names,
                            key="runs_compare")
    picked = [r for r in runs if r.name in chosen and r.problem() is None]
    reports = {r.name: r.report() for r in picked if r.report()}
    if reports:
        st.dataframe(F.metrics_table(reports), width="stretch")
        c1, c2 = st.columns(2)
        ui.chart(F.roc_curves(reports), where=c1, key="cmp_roc")
        ui.chart(F.pr_curves(reports), where=c2, key="cmp_pr")
    if picked:
        ui.chart(F.loss_curves({r.name: r.read_metrics() for r in picked}), key="cmp_loss")


def page() -> None:
    with st.expander("Import a run (.zip exported from this app)"):
        up = st.file_uploader("Run archive", type=["zip"], key="runs_import")
        if up is not None and st.button("Import", key="runs_import_go"):
            imported = import_zip(up.getvalue(), ui.runs_root())
            st.success(f"Imported as {ui.md(imported.run.name)}.")
            for note in imported.notes:
                st.info(ui.md(note))
    runs = list_runs(ui.runs_root())
    mode = st.radio("View", ["One run", "Compare runs", "Cross-validation"], horizontal=True, key="runs_mode")
    if mode == "Cross-validation":
        cross_validation()
        return
    if not runs:
        ui.empty_state("No runs yet: start one on the Train page.", "train")
        return
    runs_table(runs)
    if mode == "One run":
        run = ui.pick_run("Run", "runs_selected", runs=runs)
        ui.guard(lambda: one_run(run))
    else:
        compare(runs)


ui.guard(page)
