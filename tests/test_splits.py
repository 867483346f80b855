"""Grouped and identity-based splits never put one protein or cluster on two sides."""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plmcore import identity, splits
from plmcore.errors import ConfigError, DataError
from plmcore.identity import identity_clusters, shift_identity
from plmcore.splits import (
    cv_folds,
    merge_groups,
    protein_groups,
    split_by_identity,
    split_grouped,
    split_summary,
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
