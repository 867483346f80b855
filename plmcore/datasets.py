"""Datasets kept on the server: validated tables saved under the workspace, and the tutorial data.

A dataset is a folder ``<workspace>/datasets/<slug>/`` holding ``table.csv`` (validated
records), optionally ``test.csv`` (a user-supplied test set) and ``split.csv`` (the chosen
split), and ``meta.json``. Saving writes a new folder and swaps it in only when complete, so
a failed or rejected upload, a full disk or a read-only workspace never damages a dataset that
is already there, and a name is never saved over another dataset's folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from plmcore import data as D
from plmcore import splits as S
from plmcore.errors import DataError, PlmcoreError, explain_os_errors
from plmcore.runs import workspace, write_json

if TYPE_CHECKING:
    from plmcore.config import DataSpec

TUTORIAL_RECORD = "https://zenodo.org/record/10986248/files/"
TUTORIAL_FILES = {
    "train_sequences.fasta": "251f5149278a06d250274a0be2b6f741",
    "test_sequences.fasta": "25b775d9095b51073fdf03e18a76e717",
}
TUTORIAL_NAME = "GTN dephosphorylation sites (Y)"


class DownloadError(PlmcoreError, OSError):
    """A file could not be fetched or failed its checksum."""


class DatasetNameError(PlmcoreError, ValueError):
    """A dataset name whose folder already holds another dataset."""


WORKSPACE_SETTING = "PLMCORE_WORKSPACE"


def slugify(name: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", name.strip()).strip("-.")
    return slug[:60] or "dataset"


@dataclass
class Dataset:
    """A saved dataset folder."""

    path: Path

    @property
    def meta(self) -> dict:
        return json.loads((self.path / "meta.json").read_text())

    @property
    def name(self) -> str:
        return self.meta.get("name", self.path.name)

    def table(self) -> pd.DataFrame:
        return _read_table(self.path / "table.csv")

    def test_table(self) -> pd.DataFrame | None:
        p = self.path / "test.csv"
        return _read_table(p) if p.exists() else None

    def split(self) -> pd.DataFrame | None:
        p = self.path / "split.csv"
        return S.load_split(p) if p.exists() else None

    def split_or_default(self) -> tuple[pd.DataFrame, bool]:
        """The saved split, or (when none was saved) 10% validation and the test file or 10% test, seed 42.

        Returns the split table and whether it was the saved one.
        """
        split = self.split()
        if split is not None:
            return split, True
        from plmcore.splits import make_split

        test = self.test_table()
        split, info = make_split(self.table(), val_fraction=0.1, test_fraction=0.0 if test is not None else 0.1,
                                 seed=42, test_table=test)
        return split, False

    def provenance_files(self) -> list[dict]:
        """The dataset's saved tables with their hashes, and the files they were uploaded from."""
        from plmcore.provenance import file_record

        uploaded = ", ".join(self.meta.get("files") or []) or None
        out = []
        for name, role in (("table.csv", "dataset table"), ("test.csv", "dataset test table")):
            if (self.path / name).exists():
                out.append({**file_record(self.path / name, role), "dataset": self.name, "uploaded_as": uploaded})
        return out

    def data_spec(self) -> DataSpec:
        """How this dataset's split was made, as a run records it (the split itself travels as split.csv)."""
        from plmcore.config import DataSpec

        saved = self.meta.get("split") or {}
        has_test = (self.path / "test.csv").exists()
        return DataSpec(
            dataset=self.name, split_method=saved.get("method", "random"),
            val_fraction=float(saved.get("val_fraction", 0.1)),
            test_fraction=float(saved.get("test_fraction", 0.0 if has_test else 0.1)),
            split_seed=int(saved.get("seed", 42)), stratify=bool(saved.get("stratify", True)),
            identity_threshold=float(saved.get("identity_threshold", 0.5)),
            group_column=saved.get("group_column"),
            class_names=tuple((str(c), str(n)) for c, n in (self.meta.get("class_names") or {}).items()),
        )

    def update_meta(self, **changes) -> None:
        """Change entries of meta.json (e.g. class_names)."""
        meta = self.meta
        meta.update(changes)
        with explain_os_errors(f"save the dataset '{self.name}'", self.path, WORKSPACE_SETTING):
            write_json(self.path / "meta.json", meta)

    def drop_test_records(self, ids: set[str]) -> int:
        """Remove records from the separate test file and from the saved split's test part (leakage
        advice); returns how many test-file records were removed."""
        test = self.test_table()
        if test is None:
            return 0
        kept = test[~test["id"].astype(str).isin(ids)]
        with explain_os_errors(f"save the dataset '{self.name}'", self.path, WORKSPACE_SETTING):
            kept.to_csv(self.path / "test.csv", index=False)
        split = self.split()
        if split is not None:
            drop = (split["split"] == "test") & split["id"].astype(str).isin(ids)
            self.save_split(split[~drop].reset_index(drop=True), {
                k: v for k, v in (self.meta.get("split") or {}).items() if k not in ("counts", "saved_at")})
        self.update_meta(n_test=len(kept))
        return len(test) - len(kept)

    def save_split(self, split: pd.DataFrame, settings: dict) -> None:
        """Save the chosen split and its settings; if writing fails, the split saved before stays."""
        meta = self.meta
        meta["split"] = dict(settings, counts=split["split"].value_counts().to_dict(), saved_at=time.time())
        tmp = self.path / f".split.{os.getpid()}.{time.time_ns()}.csv"
        try:
            with explain_os_errors(f"save the split of the dataset '{self.name}'", self.path, WORKSPACE_SETTING):
                S.save_split(split, tmp)
                write_json(self.path / "meta.json", meta)
                os.replace(tmp, self.path / "split.csv")
        finally:
            tmp.unlink(missing_ok=True)


