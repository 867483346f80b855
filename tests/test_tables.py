"""Tables as they come: header detection, columns by name or number, ids from several columns, group and
position columns, per-class files on both sides, variable-length windows, and the Data page's mapper."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import plain
from streamlit.testing.v1 import AppTest

from plmcore import data as D
from plmcore.cli import build_parser, config_from_args, main
from plmcore.config import DataSpec, TrainConfig
from plmcore.datasets import DatasetStore
from plmcore.errors import ConfigError, DataError, DuplicateIdError, LabelError
from plmcore.leakage import leakage_report
from plmcore.splits import make_split, protein_groups

APP = str(Path(__file__).resolve().parents[1] / "app.py")
ALPHABET = np.array(list("ACDEFGHIKLMNQRSTVW"))


def window(rng, length: int = 15, positive: bool = False) -> str:
    seq = rng.choice(ALPHABET, size=length)
    seq[length // 2] = "Y"
    if positive:
        seq[length // 2 + 1] = "P"
    return "".join(seq)


def ptm_rows(n_proteins: int = 20, per_protein: int = 3, seed: int = 0) -> list[list[str]]:
    """DephosNet's layout: label, accession, site, window, residue; one row per site, so accessions repeat."""
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n_proteins):
        acc = f"P{p:05d}"
        for k in range(per_protein):
            label = (p + k) % 2
            rows.append([str(label), acc, str(10 + 7 * k + p), window(rng, positive=bool(label)), "Y"])
    return rows


