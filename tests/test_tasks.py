"""Task types beside classification: regression, multi-label and per-residue, through the whole pipeline."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import plain
from scipy.stats import spearmanr
from sklearn import metrics as skm
from streamlit.testing.v1 import AppTest

from plmcore import data as D
from plmcore import tasks
from plmcore.archive import export_zip, import_zip
from plmcore.cli import main
from plmcore.config import DataSpec, TrainConfig
from plmcore.errors import DataError, LabelError
from plmcore.metrics import resample_counts
from plmcore.predict import load_run, predict_table, score_windows
from plmcore.runs import RUN_FILES, RunDir
from plmcore.train import train

TASKS = Path(__file__).resolve().parent / "data" / "tasks"
APP = str(Path(__file__).resolve().parents[1] / "app.py")
FAST = dict(model="random:tiny-esm", learning_rate=3e-3, epochs=15, patience=None)


# --------------------------------------------------------------------------- the task from the labels


@pytest.mark.parametrize("labels, sequences, task", [
    (["1", "0", "1"], ["MKT", "MKV", "MKL"], "classification"),
    (["pos", "neg"], ["MKT", "MKV"], "classification"),
    ([str(v) for v in np.linspace(0, 1, 30)], ["MKT"] * 30, "regression"),
    (["0.5", "1.5"], ["MKT", "MKV"], "regression"),
    (["er;nucleus", "cytosol"], ["MKT", "MKV"], "multilabel"),
    (["..1.0", "0...."], ["MKSTY", "SKLLA"], "residue"),
    ([str(v % 3) for v in range(30)], ["MKT"] * 30, "classification"),  # few integers that repeat: classes
])
def test_the_task_comes_from_the_labels(labels, sequences, task):
    assert tasks.detect(labels, sequences)[0] == task


def test_resolve_keeps_a_chosen_task_and_stop_metrics_fit_the_task():
    assert tasks.resolve("regression", ["1", "0"], ["MK", "MV"]) == "regression"
    assert tasks.stop_metric(TrainConfig(), "regression") == "spearman"
    assert tasks.stop_metric(TrainConfig(), "multilabel") == "macro_roc_auc"
    with pytest.raises(Exception, match="does not apply to a regression task"):
        tasks.stop_metric(TrainConfig(early_stopping_metric="mcc"), "regression")
    assert tasks.lower_is_better("val_rmse") and not tasks.lower_is_better("val_spearman")


# --------------------------------------------------------------------------- metrics against scipy/sklearn


def test_regression_metrics_on_resamples_equal_scipy_on_the_resampled_items():
    rng = np.random.default_rng(0)
    y = rng.normal(size=60)
    pred = y + rng.normal(size=60)
    y[5] = y[6]  # ties
    counts = resample_counts(60, 20, 3)
    boot = tasks.regression_resampled(y, pred, counts)
    for b in range(20):
        idx = np.repeat(np.arange(60), counts[b])
        assert boot["spearman"][b] == pytest.approx(spearmanr(y[idx], pred[idx])[0], abs=1e-9)
        assert boot["rmse"][b] == pytest.approx(np.sqrt(np.mean((pred[idx] - y[idx]) ** 2)))
        assert boot["r2"][b] == pytest.approx(skm.r2_score(y[idx], pred[idx]))


def test_multilabel_metrics_equal_sklearn_per_label_and_micro():
    rng = np.random.default_rng(1)
    Y = (rng.random((80, 3)) < 0.4).astype(int)
    P = np.clip(Y * 0.5 + rng.random((80, 3)) * 0.6, 0, 1)
    th = [0.5, 0.4, 0.6]
    m = tasks.multilabel_metrics(Y, P, th)
    for j in range(3):
        assert m[f"roc_auc:{j}"] == pytest.approx(skm.roc_auc_score(Y[:, j], P[:, j]))
        assert m[f"f1:{j}"] == pytest.approx(skm.f1_score(Y[:, j], P[:, j] >= th[j]))
    assert m["macro_roc_auc"] == pytest.approx(skm.roc_auc_score(Y, P, average="macro"))
    assert m["micro_roc_auc"] == pytest.approx(skm.roc_auc_score(Y, P, average="micro"))
    assert m["micro_f1"] == pytest.approx(skm.f1_score(Y, P >= np.array(th), average="micro"))


def test_chunks_cover_long_proteins_and_merge_by_averaging():
    spans = tasks.chunk_spans(1000, 300, 50)
    assert spans[0] == (0, 300) and spans[-1] == (700, 1000)
    assert all(b[0] < a[1] for a, b in zip(spans, spans[1:]))  # consecutive chunks overlap
    covered = np.zeros(1000)
    for s, e in spans:
        covered[s:e] += 1
    assert covered.min() >= 1
    parts = [np.full((e - s, 2), float(i)) for i, (s, e) in enumerate(spans)]
    merged = tasks.merge_chunks(spans, parts, 1000)
    assert merged[0, 0] == 0 and merged[-1, 0] == len(spans) - 1
    overlap = spans[1][0]
    assert merged[overlap, 0] == pytest.approx(0.5)  # the first two chunks averaged
    assert tasks.chunk_spans(200, 300, 50) == [(0, 200)]


# --------------------------------------------------------------------------- per-residue labels from a sites table


def test_tracks_from_a_sites_table(tmp_path):
    fasta = tmp_path / "p.fasta"
    fasta.write_text(">p1\nMSPKTAYS\n>p2\nMKLLTP\n")
    sites = tmp_path / "s.csv"
    sites.write_text("protein,position,label\np1,2,1\np2,5,1\n")
    table = D.residue_tracks(D.read_table(fasta, label_source="none"), D.read_sites(sites))
    assert table["label"].tolist() == [".1..0..0", "....1."]  # S/T are the types that count; others '.'
    bad = tmp_path / "bad.csv"
    bad.write_text("protein,position,label\np1,3,1\n")
    with pytest.raises(DataError, match=r"bad\.csv:2: position 3 of 'p1' is P"):
        D.residue_tracks(D.read_table(fasta, label_source="none"), D.read_sites(bad), residues="ST")
    far = tmp_path / "far.csv"
    far.write_text("p1,99,1\n")
    with pytest.raises(DataError, match="beyond the end"):
        D.residue_tracks(D.read_table(fasta, label_source="none"), D.read_sites(far))
    wide = tmp_path / "wide.csv"
    wide.write_text("p1,2,phospho\n")
    with pytest.raises(LabelError, match="not one character"):
        D.read_sites(wide)


def test_a_track_that_does_not_fit_its_sequence_is_refused():
    table = pd.DataFrame({"id": ["a", "b"], "sequence": ["MKSTY", "MKSTS"], "label": ["..1.0", "..1"]})
    report = D.validate(table, task="residue")
    assert not report.ok and "track of 3 characters for a sequence of 5" in report.errors[0].message


# --------------------------------------------------------------------------- whole runs


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, RunDir]:
    """One finished tiny run per task (the synthetic sets under tests/data/tasks)."""
    root = tmp_path_factory.mktemp("task_runs")
    specs = {
        "regression": DataSpec(train=(str(TASKS / "regression.csv"),), label_column="melting_temp"),
        "multilabel": DataSpec(train=(str(TASKS / "multilabel.fasta"),)),
        "residue": DataSpec(train=(str(TASKS / "residues.fasta"),), sites_file=str(TASKS / "residues_sites.csv")),
        "tracks": DataSpec(train=(str(TASKS / "residues_tracks.csv"),), label_column="labels"),
    }
    return {name: train(TrainConfig(data=spec, **FAST), run_dir=root / name) for name, spec in specs.items()}


@pytest.mark.parametrize("name, metric, floor", [
    ("regression", "spearman", 0.8), ("multilabel", "macro_roc_auc", 0.85), ("residue", "roc_auc", 0.75),
    ("tracks", "roc_auc", 0.75),
])
def test_each_task_learns_and_reports_with_intervals_baselines_and_a_verdict(runs, name, metric, floor):
    run = runs[name]
    assert run.status()["state"] == "finished", run.log_tail()
    report = run.report()
    value = report["metrics"][metric]
    lo, hi = report["ci95"][metric]
    assert value > floor and lo <= value <= hi
    assert run.status()["test_metric_name"] == (metric if name != "tracks" else "roc_auc")
    assert run.baselines()["baselines"] and run.comparison()["verdict"]
    assert "test set" in run.comparison()["verdict"]
    assert run.leakage() is not None
    assert run.predictions_path("test").exists()


def test_regression_predictions_are_in_the_targets_units(runs):
    run = runs["regression"]
    labels = RunDir(run.path).labels()
    assert labels["task"] == "regression" and labels["target_mean"] > 20  # standardised on the training split
    loaded = load_run(run)
    out = score_windows(loaded, ["a", "b"], ["AILMFVWAILMFVWAILMFVWAILMFVWAILMFVWAILMF",
                                              "DEKRDEKRDEKRDEKRDEKRDEKRDEKRDEKRDEKRDEKR"])
    assert out["predicted"][0] > out["predicted"][1]  # hydrophobic proteins melt higher in this set
    points = run.report()["points"]
    assert len(points["true"]) == run.report()["n"]
    # the validation metrics logged during training are in the same units as the test report
    import json

    last = [json.loads(line) for line in (run.path / "metrics.jsonl").read_text().splitlines()
            if '"val_rmse"' in line][-1]
    spread = np.std(pd.to_numeric(pd.read_csv(run.path / "split.csv", dtype=str)["label"]))
    assert 0 < last["val_rmse"] < 2 * spread and last["val_r2"] > -1, last


def test_multilabel_calls_each_label_at_its_own_threshold(runs):
    run = runs["multilabel"]
    decision = run.decision()
    assert len(decision["thresholds"]) == 4  # cytosol, er, membrane, nucleus
    loaded = load_run(run)
    seq = "ACDEFGHIMNQRSTVWYACDEKDELFGHIMNQRSTVWYACDEFGHIMNQR"  # carries the KDEL of the er
    out = score_windows(loaded, ["x"], [seq])
    assert "er" in out["predicted"][0].split(";")
    assert {f"prob_{c}" for c in loaded.classes} <= set(out.columns)


def test_per_residue_scores_a_whole_protein_in_one_pass_each(runs):
    loaded = load_run(runs["residue"])
    assert loaded.lab.residues == "ST"
    protein = "MKLSPAAGTAYRRSLLKTPEE" * 60  # 1,260 residues: longer than a chunk of the tiny model? no: ESM 1022
    calls = []
    original = loaded.model.forward
    loaded.model.forward = lambda batch: calls.append(batch.input_ids.shape) or original(batch)
    out = predict_table(loaded, pd.DataFrame({"id": ["p"], "sequence": [protein]}))
    sites = out["sites"]
    assert set(sites["residue"]) == {"S", "T"} and len(sites) == protein.count("S") + protein.count("T")
    assert len(calls) <= 2  # one pass (two overlapping chunks for a protein over the model's limit)
    sp = sites[sites["position"].isin([i + 1 for i in range(len(protein) - 1) if protein[i:i + 2] in ("SP", "TP")])]
    other = sites.drop(sp.index)
    assert sp["probability"].mean() > other["probability"].mean()


def test_every_task_is_evaluated_and_predicted_on_the_cli(runs, capsys, tmp_path):
    for name, run in runs.items():
        assert main(["evaluate", str(run.path)]) == 0
        text = capsys.readouterr().out
        assert "95% bootstrap intervals" in text and "Verdict" in text, name
    assert main(["predict", str(runs["residue"].path), "--input", str(TASKS / "residues.fasta"),
                 "--output", str(tmp_path / "sites.csv")]) == 0
    sites = pd.read_csv(tmp_path / "sites.csv")
    assert {"protein_id", "position", "residue", "probability", "predicted"} <= set(sites.columns)
    assert main(["evaluate", str(runs["regression"].path), "--data", str(TASKS / "regression.csv")]) == 2
    assert "no label column" in capsys.readouterr().err  # the file's label column has its own name


def test_a_per_residue_run_exports_and_imports(runs, tmp_path):
    data = export_zip(runs["residue"])
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        names = {n.split("/", 1)[1] for n in zf.namelist()}
    assert names <= set(RUN_FILES) and "test_predictions.csv" in names
    imported = import_zip(data, tmp_path / "runs").run
    assert imported.problem() is None and imported.labels()["task"] == "residue"


@pytest.mark.parametrize("name", ["regression", "multilabel"])
def test_cross_validation_of_a_task(name, tmp_path, capsys):
    args = ["cv", "--model", "random:tiny-esm", "--epochs", "1", "--folds", "3", "--no-baselines",
            "--run-dir", str(tmp_path / "cv")]
    if name == "regression":
        args += ["--train", str(TASKS / "regression.csv"), "--label-column", "melting_temp"]
    else:
        args += ["--train", str(TASKS / "multilabel.fasta")]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert ("Spearman" if name == "regression" else "macro ROC-AUC") in out and "3/3 folds" in out


# --------------------------------------------------------------------------- the app


@pytest.fixture
def app_with(runs, tmp_path, monkeypatch):
    """The app over a workspace holding the finished task runs."""
    monkeypatch.setenv("PLMCORE_WORKSPACE", str(tmp_path / "ws"))
    for run in runs.values():
        import_zip(export_zip(run), tmp_path / "ws" / "runs")

    def open_page(page: str) -> AppTest:
        at = AppTest.from_file(APP, default_timeout=120)
        at.run()
        at.switch_page(f"pages/{page}.py").run()
        assert not at.exception, at.exception
        return at

    return open_page


def test_runs_page_shows_each_task(app_with):
    at = app_with("runs")
    for name in ("regression", "multilabel", "residue"):
        at.selectbox(key="runs_selected").set_value(name).run()
        assert not at.exception and not at.error, [e.value for e in at.error]
        text = " ".join(d.value.to_string() for d in at.dataframe)
        expected = {"regression": "Spearman", "multilabel": "macro ROC-AUC", "residue": "ROC-AUC"}[name]
        assert expected in text, name
        assert len(at.get("plotly_chart")) >= 2
        assert any("test set" in plain(i.value) for i in at.info)  # the verdict


def test_predict_page_gives_values_labels_and_a_residue_track(app_with):
    at = app_with("predict")
    expectations = {"regression": "predicted", "multilabel": "P(er)", "residue": "P("}
    for name, column in expectations.items():
        at.selectbox(key="pred_run").set_value(name).run()
        at.text_area(key="pred_text").set_value(">p1\nMKLSPAAGTAYRRSLLKTPEEKDELACDEFGHIKLMNPQ\n").run()
        at.button(key="pred_go").click().run()
        assert not at.exception and not at.error, (name, [e.value for e in at.error])
        frames = [d.value for d in at.dataframe]
        assert any(any(str(c).startswith(column) for c in f.columns) for f in frames), (name, [list(f.columns) for f in frames])
        if name == "residue":
            assert at.get("plotly_chart")  # the probability along the protein


# --------------------------------------------------------------------------- reports and Hub folders (issue 14)


def test_the_report_is_one_offline_file_with_every_section(runs, tmp_path):
    from plotly.offline import get_plotlyjs

    from plmcore.report import write_report

    PLOTLY_JS = get_plotlyjs()
    for name in ("regression", "multilabel", "residue"):
        out = write_report([runs[name].path], tmp_path / f"{name}.html")
        text = out.read_text()
        assert text.count(PLOTLY_JS) == 1 and text.count("Plotly.newPlot") >= 3  # plotly.js once, then figures
        ours = text.replace(PLOTLY_JS, "")  # the page and its figures, without the library
        assert "<script src" not in ours and not re.search(r"""(src|href)=["']https?:""", ours)  # nothing fetched
        for section in ("1. The question", "2. The answer", "3. The evidence", "4. How it was made",
                        "Random weights", "Re-run it exactly", "Leakage", "Verdict"):
            assert section in text, (name, section)
        assert out.stat().st_size < 6e6


