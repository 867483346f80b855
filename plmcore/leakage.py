"""How much a test set overlaps its training set: shared proteins, overlapping windows, copies.

A test window cut from a protein that also gave training windows, or overlapping one of them,
is partly remembered rather than predicted; its score says little about new proteins.
:func:`leakage_report` measures this for any pair of tables (ids, sequences, labels) and
words the findings as plain-language warnings.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from plmcore.data import accession_of
from plmcore.errors import ConfigError, DataError, EmptyInputError
from plmcore.identity import identity_blocks, min_overlap_for, onehot_windows, run_tool
from plmcore.splits import protein_groups

__all__ = ["IDENTITY_BINS", "OVERLAP_IDENTITY", "format_leakage", "leakage_report", "parse_positions"]

# Windows this identical over at least half their length are the same stretch of sequence
# (a shifted cut of one protein, or a near-identical paralogue) whatever their ids say.
OVERLAP_IDENTITY = 0.9
IDENTITY_BINS = (0.0, 0.3, 0.5, 0.7, 0.9, 1.0)
KMER = 3
_MAX_LISTED = 5
_TOLERANCE = 1e-9
_POSITIONS = re.compile(r"%(\d+)%(\d+)\s*$")


def parse_positions(record_id: str, length: int) -> tuple[int, int] | None:
    """First and last protein position a window covers, from a '...%start%end' id; else None.

    In the DTL-DephosSite files the second number is the central site, not the window end
    (">sp|P08581|MET_HUMAN%1349%1365" is a 33-residue window starting at 1349 with Y1365 in
    its middle), so the window is taken to cover start .. start + length - 1, or up to end
    if that is further.
    """
    match = _POSITIONS.search(str(record_id))
    if match is None:
        return None
    start, end = int(match.group(1)), int(match.group(2))
    return start, max(end, start + length - 1)


def leakage_report(
    train: pd.DataFrame,
    test: pd.DataFrame,
    *,
    group_column: str | None = None,
    identity_threshold: float = 0.5,
    test_file: bool = False,
    grouped: bool = False,
) -> dict:
    """Shared proteins, overlapping windows, duplicates and nearest-neighbour identity (JSON-ready).

    The advice fits the situation: when the test set is a separate file (`test_file`), no split of
    the training data can remove what that file shares with it, so the advice is to drop the
    overlapping test records or to hold out proteins instead ("actions": drop_overlapping_test,
    hold_out_proteins); a split already `grouped` by protein is not told to group by protein.

    Args:
        train, test: tables with id and sequence columns (label optional).
        group_column: column naming each record's protein; default the accession in the id.
        identity_threshold: test items at least this identical to some training item are
            counted (and warned about) as close homologues.
    """
    _check_table(train, "training")
    _check_table(test, "test")
    if isinstance(identity_threshold, bool) or not 0 < float(identity_threshold) <= 1:
        raise ConfigError(
            f"identity_threshold must be a fraction above 0 and at most 1 (e.g. 0.5); got {identity_threshold!r}."
        )
    identity_threshold = float(identity_threshold)
    if group_column is not None and all(group_column not in f.columns and "group" in f.columns for f in (train, test)):
        group_column = "group"  # the file's column, kept as 'group' when the tables were read
    if group_column is not None:
        for frame, name in ((train, "training"), (test, "test")):
            if group_column not in frame.columns:
                raise DataError(
                    f"The {name} table has no column {group_column!r} to group by (columns: "
                    f"{list(frame.columns)}). Add it to both tables, or leave {{group_column}} unset to group by "
                    "the accession in the ids."
                )
    tr, te = _side(train, group_column), _side(test, group_column)
    aligned = len({len(s) for s in tr.seqs + te.seqs}) == 1

    proteins = _protein_overlap(tr.groups, te.groups)
    duplicates = _duplicates(tr, te)
    nearest = _nearest(tr.seqs, te.seqs, aligned)
    overlaps = _overlapping_pairs(tr, te, nearest)
    identity = _identity_summary(te.ids, tr.ids, nearest, identity_threshold)

    report: dict[str, Any] = {
        "n_test": len(te.ids),
        "n_train": len(tr.ids),
        "grouping": f"column '{group_column}'" if group_column else (
            "the group column chosen when the data was read" if "group" in train.columns
            else "UniProt accession in the id (isoforms merged)"),
        "protein_overlap": proteins,
        "overlapping_windows": overlaps,
        "duplicates": duplicates,
        "identity": identity,
        "aligned": aligned,
    }
    report["test_file"], report["grouped"] = bool(test_file), bool(grouped)
    shared = {p["protein"] for p in proteins["proteins"]}
    leaking = {rid for rid, g in zip(te.ids, te.groups) if g in shared}
    leaking |= {item["test_id"] for item in duplicates["items"]}
    leaking |= set(overlaps.get("test_ids") or [])
    report["leaking_test_ids"] = sorted(leaking)
    report["warnings"] = _warnings(report, aligned)
    report["actions"] = (["drop_overlapping_test", "hold_out_proteins"] if test_file and leaking
                         else ["group_by_protein"] if proteins["n_test_items"] and not grouped else [])
    report["leaks"] = bool(
        proteins["n_test_items"]
        or overlaps["n_test_items"]
        or duplicates["n_test_items"]
        or identity["n_at_or_above_threshold"]
    )
    return report


# --------------------------------------------------------------------------- parts


def _protein_overlap(train_groups: list[str], test_groups: list[str]) -> dict:
    train_counts = Counter(train_groups)
    test_counts = Counter(test_groups)
    shared = [g for g in test_counts if g in train_counts]
    shared.sort(key=lambda g: (-test_counts[g], g))
    n_items = sum(test_counts[g] for g in shared)
    return {
        "n_test_items": n_items,
        "fraction": n_items / len(test_groups),
        "n_proteins": len(shared),
        "n_test_proteins": len(test_counts),
        "proteins": [{"protein": g, "n_test": test_counts[g], "n_train": train_counts[g]} for g in shared],
    }


def _duplicates(train: _Side, test: _Side) -> dict:
    by_sequence: dict[str, list[str]] = {}
    for rid, seq in zip(train.ids, train.seqs):
        by_sequence.setdefault(seq, []).append(rid)
    items = [
        {"test_id": rid, "train_ids": by_sequence[seq]} for rid, seq in zip(test.ids, test.seqs) if seq in by_sequence
    ]
    return {"n_test_items": len(items), "items": items}


def _nearest(train_seqs: list[str], test_seqs: list[str], aligned: bool) -> dict:
    """Each test item's best identity to any training item, plus every pair >= OVERLAP_IDENTITY."""
    n = len(test_seqs)
    best = np.zeros(n)
    best_j = np.full(n, -1, dtype=np.int64)
    best_shift: np.ndarray | None = None
    close: list[tuple[int, int, float, int | None]] = []
    if aligned:
        length = len(test_seqs[0])
        overlap = min_overlap_for(length)
        method = f"best ungapped identity over shifts keeping >= {overlap} of {length} residues overlapping"
        best_shift = np.zeros(n, dtype=np.int64)
        q, t = onehot_windows(test_seqs, length), onehot_windows(train_seqs, length)
        for rows, ident, shift in identity_blocks(q, t, overlap, symmetric=False):
            j = ident.argmax(1)
            r = np.arange(len(j))
            best[rows], best_j[rows], best_shift[rows] = ident[r, j], j, shift[r, j]
            for a, b in zip(*np.nonzero(ident >= OVERLAP_IDENTITY - _TOLERANCE)):
                close.append((int(a) + rows.start, int(b), float(ident[a, b]), int(shift[a, b])))
    elif shutil.which("mmseqs"):
        method = "mmseqs2 easy-search identity (alignment covering >= half of the test sequence)"
        hits = _mmseqs_search(test_seqs, train_seqs)
        for a, b, ident in hits:
            if ident > best[a] + _TOLERANCE:
                best[a], best_j[a] = ident, b
            if ident >= OVERLAP_IDENTITY - _TOLERANCE:
                close.append((a, b, ident, None))
    else:
        method = (
            f"approximate: shared {KMER}-mers / k-mers of the shorter sequence (sequences differ in "
            "length; install mmseqs2 for alignment identity)"
        )
        for a, b, ident, is_best in _kmer_identity(test_seqs, train_seqs):
            if is_best:
                best[a], best_j[a] = ident, b
            if ident >= OVERLAP_IDENTITY - _TOLERANCE:
                close.append((a, b, ident, None))
    return {"method": method, "best": best, "best_j": best_j, "best_shift": best_shift, "close": close}


