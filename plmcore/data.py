"""Reading labelled protein sequences (FASTA, CSV, TSV), validating them, splitting them.

Every problem a biologist can fix is reported with the record id, the file and line, and
what to do about it. Tables travel between functions as pandas DataFrames with the columns
``id``, ``sequence``, ``label`` (str or None) and ``source`` ("file:line"), plus any other
columns of an uploaded table and, once split (plmcore.splits), ``split``.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import itertools
import math
import os
import re
import zlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pandas as pd

from plmcore.config import LABEL_SOURCES, TOO_LONG
from plmcore.errors import (
    ConfigError,
    ConflictingLabelError,
    DataError,
    DuplicateIdError,
    EmptyInputError,
    InputTooLargeError,
    InvalidSequenceError,
    LabelError,
    RegressionTargetError,
    SequenceTooLongError,
    SingleClassError,
    render_settings,
)
from plmcore.limits import Limits, MiB, env_name, limits

__all__ = [
    "AMINO_ACIDS",
    "ERROR_CLASSES",
    "PAD_CHAR",
    "RARE_RESIDUES",
    "VALID_RESIDUES",
    "Issue",
    "TableLayout",
    "ValidationReport",
    "accession_of",
    "classes_of",
    "iter_records",
    "parse_fasta_text",
    "parse_header_label",
    "positive_class",
    "read_labelled_files",
    "read_table",
    "sniff",
    "site_window",
    "validate",
    "window_info",
]

AMINO_ACIDS = "ACDEFGHIKLMNPQRSTVWY"
RARE_RESIDUES = "UZOB"
VALID_RESIDUES = AMINO_ACIDS + "X" + RARE_RESIDUES
PAD_CHAR = "X"

PathLike = str | os.PathLike[str]

FASTA_SUFFIXES = (".fasta", ".fa", ".faa", ".fas", ".fna", ".fsa")
CSV_SUFFIXES = (".csv",)
TSV_SUFFIXES = (".tsv", ".tab")
# How read_table finds labels: the settings' choices (auto, header, column), or "none".
READ_LABELS = (*LABEL_SOURCES, "none")
BASE_COLUMNS = ("id", "sequence", "label", "source")

# Candidate column names, in order of preference, matched case-insensitively.
ID_COLUMNS = ("id", "name", "accession", "identifier", "entry")
SEQUENCE_COLUMNS = ("sequence", "seq", "protein", "peptide", "window", "sequences")
LABEL_COLUMNS = ("label", "labels", "class", "classes", "target", "y")
GROUP_COLUMNS = ("group",)
POSITION_COLUMNS = ("position", "pos", "site", "residue_position")

# Spreadsheet spellings of "no value"; "none" is left alone because it is a plausible class.
MISSING_LABELS = frozenset({"", "na", "n/a", "nan", "null"})

# First '|'-field of database-style FASTA headers; their last field is a name, never a label.
DATABASE_PREFIXES = frozenset(
    {"sp", "tr", "ref", "gi", "gb", "emb", "dbj", "pir", "prf", "pdb", "lcl", "gnl", "up"}
)

# The official UniProt accession format (https://www.uniprot.org/help/accession_numbers).
UNIPROT_ACCESSION = re.compile(
    r"(?:[OPQ][0-9][A-Z0-9]{3}[0-9]|[A-NR-Z][0-9](?:[A-Z][A-Z0-9]{2}[0-9]){1,2})"
)
_ACCESSION_WITH_ISOFORM = re.compile(rf"({UNIPROT_ACCESSION.pattern})(?:-\d+)?")

# LABEL=x, up to a space or '|'; ';' continues a multi-label value (LABEL=membrane;nucleus) unless
# what follows is another key=value field (LABEL=kinase;source=x).
_LABEL_TAG = re.compile(r"(?i)(?:^|(?<=[\s|;]))(?:label|class)\s*=\s*((?:[^\s|;=]*)(?:;[^\s|;=]+(?=;|\s|\||$))*)")

# Regression heuristics: this many distinct numbers, most of them unique, is not a class list.
_REGRESSION_MIN_DISTINCT = 10
_REGRESSION_DISTINCT_SHARE = 0.5

_MAX_LISTED_ERRORS = 20  # per code; the rest are counted in one closing issue
MAX_NAMED = 5  # records named inside one aggregated message

ERROR_CLASSES: dict[str, type[DataError]] = {
    "empty": EmptyInputError,
    "empty_sequence": InvalidSequenceError,
    "invalid_characters": InvalidSequenceError,
    "gaps": InvalidSequenceError,
    "too_long": SequenceTooLongError,
    "missing_label": LabelError,
    "regression_target": RegressionTargetError,
    "duplicate_id": DuplicateIdError,
    "conflicting_labels": ConflictingLabelError,
    "single_class": SingleClassError,
}

# Binary label pairs (positive, negative), compared case-insensitively.
_POSITIVE_PAIRS = (
    ("1", "0"),
    ("pos", "neg"),
    ("positive", "negative"),
    ("true", "false"),
    ("t", "f"),
    ("yes", "no"),
    ("y", "n"),
    ("p", "n"),
    ("+", "-"),
    ("active", "inactive"),
)


# --------------------------------------------------------------------------- reports


@dataclass(frozen=True)
class Issue:
    """One problem found in the input: an error blocks training, a warning was fixed."""

    level: str
    code: str
    message: str
    record_id: str | None = None
    location: str | None = None
    template: str | None = None  # the message naming settings as {setting}; message names them as CLI flags

    def render(self, where: str = "cli") -> str:
        """The message with settings named for `where` ("cli": flags; "app": widgets)."""
        return render_settings(self.template or self.message, where)


@dataclass
class ValidationReport:
    """The cleaned table with every error and warning found while checking it."""

    table: pd.DataFrame
    errors: list[Issue] = field(default_factory=list)
    warnings: list[Issue] = field(default_factory=list)
    task: str = "classification"  # what the labels describe (plmcore.tasks), or the task asked for
    task_reason: str = ""

    @property
    def ok(self) -> bool:
        """True when there are no errors (warnings are allowed)."""
        return not self.errors

    def raise_for_errors(self) -> None:
        """Raise the exception class of the first error, mentioning the other errors."""
        if not self.errors:
            return
        first, rest = self.errors[0], self.errors[1:]
        message = first.message
        if rest:
            shown = " ".join(issue.message for issue in rest[:MAX_NAMED])
            more = len(rest) - MAX_NAMED
            tail = f" ... and {more} more." if more > 0 else ""
            message += f" (and {len(rest)} more problems: {shown}{tail})"
        exc = ERROR_CLASSES.get(first.code, DataError)(message)
        exc.issues = list(self.errors)  # type: ignore[attr-defined]
        raise exc

    def summary(self) -> str:
        """Multi-line human-readable account of the table, its errors and its warnings."""
        table = self.table
        lines = [_describe_table(table)]
        lines.append(
            f"{len(self.errors)} error{'s' if len(self.errors) != 1 else ''}, "
            f"{len(self.warnings)} warning{'s' if len(self.warnings) != 1 else ''}."
        )
        if self.errors:
            lines.append("Errors:")
            lines.extend(f"  - {issue.render()}" for issue in self.errors)
        if self.warnings:
            lines.append("Warnings:")
            lines.extend(f"  - {issue.render()}" for issue in self.warnings)
        return "\n".join(lines)


def _describe_table(table: pd.DataFrame) -> str:
    n = len(table)
    if n == 0:
        return "No records."
    parts = [f"{n} record{'s' if n != 1 else ''}"]
    if "label" in table.columns:
        labels = [lab for lab in table["label"] if not _is_missing_label(lab)]
        if labels:
            counts = pd.Series([str(lab) for lab in labels]).value_counts()
            classes = classes_of(labels)
            listed = ", ".join(f"{c} ({counts[c]})" for c in classes[:10])
            extra = f", ... {len(classes) - 10} more" if len(classes) > 10 else ""
            word = "class" if len(classes) == 1 else "classes"
            parts.append(f"{len(classes)} {word}: {listed}{extra}")
    if "sequence" in table.columns:
        lengths = table["sequence"].fillna("").astype(str).str.len()
        low, high = int(lengths.min()), int(lengths.max())
        parts.append(f"length {low}" if low == high else f"lengths {low}-{high}")
    return "; ".join(parts) + "."


# --------------------------------------------------------------------------- reading


def parse_header_label(header: str) -> tuple[str, str | None]:
    """Split a FASTA header (text after '>') into the record id and its label, if any."""
    header = header.strip()
    if header.startswith(">"):
        header = header[1:].strip()
    tag = _LABEL_TAG.search(header)
    if tag is not None:
        label = tag.group(1) or None
        rest = header[: tag.start()] + " " + header[tag.end() :]
        return _first_token(rest), label
    token = header.split(maxsplit=1)[0] if header else ""
    fields = header.split("|")
    if len(fields) >= 2 and fields[0].strip().lower() not in DATABASE_PREFIXES:
        last = fields[-1].strip()
        if last and not any(ch.isspace() for ch in last):
            return _first_token("|".join(fields[:-1])), last
    return token.strip("|;"), None


def _first_token(text: str) -> str:
    parts = text.split()
    return parts[0].strip("|;") if parts else ""


def read_table(
    path: PathLike,
    *,
    label_source: str = "auto",
    label_column: str | None = None,
    id_columns: Sequence[str] | str | None = None,
    sequence_column: str | None = None,
    group_column: str | None = None,
    position_column: str | None = None,
    header: str = "auto",
    label: str | None = None,
    display_name: str | None = None,
) -> pd.DataFrame:
    """Read a FASTA, CSV or TSV file (optionally gzipped) into a raw, unvalidated table.

    The file is read as a stream, line by line, and refused with :class:`InputTooLargeError`
    as soon as it passes one of the limits of :func:`plmcore.limits.limits` (text size,
    table columns and cells, records, residues in one record), so memory stays bounded
    whatever the file holds.

    Args:
        path: the file; its type comes from its content (file_kind).
        label_source: "auto" (FASTA: header tags; table: the label column), "header" (FASTA
            header tags such as LABEL=1), "column" (table column ``label_column``, default a
            column named label/class) or "none" (no labels).
        label: every record gets this class (one file per class); labels in the file are ignored.
        display_name: the file name used in messages and in the ``source`` column.
        header: "auto" (detect_header), "yes" or "no" (columns are then named "0", "1", ...).
        label_column, sequence_column, group_column, position_column: a table's columns, by name or
            0-based number; unset, they are guessed (guess_roles, as sniff shows them).
        id_columns: the columns whose values, joined with _, make the ids. Chosen ids that repeat are
            refused; guessed ones are made unique (_2, _3, ...) with a warning in ``attrs["warnings"]``.

    Returns:
        Columns id, sequence, label (str or None), source ("name:line") and, for tables, group and
        position when the table has such columns, and the other columns of the file unchanged.
    """
    _check_label_source(label_source, label)
    path = Path(path)
    name = display_name or str(path)
    if not path.is_file():
        raise DataError(f"File not found: {name}. Check the path, or upload the file again.")
    lim = limits()
    if isinstance(id_columns, str):
        id_columns = [c for c in id_columns.split(",") if c.strip()]
    if header not in ("auto", "yes", "no"):
        raise ConfigError(f"{{header}} is {header!r}; choose auto, yes or no.")
    options = dict(
        label_source=label_source,
        label_column=label_column,
        id_columns=None if id_columns is None else list(id_columns),
        sequence_column=sequence_column,
        group_column=group_column,
        position_column=position_column,
        header=header,
        label=label,
    )
    encoding = _sniff_encoding(path, name, lim)
    try:
        table = _read_file(path, name, encoding, lim, **options)
    except UnicodeDecodeError as exc:
        if encoding != "utf-8-sig":
            raise DataError(
                f"{name} starts like {encoding} text but cannot be decoded as such ({exc.reason}). "
                "Save it again as UTF-8 text (in Excel: 'CSV UTF-8') and upload that."
            ) from exc
        # Spreadsheets on Windows save cp1252; latin-1 decodes any byte, and stray
        # non-ASCII characters in sequences are then reported by validate().
        table = _read_file(path, name, "latin-1", lim, **options)
    if table.empty:
        raise EmptyInputError(
            f"{name} holds no records. Upload a FASTA file ('>id LABEL=<class>' header lines "
            "followed by sequences) or a table with a sequence column."
        )
    return table


def _check_label_source(label_source: str, label: str | None) -> None:
    if label_source not in READ_LABELS:
        raise ConfigError(
            f"label_source={label_source!r} is not allowed; use one of {', '.join(READ_LABELS)}."
        )
    if label is not None and not str(label).strip():
        raise ConfigError(f"label must be a class name such as '1' (one file per class); got {label!r}.")


def _read_file(path: Path, name: str, encoding: str, lim: Limits, **options: Any) -> pd.DataFrame:
    with _open_text(path, name, encoding, lim) as stream:
        first, pieces = _first_text(_pieces(stream))
        kind = file_kind(path, first)
        if kind != "fasta":
            if options["label_source"] == "header" and options["label"] is None:
                raise ConfigError(
                    f"{name} is a table, so its labels are in a column, not in FASTA headers. Read it with "
                    "labels from a column ({label_source} column or auto) and choose the column with {label_column}."
                )
            return _parse_delimited(pieces, name, delimiter=kind, lim=lim, **options)
        if options["label_source"] == "column" and options["label"] is None:
            raise ConfigError(
                f"Labels from a column ({{label_source}} column) do not apply to the FASTA file {name}: FASTA "
                "has no columns. Read the labels from the headers ({label_source} header: a 'LABEL=<class>' tag "
                "in each header), use one file per class, or read it without labels."
            )
        return _parse_fasta(
            pieces, name, label_source=options["label_source"], label=options["label"], lim=lim
        )


# --------------------------------------------------------------------------- bounded text

_GZIP_MAGIC = b"\x1f\x8b"
_ZIP_MAGIC = b"PK\x03\x04"
_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
_SNIFF_BYTES = 4096
# Lines are read this many characters at a time, so one long line never has to be held whole.
_PIECE = 1 << 20

# One piece of a line: its line number, its text (without the newline), whether the line ends there.
_Piece = tuple[int, str, bool]


class _CappedBytes(io.RawIOBase):
    """The bytes of a file, inflated as they are read when it is gzip; refused past the input limit."""

    def __init__(self, raw: BinaryIO, name: str, cap: int):
        self._name, self._cap, self._total = name, cap, 0
        self._gzip = raw.read(2) == _GZIP_MAGIC  # whatever the extension says
        raw.seek(0)
        if self._gzip:
            self._source: BinaryIO = gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[assignment]
            return
        self._source = raw
        size = os.fstat(raw.fileno()).st_size
        if size > cap:
            raise InputTooLargeError(
                f"{name} is {_size(size)}, more than the limit of {_size(cap)} for one file. "
                f"Split it into smaller files, or ask the administrator to raise "
                f"{env_name('input_bytes')}."
            )

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        try:
            n = self._source.readinto(buffer)
        except (OSError, EOFError, zlib.error) as exc:
            if not self._gzip:
                raise
            raise DataError(
                f"{self._name} looks gzip-compressed but cannot be decompressed ({exc}). "
                "Upload the file again or upload it uncompressed."
            ) from exc
        self._total += n
        if self._total > self._cap:
            raise InputTooLargeError(
                f"{self._name} inflates to more than {_size(self._cap)} of text, the limit for one "
                "file (it is gzip-compressed; it was refused while being read). Split it into "
                f"smaller files, or ask the administrator to raise {env_name('input_bytes')}."
            )
        return n


def _size(n: int) -> str:
    return f"{n / MiB:,.0f} MiB" if n >= MiB else f"{n:,} bytes"


@contextmanager
def _open_text(path: Path, name: str, encoding: str, lim: Limits) -> Iterator[io.TextIOWrapper]:
    """The decoded text of a file; universal newlines, as spreadsheets and editors write them."""
    with path.open("rb") as raw:
        data = io.BufferedReader(_CappedBytes(raw, name, lim.input_bytes))
        with io.TextIOWrapper(data, encoding=encoding, newline=None) as text:
            yield text


def _sniff_encoding(path: Path, name: str, lim: Limits) -> str:
    """The text encoding of a file, judged from its first bytes; binary files are refused."""
    with _open_text(path, name, "latin-1", lim) as text:
        head = text.buffer.read(_SNIFF_BYTES)
    if head.startswith(_UTF16_BOMS):  # Excel's "Unicode text"
        return "utf-16"
    if head.startswith(_ZIP_MAGIC) or b"\x00" in head:
        kind = "a zip archive or an Excel .xlsx workbook" if head.startswith(_ZIP_MAGIC) else (
            "an Excel workbook, a zip archive, or text saved as UTF-16 without a byte-order mark?"
        )
        raise DataError(
            f"{name} is a binary file, not text ({kind}). Save it as FASTA, CSV or TSV text "
            "and upload that."
        )
    return "utf-8-sig"


def _pieces(stream: io.TextIOBase) -> Iterator[_Piece]:
    """Every line of a text stream, in pieces of at most _PIECE characters."""
    lineno, piece = 1, stream.readline(_PIECE)
    while piece:
        following = stream.readline(_PIECE)
        ends = piece.endswith("\n")
        yield lineno, piece[:-1] if ends else piece, ends or not following
        lineno += ends
        piece = following


def _first_text(pieces: Iterator[_Piece]) -> tuple[str, Iterator[_Piece]]:
    """The first piece holding text, and the pieces from it on (blank lines before it dropped)."""
    for piece in pieces:
        if piece[1].strip():
            return piece[1], itertools.chain([piece], pieces)
    return "", iter(())


def _max_line(lim: Limits) -> int:
    """The longest line held whole (a FASTA header, a table row): a sequence and 1 Mi characters."""
    return lim.record_residues + _PIECE


def _line_too_long(name: str, lineno: int, lim: Limits, what: str) -> InputTooLargeError:
    return InputTooLargeError(
        f"{name}:{lineno}: {what} is longer than {_max_line(lim):,} characters. Check that the file "
        "has line breaks and that quotes are closed; a record may hold at most "
        f"{lim.record_residues:,} residues ({env_name('record_residues')})."
    )


def file_kind(path: Path, first: str) -> str:
    """"fasta" or the delimiter of a table: the one place that decides a file's type.

    The content decides: a first line of text starting with '>' is FASTA, whatever the file is
    called. Otherwise the extension says FASTA (then the reader explains what is missing) or
    the delimiter, and a file with neither is sniffed for tabs, commas or semicolons.
    """
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    suffix = suffixes[-1] if suffixes else ""
    if first.lstrip().startswith(">") or suffix in FASTA_SUFFIXES:
        return "fasta"
    if suffix in TSV_SUFFIXES:
        return "\t"
    if suffix in CSV_SUFFIXES:
        # Excel in many European locales writes ';'-separated "CSV".
        return ";" if "," not in first and ";" in first else ","
    counts = {sep: first.count(sep) for sep in ("\t", ",", ";")}
    best = max(counts, key=lambda sep: counts[sep])
    return best if counts[best] else ","


class _Records:
    """Records as they are read from one input, refused as soon as they pass a limit."""

    def __init__(self, name: str, lim: Limits):
        self.name, self.lim = name, lim
        self.ids: list[str] = []
        self.sequences: list[str] = []
        self.labels: list[str | None] = []
        self.sources: list[str] = []
        self._parts: list[str] = []  # residues of the record being read
        self._length = 0
        self.count = 0  # records started, including any already taken

    def __len__(self) -> int:
        return self.count

    def start(self, record_id: str, label: str | None, lineno: int) -> None:
        """Begin a record at line `lineno`; its residues follow through add_residues()."""
        self._close()
        if self.count >= self.lim.records:
            env = env_name("records")
            raise InputTooLargeError(
                f"{self.name}:{lineno}: more than {self.lim.records:,} records (FASTA entries or "
                f"table rows), the limit for one file ({env}). Split the file into smaller ones, "
                f"or ask the administrator to raise {env}."
            )
        self.count += 1
        self.ids.append(record_id or f"seq{self.count}")
        self.labels.append(label)
        self.sources.append(f"{self.name}:{lineno}")

    def add_residues(self, text: str) -> None:
        """Add sequence text (whitespace is dropped) to the record being read."""
        chunk = "".join(text.split())
        if not chunk:
            return
        self._length += len(chunk)
        if self._length > self.lim.record_residues:
            env = env_name("record_residues")
            raise InputTooLargeError(
                f"{self.sources[-1]}: record '{self.ids[-1]}' has more than "
                f"{self.lim.record_residues:,} residues, the limit for one record ({env}). Models "
                "read a few thousand residues at most: cut the sequence into windows or domains "
                f"(one record each), or ask the administrator to raise {env}."
            )
        self._parts.append(chunk)

    def add(self, record_id: str, sequence: str, label: str | None, lineno: int) -> None:
        """Add a whole record."""
        self.start(record_id, label, lineno)
        self.add_residues(sequence)
        self._close()

    def frame(self, extra: dict[str, list[str]] | None = None) -> pd.DataFrame:
        self._close()
        return _raw_frame(self.ids, self.sequences, self.labels, self.sources, extra)

    def take(self) -> Iterator[tuple[str, str, str | None, str]]:
        """The finished records not taken yet, as (id, sequence, label, source), then forgotten."""
        done = len(self.sequences)
        yield from zip(self.ids[:done], self.sequences, self.labels[:done], self.sources[:done])
        del self.ids[:done], self.sequences[:], self.labels[:done], self.sources[:done]

    def _close(self) -> None:
        if len(self.sequences) < len(self.ids):
            self.sequences.append("".join(self._parts))
        self._parts, self._length = [], 0


def _parse_fasta(
    pieces: Iterable[_Piece], name: str, *, label_source: str, label: str | None, lim: Limits
) -> pd.DataFrame:
    records = _Records(name, lim)
    for _ in _fasta_records(pieces, name, records, label_source=label_source, label=label, stream=False):
        pass
    return records.frame()


def _fasta_records(
    pieces: Iterable[_Piece], name: str, records: _Records, *, label_source: str, label: str | None,
    stream: bool = True,
) -> Iterator[tuple[str, str, str | None, str]]:
    """Parse FASTA into `records`; with `stream`, yield each record once it is complete and forget it."""
    lim = records.lim
    mode = ""  # of the current line: "" while blank so far, then "header" or "sequence"
    header: list[str] = []
    header_length = 0
    for lineno, piece, ends in pieces:
        if not mode:
            piece = piece.lstrip()
            if piece.startswith(">"):
                mode, header, header_length = "header", [], 0
            elif piece and not len(records):
                fastq = piece[0] == "@"
                raise DataError(
                    f"{name}:{lineno}: text before the first '>' header ({_preview(piece.strip())}). "
                    "A FASTA file starts with a header line such as '>P12345 LABEL=1' followed by "
                    "the sequence. Add a header line or remove that text."
                    + (" An '@' line starts a FASTQ read (DNA with qualities), not a protein." if fastq else "")
                )
            elif piece:
                mode = "sequence"
        if mode == "header":
            header.append(piece)
            header_length += len(piece)
            if header_length > _max_line(lim):
                raise _line_too_long(name, lineno, lim, "this header line")
        elif mode == "sequence":
            records.add_residues(piece)
        if ends:
            if mode == "header":
                record_id, header_label = parse_header_label("".join(header)[1:])
                if label is not None:
                    header_label = str(label).strip()
                elif label_source == "none":
                    header_label = None
                records.start(record_id, header_label, lineno)
                if stream:
                    yield from records.take()
            mode = ""
    if stream:
        records._close()
        yield from records.take()


def iter_records(path: PathLike, *, display_name: str | None = None) -> Iterator[tuple[str, str, str]]:
    """The (id, raw sequence, source) of each record of a file, one at a time and unvalidated.

    FASTA is streamed (one record in memory at a time), so a whole proteome can be scanned in
    flat memory; a table is read whole first (read_table, within its limits). Labels are ignored.
    The limits of :func:`plmcore.limits.limits` apply as in read_table.
    """
    path = Path(path)
    name = display_name or str(path)
    if not path.is_file():
        raise DataError(f"File not found: {name}. Check the path, or upload the file again.")
    if sniff(path, display_name=display_name) != "fasta":
        table = read_table(path, label_source="none", display_name=display_name)
        yield from zip(table["id"], table["sequence"], table["source"])
        return
    lim = limits()
    count = 0
    try:
        with _open_text(path, name, _sniff_encoding(path, name, lim), lim) as stream:
            _, pieces = _first_text(_pieces(stream))
            records = _Records(name, lim)
            for record_id, sequence, _, source in _fasta_records(pieces, name, records, label_source="none",
                                                                 label=None):
                count += 1
                yield record_id, sequence, source
    except UnicodeDecodeError as exc:
        raise DataError(f"{name} is not UTF-8 text ({exc.reason}, after record {count}). Save it again as "
                        "UTF-8 text and use that.") from exc
    if not count:
        raise EmptyInputError(f"{name} holds no records. Give a FASTA file of '>id' header lines followed by "
                              "sequences.")


def _preview(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _raw_frame(
    ids: list[str],
    sequences: list[str],
    labels: list[str | None],
    sources: list[str],
    extra: dict[str, list[str]] | None = None,
) -> pd.DataFrame:
    columns: dict[str, Any] = {
        "id": pd.Series(ids, dtype=object),
        "sequence": pd.Series(sequences, dtype=object),
        # object dtype keeps None for "no label" instead of turning it into NaN.
        "label": pd.Series(labels, dtype=object),
        "source": pd.Series(sources, dtype=object),
    }
    for key, values in (extra or {}).items():
        columns[key] = pd.Series(values, dtype=object)
    return pd.DataFrame(columns)


def _data_rows(
    pieces: Iterable[_Piece], name: str, delimiter: str, lim: Limits
) -> Iterator[tuple[int, int, list[str]]]:
    """(first line, last line, cells) of every row of a table that holds something."""
    # A sequence cell may be as long as a record may be; only ever raised, never lowered.
    csv.field_size_limit(max(csv.field_size_limit(), _max_line(lim)))
    linenos: list[int] = []  # the lines the reader took for the row it returns
    reader = csv.reader(_table_lines(pieces, name, delimiter, lim, linenos), delimiter=delimiter)
    first = True
    try:
        for row in reader:
            start, end = linenos[0], linenos[-1]
            linenos.clear()
            if not any(cell.strip() for cell in row):
                continue
            if first:
                _check_columns(len(row), name, start, lim, partial=False)
                first = False
            yield start, end, row
    except csv.Error as exc:
        raise DataError(
            f"{name}:{(linenos or ['?'])[-1]}: cannot read the table ({exc}). Check quoting and the "
            "delimiter, or save the file again as CSV from your spreadsheet program."
        ) from exc


# --------------------------------------------------------------------------- table layout

ROLES = ("sequence", "label", "id", "group", "position")
_HEAD_ROWS = 200  # rows read to decide the header and guess the columns' roles
_PREVIEW_ROWS = 5
# Words that name a column (a first row holding one is a header), matched case-insensitively.
COLUMN_WORDS = frozenset({
    *ID_COLUMNS, *SEQUENCE_COLUMNS, *LABEL_COLUMNS, *GROUP_COLUMNS, *POSITION_COLUMNS, "ids", "acc", "uniprot_id",
    "protein_id", "gene", "organism", "species", "residue", "aa", "score", "value", "split", "fold", "description",
    "length", "start", "end", "source", "note", "notes", "type", "category", "outcome",
})
# ... unless the word is also a plausible class in that column (pos/neg are labels, not names).
_LABEL_WORDS = frozenset(w for pair in _POSITIVE_PAIRS for w in pair)
_PROTEIN = re.compile(rf"[{VALID_RESIDUES}]{{8,}}")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_INTEGER = re.compile(r"[+-]?\d+")


@dataclass(frozen=True)
class TableLayout:
    """How a file is laid out: what data.sniff finds and read_table uses.

    Attributes:
        kind: "fasta" or "table".
        delimiter: the table's delimiter (None for FASTA).
        header: whether the first row is taken as the header (as detected, or as chosen).
        header_detected: whether the first row looks like a header.
        columns: the column names; without a header row "0", "1", ...
        rows: the first data rows (at most 5), as text.
        roles: the guessed column of each role: sequence, label, group, position (a name or None) and
            id (a list of names, joined with _ to make an id).
        summary: one line saying how records, ids, groups and positions will be made.
        why: why the header was (or was not) detected.
    """

    kind: str
    delimiter: str | None = None
    header: bool = False
    header_detected: bool = False
    columns: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    roles: dict[str, Any] = field(default_factory=dict)
    summary: str = ""
    why: str = ""

    def preview(self) -> pd.DataFrame:
        """The first rows under their column names."""
        width = len(self.columns)
        return pd.DataFrame([(r + [""] * width)[:width] for r in self.rows], columns=self.columns)


def _cells(rows: list[list[str]], i: int) -> list[str]:
    return [r[i].strip() for r in rows if i < len(r) and r[i].strip()]


def _share(values: list[str], test) -> float:
    return sum(1 for v in values if test(v)) / len(values) if values else 0.0


def _is_protein(value: str) -> bool:
    return bool(_PROTEIN.fullmatch(value))


def _is_number(value: str) -> bool:
    return bool(_NUMBER.fullmatch(value))


def _is_accession(value: str) -> bool:
    return bool(_ACCESSION_WITH_ISOFORM.fullmatch(value))


def _is_residue(value: str) -> bool:
    return len(value) == 1 and value.upper() in VALID_RESIDUES and value.isalpha()


def detect_header(rows: list[list[str]]) -> tuple[bool, str]:
    """Whether the first of `rows` is a header row, and why.

    In order: a cell that is a usual column name (sequence, label, class, id, accession, target,
    y, ...; not a word that also occurs as a value below it, such as pos/neg) makes a header; a
    word above a column of numbers makes a header; a protein-like cell (8+ residue letters in
    capitals) above sequences, a number above numbers, or a UniProt accession above accessions
    make data; anything else is taken as a header.
    """
    if not rows:
        return False, "the table is empty"
    first, below = [c.strip() for c in rows[0]], rows[1:]
    for i, cell in enumerate(first):
        values = {v.lower() for v in _cells(below, i)}
        word = cell.lower()
        if word in COLUMN_WORDS and word not in values and word not in _LABEL_WORDS - {"y"}:
            return True, f"'{cell}' is a usual column name"
    for i, cell in enumerate(first):
        values = _cells(below, i)
        if cell and not _is_number(cell) and values and _share(values, _is_number) == 1:
            return True, f"'{cell}' stands above a column of numbers"
    for i, cell in enumerate(first):
        values = _cells(below, i)
        if _is_protein(cell) and values and _share(values, _is_protein) >= 0.9:
            return False, f"'{_preview(cell, 20)[1:-1]}' in the first row is a protein sequence"
    for i, cell in enumerate(first):
        values = _cells(below, i)
        if values and _is_number(cell) and _share(values, _is_number) == 1:
            return False, f"the first row holds the number {cell} above more numbers"
        if values and _is_accession(cell) and _share(values, _is_accession) >= 0.9:
            return False, f"the first row holds the accession {cell} above more accessions"
    return True, "the first row does not look like data"


def _by_name(columns: list[str], candidates: Sequence[str], taken: Iterable[str] = ()) -> str | None:
    lower = {c.lower(): c for c in reversed(columns) if c not in set(taken)}
    return next((lower[c] for c in candidates if c in lower), None)


def guess_roles(columns: list[str], rows: list[list[str]], header: bool) -> dict[str, Any]:
    """The likely column of each role (see TableLayout.roles), from the names and the values.

    With a header the names decide (sequence/seq/window, label/class/target/y, id/name/accession,
    position/site). Without
    one, the values do: the sequence is the column of longest amino-acid strings; a single-letter
    column (Y, or S/T) is the residue and never the label; a UniProt accession column is an id
    part and the group; the label is a column of few distinct values (0/1, pos/neg first); the
    position is the most varied column of whole numbers. An accession column is the group either way.
    """
    values = {c: _cells(rows, i) for i, c in enumerate(columns)}

    def length(c: str) -> float:
        v = values[c]
        if not v or _share(v, lambda x: bool(re.fullmatch(rf"[{VALID_RESIDUES}\-*]+", x.upper()))
                           and x.isalpha() or "-" in x) < 0.9:
            return 0.0
        return float(np.mean([len(x) for x in v]))

    residue_cols = {c for c in columns if values[c] and _share(values[c], _is_residue) == 1}
    accessions = [c for c in columns if values[c] and _share(values[c], _is_accession) >= 0.9]
    roles: dict[str, Any] = {"sequence": None, "label": None, "id": [], "group": None, "position": None}
    if header:
        roles["sequence"] = _by_name(columns, SEQUENCE_COLUMNS)
    else:
        best = max(columns, key=length, default=None)
        roles["sequence"] = best if best is not None and length(best) >= 2 and best not in residue_cols else None
    taken = {roles["sequence"]}
    if header:
        roles["label"] = _by_name(columns, LABEL_COLUMNS, taken)
        ident = _by_name(columns, ID_COLUMNS, taken | {roles["label"]})
        roles["id"] = [ident] if ident else []
        roles["position"] = _by_name(columns, POSITION_COLUMNS, taken | {roles["label"]})
        roles["group"] = _by_name(columns, ("group",), taken | {roles["label"]})
    else:
        roles["id"] = accessions[:1]
        taken |= set(accessions) | residue_cols
        integers = [c for c in columns if c not in taken and values[c] and _share(
            values[c], lambda x: bool(_INTEGER.fullmatch(x))) == 1]

        def label_score(c: str) -> tuple:
            v = values[c]
            distinct = {x.lower() for x in v}
            pair = len(distinct) == 2 and any(distinct == set(p) for p in _POSITIVE_PAIRS)
            return (pair, -len(distinct))

        few = [c for c in columns if c not in taken and values[c]
               and len({x.lower() for x in values[c]}) <= max(2, min(20, len(values[c]) // 3))]
        roles["label"] = max(few, key=label_score, default=None)
        varied = [c for c in integers if c != roles["label"]]
        roles["position"] = max(varied, key=lambda c: len(set(values[c])), default=None)
    if roles["group"] is None:
        roles["group"] = next((c for c in accessions if c not in (roles["sequence"], roles["label"])), None)
    return roles


def describe_layout(roles: dict[str, Any], header: bool, *, explicit_ids: bool = False) -> str:
    """One line saying how ids, groups and positions are made from the columns."""
    def col(c: str) -> str:
        return f"'{c}'" if header else f"column {c}"

    ids = roles.get("id") or []
    if ids:
        made = " + ".join(col(c) for c in ids)
        parts = [f"ids from {made}" + ("" if explicit_ids or len(ids) > 1 else " (repeats get _2, _3, ...)")]
    else:
        parts = ["ids numbered row1, row2, ..."]
    parts.append(f"sequences from {col(roles['sequence'])}" if roles.get("sequence") else "no sequence column found")
    if roles.get("label"):
        parts.append(f"labels from {col(roles['label'])}")
    parts.append(f"proteins (for grouped splits) from {col(roles['group'])}" if roles.get("group")
                 else "proteins from the UniProt accession in the id")
    if roles.get("position"):
        parts.append(f"site positions from {col(roles['position'])}")
    return "; ".join(parts) + "."


def _layout(head: list[list[str]], header: str, delimiter: str) -> TableLayout:
    detected, why = detect_header(head)
    has_header = detected if header == "auto" else header == "yes"
    if has_header:
        columns = _unique_names([cell.strip() for cell in head[0]]) if head else []
        body = head[1:]
    else:
        columns = [str(i) for i in range(max((len(r) for r in head), default=0))]
        body = head
    roles = guess_roles(columns, body, has_header)
    return TableLayout(kind="table", delimiter=delimiter, header=has_header, header_detected=detected,
                       columns=columns, rows=[list(r) for r in body[:_PREVIEW_ROWS]], roles=roles,
                       summary=describe_layout(roles, has_header), why=why)


def sniff(path: PathLike, *, display_name: str | None = None, header: str = "auto") -> TableLayout:
    """How a file is laid out (TableLayout): FASTA, or a table with or without a header row, its
    first rows and the guessed role of each column. read_table decides the same way."""
    path = Path(path)
    name = display_name or str(path)
    lim = limits()
    encoding = _sniff_encoding(path, name, lim)
    try:
        return _sniff(path, name, encoding, lim, header)
    except UnicodeDecodeError:
        return _sniff(path, name, "latin-1", lim, header)


def _sniff(path: Path, name: str, encoding: str, lim: Limits, header: str) -> TableLayout:
    with _open_text(path, name, encoding, lim) as stream:
        first, pieces = _first_text(_pieces(stream))
        kind = file_kind(Path(name), first)
        if kind == "fasta":
            return TableLayout(kind="fasta", summary="FASTA: ids and labels from the header lines.")
        head = [row for _, _, row in itertools.islice(_data_rows(pieces, name, kind, lim), _HEAD_ROWS)]
    return _layout(head, header, kind)


def _column(columns: list[str], chosen: str | int | None, setting: str, name: str, what: str) -> str | None:
    """The column a user chose, by name (any case) or 0-based number."""
    if chosen is None:
        return None
    text = str(chosen).strip()
    if text in columns:
        return text
    lower = {c.lower(): c for c in reversed(columns)}
    if text.lower() in lower:
        return lower[text.lower()]
    if re.fullmatch(r"\d+", text) and int(text) < len(columns):
        return columns[int(text)]
    error = LabelError if what == "label" else DataError
    shown = ", ".join(f"{i}: '{c}'" for i, c in enumerate(columns))
    raise error(
        f"{name}: there is no column {text!r} for the {what}s; the columns are {shown}. "
        f"Choose one of those with {{{setting}}}, by name or by number (counting from 0)."
    )


def _resolve_roles(layout: TableLayout, name: str, *, label_source: str, label_column, id_columns,
                   sequence_column, group_column, position_column) -> dict[str, Any]:
    """The column of each role: the user's choice where given, else the guess."""
    cols, guess = layout.columns, layout.roles
    roles = dict(guess)
    roles["sequence"] = _column(cols, sequence_column, "sequence_column", name, "sequence") or guess["sequence"]
    if roles["sequence"] is None:
        raise DataError(
            f"{name}: no sequence column found among the columns {cols}. Name it one of "
            f"{', '.join(SEQUENCE_COLUMNS)}, or choose it with {{sequence_column}}."
        )
    roles["label"] = None
    if label_source != "none":
        roles["label"] = _column(cols, label_column, "label_column", name, "label") or guess["label"]
        if roles["label"] is None:
            raise LabelError(
                f"{name}: no label column found among the columns {cols}. Choose the column that holds the "
                "classes with {label_column}, name it 'label', or read the file without labels."
            )
    if id_columns is not None:
        roles["id"] = [_column(cols, c, "id_columns", name, "id") for c in id_columns]
    roles["group"] = _column(cols, group_column, "group_column", name, "group") or guess["group"]
    roles["position"] = _column(cols, position_column, "position_column", name, "position") or guess["position"]
    return roles


