"""Splits that do not leak: grouped by protein, grouped by sequence identity, and CV folds.

A random split of site windows puts windows of one protein (often overlapping ones) on both
sides, so the test score measures recall of the training data. Here every window of a group
(a protein, or a cluster of similar sequences) lands on one side only.

Sequence identity between equal-length windows is the best *ungapped* identity over all
relative shifts that keep at least half of the window overlapping: windows cut from one
protein a few residues apart share most residues at the right shift, which a position-by-
position comparison misses. Only the 20 standard amino acids count as matches, so padding
(X) at protein ends does not make windows look alike.
"""

from __future__ import annotations

import math
import shutil
import subprocess
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.sparse.csgraph import connected_components
from sklearn.model_selection import GroupKFold, StratifiedGroupKFold, StratifiedKFold

from plmcore.data import AMINO_ACIDS, accession_of, classes_of
from plmcore.errors import ConfigError, DataError, EmptyInputError, PlmcoreError

__all__ = [
    "CLUSTER_METHODS",
    "MAX_BUILTIN_SEQUENCES",
    "SPLIT_NAMES",
    "cv_folds",
    "identity_clusters",
    "make_split",
    "merge_groups",
    "min_overlap_for",
    "protein_groups",
    "shift_identity",
    "split_by_identity",
    "split_grouped",
    "split_summary",
]

SPLIT_NAMES = ("train", "val", "test")
CLUSTER_METHODS = ("auto", "mmseqs2", "cd-hit", "built-in")
# All-against-all is O(n^2 * length^2): 20,000 windows of 33 residues take a few minutes on
# two cores; beyond that an indexed tool (mmseqs2) is the right instrument.
MAX_BUILTIN_SEQUENCES = 20_000
_BUILTIN_PREFERRED = 5_000  # below this, "auto" uses the exact built-in comparison for windows
# cd-hit's word-size table (cd-hit user guide): the lowest identity each word size supports.
_CDHIT_WORDS = ((0.7, 5), (0.6, 4), (0.5, 3), (0.4, 2))
# Both clustering tools are told to require alignments covering half of each sequence, the
# same rule as the built-in shift-aware identity (see min_overlap_for).
_TOOL_COVERAGE = 0.5
_INSTALL_HINT = "install mmseqs2 (apt-get install mmseqs2, or conda install -c bioconda mmseqs2)"
_TOLERANCE = 1e-9  # identities are ratios of small integers; never lose an exact tie to rounding
_BLOCK_ELEMENTS = 4_000_000  # query rows x targets per block of the identity computation

_AA_INDEX = np.full(256, -1, dtype=np.int16)
for _i, _aa in enumerate(AMINO_ACIDS):
    _AA_INDEX[ord(_aa)] = _i
    _AA_INDEX[ord(_aa.lower())] = _i


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
    return _renumber(labels[:n])


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


# --------------------------------------------------------------------------- identity


def min_overlap_for(length: int) -> int:
    """Residues two windows of ``length`` must share at a shift to be compared: half, rounded up."""
    return max(1, math.ceil(length / 2))