def _read_table(path: Path) -> pd.DataFrame:
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    table["label"] = table["label"].replace("", None)
    return table


class DatasetStore:
    """All datasets under `<workspace>/datasets`."""

    def __init__(self, root: Path | str | None = None):
        self.root = Path(root) if root else workspace() / "datasets"

    def list(self) -> list[Dataset]:
        """Datasets, most recently saved first."""
        if not self.root.exists():
            return []
        found = [Dataset(p) for p in self.root.iterdir() if (p / "meta.json").exists()]
        return sorted(found, key=lambda d: d.meta.get("saved_at", 0), reverse=True)

    def get(self, name: str) -> Dataset | None:
        for ds in self.list():
            if ds.name == name or ds.path.name == name:
                return ds
        return None

    def save(self, name: str, table: pd.DataFrame, *, test: pd.DataFrame | None = None,
             meta: dict | None = None) -> Dataset:
        """Save a validated table (and optional test table) under `name`, replacing it atomically.

        Saving under the name of a saved dataset replaces it. A name whose folder holds another
        dataset (say "My-data" after "My data") is refused with DatasetNameError. If writing
        fails (a full disk, a read-only workspace) StorageError says what to do, and the saved
        datasets are unchanged.
        """
        name = name.strip()
        if not name:
            raise DataError("the dataset needs a name; type one in the name box")
        final = self.root / slugify(name)
        holder = Dataset(final).name if (final / "meta.json").exists() else name
        if holder != name:
            raise DatasetNameError(
                f"The name '{name}' would be stored in the folder {final}, which holds the dataset "
                f"'{holder}'. Choose another name, or save under '{holder}' to replace that dataset."
            )
        with explain_os_errors(f"save the dataset '{name}'", self.root, WORKSPACE_SETTING):
            self.root.mkdir(parents=True, exist_ok=True)
            return self._write(final, name, table, test, meta)

    def _write(self, final: Path, name: str, table: pd.DataFrame, test: pd.DataFrame | None,
               meta: dict | None) -> Dataset:
        """Write the dataset to a new folder, then swap it in; restore the old one if the swap fails."""
        tmp = self.root / f".{final.name}.{os.getpid()}.{time.time_ns()}"
        old = self.root / f".{final.name}.old.{os.getpid()}.{time.time_ns()}"
        try:
            tmp.mkdir()
            table.to_csv(tmp / "table.csv", index=False)
            if test is not None:
                test.to_csv(tmp / "test.csv", index=False)
            info = dict(meta or {}, name=name, saved_at=time.time(), n=len(table),
                        classes=D.classes_of(table["label"]), n_test=0 if test is None else len(test))
            write_json(tmp / "meta.json", info)
            if final.exists():
                os.replace(final, old)
            try:
                os.replace(tmp, final)
            except BaseException:
                if old.exists() and not final.exists():
                    os.replace(old, final)
                raise
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        shutil.rmtree(old, ignore_errors=True)
        return Dataset(final)

    def delete(self, name: str) -> None:
        ds = self.get(name)
        if ds:
            shutil.rmtree(ds.path)


# --------------------------------------------------------------------------- tutorial data