def _overlapping_pairs(train: _Side, test: _Side, nearest: dict) -> dict:
    pairs: dict[tuple[int, int], dict] = {}
    # positions: only comparable within one isoform of one protein
    spans: dict[tuple[str, str], list[tuple[int, int, int]]] = {}
    for j, (rid, seq, group) in enumerate(zip(train.ids, train.seqs, train.groups)):
        span = parse_positions(rid, len(seq))
        if span is not None:
            spans.setdefault((group, _isoform(rid)), []).append((j, *span))
    for i, (rid, seq, group) in enumerate(zip(test.ids, test.seqs, test.groups)):
        span = parse_positions(rid, len(seq))
        if span is None:
            continue
        for j, start, end in spans.get((group, _isoform(rid)), []):
            shared = min(span[1], end) - max(span[0], start) + 1
            if shared <= 0:
                continue
            shift = start - span[0]
            pairs[(i, j)] = {
                "test_id": rid,
                "train_id": train.ids[j],
                "reasons": ["positions"],
                "overlap": int(shared),
                "shift": int(shift),
                "identity": _identity_at(seq, train.seqs[j], shift),
            }
    for i, j, ident, shift in nearest["close"]:
        entry = pairs.get((i, j))
        if entry is None:
            overlap = len(test.seqs[i]) - abs(shift) if shift is not None else None
            pairs[(i, j)] = {
                "test_id": test.ids[i],
                "train_id": train.ids[j],
                "reasons": ["identity"],
                "overlap": overlap,
                "shift": shift,
                "identity": ident,
            }
        else:
            entry["reasons"].append("identity")
            entry["identity"] = max(entry["identity"] or 0.0, ident)
    listed = []
    for (i, j), entry in sorted(pairs.items()):
        if test.labels[i] is not None and train.labels[j] is not None:
            entry["same_label"] = test.labels[i] == train.labels[j]
        entry["same_protein"] = test.groups[i] == train.groups[j]
        listed.append(entry)
    items = sorted({i for i, _ in pairs})
    by_position = sorted({i for (i, _j), e in pairs.items() if "positions" in e["reasons"]})
    by_identity = sorted({i for (i, _j), e in pairs.items() if "identity" in e["reasons"]})
    return {
        "n_pairs": len(listed),
        "n_test_items": len(items),
        "fraction": len(items) / len(test.ids),
        "n_test_items_by_positions": len(by_position),
        "n_test_items_by_identity": len(by_identity),
        "identity_cutoff": OVERLAP_IDENTITY,
        "test_ids": [test.ids[i] for i in items],
        "pairs": listed,
    }


