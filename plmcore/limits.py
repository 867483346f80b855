"""Limits on what a user can hand in: uploads, tables, records and run archives.

Each limit is declared once here, with its default and what it protects; an administrator
changes it with the environment variable named in its metadata. The defaults fit any real
data set or run and keep one hostile file from exhausting memory or disk.

Memory bound. Input files are read as a stream (gzip is inflated as it is read) and refused
as soon as they pass a limit, so with the default limits reading one file adds at most
READ_MEMORY_BOUND (800 MiB) to the process, whatever the file holds; with plmcore imported
(183 MiB) the reading process stays under 1 GiB. Measured by
``PYTHONPATH=. python tests/test_hostile_uploads.py``: each file read by
``plmcore.data.read_table`` in a fresh process, peak RSS (VmHWM) minus the RSS after import
(2 CPU cores, Python 3.11, pandas 3.0):

- a 226 MiB CSV of 999,999 rows x 5 columns (at the records and cells limits), read: +684 MiB
- a 246 MiB FASTA of 999,999 records of 240 residues (at the records limit), read: +551 MiB
- a 14 MiB CSV of 4,999 rows x 1,000 columns (at the cells limit), read: +433 MiB
- a 2.9 MiB gzip of 1,000-residue records inflating to 512 MiB, refused at 256 MiB: +338 MiB
- an 11 MiB CSV with a million columns, refused at its first line: +10 MiB
- a 4 MiB gzip of 'A's inflating to 4 GiB, refused at 100,000 residues: +3 MiB
- a 50-million-residue record (48 MiB FASTA), refused at 100,000 residues: +0 MiB

Checking a table (``plmcore.data.validate``) costs about as much again: reading and checking
the 999,999-record FASTA peaked at +1,026 MiB. The app also holds the upload itself in memory
(Streamlit's server.maxUploadSize, 200 MB).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields

from plmcore.errors import ConfigError

MiB = 1024 * 1024

# What reading one input file may add to a process's memory with the default limits (see above).
READ_MEMORY_BOUND = 800 * MiB


def _limit(default: int, env: str, help: str) -> int:
    return field(default=default, metadata={"env": env, "help": help})


@dataclass(frozen=True)
class Limits:
    """Upper bounds on input. Override any of them with its environment variable."""

    input_bytes: int = _limit(
        256 * MiB, "PLMCORE_MAX_INPUT_MB",
        "Text in one input file once decompressed (MiB in the variable). A gzip file that inflates "
        "beyond it is refused while it is being read.")
    table_columns: int = _limit(
        1000, "PLMCORE_MAX_TABLE_COLUMNS", "Columns in one CSV/TSV table.")
    record_residues: int = _limit(
        100_000, "PLMCORE_MAX_RECORD_RESIDUES",
        "Residues in one record (the longest known protein, titin, has about 35,000).")
    records: int = _limit(
        1_000_000, "PLMCORE_MAX_RECORDS",
        "Records (FASTA entries or table rows) in one input file; each costs memory whatever its size.")
    table_cells: int = _limit(
        5_000_000, "PLMCORE_MAX_TABLE_CELLS",
        "Cells (rows x columns) in one CSV/TSV table; each cell is kept as one Python string.")
    archive_members: int = _limit(
        2000, "PLMCORE_MAX_ARCHIVE_MEMBERS", "Entries in one imported run archive.")
    archive_bytes: int = _limit(
        2048 * MiB, "PLMCORE_MAX_ARCHIVE_MB",
        "Total uncompressed size of one imported run archive (MiB in the variable).")
    archive_ratio: int = _limit(
        200, "PLMCORE_MAX_ARCHIVE_RATIO",
        "Compression ratio of any archive entry over 1 MiB (text compresses 5-20x, weights about 1x).")

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{f.metadata['env']} must be a positive whole number; got {value!r}")


_IN_MIB = {"input_bytes", "archive_bytes"}


def env_name(name: str) -> str:
    """The environment variable that overrides the limit `name` (a field of Limits)."""
    return next(f.metadata["env"] for f in fields(Limits) if f.name == name)


def limits() -> Limits:
    """The limits in force: the defaults, overridden by the environment."""
    values = {}
    for f in fields(Limits):
        raw = os.environ.get(f.metadata["env"])
        if raw is None or not raw.strip():
            continue
        try:
            number = int(raw)
        except ValueError as exc:
            raise ConfigError(f"{f.metadata['env']}={raw!r} is not a whole number") from exc
        values[f.name] = number * MiB if f.name in _IN_MIB else number
    return Limits(**values)
