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
from plmcore.errors import DataError, PlmcoreError
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
            st.markdown(f"- :red[**{issue.code}**] {ui.md(issue.render('app'))}")
    for issue in report.warnings:
        st.warning(f"{what}: {ui.md(issue.render('app'))}")


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


READ_OPTIONS = ("label_source", "label_column", "header", "sequence_column", "id_columns", "group_column",
                "position_column")
ROLE_WORDS = {"sequence": "sequence", "label": "label", "id": "id part", "group": "group (protein)",
              "position": "position"}
ROLES_ONE = ("sequence", "label", "group", "position")  # roles that only one column may hold


def _layout_choice(upload, key: str) -> dict:
    """How to read an uploaded file: FASTA header tags, or a table's header row and column mapper.

    Returns read_table's options, as the CLI names them, saved with the dataset."""
    header = st.session_state.get(f"{key}_header", "auto")
    with ui.upload_paths(upload) as (path,):
        layout = D.sniff(path, display_name=upload.name, header=header)
    if layout.kind == "fasta":
        st.caption("Labels are read from the FASTA headers: `LABEL=1`, `label=pos`, or the last `|` field.")
        return {"label_source": "header"}
    detected = "a header row" if layout.header_detected else "no header row"
    ui.setting_input(DataSpec, "header", key=f"{key}_header", radio=True,
                     label=f"Header row (detected: {detected}, as {layout.why})")
    st.caption("First rows of the file")
    st.dataframe(layout.preview(), width="stretch", hide_index=True, key=f"{key}_preview")
    st.markdown("**Column mapper**: what each column holds. A column may hold more than one role "
                "(an accession can be an id part and the group).")
    roles = _column_mapper(layout, key)
    picked = {r: [c for c, held in roles.items() if r in held] for r in ROLE_WORDS}
    for r in ROLES_ONE:
        if len(picked[r]) > 1:
            raise DataError(f"Only one column can hold the '{ROLE_WORDS[r]}' role; {', '.join(picked[r])} all do. "
                    "Take it off all but one.")
    one = {r: (picked[r] or [None])[0] for r in ROLES_ONE}
    explicit = picked["id"] != layout.roles["id"]
    st.info(D.describe_layout({**one, "id": picked["id"]}, layout.header, explicit_ids=explicit))
    return {"label_source": "column", "header": header,
            "sequence_column": one["sequence"], "label_column": one["label"],
            "id_columns": picked["id"] if explicit else None, "group_column": one["group"],
            "position_column": one["position"]}


def _column_mapper(layout: D.TableLayout, key: str) -> dict[str, list[str]]:
    """One row per column: its name, first values and its roles (guessed, then as the user sets them)."""
    def held(col: str, role: str) -> bool:
        guess = layout.roles.get(role)
        return col in guess if isinstance(guess, list) else col == guess

    guessed = {c: [r for r in ROLE_WORDS if held(c, r)] for c in layout.columns}
    out = {}
    for i, col in enumerate(layout.columns):
        c1, c2, c3 = st.columns([1, 3, 3])
        c1.markdown(f"**{ui.md(col)}**" if layout.header else f"**column {i}**")
        values = [r[i] if i < len(r) else "" for r in layout.rows[:3]]
        c2.caption(ui.md(", ".join(v if len(v) <= 24 else v[:21] + "…" for v in values)))
        out[col] = c3.multiselect(f"Roles of column {col}", list(ROLE_WORDS), default=guessed[col],
                                  format_func=ROLE_WORDS.get, key=f"{key}_role_{int(layout.header)}_{i}",
                                  label_visibility="collapsed", placeholder="ignore")
    return out


def _class_counts(table: pd.DataFrame) -> None:
    counts = table["label"].value_counts()
    order = D.classes_of(counts.index)
    st.caption("Classes found: " + ", ".join(f"{ui.md(c)} ({counts[c]})" for c in order[:20])
               + (f", … {len(order) - 20} more" if len(order) > 20 else ""))