def write_rows(path: Path, rows: list[list[str]], header: list[str] | None = None, sep: str = ",") -> Path:
    lines = ([sep.join(header)] if header else []) + [sep.join(r) for r in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


SEQ = "MKTAYIAKQRQISFVKSHFSRQ"
SEQ2 = "MSDNGPQSNQRSAPRITFGGPT"

# (file name, text, header expected)
LAYOUTS = [
    ("dephosnet.csv", f"1,Q9UQC2,614,{SEQ},Y\n0,P18031,153,{SEQ2},Y\n", False),
    ("named.csv", f"label,accession,site,window,residue\n1,Q9UQC2,614,{SEQ},Y\n0,P18031,153,{SEQ2},Y\n", True),
    ("idseqclass.csv", f"id,sequence,class\na,{SEQ},pos\nb,{SEQ2},neg\n", True),
    ("uniprot.tsv", f"Entry\tSequence\tLabel\nP12345\t{SEQ}\t1\nQ67890\t{SEQ2}\t0\n", True),
    ("numbers.csv", f"protein_name,aa_seq,activity\nx,{SEQ},0.51\ny,{SEQ2},1.7\n", True),
    ("seq_value.csv", f"{SEQ},0.5\n{SEQ2},1.5\n", False),
    ("acc_first.csv", f"P12345,{SEQ},pos\nQ67890,{SEQ2},neg\n", False),
    ("label_word_first.csv", f"pos,P12345,{SEQ}\nneg,Q67890,{SEQ2}\n", False),
    ("excel.csv", f"id;sequence;label\nq1;{SEQ};1\nq2;{SEQ2};0\n", True),
    ("tab.tsv", f"name\tseq\ty\nn1\t{SEQ}\t1\nn2\t{SEQ2}\t0\n", True),
    ("numbered_ids.csv", f"seq1,{SEQ},1\nseq2,{SEQ2},0\n", False),
    ("odd_names.csv", f"foo,bar\nxyz,{SEQ}\nabc,{SEQ2}\n", True),
    ("acc_numbers.csv", f"P12345,12,{SEQ.lower()}\nQ67890,15,{SEQ2.lower()}\n", False),
]


@pytest.mark.parametrize(("name", "text", "header"), LAYOUTS, ids=[x[0] for x in LAYOUTS])
def test_header_detection(tmp_path, name, text, header):
    path = tmp_path / name
    path.write_text(text)
    layout = D.sniff(path)
    assert layout.kind == "table"
    assert layout.header_detected is header, layout.why
    assert layout.columns == ([c.strip() for c in text.splitlines()[0].split(layout.delimiter)] if header
                              else [str(i) for i in range(len(layout.rows[0]))])
    assert len(layout.rows) == 2 and layout.summary


def test_fasta_layout(tmp_path):
    path = tmp_path / "x.fasta"
    path.write_text(f">a LABEL=1\n{SEQ}\n")
    assert D.sniff(path).kind == "fasta"


def test_headerless_roles_guessed(tmp_path):
    path = write_rows(tmp_path / "ptm.csv", ptm_rows())
    layout = D.sniff(path)
    assert not layout.header
    # the single-letter residue column is never the label; the accession is an id part and the group
    assert layout.roles == {"sequence": "3", "label": "0", "id": ["1"], "group": "1", "position": "2"}
    assert "column 1" in layout.summary and len(layout.preview()) == 5


def test_header_choice_overrides_detection(tmp_path):
    path = write_rows(tmp_path / "ptm.csv", ptm_rows())
    layout = D.sniff(path, header="yes")
    assert layout.header and not layout.header_detected and layout.columns[3] == ptm_rows()[0][3]
    table = D.read_table(tmp_path / "ptm.csv", header="no", sequence_column="3", label_column="0")
    assert len(table) == 60


def test_columns_by_number_and_multi_column_ids(tmp_path):
    path = write_rows(tmp_path / "ptm.csv", ptm_rows())
    table = D.read_table(path, sequence_column=3, label_column="0", id_columns=["1", "2"])
    assert table["id"].iloc[0] == "P00000_10" and table["id"].is_unique
    assert table["group"].iloc[0] == "P00000" and table["position"].iloc[0] == "10"
    assert table.attrs["warnings"] == []
    # with a header, a number still picks a column by its place
    named = write_rows(tmp_path / "named.csv", ptm_rows(), ["label", "accession", "site", "window", "residue"])
    table = D.read_table(named, sequence_column="3", label_column="label", id_columns="accession,site")
    assert table["id"].iloc[1] == "P00000_17" and table["sequence"].iloc[0] == ptm_rows()[0][3]


def test_guessed_repeated_ids_are_made_unique_with_a_warning(tmp_path):
    path = write_rows(tmp_path / "ptm.csv", ptm_rows())
    table = D.read_table(path)
    assert table["id"].tolist()[:3] == ["P00000", "P00000_2", "P00000_3"]
    report = D.validate(table)
    assert report.ok
    (warning,) = [w for w in report.warnings if w.code == "read"]
    assert "20 ids from column 1 repeat" in warning.message and "--id-columns" in warning.message
    assert "the 'Id part' role in the column mapper" in warning.render("app")


def test_chosen_repeated_ids_are_refused_naming_the_setting(tmp_path):
    path = write_rows(tmp_path / "ptm.csv", ptm_rows())
    with pytest.raises(DuplicateIdError, match=r"ids made from column 1 repeat: 'P00000' \(lines 1, 2, 3\).*"
                                               r"--id-columns") as info:
        D.read_table(path, id_columns=["1"])
    app = info.value.render("app")
    assert "the 'Id part' role in the column mapper" in app and "--id-columns" not in app
    assert "id_columns" not in str(info.value) and "id_columns" not in app


def test_errors_name_the_flag_or_the_widget(tmp_path):
    path = tmp_path / "in.csv"
    path.write_text(f"id,residues,label\na,{SEQ},1\n")
    with pytest.raises(DataError) as info:
        D.read_table(path)
    assert "--sequence-column" in str(info.value)
    assert "the 'Sequence' role in the column mapper" in info.value.render("app")
    with pytest.raises(LabelError, match=r"no column 'target'.*0: 'id', 1: 'residues'.*--label-column"):
        D.read_table(path, label_column="target", sequence_column="residues")
    with pytest.raises(DataError, match="no column '7'"):
        D.read_table(path, sequence_column=7)
    for exc in (info.value,):
        assert "sequence_column=" not in str(exc) and "sequence_column" not in exc.render("app")


def test_group_defaults_to_the_accession_column_and_splits_by_it(tmp_path):
    path = write_rows(tmp_path / "ptm.csv", ptm_rows())
    report = D.validate(D.read_table(path))
    split, info = make_split(report.table, method="protein", val_fraction=0.2, test_fraction=0.2, seed=1)
    groups = {part: set(rows["group"]) for part, rows in split.groupby("split")}
    assert not groups["train"] & groups["test"] and not groups["train"] & groups["val"]
    assert protein_groups(split).tolist() == split["group"].tolist()
    leak = leakage_report(split[split["split"] != "test"], split[split["split"] == "test"], grouped=True)
    assert leak["protein_overlap"]["n_test_items"] == 0 and "group column" in leak["grouping"]


def test_class_of_file():
    assert D.class_of_file("test_Pos_ST.fasta") == "Pos_ST"
    assert D.class_of_file("/x/train_Neg_ST.fasta.gz") == "Neg_ST"
    assert D.class_of_file("kinase.fa") == "kinase"


def test_config_settings_and_old_id_column():
    old = DataSpec.from_dict({"id_column": "accession", "train": ["a.csv"]})
    assert old.id_columns == ("accession",)
    args = build_parser().parse_args(["train", "--train", "a.csv", "--id-column", "acc,site", "--sequence-column",
                                      "3", "--header", "no", "--test-class-file", "test_Pos_ST.fasta",
                                      "--test-class-file", "neg=test_neg.fasta", "--class-name", "1=phosphosite"])
    spec = config_from_args(args).data
    assert spec.id_columns == ("acc", "site") and spec.sequence_column == "3" and spec.header == "no"
    assert [c for c, _ in spec.test_class_files] == ["Pos_ST", "neg"]
    assert spec.class_names == (("1", "phosphosite"),)
    with pytest.raises(ConfigError, match="either --test or --test-class-file"):
        DataSpec(test="t.fasta", test_class_files=(("a", "x.fasta"),))
    # a saved run config round-trips
    cfg = TrainConfig(data=spec)
    assert TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))).data == spec


