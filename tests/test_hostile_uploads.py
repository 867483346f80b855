"""Hostile uploads: each is read in a fresh process, refused with the right error, within the memory bound.

The bound is plmcore.limits.READ_MEMORY_BOUND: what reading one file may add to a process (peak RSS,
VmHWM, over the RSS after importing plmcore). The inputs are written here, streaming, into tmp_path.

`PYTHONPATH=. python tests/test_hostile_uploads.py [FOLDER]` prints the figures of the limits module's
docstring: these inputs and the largest ones the default limits accept (about 250 MB each, written to FOLDER).
"""

from __future__ import annotations

import errno
import gzip
import io
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

from plmcore.limits import READ_MEMORY_BOUND, MiB

ROOT = Path(__file__).resolve().parents[1]
# The fresh process reads with the default limits, whatever this shell overrides.
DEFAULT_LIMITS_ENV = {k: v for k, v in os.environ.items() if not k.startswith("PLMCORE_MAX_")}
DEFAULT_LIMITS_ENV["PYTHONPATH"] = str(ROOT)

pytestmark = pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="peak RSS is read from /proc")

# Runs in the fresh process: read one file, report the outcome and the memory it took.
CHILD = r"""
import json, sys, time
from pathlib import Path

def status(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024

from plmcore.data import read_table
from plmcore.errors import PlmcoreError

base = status("VmRSS")
t0 = time.perf_counter()
try:
    outcome = {"records": len(read_table(sys.argv[1]))}
except PlmcoreError as exc:
    outcome = {"error": type(exc).__name__, "message": str(exc)}
outcome.update(grew=status("VmHWM") - base, peak=status("VmHWM"), seconds=time.perf_counter() - t0)
print(json.dumps(outcome))
"""


