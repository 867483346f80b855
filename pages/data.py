"""Data: load labelled sequences, check them, look at them, and choose the split."""

from pathlib import Path

import pandas as pd
import streamlit as st

from plmcore import data as D
from plmcore import datasets as DS
from plmcore import figures as F
from plmcore import splits as S
from plmcore import tasks, ui
from plmcore.config import DataSpec
from plmcore.leakage import leakage_report
from plmcore.splits import make_split

st.title("Data")
st.caption("Labelled sequences for training: upload them, check them, and choose how to split them.")
store = ui.datasets()


def _show_report(report: D.ValidationReport, what: str) -> None:
    if report.errors:
        st.error(f"{what}: {len(report.errors)} problem(s) must be fixed before this data can be used. "
                 "Nothing was saved; datasets already loaded are unchanged.")
        for issue in report.errors[:25]:
            st.markdown(f"- :red[**{issue.code}**] {ui.md(issue.message)}")
    for issue in report.warnings:
        st.warning(f"{what}: {ui.md(issue.message)}")


def _finish(name: str, table_report: D.ValidationReport, test_report: D.ValidationReport | None, meta: dict) -> None:
    _show_report(table_report, "Training data")
    if test_report is not None:
        _show_report(test_report, "Test file")
    if table_report.errors or (test_report is not None and test_report.errors):
        return
    ds = store.save(name, table_report.table, test=None if test_report is None else test_report.table, meta=meta)
    ui.remember("dataset", ds.name)
    st.success(f"Saved dataset '{ui.md(ds.name)}': {len(table_report.table)} sequences"
               + (f", plus {len(test_report.table)} test sequences" if test_report is not None else "") + ".")


def _label_choice(upload, key: str) -> dict:
    """Where labels come from for one uploaded file: header tags (FASTA) or a column (tables)."""
    with ui.upload_paths(upload) as (path,):
        try:
            kind = D.sniff(path, display_name=upload.name)
        except Exception:  # noqa: BLE001 - the full read below reports the problem properly
            kind = "fasta"
    if kind == "table":
        try:
            columns = list(ui.read_upload(upload, label_source="none").columns)
        except Exception:  # the full read below reports the problem properly
            columns = []
        columns = [c for c in columns if c not in ("source",)] or ["label"]
        default = next((i for i, c in enumerate(columns) if c.lower() in ("label", "labels", "class")), 0)
        column = st.selectbox("Label column", columns, index=default, key=f"{key}_column")
        return {"label_source": "column", "label_column": column}
    st.caption("Labels are read from the FASTA headers: `LABEL=1`, `label=pos`, or the last `|` field.")
    return {"label_source": "header"}


