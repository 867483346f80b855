"""Grouped and identity-based splits never put one protein or cluster on two sides."""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plmcore import identity, splits
from plmcore.data import AMINO_ACIDS, read_table, validate
from plmcore.errors import ConfigError, DataError, DuplicateIdError, RunError
from plmcore.identity import identity_clusters, shift_identity
from plmcore.splits import (
    cv_folds,
    load_split,
    merge_groups,
    protein_groups,
    save_split,
    split_by_identity,
    split_grouped,
    split_summary,
    split_table,
)

AA = np.array(list("ACDEFGHIKLMNPQRSTVWY"))
FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def random_seq(rng: np.random.Generator, length: int) -> str:
    return "".join(rng.choice(AA, size=length))


def table_from(accessions: list[str], labels: list[str]) -> pd.DataFrame:
    ids = [f"sp|{acc}|PROT_HUMAN%{10 * i}%{10 * i + 16}" for i, acc in enumerate(accessions)]
    return pd.DataFrame({"id": ids, "sequence": ["ACDE"] * len(ids), "label": labels})


def brute_identity(a: str, b: str, min_overlap: int) -> float:
    """Reference: best ungapped identity over shifts, standard residues only."""
    best = 0.0
    L = len(a)
    for s in range(-(L - min_overlap), L - min_overlap + 1):
        pairs = [(a[p + s], b[p]) for p in range(L) if 0 <= p + s < L]
        same = sum(x == y and x in "ACDEFGHIKLMNPQRSTVWY" for x, y in pairs)
        best = max(best, same / len(pairs))
    return best


# --------------------------------------------------------------------------- groups


def test_protein_groups_reads_accessions_merges_isoforms_and_falls_back_to_id() -> None:
    table = pd.DataFrame(
        {
            "id": ["sp|P04629|NTRK1_HUMAN%664%680", "sp|P04629-2|NTRK1_HUMAN%659%675", "my_window_7", "Q9UQC2"],
            "sequence": ["A"] * 4,
        }
    )
    assert list(protein_groups(table)) == ["P04629", "P04629", "my_window_7", "Q9UQC2"]


def test_protein_groups_from_a_column_and_missing_column() -> None:
    table = pd.DataFrame({"id": ["a", "b", "c"], "sequence": ["A"] * 3, "gene": ["EGFR", None, "EGFR"]})
    assert list(protein_groups(table, "gene")) == ["EGFR", "b", "EGFR"]
    with pytest.raises(DataError, match="no column 'protein'"):
        protein_groups(table, "protein")


def test_merge_groups_joins_rows_linked_by_any_grouping() -> None:
    merged = merge_groups(["P1", "P1", "P2", "P3", "P4"], [0, 1, 1, 2, 3])
    # rows 0-2 are linked (protein P1, then cluster 1); 3 and 4 stay alone
    assert merged[0] == merged[1] == merged[2]
    assert len({merged[2], merged[3], merged[4]}) == 3


# --------------------------------------------------------------------------- grouped splits


@FAST
@given(
    n=st.integers(min_value=6, max_value=80),
    n_proteins=st.integers(min_value=3, max_value=30),
    val_fraction=st.sampled_from([0.0, 0.1, 0.2, 0.3]),
    test_fraction=st.sampled_from([0.1, 0.2, 0.35]),
    seed=st.integers(min_value=0, max_value=10_000),
    data_seed=st.integers(min_value=0, max_value=10_000),
)
def test_grouped_split_never_puts_one_accession_on_two_sides(
    n: int, n_proteins: int, val_fraction: float, test_fraction: float, seed: int, data_seed: int
) -> None:
    rng = np.random.default_rng(data_seed)
    pool = [f"P{10000 + i}" for i in range(n_proteins)]
    accessions = list(rng.choice(pool, size=n))
    labels = list(rng.choice(["0", "1"], size=n))
    table = table_from(accessions, labels)
    groups = protein_groups(table)
    if groups.nunique() < (3 if val_fraction else 2):
        with pytest.raises(ConfigError, match="at least one whole group"):
            split_grouped(table, groups, val_fraction=val_fraction, test_fraction=test_fraction, seed=seed)
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # sizes may be off with few groups
        out = split_grouped(table, groups, val_fraction=val_fraction, test_fraction=test_fraction, seed=seed)
        again = split_grouped(table, groups, val_fraction=val_fraction, test_fraction=test_fraction, seed=seed)
    sides = out.assign(group=list(groups)).groupby("group")["split"].nunique()
    assert sides.max() == 1
    assert list(out["split"]) == list(again["split"])  # deterministic for a seed
    assert set(out["split"]) == {"train", "test"} | ({"val"} if val_fraction else set())


