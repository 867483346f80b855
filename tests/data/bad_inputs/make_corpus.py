"""Write the bad-input corpus: `python tests/data/bad_inputs/make_corpus.py`.

Each file is one realistic mistake, made from real records of the shared dephos_Y training
windows (six of each class); manifest.json says what plmcore must do with each. The output is
the same on every run.
"""

from __future__ import annotations

import gzip
import io
import random
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHARED = HERE.parents[3] / "shared" / "data" / "dephos_Y" / "train_sequences.fasta"


def main() -> None:
    lines = SHARED.read_text().splitlines()
    records = [(lines[i][1:], lines[i + 1]) for i in range(0, len(lines), 2)]
    pos = [r for r in records if r[0].endswith("LABEL=1")][:6]
    neg = [r for r in records if r[0].endswith("LABEL=0")][:6]
    recs = [r for pair in zip(pos, neg) for r in pair]
    ids = [header.split()[0] for header, _ in recs]
    seqs = [seq for _, seq in recs]
    labels = [header.split("LABEL=")[1] for header, _ in recs]

    def fasta(rs: list[tuple[str, str]]) -> str:
        return "".join(f">{header}\n{seq}\n" for header, seq in rs)

    def table(sep: str = ",", label_name: str = "label", lab: list[str] | None = None,
              seq_name: str = "sequence") -> str:
        rows = zip(ids, seqs, lab or labels)
        return f"id{sep}{seq_name}{sep}{label_name}\n" + "".join(f"{i}{sep}{s}{sep}{c}\n" for i, s, c in rows)

    def text(name: str, content: str) -> None:
        (HERE / name).write_text(content)

    text("empty.fasta", "")
    text("header_only.csv", "id,sequence,label\n")
    workbook = io.BytesIO()  # an .xlsx renamed to .csv
    with zipfile.ZipFile(workbook, "w") as z:
        for member, body in (("[Content_Types].xml", '<?xml version="1.0"?><Types/>'),
                             ("xl/worksheets/sheet1.xml", "<worksheet/>")):
            z.writestr(zipfile.ZipInfo(member, date_time=(2024, 5, 1, 0, 0, 0)), body)
    (HERE / "renamed_workbook.csv").write_bytes(workbook.getvalue())
    text("text_before_header.fasta", "Tyrosine dephosphorylation windows, exported 2024-05-01\n" + fasta(recs))
    text("fastq_reads.fasta", "".join(f"@{i}\n{s}\n+\n{'I' * len(s)}\n" for i, s in zip(ids, seqs)))
    text("genbank_numbering.fasta",
         "".join(f">{h}\n1 {s[:10].lower()} {s[10:20].lower()}\n21 {s[20:].lower()}\n" for h, s in recs))
    text("stop_codon_inside.fasta", fasta([(h, s[:20] + "*" + s[21:]) if k == 2 else (h, s)
                                           for k, (h, s) in enumerate(recs)]))
    text("empty_sequence.fasta", fasta(recs[:5] + [(ids[5] + " LABEL=0", "")] + recs[6:]))
    text("missing_labels.fasta", fasta([(h.split()[0] if k in (3, 7) else h, s) for k, (h, s) in enumerate(recs)]))
    text("na_labels.csv", table(lab=["NA" if k % 4 == 1 else c for k, c in enumerate(labels)]))
    text("single_class.fasta", fasta([(f"{i} LABEL=1", s) for i, s in zip(ids, seqs)]))
    text("duplicate_ids.fasta", fasta(recs + [(ids[0] + " LABEL=0", seqs[5][::-1])]))
    text("conflicting_labels.fasta", fasta(recs + [("copy_of_" + ids[0].split("|")[1] + " LABEL=0", seqs[0])]))
    rng = random.Random(0)
    text("regression_labels.csv", table(lab=[f"{rng.uniform(-3, 3):.3f}" for _ in ids]))
    rows = table().splitlines()
    rows[5] += ",phospho, confirmed"
    text("ragged_row.csv", "\n".join(rows) + "\n")
    rows = table().splitlines()
    rows[5] = rows[5].replace(",", ',"', 1)
    text("unclosed_quote.csv", "\n".join(rows) + "\n")
    text("no_sequence_column.csv", table(seq_name="residues"))
    text("unknown_label_column.csv", table(label_name="activity", lab=["high" if c == "1" else "low" for c in labels]))
    (HERE / "truncated_download.fasta.gz").write_bytes(gzip.compress(fasta(recs * 20).encode(), mtime=0)[:400])
    text("lowercase_and_gaps.fasta", "".join(f">{h}\n{s[:15].lower()}-{s[15:]}\n" for h, s in recs))
    text("semicolon_excel.csv", table(sep=";"))
    (HERE / "excel_unicode_text.tsv").write_bytes(table(sep="\t").replace("\n", "\r\n").encode("utf-16"))
    (HERE / "windows_line_endings.fasta").write_bytes(fasta(recs).replace("\n", "\r\n").encode())


if __name__ == "__main__":
    main()