def test_leakage_advice_fits_a_separate_test_file(tmp_path):
    rows = ptm_rows()
    table = D.validate(D.read_table(write_rows(tmp_path / "a.csv", rows))).table
    train, test = table.iloc[:40], table.iloc[40:].copy()
    test = pd.concat([test, table.iloc[:2]], ignore_index=True)  # test records from training proteins
    test["id"] = [f"t{i}" for i in range(len(test))]
    leak = leakage_report(train, test, test_file=True, grouped=True)
    text = " ".join(leak["warnings"])
    assert "separate test file" in text and "Use a split grouped by protein" not in text
    assert leak["actions"] == ["drop_overlapping_test", "hold_out_proteins"]
    assert set(leak["leaking_test_ids"]) >= {"t20", "t21"}
    plain_split = leakage_report(train, test)
    assert "Use a split grouped by protein" in " ".join(plain_split["warnings"])


# --------------------------------------------------------------------------- training from the CLI


@pytest.mark.slow
def test_cli_per_class_train_and_test_files(tmp_path, tiny_esm):
    rng = np.random.default_rng(3)
    for side, n in (("train", 16), ("test", 6)):
        for cls, positive in (("Pos_Y", True), ("Neg_Y", False)):
            text = "".join(f">{side}{cls}{i}\n{window(rng, positive=positive)}\n" for i in range(n))
            (tmp_path / f"{side}_{cls}.fasta").write_text(text)
    run = tmp_path / "run"
    code = main(["train", "--class-file", str(tmp_path / "train_Pos_Y.fasta"), "--class-file",
                 str(tmp_path / "train_Neg_Y.fasta"), "--test-class-file", str(tmp_path / "test_Pos_Y.fasta"),
                 "--test-class-file", str(tmp_path / "test_Neg_Y.fasta"), "--model", str(tiny_esm), "--epochs", "1",
                 "--no-baselines", "--batch-size", "8", "--run-dir", str(run), "--class-name", "Pos_Y=site"])
    assert code == 0
    report = json.loads((run / "test_report.json").read_text())
    assert report["n"] == 12 and report["classes"] == ["Neg_Y", "Pos_Y"]
    assert np.array(report["confusion_matrix"]).sum(axis=1).tolist() == [6, 6]
    from plmcore.predict import load_run
    from plmcore.present import class_name

    loaded = load_run(run, device="cpu")
    assert class_name(loaded, "Pos_Y") == "site" and class_name(loaded, "Neg_Y") == "Neg_Y"


@pytest.mark.slow
def test_cli_trains_on_a_headerless_table_grouped_by_accession(tmp_path, tiny_esm):
    path = write_rows(tmp_path / "ptm.csv", ptm_rows())
    run = tmp_path / "run"
    code = main(["train", "--train", str(path), "--id-columns", "1,2", "--split-method", "protein",
                 "--model", str(tiny_esm), "--epochs", "1", "--no-baselines", "--run-dir", str(run)])
    assert code == 0
    split = pd.read_csv(run / "split.csv", dtype=str)
    assert split["id"].iloc[0] == "P00000_10"
    parts = {p: set(rows["group"]) for p, rows in split.groupby("split")}
    assert not parts["train"] & parts["test"]
    config = json.loads((run / "config.json").read_text())["data"]
    assert config["id_columns"] == ["1", "2"] and config["split_method"] == "protein"