def add_dataset() -> None:
    existing = store.list()
    with st.expander("Add a dataset", expanded=not existing):
        how = st.radio("Source", ["Upload a file", "One file per class", "Paste sequences", "Tutorial dataset"],
                       horizontal=True, key="data_how")
        if how == "Tutorial dataset":
            st.markdown("The Galaxy Training Network tutorial's tyrosine dephosphorylation windows "
                        "(Zenodo record 10986248): 201 training and 50 test windows of 33 residues.")
            if st.button("Fetch the tutorial dataset", key="data_fetch", type="primary"):
                with st.spinner("Downloading from Zenodo and checking md5 sums…"):
                    ds = DS.load_tutorial(store)
                ui.remember("dataset", ds.name)
                st.success(f"Saved dataset '{ui.md(ds.name)}' with the tutorial's split (its own test file; "
                           "80/20 train/validation of the training file, seed 42).")
            return
        name = st.text_input("Dataset name", key="data_name", placeholder="e.g. dephos Y windows")
        if how == "Upload a file":
            upload = st.file_uploader("FASTA, CSV or TSV (plain or .gz)", key="data_upload",
                                      type=ui.UPLOAD_TYPES)
            test_upload = st.file_uploader("Optional: a separate test file (same format)", key="data_test_upload",
                                           type=ui.UPLOAD_TYPES)
            if upload is None:
                return
            labels = _label_choice(upload, "data_labels")
            if st.button("Check and save", key="data_save", type="primary"):
                report = D.validate(ui.read_upload(upload, **labels))
                test_report = None
                if test_upload is not None:
                    test_report = D.validate(ui.read_upload(test_upload, **labels), min_classes=1)
                _finish(name or Path(upload.name).stem, report, test_report,
                        {"files": [upload.name] + ([test_upload.name] if test_upload else []), **labels})
        elif how == "One file per class":
            uploads = st.file_uploader("One FASTA per class", key="data_class_uploads", accept_multiple_files=True,
                                       type=ui.UPLOAD_TYPES)
            if not uploads:
                return
            classes = {}
            for i, up in enumerate(uploads):
                stem = Path(up.name.removesuffix(".gz")).stem
                classes[st.text_input(f"Class of {ui.md(up.name)}", value=stem, key=f"data_class_{i}")] = up
            if st.button("Check and save", key="data_save_classes", type="primary"):
                if len(classes) != len(uploads):
                    ui.fail("Two files have the same class name; give each file its own class.")
                with ui.upload_paths(*classes.values()) as paths:
                    table = D.read_labelled_files(dict(zip(classes, paths)),
                                                  display_names={c: up.name for c, up in classes.items()})
                _finish(name or "per-class dataset", D.validate(table), None,
                        {"files": [up.name for up in uploads], "label_source": "files"})
        else:
            text = st.text_area("Sequences in FASTA format, with labels in the headers (>id LABEL=1)",
                                key="data_paste", height=200)
            if st.button("Check and save", key="data_save_paste", type="primary") and text.strip():
                _finish(name or "pasted sequences", D.validate(D.parse_fasta_text(text)), None,
                        {"label_source": "header", "files": ["pasted"]})


def show_dataset() -> None:
    datasets = store.list()
    if not datasets:
        st.info("No dataset yet: add one above, or fetch the tutorial dataset.")
        return
    names = [d.name for d in datasets]
    current = ui.remembered("dataset")
    choice = st.selectbox("Dataset", names, index=names.index(current) if current in names else 0,
                          key="data_current")
    ui.remember("dataset", choice)
    ds = store.get(choice)
    table = ds.table()
    test = ds.test_table()
    task, why = tasks.detect(table["label"].tolist(), table["sequence"].tolist())
    classes = D.classes_of(DS.class_balance(table)["label"]) if task != "regression" else []
    positive = D.positive_class(classes) if task == "classification" else None
    info = D.window_info(table)
    cols = st.columns(4)
    cols[0].metric("Sequences", len(table))
    cols[1].metric("Task", task, help=f"From the labels: {why}. The Train page can override it.")
    cols[2].metric("Length (residues)", f"{info['length']}" if info["aligned"]
                   else f"{table['sequence'].str.len().min()}–{table['sequence'].str.len().max()}",
                   help="all sequences have the same length: aligned site windows" if info["aligned"] else None)
    cols[3].metric("Separate test file", f"{len(test)} sequences" if test is not None else "none")
    with st.expander("Preview", expanded=False):
        st.dataframe(table.drop(columns=["source"], errors="ignore").head(500), width="stretch", hide_index=True)
    c1, c2 = st.columns(2)
    if task == "regression":
        ui.chart(F.value_histogram(table), where=c1, key="data_balance")
    else:
        ui.chart(F.class_balance(DS.class_balance(table)), where=c1, key="data_balance")
    if info["aligned"]:
        c2.info(f"All {len(table)} sequences are {info['length']}-residue windows"
                + (f" centred on {', '.join(info['center_residues'])}." if info["center_residues"] else "."))
    else:
        ui.chart(F.length_histogram(table), where=c2, key="data_lengths")
    enrichment = DS.position_enrichment(table, positive) if len(classes) == 2 else None
    if enrichment is not None:
        ui.chart(F.enrichment_heatmap(enrichment, positive), key="data_enrichment")
        st.caption("Red: the residue is more frequent at that position in the positive class; blue: less. "
                   "log2 ratio of frequencies with a pseudocount of 1.")
    split_section(ds, table, test)
    with st.expander("Delete this dataset"):
        sure = st.checkbox(f"Yes, delete '{ui.md(ds.name)}' (runs trained on it keep their own copy)", key="data_del_ok")
        if st.button("Delete", key="data_delete", disabled=not sure):
            store.delete(ds.name)
            st.rerun()


