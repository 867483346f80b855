"""Prediction results for people: class names in the headers, counts in words, the best candidates,
and where the numbers came from in every table a user takes away.

The engine's own tables (plmcore.predict) keep their stable column names (prob_<class>) for the
CLI and the tests; the app and its downloads go through here.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from plmcore.predict import LoadedRun

# irregular plurals of the nouns the app counts; others take an "s"
_PLURALS = {"residue": "residues", "protein": "proteins", "sequence": "sequences", "site": "sites",
            "window": "windows", "class": "classes", "run": "runs", "candidate site": "candidate sites"}


def plural(n: int, noun: str, many: str | None = None) -> str:
    """'1 protein', '2 proteins', '0 proteins' (thousands separated: '1,204 sites')."""
    word = noun if n == 1 else (many or _PLURALS.get(noun) or noun + "s")
    return f"{n:,} {word}"


def class_name(loaded: LoadedRun, cls: str) -> str:
    """The name a class is shown by: its display name given with the data (--class-name 1=phosphosite,
    or the Data page's class names), else the label itself."""
    return display_names(loaded.config).get(str(cls), str(cls))


def display_names(config) -> dict[str, str]:
    """{class: display name} of a run's config (DataSpec.class_names)."""
    data = getattr(config, "data", None)
    return {str(c): str(n) for c, n in (getattr(data, "class_names", None) or ())}


def probability_column(loaded: LoadedRun, cls: str) -> str:
    """The header of a class's probability column: 'P(class 1)' for a class named by a number, else 'P(kinase)'."""
    name = class_name(loaded, cls)
    return f"P(class {name})" if re.fullmatch(r"-?\d+(\.\d+)?", name) else f"P({name})"


def readable(loaded: LoadedRun, table: pd.DataFrame) -> pd.DataFrame:
    """prob_<class> columns renamed by class name, predicted classes shown by name, and the
    positive class's probability named after it."""
    out = table.rename(columns={f"prob_{c}": probability_column(loaded, c) for c in loaded.classes})
    if "probability" in out.columns and loaded.positive is not None:
        named = probability_column(loaded, loaded.positive)
        # a per-residue table carries both prob_<positive> and its copy 'probability': keep one
        out = out.drop(columns=[named]) if named in out.columns else out
        out = out.rename(columns={"probability": named})
    if "predicted" in out.columns and out["predicted"].dtype == object and loaded.task == "classification":
        out["predicted"] = [class_name(loaded, c) for c in out["predicted"]]
    return out


def provenance(loaded: LoadedRun, threshold: float | None) -> dict[str, object]:
    """What made these predictions: run, base model, decision threshold, and whether the weights are random."""
    return {
        "run": loaded.run.title if loaded.run is not None else loaded.name,
        "run_folder": loaded.name,
        "model": loaded.config.model,
        "threshold": None if threshold is None else round(float(threshold), 4),
        "random_weights": bool(loaded.backbone.random_weights),
    }


def with_provenance(table: pd.DataFrame, loaded: LoadedRun, threshold: float | None) -> pd.DataFrame:
    """The table with the provenance as columns on every row (they survive sorting and filtering in Excel)."""
    out = table.copy()
    for key, value in provenance(loaded, threshold).items():
        out[key] = value
    return out


def download_name(loaded: LoadedRun, what: str, suffix: str = "csv") -> str:
    """A file name that says what it holds: '<run>_<what>[_RANDOM-WEIGHTS].csv', safe on every system."""
    base = loaded.run.title if loaded.run is not None else loaded.name
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", base).strip("-.")[:60] or "run"
    flag = "_RANDOM-WEIGHTS" if loaded.backbone.random_weights else ""
    return f"{slug}_{what}{flag}.{suffix}"


def top_candidates(sites: pd.DataFrame, n: int = 5) -> pd.DataFrame:
    """The `n` highest-scoring sites (all proteins), best first; each labelled like 'Y83'."""
    if sites.empty:
        return sites.assign(site=pd.Series(dtype=str))
    best = sites.sort_values("probability", ascending=False, kind="stable").head(n).copy()
    best.insert(1, "site", [f"{r}{p}" for r, p in zip(best["residue"], best["position"])])
    return best


def site_summary(sites: pd.DataFrame, threshold: float) -> str:
    """One sentence: what was scanned and how many sites pass the threshold, in words."""
    hits = int(sites["predicted"].sum()) if len(sites) else 0
    head = (f"{plural(sites['protein_id'].nunique(), 'protein')}, {plural(len(sites), 'candidate site')}: "
            f"{plural(hits, 'site')} at or above the threshold {threshold:.2f}")
    if hits or sites.empty:
        return head + "."
    best = top_candidates(sites, 1).iloc[0]
    return (head + f". The highest is {best['site']} of {best['protein_id']} (p = {best['probability']:.2f}); "
            "the top candidates are listed below.")


def compare_with_labels(loaded: LoadedRun, table: pd.DataFrame, labels: pd.Series) -> tuple[pd.DataFrame, str]:
    """Scored windows beside the labels given with them (e.g. LABEL= in FASTA headers): a 'given label'
    and an 'agrees' column, and a sentence counting agreement. Rows without a label are left blank."""
    out = table.copy()
    given = labels.reindex(out.index)
    out["given label"] = given
    known = given.notna()
    out["agrees"] = pd.Series([None] * len(out), index=out.index, dtype=object)
    out.loc[known, "agrees"] = (out.loc[known, "predicted"].astype(str) == given[known].astype(str)).to_list()
    n, right = int(known.sum()), int(out.loc[known, "agrees"].sum()) if known.any() else 0
    unknown = sorted(set(given[known].astype(str)) - {str(c) for c in loaded.classes})
    text = f"{right} of {plural(n, 'labelled sequence')} predicted as labelled"
    if unknown:
        text += f" (labels {', '.join(unknown)} are not classes of this run: {', '.join(loaded.classes)})"
    return out, text + "."
