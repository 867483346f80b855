"""Splits that do not leak: grouped by protein, grouped by sequence identity, and CV folds.

A random split of site windows puts windows of one protein (often overlapping ones) on both
sides, so the test score measures recall of the training data. Here every window of a group
(a protein, or a cluster of similar sequences) lands on one side only.

Identity clusters come from plmcore.identity.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.sparse.csgraph import connected_components
from sklearn.model_selection import GroupKFold, StratifiedGroupKFold, StratifiedKFold

from plmcore.data import accession_of, classes_of
from plmcore.errors import ConfigError, DataError, EmptyInputError
from plmcore.identity import identity_clusters, renumber

__all__ = [
    "SPLIT_NAMES",
    "cv_folds",
    "make_split",
    "merge_groups",
    "protein_groups",
    "split_by_identity",
    "split_grouped",
    "split_summary",
]

SPLIT_NAMES = ("train", "val", "test")


# --------------------------------------------------------------------------- groups


def protein_groups(table: pd.DataFrame, column: str | None = None) -> pd.Series:
    """Per row, the protein a record comes from: ``column`` if given, else the id's accession.

    Accessions are parsed with :func:`plmcore.data.accession_of` (isoform suffix dropped, so
    P04629 and P04629-2 are one protein); ids without a recognisable accession are their own
    group.
    """
    if column is not None:
        if column not in table.columns:
            raise DataError(
                f"There is no column {column!r} to group by; the columns are {list(table.columns)}. "
                "Choose the column that names each record's protein, or group by the accession in "
                "the ids (column=None)."
            )
        values = table[column]
        ids = table["id"] if "id" in table.columns else pd.Series(range(len(table)), index=table.index)
        out = [str(ids.iloc[i]) if _missing(v) or not str(v).strip() else str(v).strip() for i, v in enumerate(values)]
        return pd.Series(out, index=table.index, name="group", dtype=object)
    if "id" not in table.columns:
        raise DataError(
            f"The table has no 'id' column to read accessions from (columns: {list(table.columns)}). "
            "Read files with plmcore.data.read_table, or pass column=... naming the protein column."
        )
    out = [accession_of(str(rid)) or str(rid) for rid in table["id"]]
    return pd.Series(out, index=table.index, name="group", dtype=object)


def merge_groups(*groupings: Sequence[Any]) -> np.ndarray:
    """Join groupings: rows sharing a group in any of them end up in one merged group.

    E.g. ``merge_groups(protein_groups(t), clusters)`` keeps both one protein's windows and
    similar windows of different proteins on one side of a split. Returns integer ids.
    """
    if not groupings:
        raise ConfigError("merge_groups needs at least one grouping (one group key per row).")
    n = len(groupings[0])
    if any(len(g) != n for g in groupings):
        lengths = [len(g) for g in groupings]
        raise ConfigError(f"Every grouping must have one key per row; got lengths {lengths}.")
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    rows, cols = [], []
    offset = n
    for grouping in groupings:
        codes, uniques = pd.factorize(pd.Series(list(grouping), dtype=object).astype(str))
        rows.append(np.arange(n))
        cols.append(codes + offset)
        offset += len(uniques)
    r, c = np.concatenate(rows), np.concatenate(cols)
    graph = sparse.coo_matrix((np.ones(len(r)), (r, c)), shape=(offset, offset))
    _, labels = connected_components(graph, directed=False)
    return renumber(labels[:n])


# --------------------------------------------------------------------------- grouped splits


def split_grouped(
    table: pd.DataFrame,
    groups: Sequence[Any],
    *,
    val_fraction: float,
    test_fraction: float,
    seed: int,
    stratify: bool = True,
) -> pd.DataFrame:
    """Return a copy with a "split" column (train/val/test) in which no group spans two splits.

    Groups are dealt out largest first (ties in a seeded random order) to the split whose
    per-class counts fall furthest short of their targets, the greedy rule of scikit-learn's
    StratifiedGroupKFold generalised to arbitrary fractions. Deterministic for a seed. The
    achieved sizes are in ``result.attrs["split_summary"]`` (see :func:`split_summary`); a
    UserWarning says when a large group made a split much bigger or smaller than asked.
    """
    val_fraction = _check_fraction("val_fraction", val_fraction)
    test_fraction = _check_fraction("test_fraction", test_fraction)
    if val_fraction + test_fraction >= 1:
        raise ConfigError(
            f"val_fraction + test_fraction must be below 1 to leave records for training; got "
            f"{val_fraction} + {test_fraction} = {val_fraction + test_fraction:g}."
        )
    if len(table) == 0:
        raise EmptyInputError("The table to split holds no records; load some sequences first.")
    keys = _group_keys(groups, len(table))
    out = table.copy().reset_index(drop=True)
    codes, uniques = pd.factorize(pd.Series(keys, dtype=object))
    n_groups = len(uniques)
    fractions = np.array([1 - val_fraction - test_fraction, val_fraction, test_fraction])
    wanted = [i for i in range(3) if fractions[i] > 0]
    if n_groups < len(wanted):
        names = " + ".join(SPLIT_NAMES[i] for i in wanted)
        raise ConfigError(
            f"Cannot split {len(out)} records in {n_groups} group{'s' if n_groups != 1 else ''} "
            f"into {names}: each split needs at least one whole group (protein or cluster). "
            "Add records from more proteins, lower the identity threshold's strictness, or set "
            "val_fraction=0 to make only a train/test split."
        )

    y = _stratify_codes(out) if stratify else None
    y = np.zeros(len(out), dtype=np.int64) if y is None else y
    counts = np.zeros((n_groups, int(y.max()) + 1))
    np.add.at(counts, (codes, y), 1)
    assignment = _deal_groups(counts, fractions, seed)
    split = np.array(SPLIT_NAMES, dtype=object)[assignment[codes]]
    out["split"] = pd.Series(split, dtype=object)
    summary = split_summary(out, keys)
    summary["requested"] = {"val_fraction": val_fraction, "test_fraction": test_fraction, "seed": seed}
    out.attrs["split_summary"] = summary
    _warn_if_far_from_target(summary, fractions, len(out))
    return out


def _deal_groups(counts: np.ndarray, fractions: np.ndarray, seed: int) -> np.ndarray:
    """Assign each group (row of per-class counts) to split 0/1/2."""
    n_groups = counts.shape[0]
    rng = np.random.default_rng(seed)
    order = rng.permutation(n_groups)
    # Big groups first: placed late they would overshoot whichever split receives them.
    order = order[np.argsort(-counts[order].sum(1), kind="stable")]
    target = fractions[:, None] * counts.sum(0)[None, :]
    filled = np.zeros_like(target)
    closed = fractions <= 0
    assignment = np.full(n_groups, -1, dtype=np.int64)
    for g in order:
        v = counts[g]
        # growth of the squared shortfall; the split most short of this group's classes wins
        cost = ((filled + v - target) ** 2 - (filled - target) ** 2).sum(1)
        cost[closed] = np.inf
        s = int(np.argmin(cost))
        assignment[g] = s
        filled[s] += v
    # A tiny requested split may have received nothing; move the smallest group of the most
    # populated split so every requested split exists.
    sizes = counts.sum(1)
    for s in np.flatnonzero(~closed):
        if np.any(assignment == s):
            continue
        per_split = np.array([np.sum(assignment == t) for t in range(3)])
        donor = int(np.argmax(per_split))
        members = np.flatnonzero(assignment == donor)
        assignment[members[np.argmin(sizes[members])]] = s
    return assignment


def _warn_if_far_from_target(summary: dict, fractions: np.ndarray, n: int) -> None:
    off = []
    for name, fraction in zip(SPLIT_NAMES, fractions):
        if fraction <= 0:
            continue
        want = fraction * n
        got = summary["splits"][name]["n"]
        if abs(got - want) > max(2.0, 0.25 * want):
            off.append(f"{name} {got} (asked for about {want:.0f})")
    if off:
        warnings.warn(
            "The grouped split could not honour the requested sizes because some groups are "
            f"large: {', '.join(off)} of {n} records. Lower the fractions or accept the sizes; "
            "splitting a group would leak it.",
            UserWarning,
            stacklevel=3,
        )


def split_summary(table: pd.DataFrame, groups: Sequence[Any] | None = None) -> dict:
    """Records, fraction, per-class counts and (with ``groups``) groups in each split."""
    if "split" not in table.columns:
        raise DataError("The table has no 'split' column; make one with split_grouped or split_table.")
    n = len(table)
    labels = [str(v) if not _missing(v) else None for v in table.get("label", pd.Series([None] * n))]
    classes = classes_of([lab for lab in labels if lab is not None])
    keys = _group_keys(groups, n) if groups is not None else None
    splits: dict[str, dict] = {}
    for name in SPLIT_NAMES:
        mask = (table["split"] == name).to_numpy()
        entry: dict[str, Any] = {
            "n": int(mask.sum()),
            "fraction": float(mask.sum() / n) if n else 0.0,
            "classes": {c: int(sum(1 for lab, m in zip(labels, mask) if m and lab == c)) for c in classes},
        }
        if keys is not None:
            entry["n_groups"] = len(set(keys[mask]))
        splits[name] = entry
    out: dict[str, Any] = {"n": n, "splits": splits}
    if keys is not None:
        out["n_groups"] = len(set(keys))
    return out


def split_by_identity(
    table: pd.DataFrame,
    threshold: float,
    *,
    val_fraction: float,
    test_fraction: float,
    seed: int,
    method: str = "auto",
    groups: Sequence[Any] | None = None,
) -> tuple[pd.DataFrame, str]:
    """Split so that no two records at >= ``threshold`` identity sit in different splits.

    ``groups`` (e.g. ``protein_groups(table)``) is respected as well: records sharing a group
    or a cluster stay together, which also keeps apart windows of one protein that overlap by
    less than half their length. Returns the split table, with a "cluster" column (the merged
    group when ``groups`` is given), and the clustering tool that ran.
    """
    if "sequence" not in table.columns:
        raise DataError(f"The table has no 'sequence' column (columns: {list(table.columns)}).")
    labels, tool = identity_clusters([str(s) for s in table["sequence"]], threshold, method=method)
    if groups is not None:
        labels = merge_groups(_group_keys(groups, len(table)), labels)
    out = split_grouped(table, labels, val_fraction=val_fraction, test_fraction=test_fraction, seed=seed)
    out["cluster"] = labels
    out.attrs["split_summary"]["clustering"] = {"tool": tool, "threshold": float(threshold)}
    return out, tool


def make_split(
    table: pd.DataFrame,
    *,
    method: str = "random",
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    seed: int = 42,
    stratify: bool = True,
    test_table: pd.DataFrame | None = None,
    group_column: str | None = None,
    identity_threshold: float = 0.5,
) -> tuple[pd.DataFrame, dict]:
    """Split by method "random", "protein" (grouped by accession) or "identity" (clusters + proteins).

    With a user-supplied `test_table`, it is the test split and only train/validation are drawn
    from `table` (grouped the same way). Returns the split table and a description of what ran.
    """
    from plmcore.data import split_table

    info = {"method": method, "val_fraction": val_fraction, "seed": seed, "stratify": stratify,
            "test_source": "uploaded test file" if test_table is not None else "held out"}
    inner_test = 0.0 if test_table is not None else test_fraction
    info["test_fraction"] = inner_test
    if method == "random":
        split = split_table(table, val_fraction=val_fraction, test_fraction=inner_test, seed=seed,
                            stratify=stratify, test_table=test_table)
        return split, info
    if method not in ("protein", "identity"):
        raise ConfigError(f"split method {method!r} is not allowed; choose random, protein or identity")
    groups = protein_groups(table, group_column)
    if method == "protein":
        split = split_grouped(table, groups, val_fraction=val_fraction, test_fraction=inner_test, seed=seed,
                              stratify=stratify)
        info["groups"] = f"column {group_column}" if group_column else "UniProt accession from the id"
    else:
        split, tool = split_by_identity(table, identity_threshold, val_fraction=val_fraction,
                                        test_fraction=inner_test, seed=seed, groups=groups)
        info.update(identity_threshold=identity_threshold, tool=tool,
                    groups="identity clusters merged with UniProt accessions")
        split = split.drop(columns=["cluster"])
    if test_table is not None:
        split = pd.concat([split, test_table.assign(split="test")], ignore_index=True)
    info["counts"] = split["split"].value_counts().to_dict()
    return split, info


# --------------------------------------------------------------------------- cross-validation


def cv_folds(
    table: pd.DataFrame,
    k: int,
    *,
    seed: int,
    groups: Sequence[Any] | None = None,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified k-fold (grouped when ``groups`` is given) as (train_idx, test_idx) positions.

    The test folds are disjoint and together cover every row.
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 2:
        raise ConfigError(f"k must be an integer of at least 2 (the number of folds); got {k!r}.")
    y = _stratify_codes(table)
    if y is None:
        raise DataError(
            "Cross-validation folds are stratified by label, but some records have no label. "
            "Label every record or remove the unlabelled ones."
        )
    classes = classes_of(table["label"])
    class_sizes = np.bincount(y, minlength=len(classes))
    smallest = int(class_sizes.min())
    rarest = classes[int(class_sizes.argmin())]
    X = np.zeros((len(y), 1))
    if groups is None:
        if k > smallest:
            raise ConfigError(
                f"k={k} folds need at least {k} records of every class, but class '{rarest}' has "
                f"{smallest}. The largest usable k is {smallest}; use k <= {smallest} or add "
                f"records of class '{rarest}'."
            )
        splitter = StratifiedKFold(n_splits=int(k), shuffle=True, random_state=seed)
        folds = list(splitter.split(X, y))
    else:
        keys = _group_keys(groups, len(y))
        n_groups = len(set(keys))
        max_k = min(n_groups, smallest)
        if k > max_k:
            why = (
                f"there are only {n_groups} groups"
                if n_groups <= smallest
                else f"class '{rarest}' has only {smallest} records"
            )
            raise ConfigError(
                f"k={k} grouped folds are not possible: {why}. The largest usable k is {max_k}; "
                "use a smaller k or add records from more proteins."
            )
        splitter = StratifiedGroupKFold(n_splits=int(k), shuffle=True, random_state=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # the class-size check is ours, above
            folds = list(splitter.split(X, y, keys))
        if any(len(test) == 0 for _, test in folds):
            # StratifiedGroupKFold can leave a fold empty when groups are very unequal;
            # GroupKFold always fills every fold (largest groups first into the lightest fold).
            warnings.warn(
                f"Stratified grouped {k}-fold left a fold empty (a few large groups); the folds "
                "are grouped but not stratified by label.",
                UserWarning,
                stacklevel=2,
            )
            folds = list(GroupKFold(n_splits=int(k)).split(X, y, keys))
    return [(np.asarray(tr, dtype=np.int64), np.asarray(te, dtype=np.int64)) for tr, te in folds]


# --------------------------------------------------------------------------- helpers


def _missing(value: object) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _group_keys(groups: Sequence[Any], n: int) -> np.ndarray:
    if isinstance(groups, str):
        raise ConfigError("groups must hold one key per row, not a single string; pass a list or Series.")
    keys = np.asarray([None if _missing(g) else str(g) for g in groups], dtype=object)
    if len(keys) != n:
        raise ConfigError(f"groups must hold one key per row: the table has {n} rows, groups has {len(keys)}.")
    missing = [i for i, g in enumerate(keys) if g is None]
    if missing:
        raise DataError(
            f"{len(missing)} rows have no group (first at row {missing[0] + 1}). Give every record "
            "a protein or cluster, e.g. with protein_groups()."
        )
    return keys


def _stratify_codes(table: pd.DataFrame) -> np.ndarray | None:
    """Class index per row, or None when some row has no label."""
    if "label" not in table.columns:
        return None
    labels = [None if _missing(v) or not str(v).strip() else str(v).strip() for v in table["label"]]
    if any(lab is None for lab in labels):
        return None
    index = {c: i for i, c in enumerate(classes_of(labels))}
    return np.array([index[lab] for lab in labels], dtype=np.int64)


def _check_fraction(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{name} must be a number from 0 up to (not including) 1; got {value!r}.")
    if not 0 <= float(value) < 1:
        raise ConfigError(f"{name} must be from 0 up to (not including) 1; got {value!r}.")
    return float(value)