def _classes_of_files(uploads: list, key: str) -> dict:
    """{class: upload}, the class from each file's name (editable); two files of one class are refused."""
    classes = {}
    for i, up in enumerate(uploads):
        name = st.text_input(f"Class of {ui.md(up.name)}", value=D.class_of_file(up.name), key=f"{key}_{i}")
        if name in classes:
            ui.fail(f"{up.name} and {classes[name].name} both have the class '{name}'; give each file its own "
                    "class.")
        classes[name] = up
    return classes


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
            table, options = None, {}
            try:  # problems are shown here, before saving, and the earlier datasets stay as they are
                options = _layout_choice(upload, "data_labels")
                table = ui.read_upload(upload, **options)
                _class_counts(table)
            except PlmcoreError as exc:
                st.error(ui.md(exc.render("app")))
            if st.button("Check and save", key="data_save", type="primary") and table is not None:
                report = D.validate(table)
                test_report = None
                if test_upload is not None:
                    test_report = D.validate(ui.read_upload(test_upload, **options), min_classes=1)
                _finish(name or Path(upload.name).stem, report, test_report,
                        {"files": [upload.name] + ([test_upload.name] if test_upload else []),
                         **{k: v for k, v in options.items() if v is not None}})
        elif how == "One file per class":
            uploads = st.file_uploader("One file per class for training", key="data_class_uploads",
                                       accept_multiple_files=True, type=ui.UPLOAD_TYPES)
            test_uploads = st.file_uploader("Optional: one test file per class", key="data_class_test_uploads",
                                            accept_multiple_files=True, type=ui.UPLOAD_TYPES)
            if not uploads:
                return
            st.caption("Each file's class is its name without a train/test prefix (test_Pos_ST.fasta: Pos_ST).")
            classes = _classes_of_files(uploads, "data_class")
            tests = _classes_of_files(test_uploads or [], "data_class_test")
            if st.button("Check and save", key="data_save_classes", type="primary"):
                with ui.upload_paths(*classes.values()) as paths:
                    table = D.read_labelled_files(dict(zip(classes, paths)),
                                                  display_names={c: up.name for c, up in classes.items()})
                test_report = None
                if tests:
                    with ui.upload_paths(*tests.values()) as paths:
                        test = D.read_labelled_files(dict(zip(tests, paths)),
                                                     display_names={c: up.name for c, up in tests.items()})
                    test_report = D.validate(test, min_classes=1)
                _finish(name or "per-class dataset", D.validate(table), test_report,
                        {"files": [up.name for up in [*uploads, *(test_uploads or [])]], "label_source": "files"})
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
    cut = info["aligned"] and info["ends"] == "cut"
    cols[2].metric("Length (residues)", f"up to {info['length']}" if cut else f"{info['length']}" if info["aligned"]
                   else f"{table['sequence'].str.len().min()}–{table['sequence'].str.len().max()}",
                   help="all sequences have the same length: aligned site windows" if info["aligned"] else None)
    cols[3].metric("Separate test file", f"{len(test)} sequences" if test is not None else "none")
    with st.expander("Preview", expanded=False):
        st.dataframe(table.drop(columns=["source"], errors="ignore").head(500), width="stretch", hide_index=True)
    c1, c2 = st.columns(2)
    if task == "regression":
        ui.chart(F.value_histogram(table), where=c1, key="data_balance")
    else:
        names = ds.meta.get("class_names") or {}
        balance = DS.class_balance(table).assign(label=lambda b: [names.get(c, c) for c in b["label"]])
        ui.chart(F.class_balance(balance), where=c1, key="data_balance")
    if info["aligned"]:
        c2.info((f"Site windows of up to {info['length']} residues, shorter where they meet a protein's end"
                 if cut else f"All {len(table)} sequences are {info['length']}-residue windows")
                + (f" centred on {', '.join(info['center_residues'])}." if info["center_residues"] else "."))
    else:
        ui.chart(F.length_histogram(table), where=c2, key="data_lengths")
    enrichment = DS.position_enrichment(table, positive) if len(classes) == 2 else None
    if enrichment is not None:
        shown = (ds.meta.get("class_names") or {}).get(positive, positive)
        ui.chart(F.enrichment_heatmap(enrichment, shown), key="data_enrichment")
        st.caption("Red: the residue is more frequent at that position in the positive class; blue: less. "
                   "log2 ratio of frequencies with a pseudocount of 1.")
    if classes:
        class_names(ds, classes)
    split_section(ds, table, test)
    with st.expander("Delete this dataset"):
        sure = st.checkbox(f"Yes, delete '{ui.md(ds.name)}' (runs trained on it keep their own copy)", key="data_del_ok")
        if st.button("Delete", key="data_delete", disabled=not sure):
            store.delete(ds.name)
            st.rerun()