def test_grouped_split_honours_fractions_and_strata_with_many_small_groups() -> None:
    rng = np.random.default_rng(1)
    n = 400
    accessions = [f"P{10000 + i // 2}" for i in range(n)]  # 200 proteins of 2 windows
    labels = ["1" if i % 4 == 0 else "0" for i in range(n)]  # 25% positives
    table = table_from(accessions, labels)
    table["sequence"] = [random_seq(rng, 5) for _ in range(n)]
    out = split_grouped(table, protein_groups(table), val_fraction=0.1, test_fraction=0.2, seed=3)
    summary = out.attrs["split_summary"]
    assert summary["splits"]["test"]["n"] == pytest.approx(80, abs=2)
    assert summary["splits"]["val"]["n"] == pytest.approx(40, abs=2)
    assert summary["splits"]["test"]["classes"]["1"] == pytest.approx(20, abs=2)
    assert summary["splits"]["val"]["n_groups"] == summary["splits"]["val"]["n"] // 2
    assert summary["requested"] == {"val_fraction": 0.1, "test_fraction": 0.2, "seed": 3}
    other = split_grouped(table, protein_groups(table), val_fraction=0.1, test_fraction=0.2, seed=4)
    assert list(other["split"]) != list(out["split"])  # the seed matters


def test_grouped_split_warns_when_a_big_group_skews_the_sizes() -> None:
    accessions = ["P10000"] * 30 + [f"P{20000 + i}" for i in range(10)]
    table = table_from(accessions, ["0", "1"] * 20)
    with pytest.warns(UserWarning, match="could not honour the requested sizes"):
        split_grouped(table, protein_groups(table), val_fraction=0.0, test_fraction=0.5, seed=0)


def test_grouped_split_refuses_too_few_groups_and_bad_fractions() -> None:
    table = table_from(["P10000"] * 5 + ["P10001"] * 5, ["0", "1"] * 5)
    with pytest.raises(ConfigError, match="2 groups into train \\+ val \\+ test"):
        split_grouped(table, protein_groups(table), val_fraction=0.1, test_fraction=0.1, seed=0)
    with pytest.raises(ConfigError, match="below 1"):
        split_grouped(table, protein_groups(table), val_fraction=0.5, test_fraction=0.5, seed=0)
    with pytest.raises(ConfigError, match="one key per row"):
        split_grouped(table, ["a"], val_fraction=0.0, test_fraction=0.5, seed=0)


def test_split_summary_needs_a_split_column() -> None:
    with pytest.raises(DataError, match="no 'split' column"):
        split_summary(pd.DataFrame({"id": ["a"]}))


# --------------------------------------------------------------------------- identity


def test_shift_identity_finds_shifted_windows_and_ignores_padding() -> None:
    rng = np.random.default_rng(0)
    protein = random_seq(rng, 60)
    a, b = protein[10:43], protein[15:48]  # b starts 5 residues after a
    identity, shift = shift_identity([a], [b])
    assert identity[0, 0] == 1.0 and shift[0, 0] == 5
    padded = ["X" * 20 + random_seq(rng, 13), "X" * 20 + random_seq(rng, 13)]
    assert shift_identity(padded[:1], padded[1:])[0][0, 0] < 0.5  # X never matches X


def test_shift_identity_agrees_with_a_brute_force_reference() -> None:
    rng = np.random.default_rng(5)
    base = random_seq(rng, 80)
    seqs = [base[i : i + 15] for i in range(0, 30, 3)] + [random_seq(rng, 15) for _ in range(6)]
    seqs = [s[:7] + "X" + s[8:] if i % 4 == 0 else s for i, s in enumerate(seqs)]
    identity, _ = shift_identity(seqs, seqs)
    expected = np.array([[brute_identity(a, b, 8) for b in seqs] for a in seqs])
    np.testing.assert_allclose(identity, expected)


def test_builtin_clusters_join_shifted_copies_single_linkage() -> None:
    rng = np.random.default_rng(2)
    protein = random_seq(rng, 100)
    # a chain: 0~1 and 1~2 overlap by more than half, 0 and 2 by less than half
    windows = [protein[0:21], protein[8:29], protein[16:37], random_seq(rng, 21), random_seq(rng, 21)]
    labels, tool = identity_clusters(windows, 0.5, method="built-in")
    assert tool == "built-in"
    assert labels[0] == labels[1] == labels[2]
    assert len({labels[0], labels[3], labels[4]}) == 3
    assert list(labels) == [0, 0, 0, 1, 2]  # numbered by first appearance


