"""Limits on what a user can hand in: uploads, tables, records and run archives.

Each limit is declared once here, with its default and what it protects; an administrator
changes it with the environment variable named in its metadata. The defaults fit any real
data set or run and keep one hostile file from exhausting memory or disk.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields

from plmcore.errors import ConfigError

MiB = 1024 * 1024


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