def _identity_summary(test_ids: list[str], train_ids: list[str], nearest: dict, threshold: float) -> dict:
    best, best_j, shifts = nearest["best"], nearest["best_j"], nearest["best_shift"]
    per_test = []
    for i, rid in enumerate(test_ids):
        j = int(best_j[i])
        per_test.append(
            {
                "id": rid,
                "max_identity": float(best[i]),
                "closest_train_id": train_ids[j] if j >= 0 else None,
                "shift": int(shifts[i]) if shifts is not None and j >= 0 else None,
            }
        )
    edges = list(IDENTITY_BINS)
    bins = {}
    for k, (lo, hi) in enumerate(zip(edges[:-1], edges[1:])):
        last = k == len(edges) - 2
        inside = (best >= lo - _TOLERANCE) & ((best <= hi + _TOLERANCE) if last else (best < hi - _TOLERANCE))
        bins[f"[{lo:g}, {hi:g}{']' if last else ')'}"] = int(inside.sum())
    return {
        "method": nearest["method"],
        "threshold": threshold,
        "n_at_or_above_threshold": int((best >= threshold - _TOLERANCE).sum()),
        "summary": {
            "min": float(best.min()),
            "median": float(np.median(best)),
            "max": float(best.max()),
            "bins": bins,
        },
        "per_test": per_test,
    }


