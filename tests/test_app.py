"""Every page of the Streamlit app under AppTest, with a tiny random-weight model."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from conftest import plain
from streamlit.testing.v1 import AppTest

from plmcore.config import DataSpec, TrainConfig
from plmcore.datasets import DatasetStore
from plmcore.runs import cancel, list_runs, wait
from plmcore.train import train

APP = str(Path(__file__).resolve().parents[1] / "app.py")


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    monkeypatch.setenv("PLMCORE_WORKSPACE", str(tmp_path / "ws"))
    return tmp_path / "ws"


@pytest.fixture
def dephos(shared_data):
    return shared_data / "dephos_Y"


def app(page: str = "data") -> AppTest:
    at = AppTest.from_file(APP, default_timeout=180)
    at.run()  # the home page
    if page != "home":
        at.switch_page(f"pages/{page}.py").run()
    assert not at.exception, at.exception
    return at


def errors(at: AppTest) -> list[str]:
    return [plain(e.value) for e in at.error]


def upload_dataset(at: AppTest, path: Path, name: str) -> AppTest:
    at.radio(key="data_how").set_value("Upload a file").run()
    at.text_input(key="data_name").set_value(name)
    at.file_uploader(key="data_upload").upload(path.name, path.read_bytes(), "text/plain")
    at.run()
    at.button(key="data_save").click().run()
    return at


def test_data_page_uploads_validates_and_splits(workspace, dephos):
    at = upload_dataset(app(), dephos / "train_sequences.fasta", "dephos")
    assert not errors(at)
    assert any("Saved dataset 'dephos': 201 sequences" in s.value for s in at.success)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Sequences"] == "201" and metrics["Task"] == "classification"
    assert metrics["Length (residues)"] == "33"
    titles = [c.proto.spec for c in at.get("plotly_chart")]
    assert len(titles) == 2 and "enrichment" in titles[1]  # class balance, enrichment heatmap
    at.number_input(key="data_split_val").set_value(0.2)
    at.button(key="data_split_save").click().run()
    split = DatasetStore().get("dephos").split()
    assert split["split"].value_counts().to_dict() == {"train": 141, "val": 40, "test": 20}


def test_bad_upload_shows_the_record_and_keeps_the_earlier_dataset(workspace, dephos, tmp_path):
    at = upload_dataset(app(), dephos / "train_sequences.fasta", "dephos")
    before = (DatasetStore().get("dephos").path / "table.csv").read_bytes()
    bad = tmp_path / "bad.fasta"
    bad.write_text(">ok1 LABEL=1\nMKTAYIAK\n>broken LABEL=0\nMKT4YIAK\n")
    at.file_uploader(key="data_upload").set_value(None)
    upload_dataset(at, bad, "dephos")  # same name: must not replace the good one
    msgs = plain(" ".join(e.value for e in at.error) + " ".join(m.value for m in at.markdown))
    assert "Nothing was saved" in msgs
    assert "broken" in msgs and "bad.fasta:3" in msgs
    assert (DatasetStore().get("dephos").path / "table.csv").read_bytes() == before
    assert {m.label: m.value for m in at.metric}["Sequences"] == "201"


def test_tutorial_fetch_checks_md5_and_fails_clearly_offline(workspace, dephos, monkeypatch):
    monkeypatch.setenv("PLMCORE_TUTORIAL_URL", dephos.as_uri() + "/")
    at = app()
    at.radio(key="data_how").set_value("Tutorial dataset").run()
    at.button(key="data_fetch").click().run()
    assert not errors(at), errors(at)
    split = DatasetStore().list()[0].split()
    assert split["split"].value_counts().to_dict() == {"train": 161, "test": 50, "val": 40}
    monkeypatch.setenv("PLMCORE_TUTORIAL_URL", "http://127.0.0.1:9/nothing/")
    at.button(key="data_fetch").click().run()
    assert any("Could not download" in e and "zenodo.org/record/10986248" in e for e in errors(at))


@pytest.mark.slow
def test_train_page_starts_a_worker_and_shows_live_metrics(workspace, dephos):
    upload_dataset(app(), dephos / "train_sequences.fasta", "dephos")
    at = app("train")
    tiny = next(o for o in at.selectbox(key="train_model").options if o.startswith("Tiny ESM"))
    at.selectbox(key="train_model").set_value(tiny).run()
    at.number_input(key="train_epochs").set_value(3).run()
    assert {m.label for m in at.metric} >= {"Parameters", "Trained with LoRA", "Memory (estimate)"}
    at.button(key="train_start").click().run()
    assert not errors(at)
    run = list_runs()[0]
    seen_chart = False
    deadline = time.time() + 120
    while time.time() < deadline:
        at.run()
        seen_chart = seen_chart or bool(at.get("plotly_chart"))
        if run.status().get("state") == "finished":
            break
        time.sleep(1)
    at.run()
    assert run.status()["state"] == "finished", run.log_tail()
    assert seen_chart
    labels = {m.label for m in at.metric}
    assert {"Validation MCC", "Validation ROC-AUC", "Validation Accuracy"} <= labels
    # a second start while one is active is refused with the active run's name, and starts nothing
    at.number_input(key="train_epochs").set_value(300).run()
    at.button(key="train_start").click().run()
    long = list_runs()[0]
    assert long != run and long.status()["state"] in ("queued", "running")
    at.button(key="train_start").click().run()
    assert any("already active" in e and long.name in e for e in errors(at)), errors(at)
    assert len(list_runs()) == 2
    cancel(long)
    assert wait(long, timeout=120)["state"] == "cancelled"


@pytest.fixture
def finished_run(workspace, dephos):
    config = TrainConfig(model="random:tiny-esm", epochs=2, learning_rate=1e-3,
                         data=DataSpec(train=(str(dephos / "train_sequences.fasta"),),
                                       test=str(dephos / "test_sequences.fasta"), dataset="dephos"))
    from plmcore import data as D

    table = D.validate(D.read_table(dephos / "train_sequences.fasta")).table
    DatasetStore().save("dephos", table)
    return train(config)


def test_runs_page_shows_metrics_with_intervals_and_curves(finished_run):
    at = app("runs")
    assert not errors(at)
    table = at.dataframe[1].value
    assert "ROC-AUC" in table.index and "[" in table.iloc[0, 0]
    assert len(at.get("plotly_chart")) >= 4  # confusion, ROC, PR, loss (+ validation metrics)
    # the leaderboard of the fine-tuned model and the baselines, and the verdict
    boards = [d.value for d in at.dataframe if "model" in d.value.columns and "ROC-AUC" in d.value.columns]
    assert boards and {"fine-tuned (LoRA)", "composition + logistic regression", "one-hot + logistic regression"} <= set(boards[0]["model"])
    assert all("[" in v for v in boards[0]["ROC-AUC"])
    assert any("on this test set (n=50)" in plain(i.value) for i in at.info)
    # the leakage report flags the proteins shared by the tutorial's train and test files
    assert any("30 of 50 test windows" in plain(w.value) for w in at.warning)
    at.radio(key="runs_mode").set_value("Compare runs").run()
    assert not errors(at) and at.get("plotly_chart")


@pytest.mark.slow
def test_embeddings_page_renders_before_and_after_in_one_figure(finished_run):
    at = app("embeddings")
    at.button(key="emb_go").click().run()
    assert not errors(at), errors(at)
    assert len(at.get("plotly_chart")) == 1  # before and after: two panels of one figure
    labels = [m.label for m in at.metric]
    assert labels == ["Classes separated, before fine-tuning", "Classes separated, after fine-tuning"]
    assert all(0 <= float(m.value) <= 1 for m in at.metric)
    assert any("50 held-out points" in c.value for c in at.caption)  # the run's test split only
    at.selectbox(key="emb_method").set_value("pca").run()
    at.radio(key="emb_dims").set_value(3).run()
    at.selectbox(key="emb_colour").set_value("error").run()
    assert not errors(at) and len(at.get("plotly_chart")) == 1
    downloads = [d.proto.label for d in at.get("download_button")]
    assert downloads[0] == "Points with coordinates (CSV)" and sum("(HDF5)" in d for d in downloads) == 2
    # reopening the page reads everything from the run folder: no button to press, no model to load
    again = app("embeddings")
    assert again.button(key="emb_go").disabled and len(again.get("plotly_chart")) == 1
    assert any("from the disk cache" in c.value for c in again.caption)


def test_predict_page_scores_a_window_and_scans_a_protein(finished_run, dephos):
    windows = [line for line in (dephos / "test_sequences.fasta").read_text().splitlines()
               if not line.startswith(">")]
    at = app("predict")
    at.text_area(key="pred_text").set_value(f">w1\n{windows[0]}\n>prot\n{''.join(windows[:4])}\n").run()
    at.button(key="pred_go").click().run()
    assert not errors(at), errors(at)
    heads = [s.value for s in at.subheader]
    assert heads[0] == "1 window" and heads[1] == "Scanned proteins"
    n_y = "".join(windows[:4]).count("Y")
    md = " ".join(plain(m.value) for m in at.markdown)
    assert f"1 protein, {n_y} candidate sites" in md
    assert at.get("plotly_chart")
    assert any("random weights" in plain(w.value) for w in at.warning)
    at.slider(key="pred_threshold").set_value(0.0).run()
    md = " ".join(plain(m.value) for m in at.markdown)
    assert f"{n_y} sites at or above the threshold 0.00" in md
    assert "P(class 1)" in at.dataframe[0].value.columns and "prob_1" not in at.dataframe[0].value.columns


def test_predict_with_nothing_above_the_threshold_lists_the_top_candidates(finished_run, dephos):
    windows = [line for line in (dephos / "test_sequences.fasta").read_text().splitlines()
               if not line.startswith(">")]
    at = app("predict")
    at.text_area(key="pred_text").set_value(f">w1 LABEL=1\n{windows[0]}\n>prot\n{''.join(windows[:4])}\n").run()
    at.slider(key="pred_threshold").set_value(1.0).run()
    at.button(key="pred_go").click().run()
    assert not errors(at), errors(at)
    md = " ".join(plain(m.value) for m in at.markdown)
    assert "0 sites at or above the threshold 1.00" in md and "The highest is Y" in md
    assert "No site reaches the threshold 1.00" in md
    top = at.dataframe[-1].value
    assert len(top) == min(10, "".join(windows[:4]).count("Y"))
    assert list(top["P(class 1)"]) == sorted(top["P(class 1)"], reverse=True)
    assert top["site"].iloc[0].startswith("Y")
    # the pasted LABEL=1 is compared with the prediction
    assert "given label" in at.dataframe[0].value.columns
    assert "of 1 labelled sequence predicted as labelled" in md
