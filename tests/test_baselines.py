"""Baselines reproduce scikit-learn; paired comparisons and verdicts are honest."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from plmcore.baselines import (
    MAX_ITER,
    compare_to_baselines,
    composition_features,
    fit_logistic,
    leaderboard,
    onehot_features,
    paired_bootstrap,
    run_baselines,
    verdict,
)
from plmcore.data import read_table, validate
from plmcore.errors import ConfigError, DataError
from plmcore.metrics import evaluation_report, resample_counts, resampled_metrics

BACKGROUND = np.array(list("ACEFGHILMNQRSTV"))  # no P, K or D: those mark the classes


def motif_table(n: int = 120, length: int = 15, seed: int = 0, classes: int = 2) -> pd.DataFrame:
    """Windows whose class sets the residue after the centre: learnable by one-hot, not by chance."""
    rng = np.random.default_rng(seed)
    rows = []
    motif = "PKD"
    for i in range(n):
        seq = rng.choice(BACKGROUND, size=length)
        label = i % classes
        if label or classes > 2:
            seq[length // 2 + 1] = motif[label]
        split = ("train", "train", "train", "val", "test")[i % 5]
        rows.append((f"w{i}", "".join(seq), str(label), split))
    return pd.DataFrame(rows, columns=["id", "sequence", "label", "split"])


# --------------------------------------------------------------------------- features


def test_composition_features_are_frequencies_of_standard_residues() -> None:
    X = composition_features(["AAC", "ACXXU", ""])
    assert X.shape == (3, 20)
    assert X[0, 0] == pytest.approx(2 / 3) and X[0, 1] == pytest.approx(1 / 3)
    assert X[1, 0] == X[1, 1] == 0.5  # X and U are ignored, not counted in the length
    assert X[2].sum() == 0


def test_onehot_features_are_position_major_with_x() -> None:
    X = onehot_features(["AC", "XU"])
    assert X.shape == (2, 42)
    assert X[0, 0] == 1 and X[0, 21 + 1] == 1  # A at position 0, C at position 1
    assert X[1, 20] == 1 and X[1, 21 + 20] == 1  # X, and rare U counted as X
    assert X.sum() == 4
    with pytest.raises(ConfigError, match="one length"):
        onehot_features(["AC", "ACD"])


# --------------------------------------------------------------------------- fitting


def test_fixed_c_reproduces_a_hand_written_sklearn_model() -> None:
    table = motif_table()
    train, test = table[table.split == "train"], table[table.split == "test"]
    X_tr, X_te = composition_features(list(train.sequence)), composition_features(list(test.sequence))
    y_tr, y_te = train.label.astype(int).to_numpy(), test.label.astype(int).to_numpy()
    model, C, info = fit_logistic(X_tr, y_tr, Cs=(0.1,))
    reference = LogisticRegression(C=0.1, max_iter=MAX_ITER).fit(X_tr, y_tr)
    assert C == 0.1 and info["selection"].startswith("fixed C=0.1")
    np.testing.assert_array_equal(model.predict_proba(X_te), reference.predict_proba(X_te))
    assert roc_auc_score(y_te, model.predict_proba(X_te)[:, 1]) == roc_auc_score(
        y_te, reference.predict_proba(X_te)[:, 1]
    )
    scaled, _, _ = fit_logistic(X_tr, y_tr, Cs=(0.1,), scale=True)
    ref_scaled = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=MAX_ITER)).fit(X_tr, y_tr)
    np.testing.assert_array_equal(scaled.predict_proba(X_te), ref_scaled.predict_proba(X_te))


def test_c_is_chosen_on_validation_only() -> None:
    table = motif_table(seed=1)
    parts = {s: table[table.split == s] for s in ("train", "val")}
    X = {s: onehot_features(list(p.sequence)) for s, p in parts.items()}
    y = {s: p.label.astype(int).to_numpy() for s, p in parts.items()}
    Cs = (0.001, 0.1, 10)
    _, C, info = fit_logistic(X["train"], y["train"], X["val"], y["val"], Cs=Cs)
    by_hand = {
        c: roc_auc_score(
            y["val"],
            LogisticRegression(C=c, max_iter=MAX_ITER).fit(X["train"], y["train"]).predict_proba(X["val"])[:, 1],
        )
        for c in Cs
    }
    best = max(by_hand.values())
    assert C == min(c for c in Cs if by_hand[c] == best)
    assert info["scores"] == pytest.approx(by_hand)
    assert info["selection"].startswith("validation split (24 records")


def test_without_validation_c_comes_from_inner_cv() -> None:
    table = motif_table(seed=2)
    train = table[table.split != "test"]
    X, y = composition_features(list(train.sequence)), train.label.astype(int).to_numpy()
    _, C, info = fit_logistic(X, y, Cs=(0.01, 1))
    assert "5-fold stratified cross-validation on the training split" in info["selection"]
    assert set(info["scores"]) == {0.01, 1.0} and C in (0.01, 1.0)
    one_class_val = fit_logistic(X[:60], y[:60], X[60:64], np.ones(4, dtype=int), Cs=(0.01, 1))[2]
    assert one_class_val["selection"].startswith("the validation split cannot measure ROC-AUC (one class), so 5-fold")
    with pytest.raises(ConfigError, match="metric='auc'"):
        fit_logistic(X, y, metric="auc")
    with pytest.raises(ConfigError, match="positive numbers"):
        fit_logistic(X, y, Cs=(0, 1))


# --------------------------------------------------------------------------- run_baselines


def test_run_baselines_binary_is_json_ready_and_learns_the_motif() -> None:
    table = motif_table()
    result = run_baselines(table, Cs=(0.1, 1), n_boot=200)
    json.dumps(result, allow_nan=False)
    assert result["classes"] == ["0", "1"] and result["positive"] == "1"
    assert (result["n_train"], result["n_val"], result["n_test"]) == (72, 24, 24)
    onehot = result["baselines"]["one-hot + logistic regression"]
    assert onehot["test"]["metrics"]["roc_auc"] > 0.95
    assert list(onehot["test_probabilities"]) == result["test_ids"]
    assert all(len(p) == 2 and sum(p) == pytest.approx(1) for p in onehot["test_probabilities"].values())
    assert onehot["c_selection"].startswith("validation split")
    assert onehot["val_metrics"]["roc_auc"] > 0.9
    assert set(onehot["test"]["ci95"]) >= {"roc_auc", "mcc", "accuracy"}
    assert result["skipped"] == {}


def test_run_baselines_multiclass_and_frozen_embeddings() -> None:
    table = motif_table(n=150, classes=3)
    calls = []
    projection = np.random.default_rng(0).normal(size=(15 * 21, 64))

    def embed(seqs: list[str]) -> np.ndarray:
        calls.append(len(seqs))
        return onehot_features(seqs) @ projection  # dense stand-in for frozen model embeddings

    result = run_baselines(table, embed_fn=embed, Cs=(0.1,), n_boot=100)
    assert result["classes"] == ["0", "1", "2"] and result["positive"] is None
    assert calls == [150]  # one call for every sequence
    frozen = result["baselines"]["frozen embeddings + logistic regression"]
    assert frozen["standardised"] is True
    assert frozen["test"]["metrics"]["accuracy"] > 0.9
    assert all(len(p) == 3 for p in frozen["test_probabilities"].values())


def test_run_baselines_skips_onehot_for_unequal_lengths_and_checks_inputs() -> None:
    table = motif_table()
    table.loc[0, "sequence"] = table.loc[0, "sequence"] + "AAA"
    result = run_baselines(table, Cs=(1,), n_boot=50)
    assert "one-hot + logistic regression" not in result["baselines"]
    assert "one length" in result["skipped"]["one-hot + logistic regression"]
    with pytest.raises(DataError, match="one embedding row per sequence"):
        run_baselines(table, embed_fn=lambda seqs: np.zeros((3, 4)), Cs=(1,), n_boot=50)
    with pytest.raises(DataError, match="no test records"):
        run_baselines(table[table.split != "test"], Cs=(1,))
    with pytest.raises(DataError, match="lacks the column"):
        run_baselines(table.drop(columns="split"))


def test_dephos_baselines_reproduce_the_readme_table(shared_data: Path) -> None:
    train = validate(read_table(shared_data / "dephos_Y" / "train_sequences.fasta")).table
    test = validate(read_table(shared_data / "dephos_Y" / "test_sequences.fasta")).table
    table = pd.concat([train.assign(split="train"), test.assign(split="test")], ignore_index=True)
    result = run_baselines(table, Cs=(0.1,), n_boot=1000)
    composition = result["baselines"]["composition + logistic regression"]["test"]["metrics"]
    onehot = result["baselines"]["one-hot + logistic regression"]["test"]["metrics"]
    # README: composition + logistic regression (C=0.1) MCC 0.510, accuracy 0.70, ROC-AUC 0.817;
    # one-hot + logistic regression (C=0.1) MCC 0.439, accuracy 0.72, ROC-AUC 0.736
    assert composition["roc_auc"] == pytest.approx(0.817, abs=5e-4)
    assert composition["accuracy"] == pytest.approx(0.70)
    assert composition["mcc"] == pytest.approx(0.510, abs=5e-4)
    assert onehot["roc_auc"] == pytest.approx(0.736, abs=5e-4)
    assert onehot["accuracy"] == pytest.approx(0.72)
    assert onehot["mcc"] == pytest.approx(0.439, abs=5e-4)


# --------------------------------------------------------------------------- comparisons


def test_paired_bootstrap_uses_the_same_resamples_for_both_models() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 60)
    a = np.clip(y * 0.3 + rng.random(60) * 0.7, 0, 1)
    b = rng.random(60)
    result = paired_bootstrap(y, a, b, n_boot=500, seed=3)
    counts = resample_counts(60, 500, 3)
    diff = resampled_metrics(y, a, counts)["roc_auc"] - resampled_metrics(y, b, counts)["roc_auc"]
    auc = result["metrics"]["roc_auc"]
    assert auc["ci95"] == pytest.approx(list(np.percentile(diff, [2.5, 97.5])))
    assert auc["p_a_better"] == pytest.approx(np.mean(diff > 0))
    assert auc["difference"] == pytest.approx(roc_auc_score(y, a) - roc_auc_score(y, b))
    same = paired_bootstrap(y, a, a, n_boot=200)
    assert same["metrics"]["roc_auc"]["ci95"] == [0.0, 0.0]
    assert same["metrics"]["mcc"]["p_a_better"] == 0.0
    with pytest.raises(DataError, match="same 60 test items"):
        paired_bootstrap(y, a, b[:10])


def test_paired_bootstrap_multiclass_decides_on_mcc() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 90)
    good = np.eye(3)[y] * 0.7 + 0.1
    noise = rng.dirichlet(np.ones(3), size=90)
    result = paired_bootstrap(y, good, noise, n_boot=300)
    assert result["task"] == "multiclass" and result["decision_metric"] == "mcc"
    assert result["metrics"]["mcc"]["ci95"][0] > 0
    assert verdict(result, 90, "fine-tuned", "baseline").startswith("fine-tuned is better than baseline")


def test_verdict_sentences() -> None:
    rng = np.random.default_rng(2)
    y = np.repeat([0, 1], 40)
    perfect = y * 0.8 + 0.1
    chance = rng.random(80)
    better = verdict(paired_bootstrap(y, perfect, chance, n_boot=300), 80, "ProtT5 + LoRA", "composition + logistic regression")
    assert better.startswith("ProtT5 + LoRA is better than composition + logistic regression on this test set (n=80): ROC-AUC 1.00 vs")
    worse = verdict(paired_bootstrap(y, chance, perfect, n_boot=300), 80, "ProtT5 + LoRA", "composition + logistic regression")
    assert worse.startswith("composition + logistic regression is better than ProtT5 + LoRA")
    assert "difference +" in worse  # stated from the winner's side
    close = verdict(paired_bootstrap(y, chance, chance[::-1], n_boot=300), 80, "a", "b")
    assert close.startswith("No clear difference between a and b on this test set (n=80): ROC-AUC")
    assert "95% CI \u2212" in close


def test_leaderboard_sorts_by_roc_auc_with_intervals() -> None:
    y = np.repeat([0, 1], 20)
    rng = np.random.default_rng(3)
    reports = {
        "chance": evaluation_report(y, np.column_stack([1 - (p := rng.random(40)), p]), ["0", "1"], n_boot=100),
        "good": evaluation_report(y, np.column_stack([1 - (q := y * 0.6 + 0.2), q]), ["0", "1"], n_boot=100),
    }
    board = leaderboard(reports)
    assert list(board["model"]) == ["good", "chance"]
    assert {"roc_auc", "roc_auc_lo", "roc_auc_hi", "mcc_lo", "accuracy_hi"} <= set(board.columns)
    assert board.loc[0, "roc_auc_lo"] <= board.loc[0, "roc_auc"] <= board.loc[0, "roc_auc_hi"]
    as_entries = leaderboard(
        [{"name": "good", "test": reports["good"]}, {"name": "chance", "report": reports["chance"]}]
    )
    pd.testing.assert_frame_equal(board, as_entries)
    with pytest.raises(DataError, match="needs a 'name'"):
        leaderboard([{"test": reports["good"]}])


def test_compare_to_baselines_matches_items_by_id() -> None:
    table = motif_table(seed=4)
    result = run_baselines(table, Cs=(1,), n_boot=100)
    onehot = result["baselines"]["one-hot + logistic regression"]["test_probabilities"]
    shuffled = dict(reversed(list(onehot.items())))  # same model, other order: no difference
    comparisons = compare_to_baselines(shuffled, result, name="copy", n_boot=200)
    assert set(comparisons) == {"composition + logistic regression", "one-hot + logistic regression"}
    same = comparisons["one-hot + logistic regression"]
    assert same["metrics"]["roc_auc"]["difference"] == 0 and same["metrics"]["roc_auc"]["ci95"] == [0.0, 0.0]
    assert same["verdict"].startswith("No clear difference between copy and one-hot + logistic regression")
    assert comparisons["composition + logistic regression"]["verdict"].startswith("copy is better than composition + logistic regression")
    with pytest.raises(DataError, match="have no probabilities from copy"):
        compare_to_baselines(dict(list(onehot.items())[:3]), result, name="copy")
