"""Runs & evaluation: every run, one run's test metrics with intervals and curves, runs side by side."""

import pandas as pd
import streamlit as st

from plmcore import figures as F
from plmcore import hub, ui
from plmcore.archive import export_zip, import_zip
from plmcore.assess import split_leaderboard
from plmcore.baselines import leaderboard
from plmcore.compare import settings_diff
from plmcore.cv import CVDir
from plmcore.glossary import short
from plmcore.leakage import headline
from plmcore.provenance import RANDOM_WEIGHTS_MARK, RANDOM_WEIGHTS_WHY, describe, random_weights
from plmcore.report import run_report
from plmcore.runs import ABOUT_LIMITS, ACTIVE_STATES, RunDir, delete_run, list_runs, rerun_command
from plmcore.tasks import metric_words

st.title("Runs & evaluation")


KEY_COLUMNS = ["name", "test MCC", "test ROC-AUC", "weights", "leakage", "threshold", "status"]


def run_row(run: RunDir) -> dict:
    """One run in the table: its name first, then the headline test metrics at the run's own decision
    threshold (named in its column), the random-weight mark and leakage, and the rest."""
    s = run.summary()
    random = random_weights(run)
    row = {"name": ("⚠ " if random else "") + s["name"], "test MCC": None, "test ROC-AUC": s["test_roc_auc"],
           "weights": "⚠ random" if random else "pretrained", "leakage": "", "threshold": None,
           "status": s["state"], "tags": ", ".join(s["tags"]), "model": s["model"], "dataset": s["dataset"],
           "started": s["started"],
           "duration": ui.format_seconds(s["duration_s"]) if s["duration_s"] else "",
           "best validation": (f"{short(s['best_metric'] or '')} {s['best_value']:.3f}"
                               if s["best_value"] is not None else ""),
           "folder": s["run"]}
    if s["state"] == "finished" and run.problem() is None:
        report = run.report()
        if report and report.get("task", "classification") == "classification":
            view, _ = F.at_decision(report)
            row["test MCC"], row["threshold"] = view["metrics"].get("mcc"), view.get("threshold")
            row["test ROC-AUC"] = view["metrics"].get("roc_auc")
        row["leakage"] = headline(run.leakage()) or ""
    return row


def runs_table(runs: list[RunDir]) -> None:
    """One row per run, told apart by name; a damaged run shows as such and does not stop the others.
    The name column is pinned and the test metrics come right after it, so a phone shows what matters;
    the other columns are one click away."""
    every = st.toggle("All columns", key="runs_all_columns",
                      help="also tags, model, dataset, start, duration, best validation value and folder")
    rows = pd.DataFrame([run_row(r) for r in runs])
    st.dataframe(
        rows if every else rows[KEY_COLUMNS], hide_index=True, width="stretch", key="runs_table",
        column_config={
            "name": st.column_config.TextColumn("name", pinned=True, width=170,
                                                help="the run's name (rename it below); ⚠: random weights"),
            "weights": st.column_config.TextColumn(
                "weights", help=RANDOM_WEIGHTS_WHY.replace("This model", "A random-weight model")),
            "test MCC": st.column_config.NumberColumn(
                "test MCC", format="%.3f",
                help=(ui.metric_help("mcc") or "") + " On the test split, at the run's decision threshold "
                     "(the threshold column), chosen on validation; Predict uses the same threshold."),
            "threshold": st.column_config.NumberColumn(
                "threshold", format="%.2f",
                help="the decision threshold the test MCC is measured at, chosen on the validation split"),
            "test ROC-AUC": st.column_config.NumberColumn(
                "test ROC-AUC", format="%.3f",
                help=(ui.metric_help("roc_auc") or "") + " Does not depend on the threshold."),
            "leakage": st.column_config.TextColumn(
                "leakage", help="what the test split shares with training: read the test metrics of a run "
                                "flagged here as optimistic"),
            "best validation": st.column_config.TextColumn(
                "best validation", help="the early-stopping metric's best value on the validation split"),
        })


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