def _protein_advice(report: dict) -> str:
    """What to do about test records from training proteins, in this situation."""
    if report.get("test_file"):
        return ("The separate test file is what shares them, so no split of the training data can change "
                "that: drop the overlapping test records, or hold out proteins of the training data as the "
                "test set instead of using the test file.")
    if report.get("grouped"):
        return ("The split is already grouped by protein, so these records name their proteins differently: "
                "choose the column that names each record's protein (the group), then split again.")
    return "Use a split grouped by protein."


def _warnings(report: dict, aligned: bool) -> list[str]:
    n = report["n_test"]
    noun = "windows" if aligned else "sequences"
    out = []
    proteins = report["protein_overlap"]
    if proteins["n_test_items"]:
        k = proteins["n_test_items"]
        out.append(
            f"{k} of {n} test {noun} ({_pct(k, n)}) come from proteins that also have {noun} in the "
            f"training set ({proteins['n_proteins']} shared protein{'s' if proteins['n_proteins'] != 1 else ''}): "
            f"the test score is likely optimistic. {_protein_advice(report)}"
        )
    overlaps = report["overlapping_windows"]
    if overlaps["n_test_items"]:
        k = overlaps["n_test_items"]
        parts = []
        if overlaps["n_test_items_by_positions"]:
            parts.append(
                f"{overlaps['n_test_items_by_positions']} cover positions of a training {noun[:-1]} "
                "from the same protein"
            )
        if overlaps["n_test_items_by_identity"]:
            parts.append(
                f"{overlaps['n_test_items_by_identity']} are >= {OVERLAP_IDENTITY:.0%} identical to one "
                "over at least half their length (a shifted copy or a close paralogue)"
            )
        out.append(
            f"{k} of {n} test {noun} ({_pct(k, n)}) overlap training {noun}: {' and '.join(parts)}. "
            "The model has seen those residues with their labels: remove them from the test set, "
            "or split by protein and sequence identity."
        )
    duplicates = report["duplicates"]
    if duplicates["n_test_items"]:
        k = duplicates["n_test_items"]
        examples = ", ".join(item["test_id"] for item in duplicates["items"][:3])
        out.append(
            f"{k} test {noun if k != 1 else noun[:-1]} also occur{'s' if k == 1 else ''} verbatim in "
            f"the training set (e.g. {examples}): {'their scores measure' if k != 1 else 'its score measures'} "
            "memory, not prediction. Remove them from the test set."
        )
    identity = report["identity"]
    k = identity["n_at_or_above_threshold"]
    if k:
        out.append(
            f"{k} of {n} test {noun} ({_pct(k, n)}) are at least {identity['threshold']:.0%} identical "
            "to a training item: the score reflects performance on close homologues. For an estimate "
            f"on unseen families, split by sequence identity at {identity['threshold']:.0%}."
        )
    return out


# --------------------------------------------------------------------------- identity helpers


def _identity_at(a: str, b: str, shift: int) -> float | None:
    """Identity of a and b where a[p + shift] faces b[p]; None when they do not overlap."""
    matches = total = 0
    for p in range(max(0, -shift), min(len(b), len(a) - shift)):
        total += 1
        matches += a[p + shift] == b[p]
    return matches / total if total else None