def class_names(ds: DS.Dataset, classes: list[str]) -> None:
    """Display names for the classes ("1" shown as "dephosphorylated"), used wherever a class is shown."""
    saved = ds.meta.get("class_names") or {}
    with st.expander("Class names" + (f": {', '.join(f'{c} = {n}' for c, n in saved.items())}" if saved else "")):
        st.caption("How each class is shown in charts, tables and predictions (leave empty to keep the label).")
        cols = st.columns(min(len(classes), 4))
        names = {c: cols[i % len(cols)].text_input(f"Class {c}", value=saved.get(c, ""), key=f"data_classname_{c}")
                 for i, c in enumerate(classes[:20])}
        if st.button("Save class names", key="data_classnames_save"):
            ds.update_meta(class_names={c: n.strip() for c, n in names.items() if n.strip() and n.strip() != c})
            st.success("Class names saved; new runs on this dataset use them.")


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
            labels = {k: v for k, v in ds.meta.items() if k in READ_OPTIONS}
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
    counts = counts.rename(columns=ds.meta.get("class_names") or {})
    c1, c2 = st.columns([1, 3])
    c1.dataframe(counts, width="content")
    c2.caption(f"Saved split: {saved.get('method', 'random')}"
               + (f", clustering by {saved['tool']} at {saved.get('identity_threshold')}" if saved.get("tool") else "")
               + f", seed {saved.get('seed', '?')}, test from the {saved.get('test_source', 'held-out part')}.")
    if (split["split"] == "test").any():
        st.markdown("**Leakage check of this split** (training + validation against test)")
        leak = leakage_of(str(ds.path / "split.csv"), (ds.path / "split.csv").stat().st_mtime_ns,
                          saved.get("test_source") == "uploaded test file", saved.get("method", "random") != "random")
        ui.show_leakage(leak)
        leakage_actions(ds, leak)


def _hold_out_proteins() -> None:
    """Leakage action: split by protein and hold out a test part instead of using the test file."""
    st.session_state["data_split_use_test"] = False
    st.session_state["data_split_method"] = "protein"
    st.session_state["data_split_test"] = 0.1


def leakage_actions(ds: DS.Dataset, leak: dict) -> None:
    """The actions the leakage advice offers for this situation."""
    if "drop_overlapping_test" not in leak.get("actions", []):
        return
    ids = leak["leaking_test_ids"]
    c1, c2 = st.columns(2)
    if c1.button(f"Drop the {len(ids)} overlapping test records", key="data_leak_drop"):
        n = ds.drop_test_records(set(ids))
        st.success(f"Removed {n} records from the test file and the saved split.")
        st.rerun()
    c2.button("Hold out proteins instead of using the test file", key="data_leak_holdout",
              on_click=_hold_out_proteins,
              help="Sets the split above to 'grouped by protein' with a held-out test part; then save the split.")


@st.cache_data(show_spinner="Checking the split for leakage…", max_entries=8)
def leakage_of(path: str, stamp: int, test_file: bool = False, grouped: bool = False) -> dict:
    split = S.load_split(path)
    return leakage_report(split[split["split"] != "test"], split[split["split"] == "test"], test_file=test_file,
                          grouped=grouped)


ui.guard(add_dataset)
ui.guard(show_dataset)
