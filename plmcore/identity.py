"""Sequence identity: shift-aware identity of aligned windows, and identity clusters by
MMseqs2, CD-HIT or an exact built-in comparison.

Sequence identity between equal-length windows is the best *ungapped* identity over all
relative shifts that keep at least half of the window overlapping: windows cut from one
protein a few residues apart share most residues at the right shift, which a position-by-
position comparison misses. Only the 20 standard amino acids count as matches, so padding
(X) at protein ends does not make windows look alike.

Used by plmcore.splits (identity-grouped splits) and plmcore.leakage (nearest training item).
"""

from __future__ import annotations

import math
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.sparse.csgraph import connected_components

from plmcore.data import AMINO_ACIDS
from plmcore.errors import ConfigError, PlmcoreError

__all__ = [
    "CLUSTER_METHODS",
    "MAX_BUILTIN_SEQUENCES",
    "identity_blocks",
    "identity_clusters",
    "min_overlap_for",
    "onehot_windows",
    "renumber",
    "require_tool",
    "run_tool",
    "shift_identity",
]

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
INSTALL_HINT = "install mmseqs2 (apt-get install mmseqs2, or conda install -c bioconda mmseqs2)"
_TOLERANCE = 1e-9  # identities are ratios of small integers; never lose an exact tie to rounding
_BLOCK_ELEMENTS = 4_000_000  # query rows x targets per block of the identity computation

_AA_INDEX = np.full(256, -1, dtype=np.int16)
for _i, _aa in enumerate(AMINO_ACIDS):
    _AA_INDEX[ord(_aa)] = _i
    _AA_INDEX[ord(_aa.lower())] = _i


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
    q, t = onehot_windows(query, length), onehot_windows(target, length)
    for rows, best, best_shift in identity_blocks(q, t, overlap, symmetric=False):
        identity[rows] = best
        shift[rows] = best_shift
    return identity, shift


def identity_blocks(
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


def onehot_windows(sequences: Sequence[str], length: int) -> np.ndarray:
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
            f"{min(lengths)}-{max(lengths)}. To compare sequences of any length, {INSTALL_HINT}."
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
            f"length, {INSTALL_HINT} or, for thresholds >= 0.4, cd-hit (apt-get install cd-hit)."
        )
    if n > MAX_BUILTIN_SEQUENCES:
        raise ConfigError(
            f"The built-in identity clustering compares all pairs and is limited to "
            f"{MAX_BUILTIN_SEQUENCES:,} sequences; got {n:,}. For large sets, {INSTALL_HINT}; it is "
            "then used automatically."
        )
    length = lengths.pop()
    oh = onehot_windows(sequences, length)
    rows, cols = [], []
    for block_rows, hit in _edge_blocks(oh, min_overlap_for(length), threshold):
        r, c = np.nonzero(hit)
        rows.append(r + block_rows.start)
        cols.append(c)
    r, c = np.concatenate(rows), np.concatenate(cols)
    graph = sparse.coo_matrix((np.ones(len(r), dtype=np.int8), (r, c)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    return renumber(labels)


def _cluster_mmseqs(sequences: list[str], threshold: float) -> np.ndarray:
    exe = require_tool("mmseqs", "mmseqs2")
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
        run_tool([exe, "easy-cluster", *files, *options], "mmseqs2")
        pairs = (folder / "out_cluster.tsv").read_text().split("\n")
    rep = np.arange(len(sequences))
    for line in pairs:
        if line.strip():
            centre, member = line.split("\t")[:2]
            rep[int(member[1:])] = int(centre[1:])
    return renumber(rep)


def _cluster_cdhit(sequences: list[str], threshold: float) -> np.ndarray:
    if threshold < _CDHIT_WORDS[-1][0]:
        raise ConfigError(
            f"cd-hit clusters proteins at identities of 0.4 or more; got threshold={threshold:g}. "
            f"Use a threshold >= 0.4, or {INSTALL_HINT}."
        )
    exe = require_tool("cd-hit", "cd-hit")
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
        run_tool([exe, "-i", str(folder / "in.fasta"), "-o", str(folder / "out"), *options], "cd-hit")
        text = (folder / "out.clstr").read_text()
    labels = np.arange(len(sequences)) + len(sequences)  # unclustered (too short) stay alone
    cluster = -1
    for line in text.split("\n"):
        if line.startswith(">Cluster"):
            cluster += 1
        elif ">" in line:
            name = line.split(">", 1)[1].split("...", 1)[0]
            labels[int(name[1:])] = cluster
    return renumber(labels)


def require_tool(executable: str, name: str) -> str:
    path = shutil.which(executable)
    if path is None:
        hint = INSTALL_HINT if name == "mmseqs2" else "install cd-hit (apt-get install cd-hit)"
        raise ConfigError(f"{name} was requested but '{executable}' is not on the PATH: {hint}, or use method='auto'.")
    return path


def run_tool(command: list[str], name: str) -> None:
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


def renumber(labels: np.ndarray) -> np.ndarray:
    """Relabel as 0, 1, ... in order of first appearance, so labels do not depend on the tool."""
    codes, _ = pd.factorize(np.asarray(labels))
    return codes.astype(np.int64)


def _check_threshold(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < float(value) <= 1:
        raise ConfigError(
            f"The identity threshold must be a fraction above 0 and at most 1 (e.g. 0.5 for 50%); got {value!r}."
        )
    return float(value)