def about_editor(run: RunDir) -> None:
    """Rename the run, tag it and keep notes (about.json); the name then shows in every list and title."""
    about = run.about()
    with st.popover("Rename, tag", icon=":material/edit:", width="stretch",
                    help="give this run a name, tags and notes"):
        with st.form(f"runs_about_{run.name}", border=False):
            name = st.text_input("Name", value=about["name"], max_chars=ABOUT_LIMITS["name"],
                                 placeholder=run.name, key=f"runs_name_{run.name}",
                                 help="what to call this run, e.g. 'centre pooling, r=8'; empty: its folder name")
            tags = st.multiselect("Tags", sorted({t for r in list_runs(ui.runs_root()) for t in r.about()["tags"]}
                                                 | set(about["tags"])),
                                  default=about["tags"], accept_new_options=True, key=f"runs_tags_{run.name}",
                                  max_selections=ABOUT_LIMITS["tags"],
                                  help="type a new tag and press Enter; tags group runs in the table")
            notes = st.text_area("Notes", value=about["notes"], max_chars=ABOUT_LIMITS["notes"],
                                 key=f"runs_notes_{run.name}")
            if st.form_submit_button("Save", key=f"runs_about_save_{run.name}", type="primary"):
                run.set_about(name=name, tags=tags, notes=notes)
                st.rerun()


def heading(run: RunDir) -> None:
    """The run's name with its badges (random weights, leakage) and tags, and how to rename it."""
    about = run.about()
    c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
    c1.subheader(ui.md(run.title), anchor=False)
    with c2:
        about_editor(run)
    badges = st.container(horizontal=True)
    ui.random_badge(run, where=badges)
    for tag in about["tags"]:
        badges.badge(tag, icon=":material/sell:", color="blue")
    s = run.summary()
    st.caption(ui.md(f"folder {run.name} · {s['model']} · {s['dataset']} · started {s['started'] or '—'}"))
    if about["notes"]:
        st.caption(ui.md(about["notes"]))


def headline_metrics(run: RunDir, view: dict, threshold_words: str) -> None:
    """The two numbers a collaborator asks for first, named in words, with the leakage badge beside them."""
    m, ci = view["metrics"], view.get("ci95") or {}
    row = st.container(horizontal=True, vertical_alignment="center")
    for metric in ("mcc", "roc_auc"):
        if m.get(metric) is None:
            continue
        lo, hi = ci.get(metric) or (None, None)
        label = f"Test {short(metric)}" + (f" {threshold_words.split(',')[0]}" if metric == "mcc" else "")
        tip = (ui.metric_help(metric) or "") + (f" Measured {threshold_words}." if metric == "mcc" else
                                                " It does not depend on the threshold.")
        row.metric(label, f"{m[metric]:.3f}", help=tip, width="content",
                   delta=f"95% interval {lo:.3f} to {hi:.3f}" if lo is not None else None, delta_color="off",
                   delta_arrow="off")
    ui.leakage_badge(run, where=row)


def one_run(run: RunDir) -> None:
    problem = run.problem()
    if problem:
        damaged(run, problem)
        return
    heading(run)
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
            view, words = F.at_decision(report)
            headline_metrics(run, view, words)
            shown = {words.replace("at threshold", "at", 1): view}
            if abs(view["threshold"] - 0.5) > 1e-9:
                shown["at 0.50 (for comparison)"] = report
            items = (f"{report['n']} test residues of {report['n_proteins']} proteins" if report.get("n_proteins")
                     else f"{report['n']} test sequences")
            resampled = "resamples of proteins" if report.get("n_proteins") else "resamples"
            st.markdown(f"**{items}**, metrics {words}; brackets: 95% bootstrap confidence intervals "
                        f"({report['n_boot']} {resampled}). ROC-AUC and PR-AUC do not depend on the threshold.")
            c1, c2 = st.columns([3, 2])
            c1.dataframe(F.metrics_table(shown), width="stretch")
            ui.glossary([*F.CLASSIFICATION_SHOWN, "brier"])
            ui.chart(F.confusion(view, f"Confusion matrix at threshold {view['threshold']:.2f}"), where=c2,
                     key="runs_cm")
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
    _, words = F.at_decision(report)
    st.markdown(f"**{report['n']} test sequences**{', metrics ' + words if words else ''}; brackets: 95% bootstrap "
                f"confidence intervals ({report['n_boot']} resamples).")
    c1, c2 = st.columns([2, 3])
    c1.dataframe(F.metrics_table({"test": report}), width="stretch")
    ui.glossary(report["metrics"])
    if report["task"] == "regression":
        ui.chart(F.predicted_vs_true(report), where=c2, key="runs_scatter")
        ui.chart(F.residuals(report), key="runs_residuals")
    else:
        ui.chart(F.per_label(report), where=c2, key="runs_per_label")
        per = ("roc_auc", "pr_auc", "f1", "mcc")
        rows = [{"label": name, "positives in test": e["n_positive"], "threshold (from validation)": e["threshold"],
                 **{short(k): e["metrics"].get(k) for k in per}}
                for name, e in report["per_label"].items()]
        st.caption("Per label, F1 and MCC at that label's threshold, chosen on validation (the threshold column).")
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch",
                     column_config={"threshold (from validation)": st.column_config.NumberColumn(format="%.2f"),
                                    **{short(k): st.column_config.NumberColumn(format="%.3f", help=ui.metric_help(k))
                                       for k in per}})
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
                "validation split only. MCC, accuracy, sensitivity and specificity are **at threshold 0.50 for "
                "every model**, so the models are compared alike (the baselines have no threshold chosen on "
                "validation; the Test metrics tab shows this run at its own). ROC-AUC and PR-AUC do not depend on "
                "the threshold.")
    st.dataframe(F.leaderboard_table(board), hide_index=True, width="stretch",
                 column_config={short(m): st.column_config.TextColumn(help=ui.metric_help(m))
                                for m in F.board_metrics(board)})
    ui.chart(F.interval_plot(board), key="runs_intervals")
    comparison = run.read_report("comparison.json")
    if comparison:
        threshold = run.decision().get("threshold", 0.5)  # None for regression and multi-label runs
        at = ("" if threshold is None else
              f"; threshold-dependent metrics at threshold {threshold:.2f} for both models")
        st.markdown(f"**Paired comparison** on the same test items, against the best baseline "
                    f"(**{ui.md(comparison['best_baseline'])}**, {ui.md(comparison['best_chosen_by'])}){at}:")
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
    c2.metric("Brier score (test)", f"{cal['brier']:.3f}", help=ui.metric_help("brier"))
    c2.metric("Expected calibration error (test)", f"{cal.get('ece', float('nan')):.3f}", help=ui.metric_help("ece"))
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
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch",
                 column_config={metric_words(m): st.column_config.TextColumn(help=ui.metric_help(m))
                                for m in shown[:5]})
    ui.chart(F.cv_folds(summary, shown[0]), key="cv_box")
    per_fold = pd.DataFrame([{"fold": r["fold"], **{m: v.get(shown[0]) for m, v in r["models"].items()}}
                             for r in summary["per_fold"]])
    st.caption(f"{metric_words(shown[0])} per fold")
    st.dataframe(per_fold, hide_index=True, width="stretch")