def tutorial_base_url() -> str:
    """Where the tutorial files come from; $PLMCORE_TUTORIAL_URL overrides (tests, mirrors)."""
    return os.environ.get("PLMCORE_TUTORIAL_URL", TUTORIAL_RECORD)


def fetch_tutorial_files(dest: Path, base_url: str | None = None, timeout: float = 30) -> dict[str, Path]:
    """Download the tutorial's train and test FASTA files and check their md5 sums."""
    base = base_url or tutorial_base_url()
    if not base.endswith("/"):
        base += "/"
    dest.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, md5 in TUTORIAL_FILES.items():
        url = base + name
        try:
            with urllib.request.urlopen(url, timeout=timeout) as resp:
                payload = resp.read()
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise DownloadError(
                f"Could not download {url} ({reason}). This server may be offline. Fix: on a machine "
                "with internet, download train_sequences.fasta and test_sequences.fasta from "
                "https://zenodo.org/record/10986248 and upload them with 'Upload a file' "
                "(training file) and the separate test file option."
            ) from exc
        got = hashlib.md5(payload).hexdigest()
        if got != md5:
            raise DownloadError(
                f"{name} from {url} has md5 {got}, expected {md5}: the download is corrupt or the "
                "record changed. Try again, or download the file by hand and upload it."
            )
        (dest / name).write_bytes(payload)
        out[name] = dest / name
    return out


def load_tutorial(store: DatasetStore | None = None, base_url: str | None = None) -> Dataset:
    """Fetch the tutorial files and save them as a dataset with the tutorial's split."""
    store = store or DatasetStore()
    files = fetch_tutorial_files(store.root.parent / "downloads" / "tutorial", base_url)
    train = D.validate(D.read_table(files["train_sequences.fasta"]))
    train.raise_for_errors()
    test = D.validate(D.read_table(files["test_sequences.fasta"]))
    test.raise_for_errors()
    ds = store.save(TUTORIAL_NAME, train.table, test=test.table,
                    meta={"origin": "Zenodo record 10986248 (Galaxy Training Network tutorial)",
                          "files": list(files), "label_source": "header"})
    # the tutorial's split: its own test file, and 80/20 train/validation of the training file
    split = S.split_table(train.table, val_fraction=0.2, seed=42, test_table=test.table)
    ds.save_split(split, {"method": "random", "val_fraction": 0.2, "test_fraction": 0.0, "seed": 42,
                          "stratify": True, "test_source": "uploaded test file"})
    return ds


# --------------------------------------------------------------------------- summaries


def class_balance(table: pd.DataFrame) -> pd.DataFrame:
    """How many of each class (multi-label: records carrying each label; per-residue: residues of each
    class). Regression targets have no classes: use their values."""
    from plmcore import tasks

    task = tasks.detect(table["label"].tolist(), table["sequence"].tolist())[0]
    if task == "multilabel":
        counts = pd.Series([x for v in table["label"] for x in tasks.split_labels(v)]).value_counts()
    elif task == "residue":
        counts = pd.Series(list("".join(table["label"].fillna("")).replace(tasks.NO_LABEL, ""))).value_counts()
    else:
        counts = table["label"].value_counts()
    order = D.classes_of(counts.index)
    return pd.DataFrame({"label": order, "count": [int(counts[c]) for c in order]})


def position_enrichment(table: pd.DataFrame, positive: str, pseudocount: float = 1.0) -> pd.DataFrame | None:
    """log2 ratio of residue frequencies at each window position, positives over the rest.

    Only for aligned windows (all the same length); rows are the 20 amino acids, columns the
    positions relative to the centre (-16 .. +16 for 33-residue windows).
    """
    info = D.window_info(table)
    if not info["aligned"] or info["ends"] != "pad" or positive is None:
        return None
    L = info["length"]
    arr = np.array([list(s) for s in table["sequence"]])
    is_pos = (table["label"] == positive).to_numpy()
    if is_pos.all() or not is_pos.any():
        return None
    aas = list(D.AMINO_ACIDS)

    def freqs(rows: np.ndarray) -> np.ndarray:
        counts = np.stack([(rows == aa).sum(0) for aa in aas])  # (20, L)
        return (counts + pseudocount) / (len(rows) + 20 * pseudocount)

    ratio = np.log2(freqs(arr[is_pos]) / freqs(arr[~is_pos]))
    centre = L // 2
    return pd.DataFrame(ratio, index=aas, columns=[i - centre for i in range(L)])