def _kmer_identity(query: Sequence[str], target: Sequence[str]):
    """Yield (i, j, approx identity, is_best) for pairs sharing k-mers, plus each query's best."""
    vocab: dict[str, int] = {}

    def entries(seqs: Sequence[str]) -> tuple[list[int], list[int]]:
        rows, cols = [], []
        for i, s in enumerate(seqs):
            # a sequence shorter than k is one "k-mer" of its own
            for kmer in {s[p : p + KMER] for p in range(len(s) - KMER + 1)} or {s}:
                rows.append(i)
                cols.append(vocab.setdefault(kmer, len(vocab)))
        return rows, cols

    q_entries, t_entries = entries(query), entries(target)
    shape = len(vocab)
    q_rows = sparse.csr_matrix((np.ones(len(q_entries[0])), q_entries), shape=(len(query), shape))
    t_rows = sparse.csr_matrix((np.ones(len(t_entries[0])), t_entries), shape=(len(target), shape))
    q_size = np.asarray(q_rows.sum(1)).ravel()
    t_size = np.asarray(t_rows.sum(1)).ravel()
    shared = (q_rows @ t_rows.T).tocoo()
    best: dict[int, tuple[float, int]] = {}
    for i, j, count in zip(shared.row, shared.col, shared.data):
        ident = float(count / min(q_size[i], t_size[j]))
        if ident >= OVERLAP_IDENTITY - _TOLERANCE:
            yield int(i), int(j), ident, False
        if ident > best.get(i, (0.0, -1))[0]:
            best[i] = (ident, int(j))
    for i, (ident, j) in best.items():
        yield int(i), j, ident, True


def _mmseqs_search(query: Sequence[str], target: Sequence[str]) -> list[tuple[int, int, float]]:
    exe = shutil.which("mmseqs")
    if exe is None:
        raise ConfigError("mmseqs2 is not on the PATH: install it (apt-get install mmseqs2).")
    with tempfile.TemporaryDirectory(prefix="plmcore_leak_") as tmp:
        folder = Path(tmp)
        for name, seqs in (("q", query), ("t", target)):
            (folder / f"{name}.fasta").write_text("".join(f">{name}{i}\n{s}\n" for i, s in enumerate(seqs)))
        files = [str(folder / name) for name in ("q.fasta", "t.fasta", "hits.m8", "tmp")]
        # --cov-mode 2 -c 0.5: the alignment covers at least half of the test sequence.
        # Short windows give weak E-values, so -e 1000 keeps every hit and lets identity speak.
        options = "--format-output query,target,fident --cov-mode 2 -c 0.5 -e 1000 --threads 2 -v 1".split()
        run_tool([exe, "easy-search", *files, *options], "mmseqs2")
        lines = (folder / "hits.m8").read_text().split("\n")
    hits = []
    for line in lines:
        if line.strip():
            q, t, ident = line.split("\t")[:3]
            hits.append((int(q[1:]), int(t[1:]), float(ident)))
    return hits


# --------------------------------------------------------------------------- small helpers


def _isoform(record_id: str) -> str:
    accession = accession_of(record_id)
    if accession is None:
        return ""
    match = re.search(rf"{re.escape(accession)}(-\d+)", record_id)
    return match.group(1) if match else ""


@dataclass(frozen=True)
class _Side:
    """One table's ids, upper-case sequences, protein groups and labels, as plain lists."""

    ids: list[str]
    seqs: list[str]
    groups: list[str]
    labels: list[str | None]


def _side(table: pd.DataFrame, group_column: str | None) -> _Side:
    if "label" in table.columns:
        labels = [
            None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v).strip() for v in table["label"]
        ]
    else:
        labels = [None] * len(table)
    return _Side(
        ids=[str(v) for v in table["id"]],
        seqs=[str(s).upper() for s in table["sequence"]],
        groups=list(protein_groups(table, group_column)),
        labels=labels,
    )


def _check_table(table: pd.DataFrame, name: str) -> None:
    missing = [c for c in ("id", "sequence") if c not in table.columns]
    if missing:
        raise DataError(
            f"The {name} table lacks the column(s) {missing} (it has {list(table.columns)}). Read files "
            "with plmcore.data.read_table, or name the columns 'id' and 'sequence'."
        )
    if len(table) == 0:
        raise EmptyInputError(f"The {name} table holds no records; load a file with sequences.")