def _parse_delimited(
    pieces: Iterable[_Piece],
    name: str,
    *,
    delimiter: str,
    label_source: str,
    label_column: str | None,
    id_columns: Sequence[str] | None,
    sequence_column: str | None,
    group_column: str | None,
    position_column: str | None,
    header: str,
    label: str | None,
    lim: Limits,
) -> pd.DataFrame:
    rows = _data_rows(pieces, name, delimiter, lim)
    head = list(itertools.islice(rows, _HEAD_ROWS))
    if not head:
        raise EmptyInputError(f"{name} holds no records. Upload a table with one row per sequence.")
    layout = _layout([row for _, _, row in head], header, delimiter)
    body = itertools.chain(head[1:] if layout.header else head, rows)
    columns = layout.columns
    roles = _resolve_roles(layout, name, label_source="none" if label is not None else label_source,
                           label_column=label_column, id_columns=id_columns, sequence_column=sequence_column,
                           group_column=group_column, position_column=position_column)
    index = {col: i for i, col in enumerate(columns)}
    seq_i, lab_col, id_cols = index[roles["sequence"]], roles["label"], roles["id"]
    kept = {"group": roles["group"], "position": roles["position"]}
    used = {roles["sequence"], lab_col, *id_cols, *kept.values()} - {None}
    extra: dict[str, list[str]] = {col: [] for col in columns if col not in used}
    made: dict[str, list[str]] = {k: [] for k, col in kept.items() if col is not None}
    records = _Records(name, lim)
    width = len(columns)
    for start, end, row in body:
        if len(row) > width and any(cell.strip() for cell in row[width:]):
            raise DataError(
                f"{name}:{start}: this row has {len(row)} fields but the "
                f"{'header has' if layout.header else 'first rows have'} {width}. Check the delimiter "
                f"({_delimiter_name(delimiter)}) and that text containing it is quoted."
            )
        _check_cells(len(records) + 1, width, name, start, lim)
        cells = (row + [""] * width)[:width]
        record_id = "_".join(p for p in (cells[index[c]].strip() for c in id_cols) if p) or f"row{len(records) + 1}"
        if lab_col is not None:
            row_label = cells[index[lab_col]].strip() or None
        else:
            row_label = None if label is None else str(label).strip()
        if end > start and delimiter in cells[seq_i]:
            raise DataError(
                f"{name}:{start}: the sequence of record '{record_id}' runs on to line {end} "
                "and holds the delimiter: a quote (\") opened on that row is not closed. "
                "Close or remove it."
            )
        records.add(record_id, cells[seq_i], row_label, start)
        for col, values in extra.items():
            values.append(cells[index[col]])
        for key, values in made.items():
            values.append(cells[index[kept[key]]].strip())
    if not len(records):
        raise EmptyInputError(
            f"{name} holds no records (only a header line). Upload a table with a header line and one row "
            "per sequence."
        )
    warnings = _unique_ids(records, name, explicit=id_columns is not None, columns=id_cols, header=layout.header)
    # Keep an unused column that clashes with ours under a new name, never drop it.
    ours = {*BASE_COLUMNS, *made}
    table = records.frame({**{f"{col}_original" if col in ours else col: v for col, v in extra.items()}, **made})
    table.attrs["warnings"] = warnings
    table.attrs["layout"] = describe_layout(roles, layout.header, explicit_ids=id_columns is not None)
    return table