def variable_windows(n: int, seed: int = 0) -> tuple[list[tuple[str, str, str]], str]:
    """Windows of up to 41 residues cut at the ends of one protein (as DephosNet ships them)."""
    rng = np.random.default_rng(seed)
    protein = "".join(rng.choice(ALPHABET, size=120))
    protein = "".join("Y" if i % 6 == 3 else aa for i, aa in enumerate(protein))
    out = []
    for i, pos in enumerate(range(4, 121, 6)):
        out.append((f"s{i}", D.site_window(protein, pos, 41, pad=None), str(i % 2)))
    return out[:n], protein


def test_variable_windows_count_as_site_windows():
    records, _ = variable_windows(20)
    lengths = {len(s) for _, s, _ in records}
    assert max(lengths) == 41 and min(lengths) < 41
    info = D.window_info(pd.DataFrame({"sequence": [s for _, s, _ in records]}))
    assert info == {"aligned": True, "length": 41, "center_residues": ["Y"], "ends": "cut"}
    assert D.site_window("MKYAA", 3, 7, pad=None) == "MKYAA" and D.site_window("MKYAA", 3, 7) == "XMKYAAX"


@pytest.mark.slow
def test_variable_windows_train_and_scan_alike(tmp_path, tiny_esm):
    from plmcore.predict import load_run, scan_proteins

    records, protein = variable_windows(20)
    path = tmp_path / "w.fasta"
    path.write_text("".join(f">{rid} LABEL={lab}\n{seq}\n" for rid, seq, lab in records))
    run = tmp_path / "run"
    assert main(["train", "--train", str(path), "--model", str(tiny_esm), "--epochs", "1", "--no-baselines",
                 "--run-dir", str(run), "--val-fraction", "0.1", "--test-fraction", "0.1"]) == 0
    loaded = load_run(run, device="cpu")
    assert loaded.lab.window_ends == "cut" and loaded.window_length == 41
    scan = scan_proteins(loaded, [("prot", protein)])
    by_position = dict(zip(scan["position"], scan["window"]))
    # a scanned window is the training window of that site, short at the protein's ends, never padded
    assert by_position[4] == records[0][1] and len(by_position[4]) < 41 and "X" not in "".join(scan["window"])
    assert by_position[118] == records[-1][1] and by_position[64] == records[10][1]
    scored = loaded.predict_proba([records[0][1]])[0]
    row = scan[scan["position"] == 4].iloc[0]
    assert row["probability"] == pytest.approx(scored[loaded.positive_index], abs=1e-5)


# --------------------------------------------------------------------------- the Data page


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    monkeypatch.setenv("PLMCORE_WORKSPACE", str(tmp_path / "ws"))
    return tmp_path / "ws"


def open_data_page() -> AppTest:
    """The app opens on Home: go to the Data page."""
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page("pages/data.py").run()
    return at


def data_page() -> AppTest:
    at = open_data_page()
    at.radio(key="data_how").set_value("Upload a file").run()
    return at


def test_data_page_maps_a_headerless_table(workspace, tmp_path):
    path = write_rows(tmp_path / "ptm.csv", ptm_rows())
    at = data_page()
    at.text_input(key="data_name").set_value("ptm")
    at.file_uploader(key="data_upload").upload(path.name, path.read_bytes(), "text/csv")
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert "detected: no header row" in at.radio(key="data_labels_header").label
    roles = {i: at.multiselect(key=f"data_labels_role_0_{i}").value for i in range(5)}
    assert roles == {0: ["label"], 1: ["id", "group"], 2: ["position"], 3: ["sequence"], 4: []}
    assert any("Classes found: 0 (30), 1 (30)" in plain(c.value) for c in at.caption)
    at.multiselect(key="data_labels_role_0_2").set_value(["id", "position"]).run()
    assert any("ids from column 1 + column 2" in plain(i.value) for i in at.info)
    at.button(key="data_save").click().run()
    assert not at.error, [e.value for e in at.error]
    ds = DatasetStore().get("ptm")
    table = ds.table()
    assert table["id"].iloc[0] == "P00000_10" and table["group"].iloc[0] == "P00000"
    assert ds.meta["id_columns"] == ["1", "2"] and ds.meta["header"] == "auto"