def _pct(k: int, n: int) -> str:
    return f"{100 * k / n:.0f}%"


# --------------------------------------------------------------------------- text


def format_leakage(report: dict) -> str:
    """Plain-text account of a leakage report, for the command line."""
    n = report["n_test"]
    proteins = report["protein_overlap"]
    overlaps = report["overlapping_windows"]
    duplicates = report["duplicates"]
    identity = report["identity"]
    lines = [
        f"Leakage check: {n} test items against {report['n_train']} training items (proteins by {report['grouping']}).",
        f"  test items from proteins also in training: {proteins['n_test_items']} of {n} "
        f"({proteins['fraction']:.0%}), {proteins['n_proteins']} shared proteins",
    ]
    if proteins["proteins"]:
        shown = ", ".join(
            f"{p['protein']} ({p['n_test']} test / {p['n_train']} train)" for p in proteins["proteins"][:8]
        )
        more = len(proteins["proteins"]) - 8
        lines.append(f"    {shown}{f', and {more} more' if more > 0 else ''}")
    lines.append(
        f"  test items overlapping a training item: {overlaps['n_test_items']} of {n} "
        f"({overlaps['n_test_items_by_positions']} by positions in the same protein, "
        f"{overlaps['n_test_items_by_identity']} by >= {overlaps['identity_cutoff']:.0%} identity; "
        f"{overlaps['n_pairs']} pairs)"
    )
    for pair in overlaps["pairs"][:10]:
        ident = f"{pair['identity']:.2f}" if pair["identity"] is not None else "n/a"
        shared = pair["overlap"] if pair["overlap"] is not None else "?"
        lines.append(
            f"    {pair['test_id']} ~ {pair['train_id']}: {shared} residues overlap, identity {ident} "
            f"({' + '.join(pair['reasons'])})"
        )
    if overlaps["n_pairs"] > 10:
        lines.append(f"    ... and {overlaps['n_pairs'] - 10} more pairs")
    lines.append(f"  exact duplicate sequences: {duplicates['n_test_items']}")
    summary = identity["summary"]
    lines.append(
        f"  nearest training item identity ({identity['method']}): min {summary['min']:.2f}, "
        f"median {summary['median']:.2f}, max {summary['max']:.2f}"
    )
    lines.append("    " + "  ".join(f"{k}: {v}" for k, v in summary["bins"].items()))
    if report["warnings"]:
        lines.append("Warnings:")
        lines.extend(f"  - {w}" for w in report["warnings"])
    else:
        lines.append("No leakage found.")
    return "\n".join(lines)


def headline(report: dict | None) -> str | None:
    """The leakage report's worst finding in a few words, for a badge beside a test metric
    (e.g. '⚠ 60% of test windows from training proteins'); None when nothing leaks or there is no report."""
    if not report or not report.get("leaks"):
        return None
    n = report.get("n_test") or 0
    noun = {True: "windows", False: "sequences"}.get(report.get("aligned"), "items")
    proteins = report.get("protein_overlap") or {}
    overlaps = report.get("overlapping_windows") or {}
    duplicates = report.get("duplicates") or {}
    identity = report.get("identity") or {}
    if duplicates.get("n_test_items"):
        return f"⚠ {duplicates['n_test_items']} test {noun} also in training"
    if proteins.get("n_test_items"):
        return f"⚠ {_pct(proteins['n_test_items'], n)} of test {noun} from training proteins"
    if overlaps.get("n_test_items"):
        return f"⚠ {_pct(overlaps['n_test_items'], n)} of test {noun} overlap training {noun}"
    if identity.get("n_at_or_above_threshold"):
        return (f"⚠ {_pct(identity['n_at_or_above_threshold'], n)} of test {noun} ≥ "
                f"{identity.get('threshold', 0):.0%} identical to training")
    return "⚠ test set shares sequence with training"