def compare(runs: list[RunDir]) -> None:
    """Chosen runs side by side: their test metrics first (each at its own decision threshold, named),
    then the settings that differ between them, in words, then their curves."""
    usable = [r for r in runs if r.problem() is None]
    titles = {r.name: ("⚠ " if random_weights(r) else "") + r.title for r in usable}
    chosen = st.multiselect("Runs to compare", list(titles), default=list(titles)[:2], key="runs_compare",
                            format_func=titles.get)
    picked = [r for r in usable if r.name in chosen]
    if not picked:
        st.info("Choose two or more runs to compare.")
        return
    reports, thresholds = {}, {}
    for r in picked:
        report = r.report()
        if report:
            reports[titles[r.name]], said = F.at_decision(report)
            thresholds[titles[r.name]] = said.removeprefix("at threshold ")
    st.markdown("**Test metrics**")
    marks = st.container(horizontal=True)
    for r in picked:
        if random_weights(r):
            marks.badge(f"{r.title}: {RANDOM_WEIGHTS_MARK}", color="red",
                        help=RANDOM_WEIGHTS_WHY)
        text = headline(r.leakage())
        if text:
            marks.badge(f"{r.title}: {text}", color="orange")
    if reports:
        st.caption("Each run at its own decision threshold (the first row), chosen on its validation split, as on "
                   "its own page and in Predict. Brackets: 95% bootstrap intervals. ROC-AUC and PR-AUC do not "
                   "depend on the threshold.")
        table = F.metrics_table(reports)
        if any(thresholds.values()):
            table = pd.concat([pd.DataFrame([thresholds], index=["decision threshold"]), table])
        st.dataframe(table, width="stretch")
        first = next(iter(reports.values()))
        ui.glossary(list(first["metrics"]) if first.get("task") in ("regression", "multilabel")
                    else F.CLASSIFICATION_SHOWN)
    else:
        st.caption("None of these runs has a test report yet.")
    st.markdown("**Settings that differ**")
    diff = settings_diff({titles[r.name]: r.config() for r in picked})
    if len(picked) < 2:
        st.caption("Choose a second run to see how their settings differ.")
    elif diff:
        st.dataframe(pd.DataFrame(diff).set_index("setting"), width="stretch")
    else:
        st.caption("These runs have the same settings.")
    if reports and any(rep.get("curves") for rep in reports.values()):
        c1, c2 = st.columns(2)
        ui.chart(F.roc_curves(reports), where=c1, key="cmp_roc")
        ui.chart(F.pr_curves(reports), where=c2, key="cmp_pr")
    ui.chart(F.loss_curves({titles[r.name]: r.read_metrics() for r in picked}), key="cmp_loss")


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