def _unique_ids(records: _Records, name: str, *, explicit: bool, columns: list[str], header: bool) -> list[str]:
    """Make repeated ids unique (Q9UQC2, Q9UQC2_2, ...) with a warning; refuse them when the user chose the
    id columns. Returns the warnings."""
    rows: dict[str, list[int]] = {}
    for i, rid in enumerate(records.ids):
        rows.setdefault(rid, []).append(i)
    repeated = {rid: r for rid, r in rows.items() if len(r) > 1}
    if not repeated:
        return []
    shown = [f"'{rid}' (lines {', '.join(records.sources[i].rsplit(':', 1)[-1] for i in r[:3])}"
             f"{', ...' if len(r) > 3 else ''})" for rid, r in list(repeated.items())[:3]]
    what = " + ".join(f"'{c}'" if header else f"column {c}" for c in columns) or "the id column"
    if explicit:
        raise DuplicateIdError(
            f"{name}: the ids made from {what} repeat: {'; '.join(shown)}"
            f"{f' and {len(repeated) - 3} more' if len(repeated) > 3 else ''}. Choose columns that together "
            "name each row once with {id_columns} (e.g. the accession and the site position), or leave the "
            "ids to be numbered."
        )
    taken = set(records.ids)
    for rid, r in repeated.items():
        k = 2
        for i in r[1:]:
            while f"{rid}_{k}" in taken:
                k += 1
            records.ids[i] = f"{rid}_{k}"
            taken.add(records.ids[i])
            k += 1
    n = sum(len(r) - 1 for r in repeated.values())
    return [f"{name}: {plural(len(repeated), 'id')} from {what} repeat ({'; '.join(shown)}); {n} repeated "
            f"{'row was' if n == 1 else 'rows were'} given unique ids with _2, _3, ... To build ids from "
            "several columns instead, choose them with {id_columns} (e.g. the accession and the site)."]


