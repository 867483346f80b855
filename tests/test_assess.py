"""After a run: threshold, calibration, leakage, baselines and verdict; cross-validation; the recipe."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import motif_windows, write_fasta

from plmcore.cli import main
from plmcore.config import DataSpec, TrainConfig
from plmcore.cv import create_cv, run_cv
from plmcore.errors import ConfigError
from plmcore.predict import load_run
from plmcore.train import train


@pytest.fixture(scope="module")
def dephos_run(tmp_path_factory, tiny_esm):
    shared = __import__("pathlib").Path(__file__).resolve().parents[1].parent / "shared" / "data" / "dephos_Y"
    if not shared.is_dir():
        pytest.skip(f"../shared/data is absent: needs {shared}")
    config = TrainConfig(model=str(tiny_esm), epochs=2, learning_rate=1e-3, threshold_objective="specificity",
                         threshold_target=0.8,
                         data=DataSpec(train=(str(shared / "train_sequences.fasta"),),
                                       test=str(shared / "test_sequences.fasta"), val_fraction=0.2))
    return train(config, run_dir=tmp_path_factory.mktemp("assess") / "run")


def test_run_writes_baselines_comparison_and_verdict(dephos_run):
    base = json.loads((dephos_run.path / "baselines.json").read_text())
    assert set(base["baselines"]) == {"composition + logistic regression", "one-hot + logistic regression", "frozen embeddings + logistic regression"}
    for entry in base["baselines"].values():
        assert "validation" in entry["c_selection"]  # regularisation never tuned on test
        assert set(entry["test"]["ci95"]) >= {"roc_auc", "mcc"}
    comparison = json.loads((dephos_run.path / "comparison.json").read_text())
    assert comparison["best_baseline"] in base["baselines"]
    assert comparison["best_chosen_by"] == "highest validation ROC-AUC"
    verdict = comparison["verdict"]
    assert "(n=50)" in verdict and "95% CI" in verdict
    diff = comparison["comparisons"][comparison["best_baseline"]]["metrics"]["roc_auc"]
    assert diff["ci95"][0] <= diff["difference"] <= diff["ci95"][1]
    assert dephos_run.status()["verdict"] == verdict


def test_leakage_of_the_tutorial_split_is_flagged(dephos_run):
    leak = json.loads((dephos_run.path / "leakage.json").read_text())
    assert leak["leaks"]
    # everything the model saw (train + validation) is the full training file
    assert leak["protein_overlap"]["n_test_items"] == 30
    assert leak["overlapping_windows"]["n_test_items"] >= 9
    assert any("come from proteins that also have windows in the training set" in w for w in leak["warnings"])


def test_threshold_meets_target_specificity_on_validation_and_is_used(dephos_run):
    decision = json.loads((dephos_run.path / "threshold.json").read_text())
    assert decision["objective"] == "specificity"
    val = pd.read_csv(dephos_run.predictions_path("val"), dtype={"label": str})
    neg = val["label"] == "0"
    specificity = (val.loc[neg, "prob_1"] < decision["threshold"]).mean()
    assert specificity >= 0.8
    report = dephos_run.report()
    assert report["at_threshold"]["threshold"] == decision["threshold"]
    assert "brier" in report["calibration"] and sum(report["calibration"]["counts"]) == 50
    loaded = load_run(dephos_run.path)
    assert loaded.threshold == decision["threshold"]


def test_temperature_scaling_is_fitted_on_validation_and_applied(tiny_esm, tmp_path):
    fasta = write_fasta(tmp_path / "m.fasta", motif_windows(200))
    config = TrainConfig(model=str(tiny_esm), max_steps=10, temperature_scaling=True, baselines=False,
                         data=DataSpec(train=(str(fasta),), val_fraction=0.2, test_fraction=0.2))
    run = train(config, run_dir=tmp_path / "run")
    T = json.loads((run.path / "threshold.json").read_text())["temperature"]
    assert T and T > 0
    saved = pd.read_csv(run.predictions_path("test"))
    loaded = load_run(run.path)
    np.testing.assert_allclose(loaded.predict_proba(saved["sequence"].tolist())[:, 1], saved["prob_1"], atol=1e-5)


def test_threshold_settings_are_validated():
    with pytest.raises(ConfigError, match="needs threshold_target"):
        TrainConfig(threshold_objective="specificity")
    with pytest.raises(ConfigError, match="threshold_objective='best'"):
        TrainConfig(threshold_objective="best")


def test_cross_validation_reports_mean_sd_and_folds(tiny_esm, tmp_path):
    from plmcore import data as D

    fasta = write_fasta(tmp_path / "m.fasta", motif_windows(120))
    table = D.validate(D.read_table(fasta)).table
    config = TrainConfig(model=str(tiny_esm), epochs=2, learning_rate=3e-3, data=DataSpec(val_fraction=0.15))
    cv = create_cv(config, table, folds=3, grouped=True, cv_dir=tmp_path / "cv")
    status = run_cv(cv.path)
    assert status["state"] == "finished"
    summary = json.loads((cv.path / "cv.json").read_text())
    assert summary["completed"] == 3
    assert summary["how"].startswith("stratified")  # synthetic ids carry no accession: plain folds
    lora = summary["summary"]["fine-tuned (LoRA)"]["roc_auc"]
    assert len(lora["folds"]) == 3 and lora["sd"] is not None
    assert lora["mean"] == pytest.approx(np.mean(lora["folds"]))
    assert "composition + logistic regression" in summary["summary"]
    # the three test folds are disjoint and cover the data
    tested = [set(pd.read_csv(cv.path / f"fold_{i}" / "split.csv").query("split == 'test'")["id"]) for i in (1, 2, 3)]
    assert sum(len(t) for t in tested) == len(set.union(*tested)) == 120


def test_recipe_command_runs_the_tutorial_protocol(tiny_esm, shared_data, tmp_path, capsys):
    d = shared_data / "dephos_Y"
    code = main(["recipe", "tutorial", "--model", str(tiny_esm), "--epochs", "1", "--train",
                 str(d / "train_sequences.fasta"), "--test", str(d / "test_sequences.fasta"),
                 "--run-dir", str(tmp_path / "recipe")])
    out = capsys.readouterr().out
    assert code == 0
    assert "Leaderboard on the same test split (n=50)" in out
    assert "Verdict" in out and "30 of 50 test windows" in out
    config = json.loads((tmp_path / "recipe" / "config.json").read_text())
    assert (config["lora_r"], config["batch_size"], config["grad_accum"], config["learning_rate"]) == (4, 1, 8, 3e-4)
    assert config["pooling"] == "mean" and config["data"]["val_fraction"] == 0.2
    split = pd.read_csv(tmp_path / "recipe" / "split.csv")
    assert split["split"].value_counts().to_dict() == {"train": 161, "test": 50, "val": 40}