def test_a_comparison_and_a_cross_validation_report(runs, tmp_path):
    from plmcore.report import write_report

    text = write_report([runs["residue"].path, runs["tracks"].path], tmp_path / "cmp.html").read_text()
    assert "Runs compared" in text and "residue" in text and "tracks" in text
    assert main(["cv", "--train", str(TASKS / "multilabel.fasta"), "--model", "random:tiny-esm", "--epochs", "1",
                 "--folds", "2", "--no-baselines", "--run-dir", str(tmp_path / "cv")]) == 0
    text = write_report([tmp_path / "cv"], tmp_path / "cv.html").read_text()
    assert "Mean ± standard deviation over 2 of 2 folds" in text and "per fold" in text


@pytest.mark.parametrize("name", ["regression", "multilabel", "residue"])
def test_a_hub_folder_loads_back_with_identical_predictions(runs, tmp_path, name):
    from huggingface_hub import ModelCard

    from plmcore.predict import load_model

    folder = tmp_path / "model"
    assert main(["export", str(runs[name].path), "--format", "hub", "-o", str(folder)]) == 0
    assert {p.name for p in folder.iterdir()} == {"adapter_config.json", "adapter_model.safetensors",
                                                  "head.safetensors", "plmcore.json", "README.md"}
    card = ModelCard.load(folder / "README.md")
    assert card.data.library_name == "peft" and "lora" in card.data.tags
    assert "## Limitations" in card.text and "## How to load it" in card.text
    seqs = ["MKLSPAAGTAYRRSLLKTPEEKDELACDEFGHIKLMNPQ", "AILMFVWAILMFVWAILMFVWAILMFVWAILMFVWAILMF"]
    a, b = load_model(runs[name].path).predict(seqs), load_model(folder).predict(seqs)
    if name == "residue":
        assert all(np.array_equal(x, y) for x, y in zip(a, b))
    else:
        assert np.array_equal(a, b)