def _table_lines(
    pieces: Iterable[_Piece], name: str, delimiter: str, lim: Limits, linenos: list[int]
) -> Iterator[str]:
    """Whole lines of a table for csv.reader; the header is refused once it has too many columns."""
    parts: list[str] = []
    length = 0
    delimiters = 0
    in_header = True
    for lineno, piece, ends in pieces:
        parts.append(piece)
        length += len(piece)
        if in_header:
            delimiters += piece.count(delimiter)
            if delimiters >= lim.table_columns:  # count exactly only when it may matter
                _check_columns(_count_fields("".join(parts), delimiter), name, lineno, lim, partial=not ends)
        if length > _max_line(lim):
            raise _line_too_long(name, lineno, lim, "this line")
        if ends:
            line = "".join(parts)
            in_header = in_header and not line.strip()
            parts, length = [], 0
            linenos.append(lineno)
            yield line + "\n"


def _count_fields(text: str, delimiter: str) -> int:
    try:
        return len(next(csv.reader([text], delimiter=delimiter), []))
    except csv.Error:
        return text.count(delimiter) + 1


def _check_columns(n: int, name: str, lineno: int, lim: Limits, *, partial: bool) -> None:
    if n <= lim.table_columns:
        return
    env = env_name("table_columns")
    raise InputTooLargeError(
        f"{name}:{lineno}: the header line has {'at least ' if partial else ''}{n:,} columns, more "
        f"than the limit of {lim.table_columns:,} ({env}). A table for plmcore needs a sequence "
        "column, a label column and perhaps a few others: check the delimiter, keep only the "
        f"columns you need, or ask the administrator to raise {env}."
    )


