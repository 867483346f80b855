"""A small built-in dataset for the tutorial: made here, offline, the same every time.

240 windows of 33 residues centred on a tyrosine (like the GTN dephosphorylation tutorial), from
60 made-up proteins. Half are labelled "site". Sites carry a motif that a model can learn: a proline
right after the tyrosine and acidic residues (D, E) before it, each present with some probability, so
the task is learnable but not trivial. The sequences are synthetic: nothing learned here says
anything about real proteins.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from plmcore import data as D
from plmcore import splits as S

DEMO_NAME = "Tutorial: synthetic Y sites"
WINDOW = 33
N_PROTEINS = 60
WINDOWS_PER_PROTEIN = 4
SEED = 7
CLASSES = ("not a site", "site")
# background residue frequencies (roughly UniProt's), tyrosine excluded so the centre is the only Y
_BACKGROUND = {"A": 8.3, "R": 5.5, "N": 4.1, "D": 5.5, "C": 1.4, "Q": 3.9, "E": 6.7, "G": 7.1, "H": 2.3,
               "I": 5.9, "L": 9.7, "K": 5.8, "M": 2.4, "F": 3.9, "P": 4.7, "S": 6.6, "T": 5.3, "W": 1.1,
               "V": 6.9}
DESCRIPTION = (f"{N_PROTEINS * WINDOWS_PER_PROTEIN} windows of {WINDOW} residues centred on a tyrosine, from "
               f"{N_PROTEINS} made-up proteins; half are sites, which tend to have a proline just after the "
               "tyrosine and acidic residues (D, E) before it. Synthetic, built on this computer: it shows how "
               "the app works, and says nothing about real proteins.")


def demo_table(seed: int = SEED) -> pd.DataFrame:
    """The tutorial windows: columns id, sequence, label (deterministic for a seed)."""
    rng = np.random.default_rng(seed)
    letters = np.array(list(_BACKGROUND))
    p = np.array(list(_BACKGROUND.values()))
    p = p / p.sum()
    centre = WINDOW // 2
    rows = []
    for k in range(N_PROTEINS):
        for j in range(WINDOWS_PER_PROTEIN):
            site = (k * WINDOWS_PER_PROTEIN + j) % 2 == 1
            seq = rng.choice(letters, size=WINDOW, p=p)
            seq[centre] = "Y"
            if site:
                if rng.random() < 0.8:
                    seq[centre + 1] = "P"
                for offset in (-2, -3, -4):
                    if rng.random() < 0.6:
                        seq[centre + offset] = rng.choice(["D", "E"])
            position = 40 + 60 * j
            rows.append({"id": f"DEMO{k:03d}%{position}%{position + WINDOW - 1}",
                         "sequence": "".join(seq), "label": CLASSES[int(site)]})
    return pd.DataFrame(rows)


def build_demo(store) -> object:
    """Save the tutorial dataset in `store` (a DatasetStore) with a 60/20/20 split; returns the Dataset."""
    report = D.validate(demo_table())
    report.raise_for_errors()
    ds = store.save(DEMO_NAME, report.table, meta={"origin": "built-in synthetic tutorial set (plmcore.demo)",
                                                   "files": [], "label_source": "column"})
    split = S.split_table(report.table, val_fraction=0.2, test_fraction=0.2, seed=42)
    ds.save_split(split, {"method": "random", "val_fraction": 0.2, "test_fraction": 0.2, "seed": 42,
                          "stratify": True})
    return ds
