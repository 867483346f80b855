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
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.sparse.csgraph import connected_components
from sklearn.model_selection import GroupKFold, StratifiedGroupKFold, StratifiedKFold, train_test_split

from plmcore.data import MAX_NAMED, accession_of, classes_of, clean_label, plural
from plmcore.errors import ConfigError, DataError, DuplicateIdError, EmptyInputError, RunError
from plmcore.identity import identity_clusters, renumber

__all__ = [
    "SPLIT_COLUMNS",
    "SPLIT_NAMES",
    "attach_test",
    "load_split",
    "save_split",
    "split_table",
    "cv_folds",
    "make_split",
    "merge_groups",
    "protein_groups",
    "split_by_identity",
    "split_grouped",
    "split_summary",
]

SPLIT_NAMES = ("train", "val", "test")
SPLIT_COLUMNS = ("id", "sequence", "label", "split")


# --------------------------------------------------------------------------- random splits and split files


def _split_off(
    rows: np.ndarray,
    count: int,
    y: np.ndarray | None,
    seed: int,
    what: str,
    n_total: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Split ``count`` rows off ``rows``; stratified when possible."""
    if count >= len(rows):
        raise ConfigError(
            f"Cannot make a {what} split of {count} from {plural(len(rows), 'remaining record')} "
            f"({n_total} in all): the training split would be empty. Add records or lower "
            f"{what}_fraction."
        )
    if y is not None:
        try:
            kept, taken = train_test_split(rows, test_size=count, random_state=seed, stratify=y)
            return np.asarray(kept), np.asarray(taken)
        except ValueError as exc:
            warnings.warn(
                f"The {what} split cannot be stratified by label ({exc}); it was drawn at "
                "random instead, so class proportions may differ between splits.",
                UserWarning,
                stacklevel=3,
            )
    kept, taken = train_test_split(rows, test_size=count, random_state=seed)
    return np.asarray(kept), np.asarray(taken)


def split_table(
    table: pd.DataFrame,
    *,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    seed: int = 42,
    stratify: bool = True,
    test_table: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Return a copy with a "split" column ("train"/"val"/"test"), deterministic per seed.

    With ``test_table`` its rows are appended as the test split, ``val_fraction`` is taken
    from ``table`` and ``test_fraction`` is ignored. Stratified by label when possible.
    """
    val_fraction = _check_fraction("val_fraction", val_fraction)
    if test_table is None:
        test_fraction = _check_fraction("test_fraction", test_fraction)
        if val_fraction + test_fraction >= 1:
            raise ConfigError(
                f"val_fraction + test_fraction must be below 1 to leave records for training; "
                f"got {val_fraction} + {test_fraction} = {val_fraction + test_fraction:g}."
            )
    else:
        test_fraction = 0.0
    if len(table) == 0:
        raise EmptyInputError("The table to split holds no records; load some sequences first.")

    out = table.copy().reset_index(drop=True)
    n = len(out)
    y: np.ndarray | None = None
    if stratify and "label" in out.columns:
        labels = [clean_label(v) for v in out["label"]]
        if all(lab is not None for lab in labels):
            y = label_strata(labels, out["sequence"].tolist() if "sequence" in out.columns else [""] * n)
        elif any(lab is not None for lab in labels):
            warnings.warn(
                "Some records have no label, so the split is not stratified by label.",
                UserWarning,
                stacklevel=2,
            )
    rows = np.arange(n)
    split = np.array(["train"] * n, dtype=object)
    if test_fraction > 0:
        count = max(1, math.floor(test_fraction * n + 0.5))
        rows, taken = _split_off(rows, count, y, seed, "test", n)
        split[taken] = "test"
    if val_fraction > 0:
        count = max(1, math.floor(val_fraction * n + 0.5))
        rest_y = y[rows] if y is not None else None
        rows, taken = _split_off(rows, count, rest_y, seed, "val", n)
        split[taken] = "val"
    out["split"] = pd.Series(split, dtype=object)
    return out if test_table is None else attach_test(out, test_table)


def attach_test(split: pd.DataFrame, test_table: pd.DataFrame) -> pd.DataFrame:
    """A split with `test_table` appended as its test split, whatever the method that made it.

    Refuses ids shared with the training data, warns about shared sequences, and cleans the
    labels the same way for both.
    """
    test = test_table.copy().reset_index(drop=True)
    if len(test) == 0:
        raise EmptyInputError("The test table holds no records; load a test file with sequences.")
    _check_no_shared_ids(split, test)
    _warn_shared_sequences(split, test)
    test["split"] = "test"
    combined = pd.concat([split, test], ignore_index=True)
    if "label" in combined.columns:
        combined["label"] = pd.Series([clean_label(v) for v in combined["label"]], dtype=object)
    return combined


def _check_no_shared_ids(train: pd.DataFrame, test: pd.DataFrame) -> None:
    train_ids = {str(v): i for i, v in enumerate(train["id"])}
    shared = [(str(v), j) for j, v in enumerate(test["id"]) if str(v) in train_ids]
    if not shared:
        return

    def loc(frame: pd.DataFrame, i: int) -> str:
        return str(frame["source"].iloc[i]) if "source" in frame.columns else f"row {i + 1}"

    listed = ", ".join(
        f"'{rid}' ({loc(train, train_ids[rid])} and {loc(test, j)})"
        for rid, j in shared[:MAX_NAMED]
    )
    if len(shared) > MAX_NAMED:
        listed += f" and {len(shared) - MAX_NAMED} more"
    raise DuplicateIdError(
        f"{plural(len(shared), 'id')} appear in both the training data and the test data: "
        f"{listed}. Remove the test records from the training file, or rename them if they "
        "are different records."
    )


def _warn_shared_sequences(train: pd.DataFrame, test: pd.DataFrame) -> None:
    train_sequences = set(train["sequence"].astype(str))
    pairs = zip(test["id"], test["sequence"], strict=True)
    shared = [str(rid) for rid, seq in pairs if seq in train_sequences]
    if shared:
        warnings.warn(
            f"{plural(len(shared), 'test sequence')} also occur in the training data "
            f"(e.g. {', '.join(shared[:3])}); scores on them overstate performance.",
            UserWarning,
            stacklevel=3,
        )


def save_split(table: pd.DataFrame, path: Path | str) -> Path:
    """Write a split table (id, sequence, label, split and any other columns) as CSV."""
    missing = [col for col in SPLIT_COLUMNS if col not in table.columns]
    if missing:
        raise DataError(
            f"Cannot save the split: the table lacks the column(s) {missing}. Run split_table() "
            "on a validated table first."
        )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    first = list(SPLIT_COLUMNS)
    ordered = first + [col for col in table.columns if col not in first]
    table[ordered].to_csv(path, index=False)
    return path


def load_split(path: Path | str) -> pd.DataFrame:
    """Read a CSV written by save_split; labels stay strings ("0" is not 0)."""
    path = Path(path)
    if not path.is_file():
        raise RunError(
            f"No split file at {path}. The run directory is incomplete: start the run again."
        )
    header = list(pd.read_csv(path, nrows=0).columns)
    missing = [col for col in SPLIT_COLUMNS if col not in header]
    if missing:
        raise DataError(
            f"{path} lacks the column(s) {missing}; a split file has the columns "
            f"{', '.join(SPLIT_COLUMNS)}. Write it with save_split()."
        )
    others = [col for col in header if col not in SPLIT_COLUMNS and col != "source"]
    table = pd.read_csv(
        path,
        dtype={col: str for col in (*SPLIT_COLUMNS, "source") if col in header},
        keep_default_na=False,
        # Only the extra columns get pandas' usual missing-value spellings.
        na_values={col: ["", "NA", "NaN", "nan", "N/A", "null"] for col in others},
    )
    for col in ("id", "sequence", "split", *(("source",) if "source" in header else ())):
        table[col] = table[col].astype(object)
    table["label"] = pd.Series([clean_label(v) for v in table["label"]], dtype=object)
    bad = sorted(set(table["split"]) - set(SPLIT_NAMES))
    if bad:
        raise DataError(
            f"{path}: the split column holds {bad}; allowed are {', '.join(SPLIT_NAMES)}. "
            "Write the file with save_split()."
        )
    return table



# --------------------------------------------------------------------------- groups


def protein_groups(table: pd.DataFrame, column: str | None = None) -> pd.Series:
    """Per row, the protein a record comes from: ``column`` if given, else the table's ``group``
    column (read_table keeps the group column there), else the id's accession.

    Accessions are parsed with :func:`plmcore.data.accession_of` (isoform suffix dropped, so
    P04629 and P04629-2 are one protein); ids without a recognisable accession are their own
    group.
    """
    if column is not None and column not in table.columns and "group" in table.columns:
        column = "group"  # the file's column, kept as 'group' when the table was read
    if column is not None:
        if column not in table.columns:
            raise DataError(
                f"There is no column {column!r} to group by; the columns are {list(table.columns)}. "
                "Choose the column that names each record's protein with {group_column}, or leave it unset "
                "to group by the accession in the ids."
            )
        values = table[column]
        ids = table["id"] if "id" in table.columns else pd.Series(range(len(table)), index=table.index)
        out = [str(ids.iloc[i]) if _missing(v) or not str(v).strip() else str(v).strip() for i, v in enumerate(values)]
        return pd.Series(out, index=table.index, name="group", dtype=object)
    if "group" in table.columns:  # the protein column chosen (or found) when the table was read
        return protein_groups(table, "group")
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

    With a user-supplied `test_table`, it is the test split (attach_test) and only
    train/validation are drawn from `table` (grouped the same way). Returns the split table and
    a description of what ran.
    """
    from plmcore.config import SPLIT_METHODS

    if method not in SPLIT_METHODS:
        raise ConfigError(f"split method {method!r} is not allowed; choose {', '.join(SPLIT_METHODS)}")
    info = {"method": method, "val_fraction": val_fraction, "seed": seed, "stratify": stratify,
            "test_source": "uploaded test file" if test_table is not None else "held out"}
    inner_test = 0.0 if test_table is not None else test_fraction
    info["test_fraction"] = inner_test
    if method == "random":
        split = split_table(table, val_fraction=val_fraction, test_fraction=inner_test, seed=seed, stratify=stratify)
    elif method == "protein":
        split = split_grouped(table, protein_groups(table, group_column), val_fraction=val_fraction,
                              test_fraction=inner_test, seed=seed, stratify=stratify)
        info["groups"] = f"column {group_column}" if group_column else "UniProt accession from the id"
    else:
        split, tool = split_by_identity(table, identity_threshold, val_fraction=val_fraction,
                                        test_fraction=inner_test, seed=seed, groups=protein_groups(table, group_column))
        info.update(identity_threshold=identity_threshold, tool=tool,
                    groups="identity clusters merged with UniProt accessions")
        split = split.drop(columns=["cluster"])
    if test_table is not None:
        split = attach_test(split, test_table)
    info["counts"] = split["split"].value_counts().to_dict()
    return split, info


# --------------------------------------------------------------------------- cross-validation


def cv_folds(
    table: pd.DataFrame,
    k: int,
    *,
    seed: int,
    groups: Sequence[Any] | None = None,
    strata: Sequence[int] | None = None,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified k-fold (grouped when ``groups`` is given) as (train_idx, test_idx) positions.

    Folds are stratified by label, or by ``strata`` (one integer per row, e.g. a regression
    target's quintile; all equal for no stratification). The test folds are disjoint and
    together cover every row.
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 2:
        raise ConfigError(f"k must be an integer of at least 2 (the number of folds); got {k!r}.")
    if strata is not None:
        y = _renumber_strata(strata)
        classes = [f"stratum {i}" for i in range(int(y.max()) + 1)] if len(y) else []
    else:
        y = _stratify_codes(table)
        classes = classes_of(table["label"])
    if y is None:
        raise DataError(
            "Cross-validation folds are stratified by label, but some records have no label. "
            "Label every record or remove the unlabelled ones."
        )
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


def _renumber_strata(strata: Sequence[int]) -> np.ndarray:
    return pd.factorize(pd.Series(list(strata)))[0].astype(np.int64)


def target_quintiles(values: Sequence) -> np.ndarray:
    """Which fifth of the targets each value falls in (0-4): the strata of a regression target."""
    values = pd.to_numeric(pd.Series(list(values)), errors="coerce").to_numpy(dtype=float)
    return np.searchsorted(np.nanquantile(values, [0.2, 0.4, 0.6, 0.8]), values).astype(np.int64)


def label_strata(labels: Sequence[str], sequences: Sequence[str]) -> np.ndarray | None:
    """What a split is stratified by: the class; a regression target's quintile; nothing for
    multi-label sets and per-residue tracks, which have no one class per record."""
    from plmcore.tasks import detect

    task, _ = detect(list(labels), list(sequences))
    if task == "regression":
        return target_quintiles(labels)
    if task in ("multilabel", "residue"):
        return None
    return np.array(labels, dtype=object)


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