def shift_identity(
    query: Sequence[str],
    target: Sequence[str] | None = None,
    *,
    min_overlap: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Best ungapped identity of every query window against every target window, over shifts.

    All sequences must have one length L. For a shift s, ``query[p + s]`` faces ``target[p]``
    (s = target start - query start when both are cut from one protein); identity = identical
    standard residues / overlap length, over shifts leaving >= ``min_overlap`` (default
    ceil(L/2)) residues overlapping. Returns (identity, best shift), each (n_query, n_target).
    """
    target = query if target is None else target
    length = _common_length([*query, *target], "shift_identity")
    overlap = min_overlap_for(length) if min_overlap is None else int(min_overlap)
    if not 1 <= overlap <= max(length, 1):
        raise ConfigError(f"min_overlap must be from 1 to the window length {length}; got {min_overlap!r}.")
    identity = np.zeros((len(query), len(target)))
    shift = np.zeros((len(query), len(target)), dtype=np.int64)
    if len(query) == 0 or len(target) == 0:
        return identity, shift
    q, t = _onehot(query, length), _onehot(target, length)
    for rows, best, best_shift in _identity_blocks(q, t, overlap, symmetric=False):
        identity[rows] = best
        shift[rows] = best_shift
    return identity, shift


def _identity_blocks(
    query: np.ndarray,
    target: np.ndarray,
    min_overlap: int,
    *,
    symmetric: bool,
) -> Iterator[tuple[slice, np.ndarray, np.ndarray]]:
    """Yield (query rows, best identity, best shift) blocks from flattened one-hot windows.

    ``query`` and ``target`` are (n, L * 20) one-hot arrays. With ``symmetric`` (target is
    query) only shifts >= 0 are tried: the pair (j, i) at shift -s is the pair (i, j) at s,
    so an undirected graph of "identity >= t" edges is complete at half the cost.
    """
    n, m = query.shape[0], target.shape[0]
    length = query.shape[1] // 20
    reach = length - min_overlap
    # smallest |shift| first, so ties keep the least shifted alignment
    shifts = [0] + [s for d in range(1, reach + 1) for s in ((d,) if symmetric else (d, -d))]
    block = max(1, _BLOCK_ELEMENTS // max(m, 1))
    for start in range(0, n, block):
        q = query[start : start + block]
        best = np.full((len(q), m), -1.0)
        best_shift = np.zeros((len(q), m), dtype=np.int64)
        for s in shifts:
            width = (length - abs(s)) * 20
            if s >= 0:
                # query[p + s] faces target[p]
                matches = q[:, s * 20 : s * 20 + width] @ target[:, :width].T
            else:
                matches = q[:, :width] @ target[:, -s * 20 : -s * 20 + width].T
            ident = matches.astype(np.float64) / (length - abs(s))
            better = ident > best + _TOLERANCE
            np.copyto(best, ident, where=better)
            best_shift[better] = s
        yield slice(start, start + len(q)), best, best_shift


def _edge_blocks(windows: np.ndarray, min_overlap: int, threshold: float) -> Iterator[tuple[slice, np.ndarray]]:
    """Yield (rows, hit) blocks: hit[i, j] when windows i and j reach ``threshold`` at a shift >= 0.

    The clustering only needs "identity >= threshold somewhere", so each shift is one count
    comparison (identical residues >= ceil(threshold * overlap)) instead of tracking the best
    identity; negative shifts are the transposed pairs, which an undirected graph does not need.
    """
    n = windows.shape[0]
    length = windows.shape[1] // 20
    block = max(1, _BLOCK_ELEMENTS // max(n, 1))
    needed = {s: math.ceil(threshold * (length - s) - _TOLERANCE) for s in range(length - min_overlap + 1)}
    for start in range(0, n, block):
        q = windows[start : start + block]
        hit = np.zeros((len(q), n), dtype=bool)
        for s, need in needed.items():
            width = (length - s) * 20
            hit |= (q[:, s * 20 : s * 20 + width] @ windows[:, :width].T) >= need
        yield slice(start, start + len(q)), hit


def _onehot(sequences: Sequence[str], length: int) -> np.ndarray:
    """(n, length * 20) float32 one-hot over the standard residues; others are all-zero."""
    n = len(sequences)
    text = "".join(sequences).encode("ascii", errors="replace")
    codes = _AA_INDEX[np.frombuffer(text, dtype=np.uint8)].reshape(n, length)
    out = np.zeros((n, length, 20), dtype=np.float32)
    rows, cols = np.nonzero(codes >= 0)
    out[rows, cols, codes[rows, cols]] = 1.0
    return out.reshape(n, length * 20)


def _common_length(sequences: Sequence[str], what: str) -> int:
    lengths = {len(s) for s in sequences}
    if len(lengths) > 1:
        raise ConfigError(
            f"{what} compares aligned windows of one length, but the sequences have lengths "
            f"{min(lengths)}-{max(lengths)}. To compare sequences of any length, {_INSTALL_HINT}."
        )
    return lengths.pop() if lengths else 0


# --------------------------------------------------------------------------- clustering


def identity_clusters(
    sequences: Sequence[str],
    threshold: float,
    *,
    method: str = "auto",
) -> tuple[np.ndarray, str]:
    """Cluster labels (0, 1, ... in order of first appearance) and the tool that made them.

    method: "mmseqs2" (``mmseqs easy-cluster``, connected-component mode), "cd-hit"
    (threshold >= 0.4), "built-in" (equal-length windows, up to MAX_BUILTIN_SEQUENCES;
    single linkage on the shift-aware identity of :func:`shift_identity`) or "auto": the
    first of those that is installed and applicable. All three require the aligned part to
    cover at least half of each sequence.
    """
    threshold = _check_threshold(threshold)
    if method not in CLUSTER_METHODS:
        raise ConfigError(f"method={method!r} is not allowed; use one of {', '.join(CLUSTER_METHODS)}.")
    sequences = [str(s) for s in sequences]
    if method == "auto":
        method = _auto_method(sequences, threshold)
    if len(sequences) == 0:
        return np.zeros(0, dtype=np.int64), method
    if method == "mmseqs2":
        return _cluster_mmseqs(sequences, threshold), "mmseqs2"
    if method == "cd-hit":
        return _cluster_cdhit(sequences, threshold), "cd-hit"
    return _cluster_builtin(sequences, threshold), "built-in"


def _auto_method(sequences: list[str], threshold: float) -> str:
    # the built-in comparison is exact for equal-length windows and quick for small sets;
    # the indexed tools pay a fixed start-up cost and use gapped identity
    if len({len(s) for s in sequences}) == 1 and len(sequences) <= _BUILTIN_PREFERRED:
        return "built-in"
    if shutil.which("mmseqs"):
        return "mmseqs2"
    if shutil.which("cd-hit") and threshold >= _CDHIT_WORDS[-1][0]:
        return "cd-hit"
    return "built-in"


def _cluster_builtin(sequences: list[str], threshold: float) -> np.ndarray:
    n = len(sequences)
    lengths = {len(s) for s in sequences}
    if len(lengths) > 1:
        raise ConfigError(
            f"The built-in identity clustering handles aligned windows of one length, but these "
            f"{n} sequences have lengths {min(lengths)}-{max(lengths)}. To cluster sequences of any "
            f"length, {_INSTALL_HINT} or, for thresholds >= 0.4, cd-hit (apt-get install cd-hit)."
        )
    if n > MAX_BUILTIN_SEQUENCES:
        raise ConfigError(
            f"The built-in identity clustering compares all pairs and is limited to "
            f"{MAX_BUILTIN_SEQUENCES:,} sequences; got {n:,}. For large sets, {_INSTALL_HINT}; it is "
            "then used automatically."
        )
    length = lengths.pop()
    oh = _onehot(sequences, length)
    rows, cols = [], []
    for block_rows, hit in _edge_blocks(oh, min_overlap_for(length), threshold):
        r, c = np.nonzero(hit)
        rows.append(r + block_rows.start)
        cols.append(c)
    r, c = np.concatenate(rows), np.concatenate(cols)
    graph = sparse.coo_matrix((np.ones(len(r), dtype=np.int8), (r, c)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    return _renumber(labels)


def _cluster_mmseqs(sequences: list[str], threshold: float) -> np.ndarray:
    exe = _require_tool("mmseqs", "mmseqs2")
    with tempfile.TemporaryDirectory(prefix="plmcore_mmseqs_") as tmp:
        folder = Path(tmp)
        _write_fasta(folder / "in.fasta", sequences)
        # --cluster-mode 1 (connected components) approximates single linkage: a greedy
        # set cover could put two similar sequences in different clusters via their centres.
        # mmseqs advises single-step clustering with it (the cascade merges fewer clusters),
        # and it skips two of the three fixed-cost prefilter passes.
        options = (
            f"--min-seq-id {threshold:g} -c {_TOOL_COVERAGE:g} --cov-mode 0 --cluster-mode 1 "
            "--single-step-clustering --threads 2 -v 1"
        ).split()
        files = [str(folder / name) for name in ("in.fasta", "out", "tmp")]
        _run_tool([exe, "easy-cluster", *files, *options], "mmseqs2")
        pairs = (folder / "out_cluster.tsv").read_text().split("\n")
    rep = np.arange(len(sequences))
    for line in pairs:
        if line.strip():
            centre, member = line.split("\t")[:2]
            rep[int(member[1:])] = int(centre[1:])
    return _renumber(rep)


def _cluster_cdhit(sequences: list[str], threshold: float) -> np.ndarray:
    if threshold < _CDHIT_WORDS[-1][0]:
        raise ConfigError(
            f"cd-hit clusters proteins at identities of 0.4 or more; got threshold={threshold:g}. "
            f"Use a threshold >= 0.4, or {_INSTALL_HINT}."
        )
    exe = _require_tool("cd-hit", "cd-hit")
    word = next(w for low, w in _CDHIT_WORDS if threshold >= low)
    shortest = min(len(s) for s in sequences)
    with tempfile.TemporaryDirectory(prefix="plmcore_cdhit_") as tmp:
        folder = Path(tmp)
        _write_fasta(folder / "in.fasta", sequences)
        # -G 0 with -aS/-aL: local identity over an alignment covering half of both sequences,
        # so shifted windows of one protein cluster as in the built-in method. -l keeps short
        # sequences that cd-hit would otherwise silently throw away (default: <= 10 residues).
        options = (
            f"-c {threshold:g} -n {word} -G 0 -aS {_TOOL_COVERAGE:g} -aL {_TOOL_COVERAGE:g} "
            f"-l {max(word, min(10, shortest - 1))} -d 0 -M 0 -T 2"
        ).split()
        _run_tool([exe, "-i", str(folder / "in.fasta"), "-o", str(folder / "out"), *options], "cd-hit")
        text = (folder / "out.clstr").read_text()
    labels = np.arange(len(sequences)) + len(sequences)  # unclustered (too short) stay alone
    cluster = -1
    for line in text.split("\n"):
        if line.startswith(">Cluster"):
            cluster += 1
        elif ">" in line:
            name = line.split(">", 1)[1].split("...", 1)[0]
            labels[int(name[1:])] = cluster
    return _renumber(labels)


def _require_tool(executable: str, name: str) -> str:
    path = shutil.which(executable)
    if path is None:
        hint = _INSTALL_HINT if name == "mmseqs2" else "install cd-hit (apt-get install cd-hit)"
        raise ConfigError(f"{name} was requested but '{executable}' is not on the PATH: {hint}, or use method='auto'.")
    return path


def _run_tool(command: list[str], name: str) -> None:
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise PlmcoreError(f"{name} could not be started ({exc}). Reinstall it or use method='built-in'.") from exc
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise PlmcoreError(
            f"{name} failed with exit code {done.returncode}: {' | '.join(tail)}. "
            "Check its installation, or use method='built-in' for aligned windows."
        )


def _write_fasta(path: Path, sequences: list[str]) -> None:
    # Index-based names survive every tool's header mangling.
    path.write_text("".join(f">s{i}\n{seq}\n" for i, seq in enumerate(sequences)))


# --------------------------------------------------------------------------- helpers


def _renumber(labels: np.ndarray) -> np.ndarray:
    """Relabel as 0, 1, ... in order of first appearance, so labels do not depend on the tool."""
    codes, _ = pd.factorize(np.asarray(labels))
    return codes.astype(np.int64)


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


def _check_threshold(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < float(value) <= 1:
        raise ConfigError(
            f"The identity threshold must be a fraction above 0 and at most 1 (e.g. 0.5 for 50%); got {value!r}."
        )
    return float(value)
