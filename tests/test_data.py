"""Tests for plmcore.data: reading, validating, splitting and windowing sequences."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import pandas as pd
import pytest

from plmcore.data import (
    AMINO_ACIDS,
    PAD_CHAR,
    VALID_RESIDUES,
    ValidationReport,
    accession_of,
    classes_of,
    parse_fasta_text,
    parse_header_label,
    positive_class,
    read_labelled_files,
    read_table,
    site_window,
    validate,
    window_info,
)
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
)

SEQ_A = "MKTAYIAKQRQISFVKSHFSRQ"
SEQ_B = "GSHMLEDPVDAFQLGNHWRPAE"
SEQ_C = "PEPTIDEWINDQWERTYASDFG"


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def fasta(records: list[tuple[str, str]]) -> str:
    return "".join(f">{header}\n{seq}\n" for header, seq in records)


def two_class_fasta(tmp_path: Path, extra: list[tuple[str, str]], name: str = "in.fasta") -> Path:
    base = [("a LABEL=1", SEQ_A), ("b LABEL=0", SEQ_B)]
    return write(tmp_path / name, fasta(base + extra))


def checked(path: Path, **kwargs: object) -> ValidationReport:
    return validate(read_table(path), **kwargs)  # type: ignore[arg-type]


def codes(issues: list) -> list[str]:
    return [issue.code for issue in issues]


def toy_table(n_per_class: int = 50, classes: tuple[str, ...] = ("0", "1")) -> pd.DataFrame:
    rows = []
    for k, label in enumerate(classes):
        for i in range(n_per_class):
            # Distinct valid sequences: the class and the index spelled in residues.
            code = AMINO_ACIDS[k % 20] + AMINO_ACIDS[i % 20] + AMINO_ACIDS[i // 20 % 20]
            rows.append(
                {
                    "id": f"c{label}_{i}",
                    "sequence": code + SEQ_A,
                    "label": label,
                    "source": f"toy.fasta:{len(rows) * 2 + 1}",
                }
            )
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- real data


def test_dephos_train_reads_and_validates(shared_data: Path) -> None:
    table = read_table(shared_data / "dephos_Y" / "train_sequences.fasta")
    assert len(table) == 201
    assert classes_of(table["label"]) == ["0", "1"]
    assert (table["label"] == "1").sum() == 101
    report = validate(table)
    assert report.ok and report.errors == [] and report.warnings == []
    assert window_info(report.table) == {"aligned": True, "length": 33, "center_residues": ["Y"], "ends": "pad"}
    assert table["source"].iloc[1].endswith("train_sequences.fasta:3")
    accessions = [accession_of(rid) for rid in table["id"]]
    assert all(accessions)
    assert accessions[0] == "Q9UQC2"
    assert positive_class(classes_of(table["label"])) == "1"


# --------------------------------------------------------------------------- headers


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("sp|P20963|CD3Z_HUMAN%126%142 LABEL=1", ("sp|P20963|CD3Z_HUMAN%126%142", "1")),
        ("seq1 label=pos some description", ("seq1", "pos")),
        ("seq1 Class=kinase;source=x", ("seq1", "kinase")),
        ("seq2|label=neg", ("seq2", "neg")),
        ("seq7|pos", ("seq7", "pos")),
        ("seq7 desc|neg", ("seq7", "neg")),
        ("sp|P20963|CD3Z_HUMAN", ("sp|P20963|CD3Z_HUMAN", None)),
        (
            "tr|A0A024R161|A0A024R161_HUMAN Guanine nucleotide",
            ("tr|A0A024R161|A0A024R161_HUMAN", None),
        ),
        ("seq3 just a description", ("seq3", None)),
        ("seq4|two words", ("seq4|two", None)),
        (">seq5 LABEL=0", ("seq5", "0")),
    ],
)
def test_parse_header_label(header: str, expected: tuple[str, str | None]) -> None:
    assert parse_header_label(header) == expected


# --------------------------------------------------------------------------- reading


def test_multiline_fasta_is_joined_and_sourced(tmp_path: Path) -> None:
    path = write(
        tmp_path / "multi.fa",
        "\n>p1 LABEL=1\nMKTAY\nIAKQR \n\nQISF\n>p2 LABEL=0\r\nGSH MLE\r\n",
    )
    table = read_table(path, display_name="upload.fa")
    assert list(table.columns) == ["id", "sequence", "label", "source"]
    assert table["sequence"].tolist() == ["MKTAYIAKQRQISF", "GSHMLE"]
    assert table["id"].tolist() == ["p1", "p2"]
    assert table["source"].tolist() == ["upload.fa:2", "upload.fa:7"]


def test_gzipped_fasta(tmp_path: Path) -> None:
    path = tmp_path / "in.fasta.gz"
    path.write_bytes(gzip.compress(fasta([("a LABEL=1", SEQ_A), ("b LABEL=0", SEQ_B)]).encode()))
    table = read_table(path)
    assert table["sequence"].tolist() == [SEQ_A, SEQ_B]
    assert table["label"].tolist() == ["1", "0"]


def test_fasta_label_sources(tmp_path: Path) -> None:
    path = two_class_fasta(tmp_path, [])
    assert read_table(path, label_source="none")["label"].tolist() == [None, None]
    assert read_table(path, label="x")["label"].tolist() == ["x", "x"]
    with pytest.raises(ConfigError, match="column \\(--label-source column\\) do not apply"):
        read_table(path, label_source="column")
    with pytest.raises(ConfigError, match="label_source='guess'"):
        read_table(path, label_source="guess")
    with pytest.raises(ConfigError, match="must be a class name"):
        read_table(path, label=" ")
    table = write(tmp_path / "t.csv", "id,sequence,label\na,MKT,1\nb,MKV,0\n")
    assert read_table(table)["label"].tolist() == ["1", "0"]  # auto: the label column
    with pytest.raises(ConfigError, match="is a table, so its labels are in a column"):
        read_table(table, label_source="header")
    named_fasta = write(tmp_path / "really_fasta.txt", ">a LABEL=1\nMKT\n>b LABEL=0\nMKV\n")
    assert read_table(named_fasta)["label"].tolist() == ["1", "0"]  # the content decides, not the name


def test_text_before_first_header_names_line(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.fasta", "MKTAYIAKQR\n>a LABEL=1\nMKT\n")
    with pytest.raises(DataError, match=r"bad\.fasta:1: text before the first '>'"):
        read_table(path)


@pytest.mark.parametrize("content", ["", "\n  \n"])
def test_empty_file_names_the_file(tmp_path: Path, content: str) -> None:
    path = write(tmp_path / "empty.fasta", content)
    with pytest.raises(EmptyInputError, match=r"my_upload\.fasta holds no records"):
        read_table(path, display_name="my_upload.fasta")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="File not found"):
        read_table(tmp_path / "nope.fasta")


def test_csv_auto_detected_columns(tmp_path: Path) -> None:
    path = write(
        tmp_path / "in.csv",
        f"Name,Sequence,Label,organism,source\nx1,{SEQ_A},1,human,lab\n\nx2, {SEQ_B} ,0,mouse,db\n",
    )
    table = read_table(path)
    assert table["id"].tolist() == ["x1", "x2"]
    assert table["sequence"].tolist() == [SEQ_A, SEQ_B]
    assert table["label"].tolist() == ["1", "0"]
    assert table["organism"].tolist() == ["human", "mouse"]
    # A user column named like one of ours is kept under another name.
    assert table["source_original"].tolist() == ["lab", "db"]
    assert table["source"].tolist() == [f"{path}:2", f"{path}:4"]


def test_csv_chosen_columns_and_generated_ids(tmp_path: Path) -> None:
    path = write(tmp_path / "in.csv", f"pep,activity,note\n{SEQ_A},high,a\n{SEQ_B},low,b\n")
    table = read_table(path, sequence_column="pep", label_column="activity")
    assert table["id"].tolist() == ["row1", "row2"]
    assert table["label"].tolist() == ["high", "low"]
    assert table["note"].tolist() == ["a", "b"]
    assert "pep" not in table.columns


def test_tsv_and_semicolon_csv(tmp_path: Path) -> None:
    tsv = write(tmp_path / "in.tsv", f"entry\twindow\tclass\nq1\t{SEQ_A}\tpos\nq2\t{SEQ_B}\tneg\n")
    table = read_table(tsv, label_source="column")
    assert table[["id", "sequence", "label"]].values.tolist() == [
        ["q1", SEQ_A, "pos"],
        ["q2", SEQ_B, "neg"],
    ]
    semi = write(tmp_path / "excel.csv", f"id;sequence;label\nq1;{SEQ_A};1\n")
    assert read_table(semi)["label"].tolist() == ["1"]


def test_unknown_extension_is_sniffed(tmp_path: Path) -> None:
    as_fasta = write(tmp_path / "upload.txt", fasta([("a LABEL=1", SEQ_A)]))
    assert read_table(as_fasta)["sequence"].tolist() == [SEQ_A]
    as_tsv = write(tmp_path / "upload.dat", f"id\tseq\tlabel\na\t{SEQ_A}\t1\n")
    assert read_table(as_tsv)["label"].tolist() == ["1"]


def test_csv_without_sequence_column(tmp_path: Path) -> None:
    path = write(tmp_path / "in.csv", "id,residues,label\na,MKT,1\n")
    with pytest.raises(DataError, match=r"no sequence column.*'residues'.*--sequence-column"):
        read_table(path)
    with pytest.raises(DataError, match="no column 'aa'"):
        read_table(path, sequence_column="aa")


def test_csv_missing_label_column_lists_columns(tmp_path: Path) -> None:
    path = write(tmp_path / "in.csv", f"id,sequence,activity\na,{SEQ_A},1\n")
    with pytest.raises(LabelError, match=r"no column 'target'.*'activity'"):
        read_table(path, label_column="target")
    with pytest.raises(LabelError, match=r"no label column found.*'activity'"):
        read_table(path)
    assert read_table(path, label_source="none")["label"].tolist() == [None]


def test_csv_header_only_and_ragged_rows(tmp_path: Path) -> None:
    with pytest.raises(EmptyInputError, match=r"head\.csv holds no records"):
        read_table(write(tmp_path / "head.csv", "id,sequence,label\n"))
    ragged = write(tmp_path / "ragged.csv", f"id,sequence,label\na,{SEQ_A},1\nb,MKT,0,extra\n")
    with pytest.raises(DataError, match=r"ragged\.csv:3: this row has 4 fields"):
        read_table(ragged)


def test_binary_upload_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "book.xlsx"
    path.write_bytes(b"PK\x03\x04\x00\x00binary")
    with pytest.raises(DataError, match="binary file"):
        read_table(path)


# --------------------------------------------------------------------------- limits on input


def test_gzip_is_refused_once_it_inflates_past_the_limit(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PLMCORE_MAX_INPUT_MB", "1")
    path = tmp_path / "big.fasta.gz"
    path.write_bytes(gzip.compress(fasta([(f"r{i} LABEL={i % 2}", SEQ_A * 40) for i in range(2000)]).encode()))
    with pytest.raises(InputTooLargeError, match=r"big\.fasta\.gz inflates to more than 1 MiB.*PLMCORE_MAX_INPUT_MB"):
        read_table(path)


def test_plain_file_over_the_limit_is_refused_before_reading(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PLMCORE_MAX_INPUT_MB", "1")
    path = write(tmp_path / "big.fasta", ">a LABEL=1\n" + "A" * (2 * 1024 * 1024) + "\n")
    with pytest.raises(InputTooLargeError, match=r"big\.fasta is 2 MiB, more than the limit of 1 MiB"):
        read_table(path)


def test_corrupt_gzip_is_a_data_error(tmp_path: Path) -> None:
    path = tmp_path / "in.fasta.gz"
    path.write_bytes(gzip.compress(fasta([("a LABEL=1", SEQ_A)] * 50).encode())[:-30])
    with pytest.raises(DataError, match=r"in\.fasta\.gz looks gzip-compressed but cannot be decompressed"):
        read_table(path)


def test_too_many_columns_are_refused_from_the_header(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PLMCORE_MAX_TABLE_COLUMNS", "4")
    wide = write(tmp_path / "wide.csv", "id,sequence,label,a,b,c\nx," + SEQ_A + ",1,,,\n")
    with pytest.raises(InputTooLargeError, match=r"wide\.csv:1: the header line has 6 columns.*limit of 4"):
        read_table(wide)
    # delimiters inside quotes are not columns
    quoted = write(tmp_path / "quoted.csv", 'id,sequence,label,"a,b,c"\nx,' + SEQ_A + ",1,z\n")
    assert read_table(quoted)["a,b,c"].tolist() == ["z"]


def test_record_over_the_residue_limit_names_the_record(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PLMCORE_MAX_RECORD_RESIDUES", "30")
    path = write(tmp_path / "long.fasta", fasta([("ok LABEL=1", SEQ_A), ("titin LABEL=0", SEQ_A + "\n" + SEQ_B)]))
    message = r"long\.fasta:3: record 'titin' has more than 30 residues.*windows.*PLMCORE_MAX_RECORD_RESIDUES"
    with pytest.raises(InputTooLargeError, match=message):
        read_table(path)
    table = write(tmp_path / "long.csv", f"id,sequence,label\nok,{SEQ_A},1\ntitin,{SEQ_A + SEQ_B},0\n")
    with pytest.raises(InputTooLargeError, match=r"long\.csv:3: record 'titin' has more than 30"):
        read_table(table)
    with pytest.raises(InputTooLargeError, match=r"box:2: record 'seq1' has more than 30"):
        parse_fasta_text("\n" + SEQ_A + SEQ_B, display_name="box")


def test_records_and_cells_limits(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PLMCORE_MAX_RECORDS", "2")
    path = two_class_fasta(tmp_path, [("c LABEL=1", SEQ_C)])
    with pytest.raises(InputTooLargeError, match=r"in\.fasta:5: more than 2 records.*PLMCORE_MAX_RECORDS"):
        read_table(path)
    assert len(read_table(two_class_fasta(tmp_path, [], name="two.fasta"))) == 2
    monkeypatch.setenv("PLMCORE_MAX_TABLE_CELLS", "5")
    table = write(tmp_path / "in.csv", f"id,sequence,label\na,{SEQ_A},1\nb,{SEQ_B},0\n")
    with pytest.raises(InputTooLargeError, match=r"in\.csv:3: the table passes 5 cells \(2 rows of 3 columns\)"):
        read_table(table)


def test_a_line_too_long_to_hold_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "in.fasta", ">" + "x" * (1 << 21) + "\nMKT\n")
    with pytest.raises(InputTooLargeError, match=r"in\.fasta:1: this header line is longer than"):
        read_table(path)


def test_utf16_and_latin1_text_are_read(tmp_path: Path) -> None:
    text = f"id\tsequence\tlabel\nq1\t{SEQ_A}\t1\nq2\t{SEQ_B}\t0\n"
    utf16 = tmp_path / "excel.txt"
    utf16.write_bytes(text.replace("\n", "\r\n").encode("utf-16"))
    assert read_table(utf16)["sequence"].tolist() == [SEQ_A, SEQ_B]
    latin1 = tmp_path / "cp1252.csv"
    latin1.write_bytes(f"id,sequence,label,organism\nq1,{SEQ_A},1,Escherichia coli K-12 \xe9\n".encode("latin-1"))
    assert read_table(latin1)["organism"].tolist() == ["Escherichia coli K-12 \xe9"]


def test_one_file_per_class(tmp_path: Path) -> None:
    pos = write(tmp_path / "p.fasta", fasta([("a", SEQ_A), ("b LABEL=ignored", SEQ_C)]))
    neg = write(tmp_path / "n.csv", f"id,sequence\nc,{SEQ_B}\n")
    table = read_labelled_files(
        {"phospho": pos, "other": neg}, display_names={"phospho": "positives.fasta"}
    )
    assert table["label"].tolist() == ["phospho", "phospho", "other"]
    assert table["source"].tolist() == ["positives.fasta:1", "positives.fasta:3", f"{neg}:2"]
    assert validate(table).ok
    with pytest.raises(ConfigError, match="one file per class"):
        read_labelled_files({})


def test_parse_fasta_text() -> None:
    table = parse_fasta_text(">a LABEL=1\nMKT\nAYI\n>b\nGSH\n")
    assert table["sequence"].tolist() == ["MKTAYI", "GSH"]
    assert table["label"].tolist() == ["1", None]
    assert table["source"].tolist() == ["pasted:1", "pasted:4"]
    plain = parse_fasta_text("\nMKT AYI\n\ngshmle\n", display_name="box")
    assert plain["id"].tolist() == ["seq1", "seq2"]
    assert plain["sequence"].tolist() == ["MKTAYI", "gshmle"]
    assert plain["source"].tolist() == ["box:2", "box:4"]
    with pytest.raises(EmptyInputError, match="box: no sequences"):
        parse_fasta_text("  \n", display_name="box")


# --------------------------------------------------------------------------- errors


def test_empty_table_is_an_error() -> None:
    report = validate(pd.DataFrame(columns=["id", "sequence", "label", "source"]))
    assert codes(report.errors) == ["empty"]
    with pytest.raises(EmptyInputError, match="no sequences"):
        report.raise_for_errors()


def test_empty_sequence(tmp_path: Path) -> None:
    path = two_class_fasta(tmp_path, [("blank LABEL=1", "")])
    report = checked(path)
    assert codes(report.errors) == ["empty_sequence"]
    with pytest.raises(
        InvalidSequenceError, match=rf"'blank' \({re.escape(str(path))}:5\) is empty"
    ):
        report.raise_for_errors()


def test_invalid_characters_name_chars_and_positions(tmp_path: Path) -> None:
    path = two_class_fasta(tmp_path, [("bad LABEL=1", "MK1TJAY*QR")])
    report = checked(path)
    assert codes(report.errors) == ["invalid_characters"]
    issue = report.errors[0]
    assert issue.record_id == "bad"
    assert issue.location == f"{path}:5"
    with pytest.raises(InvalidSequenceError, match=r"'bad' \(.*in\.fasta:5\)") as info:
        report.raise_for_errors()
    message = str(info.value)
    assert "'1' at position 3" in message
    assert "'J' at position 5" in message
    assert "'*' at position 8" in message
    assert "stop codon" in message and "write L, I or X" in message


def test_missing_label_from_uniprot_header(tmp_path: Path) -> None:
    path = two_class_fasta(tmp_path, [("sp|P20963|CD3Z_HUMAN", SEQ_C)])
    report = checked(path)
    assert codes(report.errors) == ["missing_label"]
    with pytest.raises(
        LabelError, match=r"'sp\|P20963\|CD3Z_HUMAN' \(.*in\.fasta:5\) has no label"
    ):
        report.raise_for_errors()
    assert validate(read_table(path), require_labels=False).ok


def test_na_labels_count_as_missing(tmp_path: Path) -> None:
    path = write(
        tmp_path / "in.csv", f"id,sequence,label\na,{SEQ_A},1\nb,{SEQ_B},0\nc,{SEQ_C},NA\n"
    )
    report = checked(path)
    assert codes(report.errors) == ["missing_label"]
    assert report.errors[0].location == f"{path}:4"


@pytest.mark.parametrize(
    "values",
    [
        ["0.1", "2.5", "3", "0.7"],  # any fraction
        [str(v) for v in range(30)],  # many distinct integers
    ],
)
def test_continuous_labels_are_a_regression_task_unless_classification_is_asked(tmp_path: Path,
                                                                                 values: list[str]) -> None:
    rows = "".join(f"r{i},{AMINO_ACIDS[i % 20]}{SEQ_A},{v}\n" for i, v in enumerate(values))
    path = write(tmp_path / "scores.csv", "id,sequence,label\n" + rows)
    report = checked(path)
    assert report.ok and report.task == "regression" and "numbers" in report.task_reason
    forced = validate(read_table(path), task="classification")
    assert codes(forced.errors) == ["regression_target"]
    with pytest.raises(RegressionTargetError, match=r"--task regression.*threshold"):
        forced.raise_for_errors()


def test_many_integer_classes_with_repeats_are_not_regression() -> None:
    table = toy_table(n_per_class=5, classes=tuple(str(c) for c in range(12)))
    report = validate(table)
    assert report.ok, report.summary()


def test_duplicate_ids_name_both_locations(tmp_path: Path) -> None:
    path = two_class_fasta(tmp_path, [("a LABEL=1", SEQ_C)])
    report = checked(path)
    assert codes(report.errors) == ["duplicate_id"]
    pattern = rf"'a' is used by 2 records: {re.escape(str(path))}:1, {re.escape(str(path))}:5"
    with pytest.raises(DuplicateIdError, match=pattern):
        report.raise_for_errors()


def test_conflicting_labels(tmp_path: Path) -> None:
    path = two_class_fasta(tmp_path, [("c LABEL=0", SEQ_A.lower())])
    report = checked(path)
    assert codes(report.errors) == ["conflicting_labels"]
    with pytest.raises(
        ConflictingLabelError,
        match=r"identical sequence but different labels: 'a' \(.*in\.fasta:1\) label '1', "
        r"'c' \(.*in\.fasta:5\) label '0'",
    ):
        report.raise_for_errors()


def test_single_class(tmp_path: Path) -> None:
    path = write(tmp_path / "pos.fasta", fasta([("a LABEL=1", SEQ_A), ("b LABEL=1", SEQ_B)]))
    report = checked(path)
    assert codes(report.errors) == ["single_class"]
    with pytest.raises(SingleClassError, match=r"class '1'.*at least 2 classes"):
        report.raise_for_errors()
    assert validate(read_table(path), min_classes=1).ok


def test_too_long_error(tmp_path: Path) -> None:
    path = two_class_fasta(tmp_path, [("long LABEL=1", SEQ_C * 3)])
    report = checked(path, max_length=30, too_long="error")
    assert codes(report.errors) == ["too_long"]
    with pytest.raises(
        SequenceTooLongError, match=r"'long' \(.*in\.fasta:5\) is 66 residues long.*limit of 30"
    ):
        report.raise_for_errors()


def test_gaps_error(tmp_path: Path) -> None:
    path = two_class_fasta(tmp_path, [("gap LABEL=1", "MKT--AYI"), ("stop LABEL=0", SEQ_C + "*")])
    report = checked(path, gaps="error")
    assert codes(report.errors) == ["gaps", "gaps"]
    assert [issue.record_id for issue in report.errors] == ["gap", "stop"]
    with pytest.raises(InvalidSequenceError, match=r"'gap' \(.*in\.fasta:5\) contains gaps '-'"):
        report.raise_for_errors()


def test_raise_lists_further_problems(tmp_path: Path) -> None:
    extra = [(f"x{i} LABEL=1", f"MKT{i}") for i in range(8)]
    path = two_class_fasta(tmp_path, extra)
    report = checked(path)
    assert len(report.errors) == 8
    with pytest.raises(InvalidSequenceError, match=r"'x0'.*\(and 7 more problems: .*'x1'"):
        report.raise_for_errors()
    with pytest.raises(InvalidSequenceError) as info:
        report.raise_for_errors()
    assert "'x5'" in str(info.value) and "'x6'" not in str(info.value)
    assert "... and 2 more" in str(info.value)


def test_errors_per_record_are_capped() -> None:
    table = toy_table(n_per_class=30)
    table["sequence"] = table["sequence"] + "9"
    report = validate(table)
    assert codes(report.errors) == ["invalid_characters"] * 21
    assert report.errors[-1].message.startswith("40 more records have the same problem")


def test_first_error_class_wins_and_summary(tmp_path: Path) -> None:
    path = two_class_fasta(tmp_path, [("a LABEL=1", "MK1"), ("nolabel", SEQ_C)])
    report = checked(path)
    assert codes(report.errors) == ["invalid_characters", "missing_label", "duplicate_id"]
    with pytest.raises(InvalidSequenceError, match="and 2 more problems"):
        report.raise_for_errors()
    text = report.summary()
    assert "4 records" in text and "3 errors" in text and "missing" not in text.splitlines()[0]


# --------------------------------------------------------------------------- warnings


def test_lowercase_warning(tmp_path: Path) -> None:
    path = two_class_fasta(tmp_path, [("low LABEL=1", SEQ_C.lower())])
    report = checked(path)
    assert report.ok and codes(report.warnings) == ["lowercase"]
    assert "1 record had lowercase" in report.warnings[0].message
    assert "'low'" in report.warnings[0].message
    assert report.table["sequence"].iloc[2] == SEQ_C


def test_rare_residues_warning(tmp_path: Path) -> None:
    path = two_class_fasta(tmp_path, [("sec LABEL=1", "MKUTAYZ")])
    report = checked(path)
    assert report.ok and codes(report.warnings) == ["rare_residues"]
    assert re.search(r"ProtT5 and ProtBERT map them to X", report.warnings[0].message)
    assert report.table["sequence"].iloc[2] == "MKUTAYZ"


def test_gaps_stripped_warning(tmp_path: Path) -> None:
    path = two_class_fasta(tmp_path, [("gap LABEL=1", "MKT--AYI"), ("stop LABEL=0", SEQ_C + "*")])
    report = checked(path)
    assert report.ok and codes(report.warnings) == ["gaps_stripped"]
    assert "2 records had alignment gaps" in report.warnings[0].message
    assert report.table["sequence"].tolist()[2:] == ["MKTAYI", SEQ_C]


def test_truncated_warning(tmp_path: Path) -> None:
    path = two_class_fasta(tmp_path, [("long LABEL=1", SEQ_C * 3)])
    report = checked(path, max_length=30)
    assert report.ok and codes(report.warnings) == ["truncated"]
    assert "'long'" in report.warnings[0].message and "66 residues" in report.warnings[0].message
    assert report.table["sequence"].iloc[2] == (SEQ_C * 3)[:30]


def test_duplicate_sequence_warning(tmp_path: Path) -> None:
    path = two_class_fasta(tmp_path, [("copy LABEL=1", SEQ_A)])
    report = checked(path)
    assert report.ok and codes(report.warnings) == ["duplicate_sequence"]
    assert "'a'" in report.warnings[0].message and "'copy'" in report.warnings[0].message
    assert len(report.table) == 3


def test_validate_does_not_mutate_and_keeps_columns() -> None:
    table = pd.DataFrame(
        {
            "id": [" a ", "b"],
            "sequence": ["mkt-ayi", SEQ_B],
            "label": [" 1 ", "0"],
            "score": [0.5, 0.1],
        }
    )
    before = table.copy()
    report = validate(table)
    pd.testing.assert_frame_equal(table, before)
    assert report.ok
    assert report.table["id"].tolist() == ["a", "b"]
    assert report.table["sequence"].tolist() == ["MKTAYI", SEQ_B]
    assert report.table["label"].tolist() == ["1", "0"]
    assert report.table["score"].tolist() == [0.5, 0.1]
    # No source column: messages fall back to the row number.
    assert "(row 1)" in report.warnings[0].message


def test_multi_class_labels() -> None:
    table = toy_table(n_per_class=10, classes=("kinase", "phosphatase", "other"))
    report = validate(table)
    assert report.ok
    assert classes_of(report.table["label"]) == ["kinase", "other", "phosphatase"]
    assert positive_class(classes_of(report.table["label"])) is None


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        ({"too_long": "cut"}, "too_long must be"),
        ({"gaps": "keep"}, "gaps must be"),
        ({"max_length": 0}, "max_length must be"),
        ({"min_classes": 0}, "min_classes must be"),
    ],
)
def test_validate_arguments(bad: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        validate(toy_table(2), **bad)


# --------------------------------------------------------------------------- classes


def test_classes_of_sorts_numbers_numerically() -> None:
    assert classes_of(["10", "2", "0", "1", None, "", "2"]) == ["0", "1", "2", "10"]
    assert classes_of(["b", "a", "3"]) == ["3", "a", "b"]


@pytest.mark.parametrize(
    ("classes", "expected"),
    [
        (["0", "1"], "1"),
        (["1", "0"], "1"),
        (["neg", "pos"], "pos"),
        (["Positive", "Negative"], "Positive"),
        (["TRUE", "false"], "TRUE"),
        (["yes", "no"], "yes"),
        (["+", "-"], "+"),
        (["non-phospho", "phospho"], "phospho"),
        (["cat", "dog"], "dog"),
        (["a", "b", "c"], None),
        (["only"], None),
    ],
)
def test_positive_class(classes: list[str], expected: str | None) -> None:
    assert positive_class(classes) == expected


# --------------------------------------------------------------------------- windows


def test_site_window_centre_and_padding() -> None:
    protein = "ABCDEFGHIJ"
    assert site_window(protein, 5, 5) == "CDEFG"
    assert site_window(protein, 1, 5) == "XXABC"
    assert site_window(protein, 10, 5) == "HIJXX"
    assert site_window("MKY", 2, 9, pad="-") == "---MKY---"
    window = site_window(protein, 3, 33)
    assert len(window) == 33 and window[16] == "C" and window.startswith(PAD_CHAR * 14)


def test_site_window_errors() -> None:
    with pytest.raises(ConfigError, match="odd number"):
        site_window("MKTAY", 3, 4)
    with pytest.raises(ConfigError, match=r"position 6 is outside the protein of length 5"):
        site_window("MKTAY", 6, 3)
    with pytest.raises(ConfigError, match=r"position 0 is outside"):
        site_window("MKTAY", 0, 3)


def test_window_info() -> None:
    aligned = pd.DataFrame({"sequence": ["AAYAA", "CCSCC", "GGYGG"]})
    assert window_info(aligned) == {"aligned": True, "length": 5, "center_residues": ["S", "Y"], "ends": "pad"}
    # fewer than half of the sequences have the longest length: not site windows
    ragged = pd.DataFrame({"sequence": ["AAYAA", "CCSC", "GGG"]})
    assert window_info(ragged) == {"aligned": False, "length": None, "center_residues": [], "ends": "pad"}
    even = pd.DataFrame({"sequence": ["AAYA", "CCSC"]})
    assert window_info(even) == {"aligned": False, "length": 4, "center_residues": [], "ends": "pad"}


@pytest.mark.parametrize(
    ("record_id", "expected"),
    [
        ("sp|P20963|CD3Z_HUMAN%126%142", "P20963"),
        ("tr|A0A024R161|A0A024R161_HUMAN", "A0A024R161"),
        ("sp|Q14790-4|CASP8_HUMAN", "Q14790"),
        ("Q14790-4", "Q14790"),
        ("P20963", "P20963"),
        ("UniRef50_P20963", "P20963"),
        ("seq1", None),
        ("row12", None),
        ("", None),
    ],
)
def test_accession_of(record_id: str, expected: str | None) -> None:
    assert accession_of(record_id) == expected


def test_exactly_the_valid_residues_are_accepted() -> None:
    letters = [chr(c) for c in range(ord("A"), ord("Z") + 1)]
    table = pd.DataFrame({"id": letters, "sequence": [f"MK{c}T" for c in letters], "label": ["0"] * 26})
    report = validate(table, require_labels=False)
    refused = {issue.record_id for issue in report.errors if issue.code == "invalid_characters"}
    assert refused == set(letters) - set(VALID_RESIDUES) == {"J"}
    assert len(set(AMINO_ACIDS)) == 20 and set(AMINO_ACIDS) < set(VALID_RESIDUES)