def test_builtin_threshold_is_inclusive() -> None:
    a = "ACDEFGHIKL"
    b = "ACDEFWWWWW"  # 5 of 10 identical at shift 0
    labels, _ = identity_clusters([a, b], 0.5, method="built-in")
    assert labels[0] == labels[1]
    labels, _ = identity_clusters([a, b], 0.51, method="built-in")
    assert labels[0] != labels[1]


def test_builtin_refuses_unequal_lengths_and_large_sets(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="apt-get install mmseqs2"):
        identity_clusters(["ACDEFG", "ACDEFGHI"], 0.5, method="built-in")
    monkeypatch.setattr(identity, "MAX_BUILTIN_SEQUENCES", 3)
    with pytest.raises(ConfigError, match="limited to 3 sequences"):
        identity_clusters(["ACDE"] * 4, 0.5, method="built-in")


def test_auto_falls_back_to_builtin_and_explicit_tools_must_exist(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(identity.shutil, "which", lambda name: None)
    labels, tool = identity_clusters(["ACDEFGHIK", "ACDEFGHIK", "WWWWWWWWW"], 0.9)
    assert tool == "built-in" and list(labels) == [0, 0, 1]
    with pytest.raises(ConfigError, match="mmseqs2 was requested"):
        identity_clusters(["ACDEFGHIK"], 0.9, method="mmseqs2")
    with pytest.raises(ConfigError, match="cd-hit was requested"):
        identity_clusters(["ACDEFGHIK"], 0.9, method="cd-hit")
    with pytest.raises(ConfigError, match="threshold"):
        identity_clusters(["ACDEFGHIK"], 0.0)
    with pytest.raises(ConfigError, match="method='blast'"):
        identity_clusters(["ACDEFGHIK"], 0.5, method="blast")


def planted_windows(seed: int = 7) -> tuple[list[str], list[int]]:
    """Four families of three shifted 33-residue windows each; expected family per window."""
    rng = np.random.default_rng(seed)
    windows, family = [], []
    for f in range(4):
        protein = random_seq(rng, 60)
        for start in (0, 3, 6):
            windows.append(protein[start : start + 33])
            family.append(f)
    return windows, family


@pytest.mark.skipif(shutil.which("cd-hit") is None, reason="cd-hit is not installed (apt-get install cd-hit)")
def test_cdhit_clusters_shifted_windows() -> None:
    windows, family = planted_windows()
    labels, tool = identity_clusters(windows, 0.9, method="cd-hit")
    assert tool == "cd-hit"
    assert len(set(labels)) == 4
    assert all(len({labels[i] for i in range(len(family)) if family[i] == f}) == 1 for f in range(4))
    with pytest.raises(ConfigError, match="0.4 or more"):
        identity_clusters(windows, 0.3, method="cd-hit")


@pytest.mark.skipif(shutil.which("mmseqs") is None, reason="mmseqs2 is not installed (apt-get install mmseqs2)")
def test_mmseqs_clusters_shifted_windows() -> None:
    windows, family = planted_windows()
    labels, tool = identity_clusters(windows, 0.9, method="mmseqs2")
    assert tool == "mmseqs2"
    assert len(set(labels)) == 4
    assert all(len({labels[i] for i in range(len(family)) if family[i] == f}) == 1 for f in range(4))


def test_split_by_identity_keeps_similar_windows_together(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(11)
    windows, ids, labels = [], [], []
    for f in range(30):
        protein = random_seq(rng, 45)
        for k, start in enumerate((0, 4)):
            windows.append(protein[start : start + 33])
            ids.append(f"w{f}_{k}")
            labels.append(str(f % 2))
    table = pd.DataFrame({"id": ids, "sequence": windows, "label": labels})
    out, tool = split_by_identity(table, 0.5, val_fraction=0.2, test_fraction=0.2, seed=0, method="built-in")
    assert tool == "built-in"
    assert out.groupby("cluster")["split"].nunique().max() == 1
    assert out["cluster"].nunique() == 30
    assert out.attrs["split_summary"]["clustering"] == {"tool": "built-in", "threshold": 0.5}


# --------------------------------------------------------------------------- cross-validation


@FAST
@given(
    n=st.integers(min_value=10, max_value=60),
    k=st.integers(min_value=2, max_value=5),
    n_groups=st.one_of(st.none(), st.integers(min_value=5, max_value=25)),
    seed=st.integers(min_value=0, max_value=1000),
)
def test_cv_folds_are_disjoint_and_cover_the_data(n: int, k: int, n_groups: int | None, seed: int) -> None:
    rng = np.random.default_rng(seed)
    labels = ["0", "1"] * (n // 2) + ["0"] * (n % 2)
    table = pd.DataFrame({"id": [f"r{i}" for i in range(n)], "sequence": ["A"] * n, "label": labels})
    groups = None if n_groups is None else list(rng.integers(0, n_groups, size=n))
    if groups is not None and len(set(groups)) < k:
        with pytest.raises(ConfigError, match="largest usable k"):
            cv_folds(table, k, seed=seed, groups=groups)
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        folds = cv_folds(table, k, seed=seed, groups=groups)
    assert len(folds) == k
    tests = np.concatenate([te for _, te in folds])
    assert sorted(tests.tolist()) == list(range(n))  # disjoint and covering
    for train, test in folds:
        assert len(test) > 0
        assert set(train.tolist()) | set(test.tolist()) == set(range(n))
        assert not set(train.tolist()) & set(test.tolist())
        if groups is not None:
            assert not {groups[i] for i in train} & {groups[i] for i in test}


def test_cv_folds_say_the_largest_usable_k() -> None:
    table = pd.DataFrame({"id": list("abcdefg"), "sequence": ["A"] * 7, "label": ["0"] * 4 + ["1"] * 3})
    with pytest.raises(ConfigError, match="largest usable k is 3"):
        cv_folds(table, 4, seed=0)
    with pytest.raises(ConfigError, match="only 2 groups.*largest usable k is 2"):
        cv_folds(table, 3, seed=0, groups=["a", "a", "a", "b", "b", "b", "b"])
    with pytest.raises(ConfigError, match="at least 2"):
        cv_folds(table, 1, seed=0)
    unlabelled = table.assign(label=["0", None, "1", "0", "1", "0", "1"])
    with pytest.raises(DataError, match="no label"):
        cv_folds(unlabelled, 2, seed=0)


def test_cv_folds_fall_back_to_group_kfold_when_a_fold_is_empty(monkeypatch: pytest.MonkeyPatch) -> None:
    class EmptyFold:
        def __init__(self, **kwargs: object) -> None:
            pass

        def split(self, X: np.ndarray, y: np.ndarray, groups: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
            everything = np.arange(len(y))
            yield everything, np.array([], dtype=int)
            yield np.array([], dtype=int), everything

    monkeypatch.setattr(splits, "StratifiedGroupKFold", EmptyFold)
    table = pd.DataFrame({"id": list("abcdef"), "sequence": ["A"] * 6, "label": ["0", "1"] * 3})
    with pytest.warns(UserWarning, match="left a fold empty"):
        folds = cv_folds(table, 2, seed=0, groups=["g1", "g1", "g2", "g2", "g3", "g3"])
    assert all(len(test) > 0 for _, test in folds)


# --------------------------------------------------------------------------- random splits and split files


SEQ_A = "MKTAYIAKQRQISFVKSHFSRQ"


def toy_table(n_per_class: int = 50, classes: tuple[str, ...] = ("0", "1")) -> pd.DataFrame:
    rows = []
    for k, label in enumerate(classes):
        for i in range(n_per_class):
            # Distinct valid sequences: the class and the index spelled in residues.
            code = AMINO_ACIDS[k % 20] + AMINO_ACIDS[i % 20] + AMINO_ACIDS[i // 20 % 20]
            rows.append({"id": f"c{label}_{i}", "sequence": code + SEQ_A, "label": label,
                         "source": f"toy.fasta:{len(rows) * 2 + 1}"})
    return pd.DataFrame(rows)


def test_dephos_split_with_user_test_table(shared_data: Path) -> None:
    train = validate(read_table(shared_data / "dephos_Y" / "train_sequences.fasta")).table
    test = validate(read_table(shared_data / "dephos_Y" / "test_sequences.fasta")).table
    assert len(test) == 50
    split = split_table(train, val_fraction=0.1, test_table=test)
    assert split["split"].value_counts().to_dict() == {"train": 181, "val": 20, "test": 50}




def test_split_is_deterministic_disjoint_and_stratified() -> None:
    table = toy_table(n_per_class=50)
    first = split_table(table, val_fraction=0.1, test_fraction=0.2, seed=7)
    again = split_table(table, val_fraction=0.1, test_fraction=0.2, seed=7)
    other = split_table(table, val_fraction=0.1, test_fraction=0.2, seed=8)
    pd.testing.assert_frame_equal(first, again)
    assert not first["split"].equals(other["split"])
    assert "split" not in table.columns
    assert first["id"].tolist() == table["id"].tolist()  # rows keep their order
    assert first["split"].value_counts().to_dict() == {"train": 70, "test": 20, "val": 10}
    counts = first.groupby(["split", "label"]).size().to_dict()
    assert counts == {
        ("test", "0"): 10,
        ("test", "1"): 10,
        ("train", "0"): 35,
        ("train", "1"): 35,
        ("val", "0"): 5,
        ("val", "1"): 5,
    }


def test_split_without_val() -> None:
    split = split_table(toy_table(20), val_fraction=0, test_fraction=0.25)
    assert split["split"].value_counts().to_dict() == {"train": 30, "test": 10}


def test_split_falls_back_when_stratification_is_impossible() -> None:
    table = pd.concat([toy_table(10), toy_table(1, classes=("rare",))], ignore_index=True)
    with pytest.warns(UserWarning, match="cannot be stratified"):
        split = split_table(table, val_fraction=0.2, test_fraction=0.2, seed=1)
    assert set(split["split"]) == {"train", "val", "test"}
    assert len(split) == len(table)


def test_split_unlabelled_table_is_random_without_warning() -> None:
    table = toy_table(10).assign(label=None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        split = split_table(table, val_fraction=0.1, test_fraction=0.1)
    assert split["split"].value_counts().to_dict() == {"train": 16, "val": 2, "test": 2}


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"val_fraction": 1.0}, r"val_fraction must be .*got 1\.0"),
        ({"test_fraction": -0.1}, r"test_fraction must be .*got -0\.1"),
        ({"val_fraction": "0.1"}, "val_fraction must be a number"),
        ({"val_fraction": 0.5, "test_fraction": 0.5}, "must be below 1"),
    ],
)
def test_split_fraction_validation(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        split_table(toy_table(5), **kwargs)


def test_split_that_would_leave_train_empty() -> None:
    tiny = toy_table(1, classes=("0",))
    with pytest.raises(ConfigError, match="training split would be empty"):
        split_table(tiny, val_fraction=0.1, test_fraction=0.1)


def test_split_with_user_test_table() -> None:
    train = toy_table(20)
    test = toy_table(3, classes=("0", "1")).assign(
        id=lambda t: "t" + t["id"], sequence=lambda t: "W" + t["sequence"]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        split = split_table(train, val_fraction=0.25, test_fraction=0.9, test_table=test)
    assert split["split"].value_counts().to_dict() == {"train": 30, "val": 10, "test": 6}
    assert split["id"].tolist()[-6:] == test["id"].tolist()
    leaky = test.assign(sequence=train["sequence"].iloc[:6].tolist())
    with pytest.warns(UserWarning, match="6 test sequences also occur in the training data"):
        split_table(train, test_table=leaky)
    clash = toy_table(1)
    with pytest.raises(DuplicateIdError, match=r"'c0_0' \(toy\.fasta:1 and toy\.fasta:1\)"):
        split_table(train, test_table=clash)


def test_save_and_load_split_keep_labels_as_strings(tmp_path: Path) -> None:
    table = toy_table(10, classes=("0", "1", "NA_class"))
    table.loc[0, "label"] = None
    table["score"] = 1.5
    split = split_table(table.iloc[1:], seed=3)
    path = save_split(split, tmp_path / "run" / "split.csv")
    loaded = load_split(path)
    assert loaded["label"].tolist() == split["label"].tolist()
    assert loaded["id"].tolist() == split["id"].tolist()
    assert loaded["split"].tolist() == split["split"].tolist()
    assert loaded["score"].tolist() == [1.5] * len(split)
    assert set(loaded["label"]) == {"0", "1", "NA_class"}


def test_load_split_problems(tmp_path: Path) -> None:
    with pytest.raises(RunError, match="No split file"):
        load_split(tmp_path / "missing.csv")
    no_split = tmp_path / "bad.csv"
    no_split.write_text("id,sequence,label\na,MKT,1\n")
    with pytest.raises(DataError, match=r"lacks the column\(s\) \['split'\]"):
        load_split(no_split)
    odd = tmp_path / "odd.csv"
    odd.write_text("id,sequence,label,split\na,MKT,1,holdout\n")
    with pytest.raises(DataError, match="holdout"):
        load_split(odd)
    with pytest.raises(DataError, match="Run split_table"):
        save_split(toy_table(2), tmp_path / "x.csv")

