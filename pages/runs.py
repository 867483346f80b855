"""Runs & evaluation: every run, one run's test metrics with intervals and curves, runs side by side."""

import json

import pandas as pd
import streamlit as st

from plmcore import figures as F
from plmcore import ui
from plmcore.runs import RunDir, delete_run, export_zip, import_zip, list_runs

st.title("Runs & evaluation")


def runs_table(runs: list[RunDir]) -> None:
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


def one_run(run: RunDir) -> None:
    status = run.status()
    report = run.report()
    records = run.read_metrics()
    if status.get("state") == "failed":
        st.error(f"This run failed: {status.get('error')}")
    tabs = st.tabs(["Test metrics", "Curves", "Training", "Configuration", "Files"])
    with tabs[0]:
        if report is None:
            st.info(f"No test report: the run is {status.get('state')}"
                    + (" or has no test split." if status.get("state") == "finished" else "."))
        else:
            st.markdown(f"**{report['n']} test sequences**, decision threshold {report.get('threshold') or 0.5:.2f}; "
                        f"brackets: 95% bootstrap confidence intervals ({report['n_boot']} resamples).")
            c1, c2 = st.columns([3, 2])
            c1.dataframe(F.metrics_table({run.name: report}).rename(columns={run.name: "value [95% CI]"}),
                         width="stretch")
            c2.plotly_chart(F.confusion(report), width="stretch", key="runs_cm")
    with tabs[1]:
        if report and report.get("curves"):
            c1, c2 = st.columns(2)
            c1.plotly_chart(F.roc_curves({run.name: report}), width="stretch", key="runs_roc")
            c2.plotly_chart(F.pr_curves({run.name: report}), width="stretch", key="runs_pr")
        else:
            st.info("Curves need a finished run with a binary test set.")
    with tabs[2]:
        if records:
            x = st.radio("x axis", ["step", "epoch"], horizontal=True, key="runs_x")
            st.plotly_chart(F.loss_curves({run.name: records}, x=x), width="stretch", key="runs_loss")
            st.plotly_chart(F.val_metric_curves(records, x=x), width="stretch", key="runs_valm")
        else:
            st.info("No metrics logged yet.")
    with tabs[3]:
        st.json(json.loads(run.config_path.read_text()), expanded=1)
        if status:
            st.caption("Status")
            st.json(status, expanded=False)
    with tabs[4]:
        st.download_button("Download this run (.zip)", data=export_zip(run), file_name=f"{run.name}.zip",
                           mime="application/zip", key="runs_download",
                           help="config, split, adapter, head, metrics, reports and predictions")
        sure = st.checkbox(f"Yes, delete run {run.name} and all its files", key="runs_delete_ok")
        if st.button("Delete run", key="runs_delete", disabled=not sure):
            delete_run(run)
            st.success(f"Deleted {run.name}.")
            st.rerun()


def compare(runs: list[RunDir]) -> None:
    names = [r.name for r in runs]
    chosen = st.multiselect("Runs to compare", names, default=names[:2] if len(names) > 1 else names,
                            key="runs_compare")
    picked = [r for r in runs if r.name in chosen]
    reports = {r.name: r.report() for r in picked if r.report()}
    if reports:
        st.dataframe(F.metrics_table(reports), width="stretch")
        c1, c2 = st.columns(2)
        c1.plotly_chart(F.roc_curves(reports), width="stretch", key="cmp_roc")
        c2.plotly_chart(F.pr_curves(reports), width="stretch", key="cmp_pr")
    if picked:
        st.plotly_chart(F.loss_curves({r.name: r.read_metrics() for r in picked}), width="stretch", key="cmp_loss")


def page() -> None:
    with st.expander("Import a run (.zip exported from this app)"):
        up = st.file_uploader("Run archive", type=["zip"], key="runs_import")
        if up is not None and st.button("Import", key="runs_import_go"):
            run = import_zip(up.getvalue())
            st.success(f"Imported as {run.name}.")
    runs = list_runs()
    if not runs:
        st.info("No runs yet: start one on the Train page.")
        return
    runs_table(runs)
    mode = st.radio("View", ["One run", "Compare runs"], horizontal=True, key="runs_mode")
    if mode == "One run":
        run = ui.pick_run("Run", "runs_selected", runs=runs)
        one_run(run)
    else:
        compare(runs)


ui.guard(page)
