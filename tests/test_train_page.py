"""The Train page's form: presets, Advanced, clone from a run, remembered settings, name and notes; and the
live view's words for each phase and for an early stop."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import plain
from streamlit.testing.v1 import AppTest

from plmcore.config import TrainConfig, default
from plmcore.datasets import DatasetStore
from plmcore.demo import build_demo
from plmcore.estimate import duration_words
from plmcore.live import ending, phase
from plmcore.recipes import TRAINING_PRESETS, preset_settings
from plmcore.runs import list_runs, wait

APP = str(Path(__file__).resolve().parents[1] / "app.py")


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    monkeypatch.setenv("PLMCORE_WORKSPACE", str(tmp_path / "ws"))
    build_demo(DatasetStore(tmp_path / "ws" / "datasets"))
    return tmp_path / "ws"


def train_page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.switch_page("pages/train.py").run()
    assert not at.exception, at.exception
    return at


def test_presets_set_their_values_and_recommended_is_the_declared_defaults():
    assert set(TRAINING_PRESETS) == {"quick", "recommended", "thorough"}
    rec = preset_settings("recommended")
    assert rec["epochs"] == default(TrainConfig, "epochs") and rec["lora_r"] == default(TrainConfig, "lora_r")
    assert preset_settings("quick")["epochs"] < rec["epochs"] < preset_settings("thorough")["epochs"]
    for p in TRAINING_PRESETS.values():  # every preset names real settings only
        assert set(p.settings) <= set(TrainConfig.__dataclass_fields__)


def test_the_form_has_presets_advanced_an_estimate_and_remembers_settings(workspace):
    at = train_page()
    assert at.radio(key="train_preset").value == "recommended"
    assert at.number_input(key="train_epochs").value == 10
    at.radio(key="train_preset").set_value("quick").run()
    assert at.number_input(key="train_epochs").value == 3 and at.number_input(key="train_lora_r").value == 4
    assert at.number_input(key="train_patience").value == 0  # quick: no early stopping
    # the rest sits under Advanced, the estimate is one sentence in words
    assert any(e.label.startswith("Advanced") for e in at.expander)
    line = next(plain(m.value) for m in at.markdown if "Estimate:" in m.value)
    assert "in total" in line and "GB of memory" in line and not re.search(r"\b0 s\b", line), line
    # a changed setting survives a new session (kept in the workspace)
    at.number_input(key="train_learning_rate").set_value(0.002).run()
    again = train_page()
    assert again.radio(key="train_preset").value == "quick"
    assert again.number_input(key="train_epochs").value == 3
    assert again.number_input(key="train_learning_rate").value == pytest.approx(0.002)
    assert not again.error


@pytest.mark.slow
def test_a_run_gets_its_name_and_notes_and_its_settings_can_be_cloned(workspace):
    at = train_page()
    tiny = next(o for o in at.selectbox(key="train_model").options if o.startswith("Tiny ESM"))
    at.selectbox(key="train_model").set_value(tiny).run()
    at.number_input(key="train_epochs").set_value(2).run()
    at.number_input(key="train_lora_r").set_value(3).run()
    at.toggle(key="train_baselines").set_value(False).run()
    at.text_input(key="train_name").set_value("tiny, rank 3").run()
    at.text_input(key="train_notes").set_value("a first try").run()
    at.button(key="train_start").click().run()
    assert not at.error, [e.value for e in at.error]
    run = list_runs(workspace / "runs")[0]
    assert run.about()["name"] == "tiny, rank 3" and run.about()["notes"] == "a first try"
    assert run.status().get("estimated_s") is not None  # the ETA has a start before the first step
    assert wait(run, timeout=120)["state"] == "finished", run.log_tail()
    at.run()
    words = " ".join(plain(s.value) for s in at.success)
    assert "Finished: 2 epochs in" in words
    assert any("Random weights" in m.value for m in at.markdown), "no random-weight badge beside the run"
    # another preset, then clone the run back
    at.radio(key="train_preset").set_value("thorough").run()
    assert at.number_input(key="train_lora_r").value == 16
    at.selectbox(key="train_clone").set_value(str(run.path)).run()
    at.button(key="train_clone_go").click().run()
    assert at.number_input(key="train_lora_r").value == 3 and at.number_input(key="train_epochs").value == 2
    assert at.toggle(key="train_baselines").value is False


def _status(**kw):
    return {"state": "running", "started_at": 1000.0, **kw}


def test_the_live_view_names_each_phase_with_a_time_left_from_the_start():
    now = 1005.0
    assert phase({"state": "queued", "estimated_s": 120}, now=now).text == "Waiting to start · about 2 minutes left (estimate)"
    loading = phase(_status(estimated_s=120), now=now)
    assert loading.name == "Loading the model" and "about 2 minutes left (estimate)" in loading.text
    records = [{"kind": "train", "step": 5, "elapsed_s": 10.0, "epoch": 0.5},
               {"kind": "train", "step": 10, "elapsed_s": 20.0, "epoch": 1.0}]
    training = phase(_status(step=10, total_steps=40, epoch=1.0, epochs=4), records, now=now)
    assert training.text == "Training: epoch 2 of 4 · step 10 of 40 · about 1 minute left"
    assert training.fraction == pytest.approx(0.25)
    evaluating = phase(_status(step=10, total_steps=40, epoch=1.0, epochs=4,
                               stage="evaluating epoch 1 on the validation set"), records, now=now)
    assert evaluating.name == "Evaluation"
    baselines = phase(_status(step=40, total_steps=40, epochs=4, stage="fitting baselines on the same split"))
    assert baselines.name == "Baselines" and baselines.fraction == 1.0
    final = phase(_status(step=40, total_steps=40, epochs=4,
                          stage="scoring the best model on the validation and test sets"))
    assert final.name == "Final evaluation"


def test_an_early_stop_is_said_in_words_and_the_bar_completes():
    evals = [{"kind": "eval", "epoch": e, "best": e == 3} for e in range(1, 7)]
    status = {"state": "finished", "started_at": 0.0, "ended_at": 83.0, "step": 36, "total_steps": 240,
              "epochs": 40, "epoch": 6.0, "stopped_early": True, "best_metric_name": "val_mcc"}
    words = ending(status, evals, patience=3)
    assert words.startswith("Stopped early at epoch 6 of 40: validation MCC had not improved for 3 epochs.")
    assert "from epoch 3" in words and "1 min 23 s" in words
    assert phase(status, evals).fraction == 1.0
    done = dict(status, stopped_early=False, epochs=6)
    assert ending(done, evals) == "Finished: 6 epochs in 1 min 23 s."


def test_durations_in_words_never_read_zero():
    assert duration_words(0.2) == "under a second"
    assert duration_words(40) == "about 40 seconds" and duration_words(170) == "about 3 minutes"
    assert duration_words(4800) == "about 1 h 20 min"


def test_the_runs_page_shows_a_running_run_live(workspace):
    """A run in training (its worker is this process) shows the live view on Runs, not 'No test report'."""
    import os
    import time as clock

    from plmcore.config import DataSpec
    from plmcore.runs import process_started
    from plmcore.train import create_run

    ds = DatasetStore(workspace / "datasets").list()[0]
    config = TrainConfig(model="random:tiny-esm", epochs=4, data=DataSpec(dataset=ds.name))
    run = create_run(config, split=ds.split(), root=workspace / "runs")
    run.write_status("running", pid=os.getpid(), pid_started=process_started(os.getpid()),
                     started_at=clock.time() - 30, total_steps=40, step=15, epoch=1.5, epochs=4)
    for step in (5, 10, 15):
        run.append_metrics({"kind": "train", "step": step, "epoch": step / 10, "train_loss": 0.7, "elapsed_s": step})
    run.append_metrics({"kind": "eval", "step": 10, "epoch": 1, "val_loss": 0.68, "val_mcc": 0.2,
                        "val_roc_auc": 0.6, "val_accuracy": 0.6})
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.switch_page("pages/runs.py").run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any("This run is training" in c.value for c in at.caption)
    assert not any("No test report" in i.value for i in at.info)
    assert any(m.label == "Epoch" and m.value == "1 of 4" for m in at.metric)
    assert at.get("plotly_chart")
