"""Predict: score site windows, or scan whole proteins residue by residue, with a trained run."""

import pandas as pd
import streamlit as st

from plmcore import data as D
from plmcore import figures as F
from plmcore import present as P
from plmcore import scan as S
from plmcore import ui
from plmcore.errors import LabelError
from plmcore.predict import at_threshold, clean_input, describe_run, predict_table
from plmcore.provenance import RANDOM_WEIGHTS_MARK
from plmcore.runs import ACTIVE_STATES, cancel

st.title("Predict")
st.caption("Sequences as long as the training windows are scored directly; longer proteins are scanned at "
           "every candidate residue with a window of the training length.")


def read_input():
    how = st.radio("Input", ["Paste sequences", "Upload a FASTA file"], horizontal=True, key="pred_how")
    if how == "Paste sequences":
        text = st.text_area("FASTA (or one sequence per line)", key="pred_text", height=160,
                            placeholder=">my_protein\nMSEQ...",
                            help="A LABEL= tag in a header (e.g. >site1 LABEL=1) is compared with the prediction.")
        return D.parse_fasta_text(text) if text.strip() else None
    up = st.file_uploader("FASTA file (or a table with a sequence column)", type=ui.UPLOAD_TYPES, key="pred_upload",
                          help="Labels in the file (LABEL= header tags, a label column) are compared with the "
                               "predictions.")
    if up is None:
        return None
    try:  # labels, when the file has them, are compared with the predictions
        return ui.read_upload(up, label_source="auto")
    except LabelError:
        return ui.read_upload(up, label_source="none")


def choose_model():
    """A finished run of this workspace, or an exported model (a folder or a Hub id of one)."""
    how = st.radio("Model", ["A run of this workspace", "An exported model (folder or Hub id)"], horizontal=True,
                   key="pred_source")
    if how.startswith("An exported"):
        source = st.text_input("Model folder or Hugging Face Hub id", key="pred_model_id",
                               placeholder="e.g. mylab/dephos-esm2-lora, or a folder written by plmcore export").strip()
        return ui.loaded_model(source) if source else None
    run = ui.pick_run("Trained run", "pred_run", finished_only=True)
    if run is None:
        ui.empty_state("No finished run yet: train one on the Train page, then come back to score sequences "
                       "with it.", "train")
        return None
    return ui.loaded_run(run)


def page() -> None:
    loaded = choose_model()
    if loaded is None:
        return
    st.caption(ui.md(describe_run(loaded)))
    table = read_input()
    c1, c2 = st.columns(2)
    candidates = loaded.lab.residues or "".join(loaded.center_residues)
    residues = c1.text_input("Residues to score along whole proteins", value=candidates, key="pred_residues",
                             help="e.g. Y, or STY for all phospho-acceptors; empty: every residue",
                             disabled=loaded.task in ("regression", "multilabel"))
    threshold = None
    if loaded.lab.binary:
        threshold = c2.slider("Decision threshold", 0.0, 1.0, float(loaded.threshold), 0.01, key="pred_threshold",
                              help="the run's threshold, chosen on validation, by default")
    elif loaded.task == "multilabel":
        c2.caption("Each label is called at its own threshold, chosen on validation.")
    upload = st.session_state.get("pred_upload") if st.session_state.get("pred_how") != "Paste sequences" else None
    if table is not None and upload is not None and len(table) > S.BACKGROUND_PROTEINS:
        background(loaded, upload, len(table), S.ScanSettings(residues=residues.strip().upper() or None,
                                                               threshold=threshold))
        return
    if st.button("Score", key="pred_go", type="primary"):
        if table is None:
            ui.fail("Paste sequences or upload a FASTA file first.")
        labels = table["label"] if "label" in table.columns else None
        table, warnings = clean_input(table)
        for w in warnings:
            st.warning(ui.md(w.message))
        bars = []

        def progress(what: str):
            bars.append(ui.Progress({"scoring": "Scoring sequences", "scanning": "Scanning proteins"}[what]))
            return bars[-1]

        results = predict_table(loaded, table, residues=residues.strip().upper() or None, progress=progress)
        for bar in bars:
            bar.done()
        results["lengths"] = dict(zip(table["id"], table["sequence"].str.len()))
        if labels is not None and labels.notna().any() and loaded.task == "classification":
            results["labels"] = dict(zip(table["id"], labels.reindex(table.index)))
        st.session_state["pred_results"] = (loaded.name, results)
    stored = st.session_state.get("pred_results")
    if not stored or stored[0] != loaded.name:
        return
    show(stored[1], loaded, threshold)


def background(loaded, upload, n: int, settings) -> None:
    """A proteome-sized upload: scanned by a worker process into a CSV in the workspace."""
    st.info(f"{n:,} proteins: more than {S.BACKGROUND_PROTEINS} are scanned in the background. You can leave "
            "this page; the scan goes on, and an interrupted scan resumes where it stopped.")
    if st.button("Start the scan", key="pred_bg_go", type="primary"):
        job = S.create_scan(ui.workspace(), str(loaded.source), upload.name, upload.getvalue(), settings)
        S.start_scan(job, workspace_dir=ui.workspace(), trust_remote_code=ui.trust_remote_code())
        st.session_state["pred_scan_pick"] = str(job.path)  # show the new scan
    if loaded.backbone.random_weights:
        st.warning("This run's base model has **random weights**: its scores show how the app works and mean "
                   "nothing about your proteins.")
    scans = S.list_scans(ui.workspace())
    if scans:
        names = {str(j.path): j.name for j in scans}
        if st.session_state.get("pred_scan_pick") not in names:
            st.session_state.pop("pred_scan_pick", None)
        path = st.selectbox("Scan", list(names), format_func=names.get, key="pred_scan_pick")
        job = S.ScanDir(path)
        if job.status().get("state") in ACTIVE_STATES:
            live_scan(job)
        else:
            render_scan(job)


