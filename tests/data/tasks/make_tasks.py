"""Small synthetic data sets, one per task type, with labels a model can learn (run to rebuild).

- regression.csv: a number per sequence that depends on composition (the share of hydrophobic
  residues, scaled to 0-100, plus noise), like a melting temperature;
- multilabel.fasta: labels set by motifs (er: KDEL, nucleus: PKKKRK, membrane: a stretch of
  hydrophobic residues), several per record, as LABEL=a;b;
- residues.fasta + residues_sites.csv: whole proteins (40-400 residues) with phosphosite-like
  sites: an S or T followed by P is a site (label 1); the sites table lists them by position;
- residues_tracks.csv: the same proteins with a label track as long as each sequence
  ("1" site, "0" other S/T, "." anything else), the layout secondary-structure sets use.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
AA = np.array(list("ACDEFGHIKLMNPQRSTVWY"))
NO_MOTIF = np.array(list("ACDEFGHIMNQRSTVWY"))  # no K, L or P: motifs are placed on purpose
HYDROPHOBIC = set("AILMFVW")


def regression(rng, n=300, length=40):
    lines = ["id,sequence,melting_temp"]
    for i in range(n):
        seq = "".join(rng.choice(AA, length))
        share = sum(c in HYDROPHOBIC for c in seq) / length
        lines.append(f"prot{i:03d},{seq},{100 * share + rng.normal(0, 2):.2f}")
    return "\n".join(lines) + "\n"


def multilabel(rng, n=300, length=50):
    motifs = {"er": "KDEL", "nucleus": "PKKKRK", "membrane": "LLIVLLAV"}
    out = []
    for i in range(n):
        seq = list(rng.choice(NO_MOTIF, length))
        labels = [name for name in motifs if rng.random() < 0.4] or ["cytosol"]
        for name in labels:
            if name in motifs:
                start = int(rng.integers(0, length - len(motifs[name])))
                seq[start:start + len(motifs[name])] = list(motifs[name])
        out.append(f">loc{i:03d} LABEL={';'.join(labels)}\n{''.join(seq)}\n")
    return "".join(out)


def residues(rng, n=120):
    fasta, sites, tracks = [], ["protein,position,label"], ["id,sequence,labels"]
    for i in range(n):
        length = int(rng.integers(40, 400))
        seq = list(rng.choice(AA, length))
        for _ in range(int(rng.integers(1, 4))):  # a few S/T-P sites in every protein
            p = int(rng.integers(0, length - 1))
            seq[p], seq[p + 1] = str(rng.choice(["S", "T"])), "P"
        seq = "".join(seq)
        pid = f"sp|Q{10000 + i}|PROT{i}_HUMAN"
        fasta.append(f">{pid}\n{seq}\n")
        track = []
        for j, c in enumerate(seq):
            site = c in "ST" and j + 1 < length and seq[j + 1] == "P"
            if site:
                sites.append(f"{pid},{j + 1},1")
            track.append("1" if site else ("0" if c in "ST" else "."))
        tracks.append(f"{pid},{seq},{''.join(track)}")
    return "".join(fasta), "\n".join(sites) + "\n", "\n".join(tracks) + "\n"


def main() -> None:
    rng = np.random.default_rng(12)
    (HERE / "regression.csv").write_text(regression(rng))
    (HERE / "multilabel.fasta").write_text(multilabel(rng))
    fasta, sites, tracks = residues(rng)
    (HERE / "residues.fasta").write_text(fasta)
    (HERE / "residues_sites.csv").write_text(sites)
    (HERE / "residues_tracks.csv").write_text(tracks)


if __name__ == "__main__":
    main()
