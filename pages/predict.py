"""Predict: score site windows, or scan whole proteins residue by residue, with a trained run."""

import pandas as pd
import streamlit as st

from plmcore import data as D
from plmcore import figures as F
from plmcore import ui
from plmcore.predict import at_threshold, clean_input, describe_run, predict_table

st.title("Predict")
st.caption("Sequences as long as the training windows are scored directly; longer proteins are scanned at "
           "every candidate residue with a window of the training length.")


def read_input():
    how = st.radio("Input", ["Paste sequences", "Upload a FASTA file"], horizontal=True, key="pred_how")
    if how == "Paste sequences":
        text = st.text_area("FASTA (or one sequence per line)", key="pred_text", height=160,
                            placeholder=">my_protein\nMSEQ...")
        return D.parse_fasta_text(text) if text.strip() else None
    up = st.file_uploader("FASTA file (or a table with a sequence column)", type=ui.UPLOAD_TYPES, key="pred_upload")
    return None if up is None else ui.read_upload(up, label_source="none")


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
        st.info("No finished run yet: train one on the Train page.")
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
    if st.button("Score", key="pred_go", type="primary"):
        if table is None:
            ui.fail("Paste sequences or upload a FASTA file first.")
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
        st.session_state["pred_results"] = (loaded.name, results)
    stored = st.session_state.get("pred_results")
    if not stored or stored[0] != loaded.name:
        return
    show(stored[1], loaded, threshold)


def show(results: dict, loaded, threshold: float | None) -> None:
    if "windows" in results:
        df = at_threshold(loaded, results["windows"], threshold)
        st.subheader(f"{'Windows' if loaded.task == 'classification' else 'Sequences'} ({len(df)})")
        st.dataframe(df, hide_index=True, width="stretch")
        st.download_button("Download window scores (CSV)", df.to_csv(index=False), "window_scores.csv",
                           key="pred_dl_windows")
    if "sites" in results:
        sites = at_threshold(loaded, results["sites"], threshold)
        if "probability" not in sites.columns:  # a per-residue run with several classes
            st.subheader(f"Residues: {sites['protein_id'].nunique()} proteins, {len(sites)} residues")
            st.dataframe(sites, hide_index=True, width="stretch")
            st.download_button("Download the residues (CSV)", sites.to_csv(index=False), "residues.csv",
                               key="pred_dl_sites")
            return
        threshold = loaded.threshold if threshold is None else threshold
        hits = sites[sites["predicted"]]
        st.subheader(f"Scanned proteins: {sites['protein_id'].nunique()} proteins, {len(sites)} candidate sites, "
                     f"{len(hits)} predicted at threshold {threshold:.2f}")
        proteins = list(dict.fromkeys(sites["protein_id"]))
        shown = proteins if len(proteins) <= 5 else st.multiselect("Proteins to plot", proteins, proteins[:5],
                                                                   key="pred_plot_ids")
        for i, pid in enumerate(shown):
            st.plotly_chart(F.protein_scan(sites, pid, results["lengths"][pid], threshold), width="stretch",
                            key=f"pred_scan_{i}")
        st.markdown("**Predicted sites**")
        st.dataframe(hits, hide_index=True, width="stretch")
        st.download_button("Download all candidate sites (CSV)", sites.to_csv(index=False), "site_scan.csv",
                           key="pred_dl_sites")
    if not results:
        st.info("Nothing to score.")
    pd.options.display.float_format = None


ui.guard(page)