def split_section(ds: DS.Dataset, table: pd.DataFrame, test: pd.DataFrame | None) -> None:
    st.subheader("Split")
    saved = ds.data_spec()  # the saved split's settings, or the defaults
    method = ui.setting_input(DataSpec, "split_method", key="data_split_method", value=saved.split_method,
                              radio=True)
    c = st.columns(5)
    use_test = test is not None and c[0].checkbox("Use the separate test file", value=True, key="data_split_use_test")
    val = ui.setting_input(DataSpec, "val_fraction", key="data_split_val", where=c[1], value=saved.val_fraction)
    tst = ui.setting_input(DataSpec, "test_fraction", key="data_split_test", where=c[2],
                           value=0.0 if use_test else saved.test_fraction or 0.1, disabled=use_test)
    seed = ui.setting_input(DataSpec, "split_seed", key="data_split_seed", where=c[3], value=saved.split_seed)
    identity = ui.setting_input(DataSpec, "identity_threshold", key="data_split_identity", where=c[4],
                                value=saved.identity_threshold, disabled=method != "identity")
    stratify = ui.setting_input(DataSpec, "stratify", key="data_split_stratify", value=saved.stratify)
    if st.button("Save split", key="data_split_save"):
        with st.spinner("Splitting…"):
            split, info = make_split(table, method=method, val_fraction=val, test_fraction=tst, seed=int(seed),
                                     stratify=stratify, test_table=test if use_test else None,
                                     identity_threshold=float(identity))
        ds.save_split(split, info)
        st.success("Split saved" + (f" (clustering: {info['tool']})." if info.get("tool") else "."))
    with st.expander("Attach or replace a separate test file"):
        up = st.file_uploader("Test file (same format as the dataset)", key="data_attach_test",
                              type=ui.UPLOAD_TYPES)
        if up is not None and st.button("Check and attach", key="data_attach_go"):
            labels = {k: v for k, v in ds.meta.items() if k in ("label_source", "label_column")}
            if labels.get("label_source") not in ("header", "column"):
                labels = {"label_source": "header"}
            report = D.validate(ui.read_upload(up, **labels), min_classes=1)
            _show_report(report, "Test file")
            if report.ok:
                store.save(ds.name, table, test=report.table, meta={k: v for k, v in ds.meta.items()
                                                                      if k not in ("split",)})
                st.success(f"Attached {len(report.table)} test sequences; save the split again to use them.")
    split = ds.split()
    if split is None:
        st.info("No split saved yet: the Train page will use 10% validation and 10% test (or the test file).")
        return
    saved = ds.meta.get("split") or {}
    counts = pd.crosstab(split["split"], split["label"]).reindex(["train", "val", "test"]).fillna(0).astype(int)
    c1, c2 = st.columns([1, 3])
    c1.dataframe(counts, width="content")
    c2.caption(f"Saved split: {saved.get('method', 'random')}"
               + (f", clustering by {saved['tool']} at {saved.get('identity_threshold')}" if saved.get("tool") else "")
               + f", seed {saved.get('seed', '?')}, test from the {saved.get('test_source', 'held-out part')}.")
    if (split["split"] == "test").any():
        st.markdown("**Leakage check of this split** (training + validation against test)")
        ui.show_leakage(leakage_of(str(ds.path / "split.csv"), (ds.path / "split.csv").stat().st_mtime_ns))


@st.cache_data(show_spinner="Checking the split for leakage…", max_entries=8)
def leakage_of(path: str, stamp: int) -> dict:
    split = S.load_split(path)
    return leakage_report(split[split["split"] != "test"], split[split["split"] == "test"])


ui.guard(add_dataset)
ui.guard(show_dataset)
