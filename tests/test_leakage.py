"""The leakage report finds shared proteins, overlapping windows, copies and close homologues."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plmcore import leakage
from plmcore.data import read_table, validate
from plmcore.errors import ConfigError, DataError
from plmcore.leakage import format_leakage, leakage_report, parse_positions
from plmcore.splits import protein_groups, split_by_identity, split_grouped

AA = np.array(list("ACDEFGHIKLMNPQRSTVWY"))


def random_seq(rng: np.random.Generator, length: int) -> str:
    return "".join(rng.choice(AA, size=length))


def frame(ids: list[str], seqs: list[str], labels: list[str] | None = None) -> pd.DataFrame:
    return pd.DataFrame({"id": ids, "sequence": seqs, "label": labels or ["1"] * len(ids)})


def clean_pair(seed: int = 0, n_train: int = 30, n_test: int = 10) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    train = frame(
        [f"sp|P{10000 + i}|A_HUMAN%100%116" for i in range(n_train)], [random_seq(rng, 33) for _ in range(n_train)]
    )
    test = frame(
        [f"sp|Q{10000 + i}|B_HUMAN%100%116" for i in range(n_test)], [random_seq(rng, 33) for _ in range(n_test)]
    )
    return train, test


# --------------------------------------------------------------------------- shared data


def test_dephos_test_set_leaks_into_training(shared_data: Path) -> None:
    train = validate(read_table(shared_data / "dephos_Y" / "train_sequences.fasta")).table
    test = validate(read_table(shared_data / "dephos_Y" / "test_sequences.fasta")).table
    report = leakage_report(train, test)
    json.dumps(report, allow_nan=False)
    assert report["n_test"] == 50 and report["n_train"] == 201
    # 30, not the 29 sometimes quoted: sp|P18433-6|PTPRA_HUMAN%279%295 (test) and
    # %572%588 (train) share the isoform accession P18433-6, which a parser that does not
    # accept isoform suffixes misses.
    overlap = report["protein_overlap"]
    assert overlap["n_test_items"] == 30
    assert overlap["n_proteins"] == 22
    assert {"protein": "P18433", "n_test": 1, "n_train": 1} in overlap["proteins"]
    assert overlap["proteins"][0] == {"protein": "P09619", "n_test": 5, "n_train": 4}
    windows = report["overlapping_windows"]
    assert windows["n_test_items"] == 11
    assert windows["n_test_items_by_positions"] == 9
    assert windows["n_test_items_by_identity"] == 5
    met = [p for p in windows["pairs"] if p["test_id"] == "sp|P08581|MET_HUMAN%1349%1365"]
    assert {p["train_id"] for p in met} == {"sp|P08581|MET_HUMAN%1340%1356", "sp|P08581|MET_HUMAN%1333%1349"}
    first = next(p for p in met if p["train_id"].endswith("%1340%1356"))
    assert first["shift"] == -9 and first["overlap"] == 24 and first["identity"] == 1.0
    assert sorted(first["reasons"]) == ["identity", "positions"]
    # every positional overlap is confirmed by the sequences: the ids' numbers are window starts
    assert all(p["identity"] == 1.0 for p in windows["pairs"] if "positions" in p["reasons"])
    assert report["duplicates"]["n_test_items"] == 0
    summary = report["identity"]["summary"]
    assert summary["max"] == 1.0 and 0.3 <= summary["median"] <= 0.4
    assert sum(summary["bins"].values()) == 50
    assert summary["bins"]["[0.9, 1]"] == 5
    assert report["leaks"] is True
    assert report["warnings"][0].startswith("30 of 50 test windows (60%) come from proteins")
    assert "Use a split grouped by protein." in report["warnings"][0]
    assert any(w.startswith("11 of 50 test windows (22%) overlap") for w in report["warnings"])


def test_dephos_split_by_protein_and_identity_does_not_leak(shared_data: Path) -> None:
    train = validate(read_table(shared_data / "dephos_Y" / "train_sequences.fasta")).table
    test = validate(read_table(shared_data / "dephos_Y" / "test_sequences.fasta")).table
    pooled = pd.concat([train, test], ignore_index=True)
    by_protein = split_grouped(pooled, protein_groups(pooled), val_fraction=0.1, test_fraction=0.2, seed=0)
    report = leakage_report(by_protein[by_protein.split == "train"], by_protein[by_protein.split == "test"])
    assert report["protein_overlap"]["n_test_items"] == 0
    assert report["leaks"]  # paralogues (FYN/LCK/SRC, IGF1R/INSR) still cross a protein split
    out, tool = split_by_identity(
        pooled, 0.5, val_fraction=0.1, test_fraction=0.2, seed=0, method="built-in", groups=protein_groups(pooled)
    )
    assert tool == "built-in"
    assert {k: v["n"] for k, v in out.attrs["split_summary"]["splits"].items()} == {"train": 176, "val": 25, "test": 50}
    report = leakage_report(out[out.split == "train"], out[out.split == "test"])
    assert report["leaks"] is False and report["warnings"] == []
    assert report["identity"]["summary"]["max"] < 0.5


# --------------------------------------------------------------------------- planted leaks


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shift=st.integers(min_value=-16, max_value=16), seed=st.integers(min_value=0, max_value=10_000))
def test_planted_shifted_copy_is_found(shift: int, seed: int) -> None:
    rng = np.random.default_rng([seed, 1])  # a stream of its own, unlike clean_pair's windows
    train, test = clean_pair(seed, n_train=12, n_test=4)
    protein = random_seq(rng, 120)
    base = 40
    train.loc[3, "sequence"] = protein[base : base + 33]
    test.loc[2, "sequence"] = protein[base - shift : base - shift + 33]  # no positions in the ids
    report = leakage_report(train, test)
    pairs = report["overlapping_windows"]["pairs"]
    planted = [p for p in pairs if p["test_id"] == test["id"][2] and p["train_id"] == train["id"][3]]
    assert len(planted) == 1
    assert planted[0]["identity"] == 1.0 and planted[0]["shift"] == shift
    assert planted[0]["reasons"] == ["identity"]
    assert planted[0]["overlap"] == 33 - abs(shift)
    per_test = report["identity"]["per_test"][2]
    assert per_test["max_identity"] == 1.0 and per_test["closest_train_id"] == train["id"][3]
    assert report["leaks"] is True
    assert (report["duplicates"]["n_test_items"] == 1) == (shift == 0)


def test_identical_sequences_are_reported_as_duplicates() -> None:
    train, test = clean_pair(1)
    test.loc[0, "sequence"] = train["sequence"][5]
    test.loc[1, "sequence"] = train["sequence"][7]
    report = leakage_report(train, test)
    dup = report["duplicates"]
    assert dup["n_test_items"] == 2
    assert dup["items"][0] == {"test_id": test["id"][0], "train_ids": [train["id"][5]]}
    assert any("2 test windows also occur verbatim" in w for w in report["warnings"])


def test_overlapping_positions_of_one_protein_are_found_but_not_across_isoforms() -> None:
    rng = np.random.default_rng(3)
    protein = random_seq(rng, 200)
    train = frame(
        ["sp|P20963|CD3Z_HUMAN%100%116", "sp|P20963-2|CD3Z_HUMAN%100%116", "sp|P20963|CD3Z_HUMAN%10%26"],
        [protein[99:132], random_seq(rng, 33), protein[9:42]],
        ["1", "1", "0"],
    )
    test = frame(["sp|P20963|CD3Z_HUMAN%120%136"], [protein[119:152]], ["0"])
    report = leakage_report(train, test)
    pairs = report["overlapping_windows"]["pairs"]
    assert [p["train_id"] for p in pairs] == ["sp|P20963|CD3Z_HUMAN%100%116"]  # not the -2 isoform
    assert pairs[0]["reasons"] == ["positions"]  # 13 residues shared: below half, so no identity hit
    assert pairs[0]["overlap"] == 13 and pairs[0]["shift"] == -20 and pairs[0]["identity"] == 1.0
    assert pairs[0]["same_label"] is False and pairs[0]["same_protein"] is True
    assert report["protein_overlap"]["n_test_items"] == 1


def test_parse_positions_reads_window_start() -> None:
    assert parse_positions("sp|P08581|MET_HUMAN%1349%1365", 33) == (1349, 1381)
    assert parse_positions("sp|P08581|MET_HUMAN%1349%1381", 33) == (1349, 1381)
    assert parse_positions("P08581_Y1365", 33) is None


def test_clean_split_has_no_warnings() -> None:
    train, test = clean_pair(4)
    report = leakage_report(train, test)
    assert report["warnings"] == []
    assert report["leaks"] is False
    assert report["protein_overlap"]["n_test_items"] == 0
    assert report["identity"]["summary"]["max"] < 0.5
    assert "No leakage found." in format_leakage(report)


def test_group_column_defines_proteins() -> None:
    train, test = clean_pair(5, n_train=4, n_test=2)
    train["gene"] = ["EGFR", "MET", "SRC", "LCK"]
    test["gene"] = ["MET", "JAK2"]
    report = leakage_report(train, test, group_column="gene")
    assert report["protein_overlap"]["proteins"] == [{"protein": "MET", "n_test": 1, "n_train": 1}]
    assert report["grouping"] == "column 'gene'"
    with pytest.raises(DataError, match="no column 'protein'"):
        leakage_report(train, test, group_column="protein")


def test_homologues_above_the_identity_threshold_are_warned_about() -> None:
    train, test = clean_pair(6)
    seq = list(train["sequence"][0])
    for p in range(0, 33, 3):  # 11 of 33 residues changed: 67% identical
        seq[p] = "W" if seq[p] != "W" else "C"
    test.loc[0, "sequence"] = "".join(seq)
    report = leakage_report(train, test, identity_threshold=0.6)
    assert report["identity"]["n_at_or_above_threshold"] == 1
    assert report["overlapping_windows"]["n_test_items"] == 0
    assert any("at least 60% identical" in w for w in report["warnings"])
    assert report["leaks"] is True


def test_unequal_lengths_use_the_kmer_approximation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(leakage.shutil, "which", lambda name: None)
    rng = np.random.default_rng(8)
    long = random_seq(rng, 80)
    train = frame(["t1", "t2", "t3"], [long, random_seq(rng, 50), random_seq(rng, 20)])
    test = frame(["q1", "q2"], [long[10:50], random_seq(rng, 35)])
    report = leakage_report(train, test)
    assert report["identity"]["method"].startswith("approximate")
    per_test = report["identity"]["per_test"]
    assert per_test[0]["max_identity"] == 1.0 and per_test[0]["closest_train_id"] == "t1"
    assert per_test[1]["max_identity"] < 0.3
    assert [p["test_id"] for p in report["overlapping_windows"]["pairs"]] == ["q1"]
    assert "sequences" in report["warnings"][0]


@pytest.mark.skipif(shutil.which("mmseqs") is None, reason="mmseqs2 is not installed (apt-get install mmseqs2)")
def test_unequal_lengths_use_mmseqs_when_installed() -> None:
    rng = np.random.default_rng(9)
    long = random_seq(rng, 120)
    train = frame(["t1", "t2"], [long, random_seq(rng, 90)])
    test = frame(["q1", "q2"], [long[20:80], random_seq(rng, 60)])
    report = leakage_report(train, test)
    assert report["identity"]["method"].startswith("mmseqs2")
    assert report["identity"]["per_test"][0]["max_identity"] == 1.0
    assert report["identity"]["per_test"][0]["closest_train_id"] == "t1"


def test_bad_inputs_are_refused_with_a_fix() -> None:
    train, test = clean_pair(0)
    with pytest.raises(DataError, match="lacks the column"):
        leakage_report(train.drop(columns="sequence"), test)
    with pytest.raises(DataError, match="holds no records"):
        leakage_report(train, test.iloc[:0])
    with pytest.raises(ConfigError, match="identity_threshold"):
        leakage_report(train, test, identity_threshold=0)


def test_format_leakage_names_the_findings() -> None:
    train, test = clean_pair(2)
    test.loc[0, "sequence"] = train["sequence"][1]
    text = format_leakage(leakage_report(train, test))
    assert "exact duplicate sequences: 1" in text
    assert "Warnings:" in text
    assert "[0.9, 1]: 1" in text
