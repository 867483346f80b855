"""Proteome-wide scans: a sequence file streamed through a trained run into a CSV, resumable.

Records are read one at a time (plmcore.data.iter_records), gathered into chunks of about
CHUNK_RESIDUES residues, validated and scored by the same code as in-memory prediction
(plmcore.predict.predict_table, whose one batched-inference loop packs a chunk's windows or
proteins by length), and appended to the CSV, which is flushed and synced after each chunk.
Memory stays flat whatever the number of proteins.

Next to the output, ``OUTPUT.progress.json`` records how many records, CSV rows and CSV bytes are
done, and a key of the run's weights, the input file's content and the settings. It is replaced
atomically after each chunk is on disk, so a crash never counts half a chunk as done: a resumed
scan cuts the CSV back to the recorded size, skips the records done and appends. A scan whose run,
input or settings changed is refused (``restart=True`` starts over).

A background scan (the Predict page) is a :class:`ScanDir` in the workspace, run by the same
worker mechanism as training (plmcore.runs.start_worker): the worker is the ``predict`` command
with ``--job DIR``, so the page runs exactly what the command line would.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from plmcore import data as D
from plmcore.errors import ConfigError, DuplicateIdError, PlmcoreError
from plmcore.runs import RunDir, write_json

# Residues per chunk: a chunk is scored, written and recorded as done as one piece. 100k residues
# of a proteome are ~250 proteins and, at ~3% tyrosines, ~3,000 Y windows: large enough for full
# inference batches, small enough that an interruption loses under a minute on a CPU.
CHUNK_RESIDUES = 100_000
BACKGROUND_PROTEINS = 200  # the Predict page scans larger uploads in a worker process (ScanDir)
FORMAT = 1  # of the progress file and the CSV layout; a change refuses to resume older scans

Progress = Callable[[float, int], None] | None


class ScanError(PlmcoreError, ValueError):
    """A scan cannot start or resume as asked."""


@dataclass(frozen=True)
class ScanSettings:
    """What decides the rows of a scan (recorded in the progress file's key)."""

    residues: str | None = None  # candidate residues (default: the run's own)
    window: int | None = None  # window length (default: the run's training length)
    threshold: float | None = None  # decision threshold (default: the run's own)
    scan: bool = False  # scan every record, even those of window length


def progress_path(output: Path | str) -> Path:
    """The progress file kept next to a scan's CSV."""
    output = Path(output)
    return output.with_name(output.name + ".progress.json")


def file_digest(path: Path | str) -> str:
    """SHA-256 of a file's bytes, read in blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def scan_identity(loaded, input_path: Path | str, settings: ScanSettings) -> dict[str, str]:
    """What a resumed scan must share with the one it continues: the model, the input, the settings."""
    model = json.dumps([str(loaded.source), loaded.weights_stamp, loaded.decision], sort_keys=True, default=str)
    return {"model": hashlib.sha256(model.encode()).hexdigest()[:16],
            "input": file_digest(input_path)[:16],
            "settings": hashlib.sha256(json.dumps([FORMAT, asdict(settings)]).encode()).hexdigest()[:16]}


def count_records(path: Path | str) -> int:
    """How many records a file holds (read as the scan reads it)."""
    return sum(1 for _ in D.iter_records(path))


def chunks(records: Iterator[tuple[str, str, str]], residues: int) -> Iterator[list[tuple[str, str, str]]]:
    """Consecutive records in lists of about `residues` residues (at least one record each)."""
    chunk, size = [], 0
    for record in records:
        chunk.append(record)
        size += len(record[1])
        if size >= residues:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


def output_columns(loaded, settings: ScanSettings) -> list[str]:
    """The CSV's columns: "kind" and those predict_table gives for this run and these settings.

    Learnt from a two-record probe (one record of the window length, one longer), so a streamed
    scan has exactly the columns of in-memory prediction; a chunk that lacks one kind leaves its
    columns empty.
    """
    from plmcore.predict import predict_table

    w = settings.window or loaded.window_length or 9
    probe = pd.DataFrame({"id": ["probe_window", "probe_protein"],
                          "sequence": ["Y" * w, D.AMINO_ACIDS * (w // 20 + 2)]})
    frames = predict_table(loaded, probe, scan=settings.scan, residues=settings.residues, window=settings.window,
                           threshold=settings.threshold)
    columns = ["kind"]
    for df in frames.values():
        columns += [c for c in df.columns if c not in columns]
    return columns


def _score_chunk(loaded, chunk: list[tuple[str, str, str]], settings: ScanSettings, columns: list[str],
                 progress) -> tuple[pd.DataFrame, list]:
    from plmcore.predict import clean_input, predict_table

    table = pd.DataFrame({"id": [r[0] for r in chunk], "sequence": [r[1] for r in chunk],
                          "source": [r[2] for r in chunk]})
    table, warnings = clean_input(table)
    frames = predict_table(loaded, table, scan=settings.scan, residues=settings.residues, window=settings.window,
                           threshold=settings.threshold, progress=lambda what: progress)
    # object columns keep whole numbers whole ("12", not "12.0") where the other kind's rows leave gaps
    parts = [df.astype(object).assign(kind=kind) for kind, df in frames.items() if len(df)]
    out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    return out.reindex(columns=columns), warnings


def _start(output: Path, identity: dict, columns: list[str], total: int) -> dict:
    """A fresh CSV holding the header, and its progress file."""
    header = pd.DataFrame(columns=columns).to_csv(index=False)
    with open(output, "w", newline="") as fh:
        fh.write(header)
        fh.flush()
        os.fsync(fh.fileno())
    state = {"format": FORMAT, "identity": identity, "columns": columns, "records_total": total,
             "records_done": 0, "rows": 0, "bytes": output.stat().st_size, "finished": False}
    write_json(progress_path(output), state)
    return state


def _resume(output: Path, identity: dict, columns: list[str]) -> dict | None:
    """The progress of an unfinished scan of the same run, input and settings; None if there is none."""
    sidecar = progress_path(output)
    if not sidecar.exists() or not output.exists():
        return None
    try:
        state = json.loads(sidecar.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ScanError(f"{sidecar} is damaged ({exc}); scan again from the start (--restart)") from exc
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ScanError(f"{output} was written by another version of this scan; start over with --restart")
    changed = [what for what in ("model", "input", "settings") if state.get("identity", {}).get(what) != identity[what]]
    if changed or state.get("columns") != columns:
        what = {"model": "the model (another run, or its weights changed)", "input": "the input file's content",
                "settings": "the settings (residues, window, threshold or --scan)"}
        raise ScanError(f"{output} holds part of a scan with a different "
                        f"{' and '.join(what[c] for c in changed or ['settings'])}. Resuming would mix two scans: "
                        "give another --output, or start this one over with --restart.")
    size = output.stat().st_size
    if size < state["bytes"]:
        raise ScanError(f"{output} is shorter ({size:,} bytes) than its progress file records ({state['bytes']:,}); "
                        "it was changed by hand. Start over with --restart.")
    if size > state["bytes"]:  # a chunk half-written when the scan stopped: cut it off
        with open(output, "r+b") as fh:
            fh.truncate(state["bytes"])
    return state


def scan_file(loaded, input_path: Path | str, output: Path | str, settings: ScanSettings = ScanSettings(), *,
              restart: bool = False, progress: Progress = None, warn: Callable[[str], None] | None = None,
              stop: Callable[[], bool] | None = None, chunk_residues: int = CHUNK_RESIDUES,
              on_chunk: Callable[[dict], None] | None = None) -> dict:
    """Score every record of a FASTA (or table) file with `loaded` into the CSV `output`, streaming.

    Args:
        settings: residues, window, threshold and whether to scan window-length records too.
        restart: start over even when `output` holds an unfinished scan of the same inputs.
        progress: called with (records done, which may be fractional inside a chunk; total records).
        warn: called with each kind of input warning once (lowercase letters, gaps stripped, ...).
        stop: asked after each chunk; True ends the scan there, resumable.
        on_chunk: called with the progress state after each chunk is on disk.

    Returns:
        The progress state: records_total, records_done, rows, bytes, finished, and seconds (this call).
    """
    t0 = time.perf_counter()
    input_path, output = Path(input_path), Path(output)
    if output.resolve() == input_path.resolve():
        raise ConfigError(f"--output {output} is the input file; give another file name")
    identity = scan_identity(loaded, input_path, settings)
    columns = output_columns(loaded, settings)
    state = None if restart else _resume(output, identity, columns)
    if state is None:
        state = _start(output, identity, columns, count_records(input_path))
    total, skip = state["records_total"], state["records_done"]
    seen: set[str] = set()  # ids, so a duplicate is refused even across chunks
    warned: set[str] = set()

    def records() -> Iterator[tuple[str, str, str]]:
        for i, (rid, seq, source) in enumerate(D.iter_records(input_path)):
            if rid in seen:
                raise DuplicateIdError(f"{source}: the id {rid!r} appears twice in {input_path.name}; each record "
                                       "of a scan needs its own id. Rename or remove one of them.")
            seen.add(rid)
            if i >= skip:
                yield rid, seq, source

    if progress:
        progress(skip, total)
    with open(output, "ab") as fh:
        for chunk in chunks(records(), chunk_residues):
            done = state["records_done"]

            def within(k: int, n: int, done=done, size=len(chunk)) -> None:
                if progress:
                    progress(done + size * k / max(n, 1), total)

            rows, warnings = _score_chunk(loaded, chunk, settings, columns, within)
            for w in warnings:
                if warn and w.code not in warned:
                    warned.add(w.code)
                    warn(w.message)
            fh.write(rows.to_csv(index=False, header=False).encode())
            fh.flush()
            os.fsync(fh.fileno())
            state.update(records_done=done + len(chunk), rows=state["rows"] + len(rows), bytes=fh.tell())
            write_json(progress_path(output), state)
            if progress:
                progress(state["records_done"], total)
            if on_chunk:
                on_chunk(state)
            if stop and stop() and state["records_done"] < total:
                break
    if state["records_done"] >= total:
        state["finished"] = True
        write_json(progress_path(output), state)
    return {**state, "seconds": time.perf_counter() - t0}


# --------------------------------------------------------------------------- background scans


class ScanDir(RunDir):
    """A background scan's folder: scan.json (the predict command it runs), input, sites.csv and
    its progress file, status.json and scan.log; status, worker and cancel as for a run."""

    spec_path = property(lambda self: self.path / "scan.json")
    log_path = property(lambda self: self.path / "scan.log")
    output_path = property(lambda self: self.path / "sites.csv")

    def exists(self) -> bool:
        return self.spec_path.exists()

    def require(self) -> ScanDir:
        if not self.exists():
            raise ScanError(f"{self.path} is not a scan folder (no scan.json)")
        return self

    def spec(self) -> dict:
        return json.loads(self.spec_path.read_text())

    def died_message(self, code: int | None = None) -> str:
        how = f" with exit code {code}" if code not in (None, 0) else ""
        return (f"The scan ended unexpectedly{how} (killed, or out of memory); what it wrote is kept and it "
                "can be resumed.")

    def progress(self) -> dict:
        """records_done, records_total, rows, finished (from the progress file; empty before the first)."""
        try:
            return json.loads(progress_path(self.output_path).read_text())
        except (OSError, json.JSONDecodeError):
            return {}

    def command(self) -> str:
        """The shell command the worker runs (to resume or rerun by hand)."""
        args = self.spec()["args"]
        if "--job" in args:
            i = args.index("--job")
            args = args[:i] + args[i + 2:]
        return "python -m plmcore " + " ".join(shlex.quote(a) for a in args)


def scans_root(workspace: Path | str) -> Path:
    return Path(workspace) / "scans"


def predict_args(model: str, input_path: Path, output: Path, settings: ScanSettings) -> list[str]:
    """The `predict` command line for a scan (what a background worker runs)."""
    args = ["predict", model, "--input", str(input_path), "--output", str(output)]
    if settings.residues:
        args += ["--residues", settings.residues]
    if settings.window:
        args += ["--window", str(settings.window)]
    if settings.threshold is not None:
        args += ["--threshold", repr(float(settings.threshold))]
    if settings.scan:
        args.append("--scan")
    return args


def create_scan(workspace: Path | str, model: str, name: str, data: bytes, settings: ScanSettings) -> ScanDir:
    """A new scan folder holding the uploaded file and the command that scans it."""
    from plmcore.runs import fresh_name

    root = scans_root(workspace)
    root.mkdir(parents=True, exist_ok=True)
    folder = fresh_name(root, Path(name).stem or "scan")
    folder.mkdir(parents=True)
    suffix = "".join(Path(name).suffixes[-2:]) or ".fasta"
    input_path = folder / f"input{suffix}"
    input_path.write_bytes(data)
    job = ScanDir(folder)
    args = [*predict_args(model, input_path, job.output_path, settings), "--job", str(folder)]
    write_json(job.spec_path, {"args": args, "model": model, "input_name": name, "settings": asdict(settings),
                               "created_at": time.time()})
    return job


def start_scan(job: ScanDir, *, workspace_dir: Path | str | None = None, trust_remote_code: bool = False) -> int:
    """Start (or resume) the scan's worker process; returns its pid."""
    from plmcore.runs import start_worker

    args = list(job.spec()["args"])
    if trust_remote_code:
        args.append("--trust-remote-code")
    return start_worker(job, args=args, workspace_dir=workspace_dir)


def list_scans(workspace: Path | str) -> list[ScanDir]:
    """The workspace's scans, newest first."""
    root = scans_root(workspace)
    found = [ScanDir(p) for p in root.iterdir() if ScanDir(p).exists()] if root.is_dir() else []
    return sorted(found, key=lambda s: s.spec_path.stat().st_mtime, reverse=True)


def eta_seconds(status: dict) -> float | None:
    """Seconds left, from the rate of this worker session (records since it started)."""
    done, first, total = status.get("records_done"), status.get("records_at_start"), status.get("records_total")
    elapsed = time.time() - (status.get("started_at") or time.time())
    if None in (done, first, total) or done <= first or elapsed <= 0:
        return None
    return (total - done) * elapsed / (done - first)