def _check_cells(rows: int, columns: int, name: str, lineno: int, lim: Limits) -> None:
    if rows * columns <= lim.table_cells:
        return
    env = env_name("table_cells")
    raise InputTooLargeError(
        f"{name}:{lineno}: the table passes {lim.table_cells:,} cells ({rows:,} rows of {columns} "
        f"columns), the limit for one table ({env}). Keep only the columns you need, split the "
        f"file into smaller ones, or ask the administrator to raise {env}."
    )


def _unique_names(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for i, col in enumerate(names, start=1):
        col = col or f"column{i}"
        if col in seen:
            seen[col] += 1
            col = f"{col}.{seen[col]}"
        else:
            seen[col] = 0
        out.append(col)
    return out


def _delimiter_name(delimiter: str) -> str:
    return {"\t": "tab", ",": "comma", ";": "semicolon"}.get(delimiter, repr(delimiter))


def read_labelled_files(
    files: dict[str, PathLike], *, display_names: dict[str, str] | None = None, **options: Any
) -> pd.DataFrame:
    """Read one file per class ({class name: path}); every record gets its file's class.

    `options` go to read_table (for tables: header, id_columns, sequence_column, ...)."""
    if not files:
        raise ConfigError("No files given: pass one file per class, e.g. {'1': 'pos.fasta'}.")
    names = display_names or {}
    tables = []
    for class_name, path in files.items():
        tables.append(
            read_table(
                path,
                label=str(class_name),
                display_name=names.get(class_name),
                **options,
            )
        )
    table = concat_tables(tables)
    table["label"] = table["label"].astype(object)
    return table


def concat_tables(tables: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Tables read from several files as one, keeping the warnings each read raised."""
    out = pd.concat(tables, ignore_index=True)
    out.attrs = {"warnings": [w for t in tables for w in t.attrs.get("warnings") or []]}
    return out


def class_of_file(file_name: str) -> str:
    """The class a per-class file names: its name without folders, suffixes and a train/test prefix
    ("test_Pos_ST.fasta" -> "Pos_ST")."""
    stem = Path(file_name).name
    stem = re.sub(r"(\.gz)?$", "", stem, flags=re.I)
    stem = Path(stem).stem if Path(stem).suffix.lower() in (*FASTA_SUFFIXES, *CSV_SUFFIXES, *TSV_SUFFIXES, ".txt") \
        else stem
    return re.sub(r"^(train(ing)?|test(ing)?|val(idation)?)[_\-. ]+", "", stem, flags=re.I) or stem


def parse_fasta_text(text: str, *, display_name: str = "pasted") -> pd.DataFrame:
    """Read pasted FASTA text; text without any '>' is one sequence per non-empty line.

    The limits of :func:`plmcore.limits.limits` apply as they do to files.
    """
    lim = limits()
    if len(text) > lim.input_bytes:
        raise InputTooLargeError(
            f"{display_name}: {len(text):,} characters, more than the limit of "
            f"{_size(lim.input_bytes)} for one input. Upload the sequences as files of that size "
            f"or less, or ask the administrator to raise {env_name('input_bytes')}."
        )
    pieces = _pieces(io.StringIO(text, newline=None))
    if ">" in text:
        table = _parse_fasta(pieces, display_name, label_source="header", label=None, lim=lim)
    else:
        records = _Records(display_name, lim)
        in_sequence = False
        for lineno, piece, ends in pieces:
            if not in_sequence and piece.strip():
                records.start("", None, lineno)
                in_sequence = True
            if in_sequence:
                records.add_residues(piece)
            in_sequence = in_sequence and not ends
        table = records.frame()
    if table.empty:
        raise EmptyInputError(
            f"{display_name}: no sequences found. Paste FASTA records ('>id' lines followed by "
            "sequences) or one sequence per line."
        )
    return table


# --------------------------------------------------------------------------- validation


def _is_missing_label(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    if value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, str) and value.strip().lower() in MISSING_LABELS


def clean_label(value: object) -> str | None:
    if _is_missing_label(value):
        return None
    return str(value).strip()


def _where(record_id: str, location: str | None) -> str:
    return f"'{record_id}' ({location})" if location else f"'{record_id}'"


def _named(items: list[tuple[str, str | None]], limit: int = MAX_NAMED) -> str:
    shown = ", ".join(_where(rid, loc) for rid, loc in items[:limit])
    if len(items) > limit:
        shown += f" and {len(items) - limit} more"
    return shown


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _all_carry(n: int, locations: list[str | None]) -> str:
    where = _in_files(locations)
    return f"The only labelled record{where} carries" if n == 1 else f"All {n} labelled records{where} carry"


def _in_files(locations: list[str | None]) -> str:
    """' in a.fasta': the files of the records, for a message about the whole table."""
    files = list(dict.fromkeys(loc.rsplit(":", 1)[0] for loc in locations if loc))
    if not files:
        return ""
    more = f" and {len(files) - MAX_NAMED} more files" if len(files) > MAX_NAMED else ""
    return f" in {', '.join(files[:MAX_NAMED])}{more}"


def _invalid_hint(chars: set[str]) -> str:
    hints = []
    if any(ch.isdigit() for ch in chars):
        hints.append(
            "digits usually come from numbered sequence formats (GenBank, EMBL) or a label "
            "typed into the sequence line"
        )
    if "J" in chars:
        hints.append("J (leucine or isoleucine) is not accepted: write L, I or X")
    if "*" in chars:
        hints.append("a '*' inside a sequence is a stop codon: cut the sequence there")
    if "." in chars:
        hints.append("'.' is an alignment gap: remove it")
    if not hints:
        return ""
    text = "; ".join(hints)
    return text[0].upper() + text[1:] + ". "


def _check_validate_args(
    max_length: int | None, too_long: str, gaps: str, min_classes: int
) -> None:
    if max_length is not None and (
        isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1
    ):
        raise ConfigError(f"max_length must be a positive integer or None; got {max_length!r}.")
    if too_long not in TOO_LONG:
        raise ConfigError(f"too_long must be one of {', '.join(TOO_LONG)}; got {too_long!r}.")
    if gaps not in ("strip", "error"):
        raise ConfigError(f"gaps must be 'strip' or 'error'; got {gaps!r}.")
    if isinstance(min_classes, bool) or not isinstance(min_classes, int) or min_classes < 1:
        raise ConfigError(f"min_classes must be a positive integer; got {min_classes!r}.")


@dataclass
class _Check:
    """The records being validated, and what the checks found so far.

    Each check reads and updates this: ids and locations (for messages), the sequences as they
    are cleaned, the labels, the errors by code and the warnings.
    """

    table: pd.DataFrame
    ids: list[str]
    locations: list[str]
    raw: list[str]
    labels: list[str | None]
    sequences: list[str] = field(default_factory=list)  # cleaned, before any truncation
    errors: dict[str, list[Issue]] = field(default_factory=lambda: {code: [] for code in ERROR_CLASSES})
    warnings: list[Issue] = field(default_factory=list)
    regression: bool = False
    task: str = "classification"
    task_reason: str = ""

    @classmethod
    def of(cls, table: pd.DataFrame) -> _Check:
        out = table.copy().reset_index(drop=True)
        if "label" not in out.columns:
            out["label"] = None
        ids = [str(v).strip() if not _is_missing_value(v) else "" for v in out["id"]]
        sources = out["source"] if "source" in out.columns else [None] * len(out)
        return cls(
            table=out,
            ids=[rid or f"row{i + 1}" for i, rid in enumerate(ids)],
            locations=[(None if _is_missing_value(v) else str(v)) or f"row {i + 1}" for i, v in enumerate(sources)],
            raw=["" if _is_missing_value(v) else "".join(str(v).split()) for v in out["sequence"]],
            labels=[clean_label(v) for v in out["label"]],
        )

    def record(self, i: int) -> str:
        return f"Record {_where(self.ids[i], self.locations[i])}"

    def error(self, code: str, i: int | None, message: str) -> None:
        self.errors[code].append(Issue("error", code, message, None if i is None else self.ids[i],
                                       self.locations[0 if i is None else i]))

    def warn(self, code: str, rows: list[int], message: str) -> None:
        """A warning about several records, naming the first few."""
        if rows:
            shown = _named([(self.ids[i], self.locations[i]) for i in rows])
            self.warnings.append(Issue("warning", code, message.format(n=plural(len(rows), "record"), named=shown),
                                       self.ids[rows[0]], self.locations[rows[0]]))

    def report(self) -> ValidationReport:
        self.table["id"] = pd.Series(self.ids, dtype=object)
        self.table["sequence"] = pd.Series(self.sequences, dtype=object)
        self.table["label"] = pd.Series(self.labels, dtype=object)
        errors = [issue for code, issues in self.errors.items() for issue in _capped(code, issues)]
        return ValidationReport(table=self.table, errors=errors, warnings=self.warnings, task=self.task,
                                task_reason=self.task_reason)


def _check_residues(c: _Check, gaps: str) -> None:
    """Case, gaps and stops (stripped or refused), characters that are not amino acids, empty records."""
    lowercase, stripped, rare = [], [], []
    for i, raw in enumerate(c.raw):
        upper = raw.upper()
        if upper != raw:
            lowercase.append(i)
        if gaps == "strip":
            drop = {p for p, ch in enumerate(upper) if ch == "-"} | ({len(upper) - 1} if upper.endswith("*") else set())
            if drop:
                stripped.append(i)
        else:
            drop = {p for p, ch in enumerate(upper) if ch in "-*"}
            if drop:
                kinds = " and ".join(word for ch, word in (("-", "gaps '-'"), ("*", "stop '*'")) if ch in upper)
                c.error("gaps", i, f"{c.record(i)} contains {kinds} (first at position {min(drop) + 1}). Remove "
                                   "them to give the plain protein sequence, or allow them to be stripped "
                                   "automatically (gaps='strip').")
        sequence = "".join(ch for p, ch in enumerate(upper) if p not in drop)
        if not sequence:
            what = "is empty" if not raw else f"has no residues once gaps are removed ({raw!r})"
            c.error("empty_sequence", i, f"{c.record(i)} {what}. Add its sequence below the header or remove "
                                         "the record.")
        bad: dict[str, list[int]] = {}
        for p, ch in enumerate(upper):
            if p not in drop and ch not in VALID_RESIDUES:
                bad.setdefault(ch, []).append(p + 1)
        if bad:
            c.error("invalid_characters", i,
                    f"{c.record(i)} has characters that are not amino acids: {_describe_bad(bad)}. "
                    f"{_invalid_hint(set(bad))}Allowed are the 20 standard one-letter codes {AMINO_ACIDS}, X for "
                    f"an unknown residue and the rare {RARE_RESIDUES}. Correct or remove those characters.")
        if any(ch in RARE_RESIDUES for ch in sequence):
            rare.append(i)
        c.sequences.append(sequence)
    c.warn("lowercase", lowercase, "{n} had lowercase letters, converted to uppercase: {named}.")
    c.warn("rare_residues", rare,
           "{n} contain the rare residues U (selenocysteine), O (pyrrolysine), B (D or N) or Z (E or Q): {named}. "
           "They are kept: ESM models have their own tokens for them, ProtT5 and ProtBERT map them to X as in "
           "their training.")
    c.warn("gaps_stripped", stripped,
           "{n} had alignment gaps '-' or a trailing stop '*', which were removed: {named}. The model sees the "
           "ungapped protein; choose gaps='error' to refuse such input instead.")


def _check_length(c: _Check, max_length: int | None, too_long: str) -> list[str]:
    """Records longer than `max_length`: refused, or truncated with a warning. Returns the sequences to keep."""
    if max_length is None:
        return list(c.sequences)
    kept, truncated = [], []
    for i, sequence in enumerate(c.sequences):
        if len(sequence) > max_length and too_long == "error":
            c.error("too_long", i, f"{c.record(i)} is {len(sequence)} residues long, more than the limit of "
                                   f"{max_length}. Shorten it (e.g. to a window around the site of interest), or "
                                   f"choose to truncate long sequences to their first {max_length} residues.")
        elif len(sequence) > max_length:
            truncated.append((i, len(sequence)))
            sequence = sequence[:max_length]
        kept.append(sequence)
    if truncated:
        items = ", ".join(f"{_where(c.ids[i], c.locations[i])} {n} residues" for i, n in truncated[:MAX_NAMED])
        if len(truncated) > MAX_NAMED:
            items += f" and {len(truncated) - MAX_NAMED} more"
        i = truncated[0][0]
        c.warnings.append(Issue(
            "warning", "truncated",
            f"{plural(len(truncated), 'record')} longer than {max_length} residues were truncated to their first "
            f"{max_length}: {items}. Residues beyond that are not seen by the model; to study a site further in, "
            "cut a window around it.", c.ids[i], c.locations[i]))
    return kept


def _check_labels(c: _Check, task: str) -> None:
    """Every record has a label, and the labels fit the task: classes (not continuous numbers),
    numbers for regression, label sets for multi-label, a track as long as the sequence per residue."""
    from plmcore import tasks

    example = {"classification": "'>P12345 LABEL=1'", "regression": "'>P12345 LABEL=42.5'",
               "multilabel": "'>P12345 LABEL=membrane;nucleus'", "residue": "a label string as long as the sequence"}
    for i, label in enumerate(c.labels):
        if label is None:
            c.error("missing_label", i, f"{c.record(i)} has no label. Add one: in a FASTA header as a tag like "
                                        f"{example[c.task]}, in a table in the label column; or upload one file "
                                        "per class.")
        elif c.task == "regression" and _as_number(label) is None:
            c.error("missing_label", i, f"{c.record(i)} has the label {label!r}, which is not a number; a regression "
                                        "task needs a number for every record (e.g. 42.5). Correct it or remove the "
                                        "record.")
        elif c.task == "multilabel" and not tasks.split_labels(label):
            c.error("missing_label", i, f"{c.record(i)} has no labels between the '{tasks.SEPARATOR}' separators.")
        elif c.task == "residue" and len(label) != len(c.sequences[i]):
            c.error("missing_label", i, f"{c.record(i)} has a label track of {len(label)} characters for a sequence "
                                        f"of {len(c.sequences[i])} residues; a per-residue task needs one label per "
                                        f"residue ('{tasks.NO_LABEL}' for none). Check that gaps were removed from "
                                        "both, and that the track belongs to this sequence.")
    if c.task == "classification":
        issue = _regression_issue(c.labels, c.locations)
        if issue is not None:
            c.regression = True
            c.errors["regression_target"].append(issue)


def _check_ids(c: _Check) -> None:
    """Every id names one record."""
    c.errors["duplicate_id"].extend(_duplicate_id_issues(c.ids, c.locations))


def _check_copies(c: _Check, labelled: bool) -> None:
    """Identical sequences: with different labels an error (for regression, replicate measurements:
    a warning), with the same label a warning."""
    conflicts, copies = _sequence_duplicates(c.sequences, c.labels, c.ids, c.locations)
    if labelled and c.task == "regression":
        for issue in conflicts:
            c.warnings.append(Issue("warning", "replicate_values", issue.message.replace(
                "Correct the wrong label or remove all but one of them; the model cannot learn two answers for one "
                "input.", "They are kept as replicate measurements; average them if they are not."),
                issue.record_id, issue.location))
    elif labelled:
        c.errors["conflicting_labels"].extend(conflicts)
    if copies is not None:
        c.warnings.append(copies)


def _check_classes(c: _Check, min_classes: int) -> None:
    """At least `min_classes` classes among the labels (label names for multi-label, residue classes
    per residue; for regression, at least two different values)."""
    from plmcore import tasks

    present = [label for label in c.labels if label is not None]
    if c.task == "regression":
        values = {_as_number(v) for v in present} - {None}
        if present and len(values) < 2:
            c.error("single_class", None, f"{_all_carry(len(present), c.locations)} the same value; a regression "
                                          "needs targets that vary.")
        return
    if c.task == "multilabel":
        present = [x for v in present for x in tasks.split_labels(v)]
    elif c.task == "residue":
        present = sorted(set("".join(present)) - {tasks.NO_LABEL})
    classes = classes_of(present)
    if present and len(classes) < min_classes:
        found = ", ".join(f"'{k}'" for k in classes)
        c.error("single_class", None,
                f"{_all_carry(len(present), c.locations)} the {'class' if len(classes) == 1 else 'classes'} "
                f"{found}; training needs at least {min_classes} classes. Add records of another class (e.g. "
                "negatives), or check that the labels were read from the right header tag or column.")


def validate(
    table: pd.DataFrame,
    *,
    max_length: int | None = None,
    too_long: str = "truncate",
    gaps: str = "strip",
    require_labels: bool = True,
    min_classes: int = 2,
    task: str = "auto",
) -> ValidationReport:
    """Check a raw table and return the cleaned copy with its errors and warnings.

    The labels are checked for the task (plmcore.tasks: classification, regression,
    multilabel or residue); "auto" takes the one the labels describe, recorded in the report.

    The checks run in this order: residues (case, gaps, invalid characters, empty records),
    length, labels, ids, identical sequences, classes. Fixable problems (lowercase, gaps, a
    trailing stop, over-long sequences when ``too_long="truncate"``, duplicates) are fixed or
    kept and reported as warnings; the rest are errors, one per offending record. With
    ``require_labels=False`` labels are only cleaned, not checked. The input is never modified.
    """
    _check_validate_args(max_length, too_long, gaps, min_classes)
    missing = [col for col in ("id", "sequence") if col not in table.columns]
    if missing:
        raise DataError(
            f"The table lacks the column(s) {missing}; it has {list(table.columns)}. "
            "Read files with read_table() or name the columns 'id' and 'sequence'."
        )
    c = _Check.of(table)
    c.warnings.extend(Issue("warning", "read", render_settings(w), template=w)
                      for w in table.attrs.get("warnings") or [])
    if not len(c.table):
        return ValidationReport(table=c.table, errors=[Issue(
            "error", "empty", "No records to check: the input holds no sequences. Upload a FASTA or CSV file "
            "with at least one sequence.")], warnings=[])
    _check_residues(c, gaps)
    if require_labels:
        from plmcore import tasks

        c.task, c.task_reason = tasks.detect(c.labels, c.sequences) if task == "auto" else (task, "chosen")
    # per-residue labels must stay aligned: long proteins are cut into chunks later, never truncated
    kept = _check_length(c, None if c.task == "residue" else max_length, too_long)
    if require_labels:
        _check_labels(c, task)
    _check_ids(c)
    _check_copies(c, labelled=require_labels and not c.regression)
    if require_labels and not c.regression:
        _check_classes(c, min_classes)
    c.sequences = kept
    return c.report()


def _is_missing_value(value: object) -> bool:
    if value is None or value is pd.NA:
        return True
    return isinstance(value, float) and math.isnan(value)


def _describe_bad(bad: dict[str, list[int]]) -> str:
    parts = []
    for ch, positions in list(bad.items())[:MAX_NAMED]:
        shown = ", ".join(str(p) for p in positions[:3])
        if len(positions) > 3:
            shown += f", ... ({len(positions)} times)"
        word = "position" if len(positions) == 1 else "positions"
        parts.append(f"{ch!r} at {word} {shown}")
    if len(bad) > MAX_NAMED:
        parts.append(f"and {len(bad) - MAX_NAMED} more kinds")
    return "; ".join(parts)


def _capped(code: str, issues: list[Issue]) -> list[Issue]:
    if len(issues) <= _MAX_LISTED_ERRORS:
        return issues
    rest = len(issues) - _MAX_LISTED_ERRORS
    closing = Issue(
        "error",
        code,
        f"{plural(rest, 'more record')} have the same problem ({code.replace('_', ' ')}); "
        "fix the ones listed above and check again.",
    )
    return [*issues[:_MAX_LISTED_ERRORS], closing]


def _as_number(label: str) -> float | None:
    try:
        value = float(label)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _regression_issue(labels: list[str | None], locations: list[str | None]) -> Issue | None:
    present = [lab for lab in labels if lab is not None]
    if not present:
        return None
    numbers = [_as_number(lab) for lab in present]
    if any(value is None for value in numbers):
        return None
    values = np.array(numbers, dtype=float)
    distinct = np.unique(values)
    fractional = bool(np.any(values != np.round(values)))
    n_distinct = len(distinct)
    mostly_unique = n_distinct > _REGRESSION_DISTINCT_SHARE * len(values)
    many = n_distinct > _REGRESSION_MIN_DISTINCT and mostly_unique
    if not (fractional or many):
        return None
    example = ", ".join(present[:3])
    median = float(np.median(values))
    return Issue(
        "error",
        "regression_target",
        f"The labels{_in_files(locations)} look like continuous numbers ({len(distinct)} distinct values from "
        f"{values.min():g} to {values.max():g}, e.g. {example}), but a classification task was chosen. "
        "Train a regression model instead (CLI: --task regression; app: Task 'regression'), or bin the "
        f"values into classes, e.g. with a threshold (label 1 if value >= {median:g} else 0).",
        None,
        next((loc for loc in locations if loc), None),
    )


def _duplicate_id_issues(ids: list[str], locations: list[str | None]) -> list[Issue]:
    seen: dict[str, list[int]] = {}
    for i, rid in enumerate(ids):
        seen.setdefault(rid, []).append(i)
    issues = []
    for rid, rows in seen.items():
        if len(rows) < 2:
            continue
        places = ", ".join(str(locations[i]) for i in rows[:MAX_NAMED])
        if len(rows) > MAX_NAMED:
            places += f" and {len(rows) - MAX_NAMED} more"
        issues.append(
            Issue(
                "error",
                "duplicate_id",
                f"The id '{rid}' is used by {len(rows)} records: {places}. Give each record a "
                f"unique id (e.g. add the site position, '{rid}_2'), or remove the repeated "
                "record.",
                rid,
                locations[rows[1]],
            )
        )
    return issues


def _sequence_duplicates(
    sequences: list[str],
    labels: list[str | None],
    ids: list[str],
    locations: list[str | None],
) -> tuple[list[Issue], Issue | None]:
    groups: dict[str, list[int]] = {}
    for i, seq in enumerate(sequences):
        if seq:
            groups.setdefault(seq, []).append(i)
    conflicts: list[Issue] = []
    repeated: list[list[int]] = []
    for rows in groups.values():
        if len(rows) < 2:
            continue
        labelled = [i for i in rows if labels[i] is not None]
        if len({labels[i] for i in labelled}) > 1:
            items = ", ".join(
                f"{_where(ids[i], locations[i])} label '{labels[i]}'" for i in labelled[:MAX_NAMED]
            )
            if len(labelled) > MAX_NAMED:
                items += f" and {len(labelled) - MAX_NAMED} more"
            first = labelled[0]
            conflicts.append(
                Issue(
                    "error",
                    "conflicting_labels",
                    f"{plural(len(labelled), 'record')} have the identical sequence but "
                    f"different labels: {items}. Correct the wrong label or remove all but one "
                    "of them; the model cannot learn two answers for one input.",
                    ids[first],
                    locations[first],
                )
            )
        elif len({ids[i] for i in rows}) > 1:
            repeated.append(rows)
    if not repeated:
        return conflicts, None
    examples = "; ".join(
        " = ".join(_where(ids[i], locations[i]) for i in rows[:3]) for rows in repeated[:3]
    )
    if len(repeated) > 3:
        examples += f"; and {len(repeated) - 3} more"
    n_records = sum(len(rows) for rows in repeated)
    first = repeated[0][1]
    warning = Issue(
        "warning",
        "duplicate_sequence",
        f"{plural(len(repeated), 'sequence')} appear in more than one record "
        f"({n_records} records) with the same label: {examples}. They are kept; remove the "
        "copies unless intended, because a copy in the training split and one in the test "
        "split inflate the test scores.",
        ids[first],
        locations[first],
    )
    return conflicts, warning


# --------------------------------------------------------------------------- classes


def _class_key(label: str) -> tuple[int, float, str]:
    number = _as_number(label)
    return (0, number, label) if number is not None else (1, 0.0, label)


def classes_of(labels: Iterable[object]) -> list[str]:
    """Sorted distinct class names; numeric-looking ones numerically ("2" before "10")."""
    names = {str(lab).strip() for lab in labels if not _is_missing_label(lab)}
    return sorted(names, key=_class_key)


def positive_class(classes: list[str]) -> str | None:
    """The positive class of a binary problem ("1", "pos", "yes", ...); None if not binary."""
    ordered = classes_of(classes)
    if len(ordered) != 2:
        return None
    a, b = ordered
    la, lb = a.lower(), b.lower()
    numbers = (_as_number(a), _as_number(b))
    if numbers == (0.0, 1.0):
        return b
    for pos, neg in _POSITIVE_PAIRS:
        if (la, lb) == (pos, neg):
            return a
        if (la, lb) == (neg, pos):
            return b
    # "phospho" / "non-phospho", "binder" / "not_binder": the unnegated name is positive.
    for x, y, orig in ((la, lb, a), (lb, la, b)):
        for prefix in ("non", "not"):
            for sep in ("", "-", "_", " "):
                if y == f"{prefix}{sep}{x}":
                    return orig
    return b


# --------------------------------------------------------------------------- sites


def site_window(protein: str, position: int, length: int, pad: str | None = PAD_CHAR) -> str:
    """The ``length``-residue window centred on 1-based ``position``, padded at the protein's ends
    with ``pad``, or cut there (shorter) when ``pad`` is None."""
    if isinstance(length, bool) or not isinstance(length, int) or length < 1 or length % 2 == 0:
        raise ConfigError(
            f"length must be a positive odd number so the site sits in the middle; got {length!r}."
        )
    if pad is not None and (not isinstance(pad, str) or len(pad) != 1):
        raise ConfigError(f"pad must be a single character; got {pad!r}.")
    if isinstance(position, bool) or not isinstance(position, (int, np.integer)):
        raise ConfigError(f"position must be an integer (1-based); got {position!r}.")
    if not 1 <= position <= len(protein):
        raise ConfigError(
            f"position {position} is outside the protein of length {len(protein)}; positions "
            f"run from 1 to {len(protein)}."
        )
    half = length // 2
    centre = int(position) - 1
    left = protein[max(0, centre - half) : centre]
    right = protein[centre + 1 : centre + 1 + half]
    if pad is None:
        return left + protein[centre] + right
    return pad * (half - len(left)) + left + protein[centre] + right + pad * (half - len(right))


def window_info(table: pd.DataFrame) -> dict[str, Any]:
    """Whether the sequences are site windows: their (longest) length, centre residues and ends.

    Equal-length odd windows are site windows whose ends were padded ("pad"). Windows of different
    lengths (DephosNet: up to 121 residues, shorter near protein ends) count when the longest length
    is odd, at least half the windows have it, and their centres hold at most 3 residue types; their
    ends are "cut" at the protein's ends, and scanning a protein cuts its windows the same way.
    """
    sequences = [str(s) for s in table["sequence"]] if "sequence" in table.columns else []
    lengths = [len(s) for s in sequences]
    none = {"aligned": False, "length": None, "center_residues": [], "ends": "pad"}
    if not lengths:
        return none
    longest = max(lengths)
    if len(set(lengths)) == 1:
        aligned = longest % 2 == 1
        centres = sorted({s[longest // 2] for s in sequences}) if aligned else []
        return {"aligned": aligned, "length": longest, "center_residues": centres, "ends": "pad"}
    full = [s for s in sequences if len(s) == longest]
    centres = sorted({s[longest // 2] for s in full})
    if longest % 2 == 1 and len(full) >= len(sequences) / 2 and len(centres) <= 3:
        return {"aligned": True, "length": longest, "center_residues": centres, "ends": "cut"}
    return none


def accession_of(record_id: str) -> str | None:
    """The UniProt accession in an id such as "sp|P20963|CD3Z_HUMAN" (isoform suffix dropped)."""
    if not isinstance(record_id, str):
        return None
    text = record_id.strip().lstrip(">")
    fields = [f.strip() for f in text.split("|")]
    candidates: list[str] = []
    if len(fields) >= 2 and fields[0].lower() in ("sp", "tr", "up"):
        candidates.append(fields[1])
    candidates.extend(fields)
    for item in list(candidates):
        candidates.extend(t for t in re.split(r"[\s_%:;,/=.]+", item) if t)
    for candidate in candidates:
        match = _ACCESSION_WITH_ISOFORM.fullmatch(candidate)
        if match:
            return match.group(1)
    return None


# --------------------------------------------------------------------------- per-residue labels

SITE_ID_COLUMNS = ("id", "protein", "protein_id", "accession", "entry", "name")
SITE_POSITION_COLUMNS = POSITION_COLUMNS


def read_sites(path: PathLike, *, display_name: str | None = None) -> pd.DataFrame:
    """A table of per-residue labels: id, position (1-based) and label, with its source line.

    Columns are found by name (id/protein/accession, position/pos/site, label/class), or taken
    as the first three when the file has no header. Each label is one character (e.g. 1 for a
    site; a per-residue class such as H, E or C).
    """
    path = Path(path)
    name = display_name or str(path)
    if not path.is_file():
        raise DataError(f"File not found: {name}. Check the path of the sites table.")
    lim = limits()
    rows: list[tuple[int, list[str]]] = []
    with _open_text(path, name, _sniff_encoding(path, name, lim), lim) as stream:
        first, pieces = _first_text(_pieces(stream))
        delimiter = "\t" if "\t" in first else ("," if "," in first or ";" not in first else ";")
        for lineno, piece, _ in pieces:
            if piece.strip():
                rows.append((lineno, next(csv.reader([piece], delimiter=delimiter))))
            if len(rows) > lim.records:
                raise InputTooLargeError(f"{name}: more than {lim.records:,} sites ({env_name('records')}).")
    if not rows:
        raise EmptyInputError(f"{name} holds no sites. Give one row per site: id, position, label.")
    head = [c.strip().lower() for c in rows[0][1]]
    has_header = not any(c.strip().isdigit() for c in rows[0][1])
    if has_header:
        def col(options, what):
            for option in options:
                if option in head:
                    return head.index(option)
            raise DataError(f"{name}: no {what} column among {rows[0][1]}; name it one of {', '.join(options)}.")
        idx = (col(SITE_ID_COLUMNS, "id"), col(SITE_POSITION_COLUMNS, "position"), col(LABEL_COLUMNS, "label"))
        rows = rows[1:]
    else:
        idx = (0, 1, 2)
    out = []
    for lineno, cells in rows:
        if len(cells) <= max(idx):
            raise DataError(f"{name}:{lineno}: expected id, position and label; got {cells}.")
        rid, pos, label = (cells[i].strip() for i in idx)
        if not pos.isdigit() or int(pos) < 1:
            raise DataError(f"{name}:{lineno}: position {pos!r} of '{rid}' is not a positive whole number "
                            "(positions count from 1).")
        if len(label) != 1:
            raise LabelError(f"{name}:{lineno}: the label {label!r} of '{rid}' position {pos} is not one character; "
                             "per-residue labels are single characters (1/0, or classes such as H, E, C). Recode it.")
        out.append({"id": rid, "position": int(pos), "label": label, "source": f"{name}:{lineno}"})
    return pd.DataFrame(out)


def residue_tracks(table: pd.DataFrame, sites: pd.DataFrame, residues: str | None = None,
                   negative: str = "0") -> pd.DataFrame:
    """The table with a per-residue label track built from a sites table.

    Listed positions get their label; unlisted residues of the types that count (`residues`, or
    the types found at the listed sites) get `negative`; other residues get "." (no label).
    Records without any site keep only negatives. A site outside its protein, or on a residue
    type that does not count, is an error naming the line.
    """
    by_id = {str(rid): i for i, rid in enumerate(table["id"])}
    unknown = sorted(set(sites["id"]) - set(by_id))
    if unknown:
        raise DataError(f"{len(unknown)} ids of the sites table are not in the sequences (e.g. "
                        f"{', '.join(unknown[:3])}); check that both files name the proteins the same way.")
    sequences = [str(s).upper() for s in table["sequence"]]
    if residues is None:
        residues = "".join(sorted({sequences[by_id[r]][p - 1] for r, p in zip(sites["id"], sites["position"])
                                   if p <= len(sequences[by_id[r]])}))
    tracks = [[negative if aa in residues else "." for aa in seq] for seq in sequences]
    for rid, pos, label, source in sites[["id", "position", "label", "source"]].itertuples(index=False):
        seq = sequences[by_id[rid]]
        if pos > len(seq):
            raise DataError(f"{source}: position {pos} is beyond the end of '{rid}' ({len(seq)} residues).")
        if seq[pos - 1] not in residues:
            raise DataError(f"{source}: position {pos} of '{rid}' is {seq[pos - 1]}, not one of the residue types "
                            f"that count ({residues}); check the position (it counts from 1).")
        tracks[by_id[rid]][pos - 1] = label
    out = table.copy()
    out["label"] = pd.Series(["".join(t) for t in tracks], dtype=object)
    return out
