"""The home page: the steps with what is done, and the built-in tutorial dataset."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from plmcore import guide
from plmcore.datasets import DatasetStore
from plmcore.demo import DEMO_NAME, demo_table

APP = str(Path(__file__).resolve().parents[1] / "app.py")


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    monkeypatch.setenv("PLMCORE_WORKSPACE", str(tmp_path / "ws"))
    return tmp_path / "ws"


def texts(at: AppTest) -> str:
    return " ".join(m.value for m in at.markdown)


def test_home_is_the_default_page_and_lists_the_five_steps(workspace):
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception, at.exception
    assert "Fine-tune protein language models" in at.title[0].value
    links = [p.proto.label for p in at.get("page_link")]
    assert links[:5] == [f"{n}. {s.title}" for n, s in enumerate(guide.STEPS, start=1)]
    assert "check_circle" not in texts(at) and texts(at).count("not yet") == 5  # a fresh workspace
    assert not at.error


def test_tutorial_builds_a_dataset_with_a_split_and_ticks_the_data_step(workspace):
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.button(key="home_tutorial").click().run()
    assert not at.exception and not at.error
    ds = DatasetStore(workspace / "datasets").get(DEMO_NAME)
    assert ds is not None
    counts = ds.split()["split"].value_counts().to_dict()
    assert counts == {"train": 144, "val": 48, "test": 48}
    assert guide.done(workspace) == {"data": True, "train": False, "runs": False, "embeddings": False,
                                     "predict": False}
    at.run()
    assert texts(at).count("check_circle: done") == 1 and texts(at).count("not yet") == 4  # the Data step
    assert any("is ready" in s.value for s in at.success)


def test_the_tutorial_set_is_deterministic_and_carries_its_signal():
    a, b = demo_table(), demo_table()
    assert a.equals(b) and len(a) == 240 and a["sequence"].str.len().eq(33).all()
    assert a["sequence"].str[16].eq("Y").all()
    site = a["label"] == "site"
    proline_after = a["sequence"].str[17] == "P"
    # the motif: most sites have a proline after the tyrosine; few other windows do
    assert proline_after[site].mean() > 0.7 and proline_after[~site].mean() < 0.15


def test_steps_done_follow_the_workspace(workspace):
    assert not any(guide.done(workspace).values())
    assert guide.previous("train").key == "data" and guide.previous("data") is None