def test_data_page_saves_id_sequence_class_without_touching_the_label(workspace, tmp_path):
    path = tmp_path / "plain.csv"
    path.write_text("id,sequence,class\n" + "".join(f"r{i},{window(np.random.default_rng(i))},{i % 2}\n"
                                                     for i in range(12)))
    at = data_page()
    at.text_input(key="data_name").set_value("plain")
    at.file_uploader(key="data_upload").upload(path.name, path.read_bytes(), "text/csv")
    at.run()
    assert "detected: a header row" in at.radio(key="data_labels_header").label
    at.button(key="data_save").click().run()
    assert not at.error, [e.value for e in at.error]
    assert any("Saved dataset 'plain': 12 sequences" in plain(s.value) for s in at.success)


def test_data_page_chosen_repeated_ids_name_the_mapper(workspace, tmp_path):
    path = write_rows(tmp_path / "ptm.csv", ptm_rows())
    at = data_page()
    at.file_uploader(key="data_upload").upload(path.name, path.read_bytes(), "text/csv")
    at.run()
    at.multiselect(key="data_labels_role_0_1").set_value(["group"]).run()
    at.multiselect(key="data_labels_role_0_4").set_value(["id"]).run()  # the residue column: repeats
    shown = " ".join(plain(e.value) for e in at.error)
    assert "the 'Id part' role in the column mapper" in shown and "--id-columns" not in shown


def test_data_page_per_class_test_files(workspace, tmp_path):
    rng = np.random.default_rng(5)
    files = {}
    for side, n in (("train", 8), ("test", 3)):
        for cls, positive in (("Pos_ST", True), ("Neg_ST", False)):
            files[f"{side}_{cls}.fasta"] = "".join(f">{side}{cls}{i}\n{window(rng, positive=positive)}\n"
                                                   for i in range(n)).encode()
    at = open_data_page()
    at.radio(key="data_how").set_value("One file per class").run()
    at.text_input(key="data_name").set_value("perclass")
    at.file_uploader(key="data_class_uploads").set_value(
        [(n, b, "text/plain") for n, b in files.items() if n.startswith("train")])
    at.file_uploader(key="data_class_test_uploads").set_value(
        [(n, b, "text/plain") for n, b in files.items() if n.startswith("test")])
    at.run()
    assert at.text_input(key="data_class_0").value == "Pos_ST" and at.text_input(key="data_class_test_1").value \
        == "Neg_ST"
    at.button(key="data_save_classes").click().run()
    assert not at.error, [e.value for e in at.error]
    ds = DatasetStore().get("perclass")
    assert sorted(ds.test_table()["label"].value_counts().items()) == [("Neg_ST", 3), ("Pos_ST", 3)]


def test_data_page_leakage_actions_for_a_separate_test_file(workspace, tmp_path):
    table = D.validate(D.read_table(write_rows(tmp_path / "ptm.csv", ptm_rows()), id_columns="1,2")).table
    test = table[table["group"].isin(["P00000", "P00001", "P00019"])].copy()
    test["id"] = "t_" + test["id"]
    test["sequence"] = [s[::-1] for s in test["sequence"]]
    DatasetStore().save("leaky", table, test=test, meta={"files": ["ptm.csv"]})
    at = open_data_page()
    at.button(key="data_split_save").click().run()
    text = " ".join(plain(w.value) for w in at.warning)
    assert "separate test file is what shares them" in text and "Use a split grouped by protein" not in text
    at.button(key="data_leak_holdout").click().run()
    assert at.checkbox(key="data_split_use_test").value is False
    assert at.radio(key="data_split_method").value == "protein"
    at.button(key="data_leak_drop").click().run()
    assert DatasetStore().get("leaky").test_table().empty


def test_data_page_class_names_reach_the_run_config(workspace, tmp_path):
    table = D.validate(D.read_table(write_rows(tmp_path / "ptm.csv", ptm_rows()), id_columns="1,2")).table
    DatasetStore().save("named", table, meta={"files": ["ptm.csv"]})
    at = open_data_page()
    at.text_input(key="data_classname_1").set_value("dephosphorylated")
    at.button(key="data_classnames_save").click().run()
    assert not at.exception and not at.error
    ds = DatasetStore().get("named")
    assert ds.meta["class_names"] == {"1": "dephosphorylated"}
    assert ds.data_spec().class_names == (("1", "dephosphorylated"),)
    at.run()  # the chart above the names is drawn again with them
    assert "dephosphorylated" in at.get("plotly_chart")[0].proto.spec