@st.fragment(run_every=2)
def live_scan(job) -> None:
    if job.status().get("state") not in ACTIVE_STATES:
        st.rerun()  # stop polling: the page shows the final state without a timer
    render_scan(job)


def render_scan(job) -> None:
    status, done = job.status(), job.progress()
    state = status.get("state")
    total = status.get("records_total") or done.get("records_total") or 0
    count = status.get("records_done") or done.get("records_done") or 0
    eta = S.eta_seconds(status) if state == "running" else None
    text = f"{state}: {int(count):,} of {total:,} proteins" if total else f"{state}…"
    if eta is not None:
        text += f" · {ui.format_seconds(eta)} left"
    st.progress(min(count / total, 1.0) if total else 0.0, text=text)
    if state in ACTIVE_STATES:
        if st.button("Stop the scan", key="pred_bg_stop"):
            cancel(job)
            st.toast("Stopping after the current chunk; the scan can be resumed.")
    elif state == "finished":
        st.success(f"Finished: {done.get('rows', 0):,} rows.")
    else:
        if state == "failed":
            st.error(f"The scan failed: {ui.md(status.get('error'))}")
        if st.button("Resume the scan", key="pred_bg_resume"):
            S.start_scan(job, workspace_dir=ui.workspace(), trust_remote_code=ui.trust_remote_code())
            st.rerun()
    if state not in ACTIVE_STATES and done.get("rows"):
        what = "all rows" if done.get("finished") else "the rows so far"
        st.download_button(f"Download {what} (CSV)", job.output_path.read_bytes()[:done["bytes"]],
                           f"{job.name}_sites.csv", mime="text/csv", key="pred_bg_dl", icon=":material/download:")
    st.caption(f"The same scan from the command line (it resumes too): `{job.command()}`")


def show(results: dict, loaded, threshold: float | None) -> None:
    if loaded.backbone.random_weights:
        st.warning(f"**{RANDOM_WEIGHTS_MARK}.** This run's base model has random weights: these scores show how "
                   "the app works and mean nothing about your proteins. Every download says so (random_weights "
                   "column, file name).")
    if "windows" in results:
        windows(results, loaded, threshold)
    if "sites" in results:
        sites = at_threshold(loaded, results["sites"], threshold)
        if "probability" not in sites.columns:  # a per-residue run with several classes
            st.subheader(f"Residues: {P.plural(sites['protein_id'].nunique(), 'protein')}, "
                         f"{P.plural(len(sites), 'residue')}")
            st.dataframe(P.readable(loaded, sites), hide_index=True, width="stretch")
            download(P.readable(loaded, sites), loaded, threshold, "residues", "pred_dl_sites")
            return
        scan(results, loaded, loaded.threshold if threshold is None else threshold)
    if not results:
        st.info("Nothing to score.")


def download(table, loaded, threshold, what: str, key: str, label: str | None = None) -> None:
    """One CSV download carrying the run, model, threshold and random-weights flag on every row."""
    st.download_button(label or f"Download {what.replace('_', ' ')} (CSV)",
                       P.with_provenance(table, loaded, threshold).to_csv(index=False),
                       P.download_name(loaded, what), mime="text/csv", key=key, icon=":material/download:")


def windows(results: dict, loaded, threshold: float | None) -> None:
    df = at_threshold(loaded, results["windows"], threshold)
    noun = "window" if loaded.task == "classification" else "sequence"
    st.subheader(P.plural(len(df), noun))
    shown = P.readable(loaded, df)
    if results.get("labels"):
        labels = pd.Series([results["labels"].get(i) for i in df["id"]], index=df.index)
        shown, sentence = P.compare_with_labels(loaded, shown, labels)
        st.markdown(f"**Given labels** (LABEL= in the headers, or a label column): {ui.md(sentence)}")
    if threshold is not None:
        st.caption(f"Predicted class at the decision threshold {threshold:.2f} for "
                   f"{ui.md(P.class_name(loaded, loaded.positive))}.")
    st.dataframe(shown, hide_index=True, width="stretch")
    download(shown, loaded, threshold, "window_scores", "pred_dl_windows")


def scan(results: dict, loaded, threshold: float) -> None:
    sites = at_threshold(loaded, results["sites"], threshold)
    hits = sites[sites["predicted"]]
    st.subheader("Scanned proteins")
    st.markdown(ui.md(P.site_summary(sites, threshold)))
    proteins = list(dict.fromkeys(sites["protein_id"]))
    shown = proteins if len(proteins) <= 5 else st.multiselect("Proteins to plot", proteins, proteins[:5],
                                                               key="pred_plot_ids")
    flag = " · random weights" if loaded.backbone.random_weights else ""
    for i, pid in enumerate(shown):
        ui.chart(F.protein_scan(sites, pid, results["lengths"][pid], threshold, title=f"{pid}{flag}"),
                 key=f"pred_scan_{i}")
    if len(hits):
        st.markdown(f"**Predicted sites** ({P.plural(len(hits), 'site')} at or above {threshold:.2f})")
        st.dataframe(P.readable(loaded, P.top_candidates(hits, len(hits))), hide_index=True, width="stretch")
    else:
        st.markdown(f"**No site reaches the threshold {threshold:.2f}.** The top candidates, best first "
                    "(lower the threshold above to call them):")
        st.dataframe(P.readable(loaded, P.top_candidates(sites, 10)), hide_index=True, width="stretch",
                     key="pred_top")
    download(P.readable(loaded, sites), loaded, threshold, "site_scan", "pred_dl_sites",
             "Download all candidate sites (CSV)")


ui.guard(page)
