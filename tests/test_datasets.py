"""Datasets kept in the workspace: names never overwrite another dataset, failed writes change nothing."""

from __future__ import annotations

import errno
from pathlib import Path

import pandas as pd
import pytest

from plmcore.datasets import DatasetNameError, DatasetStore
from plmcore.errors import StorageError


def table(n: int = 4) -> pd.DataFrame:
    return pd.DataFrame({"id": [f"s{i}" for i in range(n)], "sequence": ["MKTAYIAK"] * n,
                         "label": [str(i % 2) for i in range(n)], "source": [f"in.fasta:{i}" for i in range(n)]})


def split_of(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(split=["train", "train", "val", "test"][: len(frame)])


@pytest.fixture
def store(tmp_path: Path) -> DatasetStore:
    return DatasetStore(tmp_path / "datasets")


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under root (hidden temp files included), with its bytes."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_a_name_whose_folder_holds_another_dataset_is_refused(store: DatasetStore) -> None:
    store.save("My data", table())
    before = snapshot(store.root)
    with pytest.raises(DatasetNameError, match=r"'My-data' would be stored in the folder .*My-data, which holds "
                                               r"the dataset 'My data'\. Choose another name"):
        store.save("My-data", table(2))
    assert snapshot(store.root) == before
    assert [d.name for d in store.list()] == ["My data"]


def test_saving_under_the_same_name_replaces_the_dataset(store: DatasetStore) -> None:
    store.save("My data", table())
    store.save(" My data ", table(2))
    assert [(d.name, len(d.table())) for d in store.list()] == [("My data", 2)]
    assert [p.name for p in store.root.iterdir()] == ["My-data"]  # no temp or old folder left


@pytest.mark.parametrize(("code", "fix"), [(errno.ENOSPC, "Free some space there, or set PLMCORE_WORKSPACE"),
                                           (errno.EROFS, "Set PLMCORE_WORKSPACE to a folder this server may write"),
                                           (errno.EACCES, "Set PLMCORE_WORKSPACE to a folder this server may write")])
def test_a_failed_write_explains_and_keeps_the_earlier_dataset(store: DatasetStore, monkeypatch, code: int,
                                                               fix: str) -> None:
    store.save("dephos", table())
    before = snapshot(store.root)

    def fail(self, *args, **kwargs):
        raise OSError(code, "simulated")

    monkeypatch.setattr(pd.DataFrame, "to_csv", fail)
    with pytest.raises(StorageError, match=rf"Cannot save the dataset 'dephos': .*{fix}.*unchanged"):
        store.save("dephos", table(2))
    with pytest.raises(StorageError, match="Cannot save the dataset 'other'"):
        store.save("other", table(2))
    assert snapshot(store.root) == before


def test_a_failed_swap_restores_the_earlier_dataset(store: DatasetStore, monkeypatch) -> None:
    store.save("dephos", table())
    before = snapshot(store.root)
    real_replace = __import__("os").replace

    def replace(src, dst):  # the old folder moves aside, then the new one cannot move in
        if Path(src).name.startswith(".dephos.") and ".old." not in Path(src).name:
            raise OSError(errno.ENOSPC, "simulated")
        return real_replace(src, dst)

    monkeypatch.setattr("plmcore.datasets.os.replace", replace)
    with pytest.raises(StorageError, match="disk holding .* is full"):
        store.save("dephos", table(2))
    assert snapshot(store.root) == before


def test_save_split_is_atomic(store: DatasetStore, monkeypatch) -> None:
    ds = store.save("dephos", table())
    ds.save_split(split_of(table()), {"method": "random"})
    before = snapshot(store.root)
    original = pd.DataFrame.to_csv

    def half_then_full(self, path, *args, **kwargs):  # write half the file, then the disk is full
        original(self.head(1), path, *args, **kwargs)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_csv", half_then_full)
    with pytest.raises(StorageError, match="Cannot save the split of the dataset 'dephos'"):
        ds.save_split(split_of(table(3)), {"method": "protein"})
    assert snapshot(store.root) == before
    monkeypatch.undo()
    ds.save_split(split_of(table(3)), {"method": "protein"})
    assert len(ds.split()) == 3 and ds.meta["split"]["method"] == "protein"