def test_a_hub_id_that_cannot_be_reached_says_how_to_fix(monkeypatch):
    from plmcore.errors import ModelLoadError
    from plmcore.predict import load_model

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError, match="offline mode is on"):
        load_model("somelab/no-such-plmcore-model")


# --------------------------------------------------------------------------- trained from the app


@pytest.mark.parametrize("name, path, label_column, live", [
    ("regression", "regression.csv", "melting_temp", "Validation Spearman"),
    ("multilabel", "multilabel.fasta", None, "Validation macro ROC-AUC"),
    ("residue", "residues_tracks.csv", "labels", "Validation ROC-AUC"),
])
def test_each_task_trains_from_the_train_page(name, path, label_column, live, tmp_path, monkeypatch):
    """A saved dataset of each task type: the Train page detects the task, trains it in a worker, and the
    run has a test report with intervals, baselines and a verdict."""
    import time

    from plmcore.datasets import DatasetStore
    from plmcore.runs import list_runs

    monkeypatch.setenv("PLMCORE_WORKSPACE", str(tmp_path / "ws"))
    kwargs = {"label_source": "column", "label_column": label_column} if label_column else {}
    DatasetStore().save(name, D.validate(D.read_table(TASKS / path, **kwargs)).table)
    at = AppTest.from_file(APP, default_timeout=180)
    at.run()
    at.switch_page("pages/train.py").run()
    assert not at.exception, at.exception
    at.selectbox(key="train_dataset").set_value(name).run()
    tiny = next(o for o in at.selectbox(key="train_model").options if o.startswith("Tiny ESM"))
    at.selectbox(key="train_model").set_value(tiny).run()
    at.number_input(key="train_epochs").set_value(4).run()
    shown = " ".join(plain(c.value) for c in at.caption)
    assert f"Task: {name if name != 'residue' else 'residue'}" in shown.replace("*", ""), shown
    at.button(key="train_start").click().run()
    assert not at.error, [e.value for e in at.error]
    run = list_runs()[0]
    deadline = time.time() + 240
    while time.time() < deadline and run.status().get("state") not in ("finished", "failed", "cancelled"):
        time.sleep(1)
    at.run()
    assert run.status()["state"] == "finished", run.log_tail()
    assert run.labels()["task"] == name
    assert any(m.label.startswith(live) for m in at.metric), [m.label for m in at.metric]
    report = run.report()
    metric = run.status()["test_metric_name"]
    assert metric in report["ci95"] and "test set" in run.comparison()["verdict"]


def test_a_regression_split_is_stratified_by_target_quintile_without_warnings(recwarn):
    from plmcore.splits import split_table

    rng = np.random.default_rng(0)
    values = rng.normal(40, 8, 200)
    table = pd.DataFrame({"id": [f"p{i}" for i in range(200)], "sequence": ["MKT"] * 200,
                          "label": [f"{v:.2f}" for v in values]})
    split = split_table(table, val_fraction=0.2, test_fraction=0.2, seed=1)
    assert not [w for w in recwarn if "stratified" in str(w.message)]
    quintile = pd.Series(np.searchsorted(np.quantile(values, [0.2, 0.4, 0.6, 0.8]), values))
    for part in ("val", "test"):
        counts = quintile[split["split"] == part].value_counts()
        assert len(counts) == 5 and counts.max() - counts.min() <= 1, (part, counts.to_dict())