def read_in_fresh_process(path: Path) -> dict:
    """read_table(path) in a new interpreter: its outcome, and its peak RSS growth in bytes."""
    done = subprocess.run([sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True, cwd=ROOT,
                          timeout=300, env=DEFAULT_LIMITS_ENV)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


# --------------------------------------------------------------------------- the inputs


def gzip_bomb(path: Path, gib: int = 4) -> Path:
    """A FASTA header and then 'A's: a few MB of gzip that inflate to `gib` GiB.

    One compressed 64 MiB member, repeated: gzip members may follow each other in one file.
    """
    block = gzip.compress(b"A" * (63 * MiB) + b"\n" * MiB, compresslevel=9, mtime=0)
    with path.open("wb") as fh:
        fh.write(gzip.compress(b">bomb LABEL=1\n", mtime=0))
        for _ in range(gib * 16):
            fh.write(block)
    return path


def gzip_of_records(path: Path, mib: int = 512) -> Path:
    """Valid 1,000-residue records, gzipped, inflating to `mib` MiB: refused at the text-size limit."""
    records = b"".join(b">r%d LABEL=%d\n%s\n" % (i, i % 2, b"ACDEFGHIKL" * 100) for i in range(1000))
    member = gzip.compress(records * 64, compresslevel=6, mtime=0)  # 64 MiB of text
    with path.open("wb") as fh:
        for _ in range(mib // 64):
            fh.write(member)
    return path


def million_columns(path: Path) -> Path:
    """A CSV whose header and one row have a million columns (about 11 MB)."""
    with path.open("w") as fh:
        fh.write(",".join(f"col{i}" for i in range(1_000_000)) + "\n")
        fh.write(",".join("1" for _ in range(1_000_000)) + "\n")
    return path


def long_record(path: Path, residues: int = 50_000_000) -> Path:
    """One FASTA record of 50 million residues, 60 to a line."""
    line = ("ACDEFGHIKLMNPQRSTVWY" * 3 + "\n").encode()
    with path.open("wb") as fh:
        fh.write(b">giant LABEL=1\n")
        for _ in range(residues // 60):
            fh.write(line)
    return path


HOSTILE: dict[str, tuple[Callable[[Path], Path], str, str]] = {
    # name: (writer, error class, fragment of the message)
    "bomb.fasta.gz": (gzip_bomb, "InputTooLargeError", "record 'bomb' has more than 100,000 residues"),
    "records.fasta.gz": (gzip_of_records, "InputTooLargeError", "inflates to more than 256 MiB of text"),
    "wide.csv": (million_columns, "InputTooLargeError", "the header line has at least"),
    "giant.fasta": (long_record, "InputTooLargeError", "giant.fasta:1: record 'giant' has more than 100,000 residues"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_upload_is_refused_within_the_memory_bound(name: str, tmp_path: Path) -> None:
    write, error, fragment = HOSTILE[name]
    path = write(tmp_path / name)
    outcome = read_in_fresh_process(path)
    assert outcome.get("error") == error, outcome
    assert fragment in outcome["message"] and "PLMCORE_MAX_" in outcome["message"], outcome
    assert outcome["grew"] < READ_MEMORY_BOUND, f"{name}: reading took {outcome['grew'] / MiB:.0f} MiB"


def test_the_bomb_and_the_giant_are_small_on_disk(tmp_path: Path) -> None:
    assert gzip_bomb(tmp_path / "b.gz").stat().st_size < 10 * MiB
    assert long_record(tmp_path / "g.fasta", residues=6_000).stat().st_size < 7_000


# --------------------------------------------------------------------------- the upload helper


class Upload(io.BytesIO):
    """What st.file_uploader returns: bytes in memory and the browser's file name."""

    def __init__(self, name: str, data: bytes):
        super().__init__(data)
        self.name = name


@pytest.fixture
def temp_root(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    return tmp_path / "tmp"


def test_upload_folders_are_removed_whatever_happens(temp_root: Path) -> None:
    from plmcore import ui

    with ui.upload_paths(Upload("a.fasta", b">a\nMKT\n"), Upload("a.fasta", b">b\nGSH\n")) as paths:
        assert [p.name for p in paths] == ["a.fasta", "a.fasta"]
        assert [p.read_bytes() for p in paths] == [b">a\nMKT\n", b">b\nGSH\n"]
        assert len(list(temp_root.iterdir())) == 1
    with pytest.raises(RuntimeError), ui.upload_paths(Upload("x.csv", b"id,sequence\n")):
        raise RuntimeError("the read failed")
    with pytest.raises(Exception, match="holds no records"):
        ui.read_upload(Upload("empty.fasta", b""))
    assert ui.read_upload(Upload("../../up.fasta", b">a\nMKT\n"), label_source="none")["source"].tolist() == [
        "../../up.fasta:1"]
    assert not list(temp_root.iterdir())


def test_a_full_temp_disk_is_explained(temp_root: Path, monkeypatch) -> None:
    from plmcore import ui
    from plmcore.errors import StorageError

    def full(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", full)
    with pytest.raises(StorageError, match=r"Cannot store the upload big\.fasta: the disk holding .* is full.*TMPDIR"):
        ui.read_upload(Upload("big.fasta", b">a\nMKT\n"))
    assert not list(temp_root.iterdir())


# --------------------------------------------------------------------------- figures


def at_the_limits(folder: Path) -> dict[str, Path]:
    """The largest inputs the default limits accept (1M records, 5M cells, 256 MiB of text)."""
    out = {}
    seq = "ACDEFGHIKLMNPQRSTVWY" * 12
    with (out.setdefault("max_records.fasta", folder / "max_records.fasta")).open("w") as fh:
        fh.writelines(f">r{i} LABEL={i % 2}\n{seq}\n" for i in range(999_999))
    with (out.setdefault("max_rows.csv", folder / "max_rows.csv")).open("w") as fh:
        fh.write("id,sequence,label,c0,c1\n")
        fh.writelines(f"r{i},{seq[:220]},{i % 2},ab,cd\n" for i in range(999_999))
    with (out.setdefault("max_columns.csv", folder / "max_columns.csv")).open("w") as fh:
        fh.write("id,sequence,label," + ",".join(f"c{i}" for i in range(997)) + "\n")
        fh.writelines(f"r{i},MKTAYIAKQR,{i % 2}," + ",".join(["ab"] * 997) + "\n" for i in range(4_999))
    return out


def main(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    paths = {name: write(folder / name) for name, (write, _, _) in HOSTILE.items()}
    paths.update(at_the_limits(folder))
    print("| input | size on disk | outcome | peak RSS growth | seconds |\n|---|---|---|---|---|")
    for name, path in paths.items():
        o = read_in_fresh_process(path)
        result = f"{o['error']}: {o['message'][:70]}..." if "error" in o else f"read, {o['records']:,} records"
        print(f"| {name} | {path.stat().st_size / MiB:.1f} MiB | {result} | {o['grew'] / MiB:.0f} MiB "
              f"(peak {o['peak'] / MiB:.0f}) | {o['seconds']:.1f} |")
        path.unlink()


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="plm-hostile-")))
