"""LoRA fine-tuning: what changes, that it learns, that runs reload, cancel, resume and fail cleanly."""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import motif_windows, write_fasta

from plmcore.config import DataSpec, TrainConfig
from plmcore.errors import ConfigError, ModelLoadError
from plmcore.predict import load_run
from plmcore.runs import RunDir, cancel, start_worker, wait
from plmcore.state import load_state
from plmcore.train import Trainer, create_run, train, train_run


def _config(model, fasta, **kw) -> TrainConfig:
    data = kw.pop("data", {})
    base = dict(model=str(model), epochs=2, batch_size=16, learning_rate=3e-3, logging_steps=2,
                data=DataSpec(train=(str(fasta),), val_fraction=0.2, test_fraction=0.2, **data))
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture(scope="module")
def motif_fasta(tmp_path_factory):
    return write_fasta(tmp_path_factory.mktemp("data") / "motif.fasta", motif_windows(400))


def test_only_lora_and_head_parameters_change(tiny_esm, motif_fasta, tmp_path):
    run = create_run(_config(tiny_esm, motif_fasta, max_steps=4), run_dir=tmp_path / "run")
    trainer = Trainer(run).setup()
    before = {n: p.detach().clone() for n, p in trainer.unwrapped.named_parameters()}
    trainer.fit()
    changed = {n for n, p in trainer.unwrapped.named_parameters() if not torch.equal(p, before[n])}
    assert trainer.state["step"] == 4
    assert changed, "no parameter moved in 4 optimiser steps"
    assert all("lora_" in n or n.startswith("head.") for n in changed), sorted(changed)
    assert any("lora_B" in n for n in changed) and any(n.startswith("head.") for n in changed)


@pytest.fixture(scope="module")
def motif_run(tiny_esm, motif_fasta, tmp_path_factory):
    config = _config(tiny_esm, motif_fasta, epochs=12, pooling="mean", patience=None, lora_r=8)
    return train(config, run_dir=tmp_path_factory.mktemp("runs") / "motif")


def test_tiny_esm_learns_a_motif_next_to_the_centre(motif_run):
    evals = [m for m in motif_run.read_metrics() if m["kind"] == "eval"]
    assert max(m["val_accuracy"] for m in evals) >= 0.9
    report = motif_run.report()
    assert report["n"] == 80 and report["metrics"]["accuracy"] >= 0.85


def test_run_directory_is_complete(motif_run):
    files = {p.relative_to(motif_run.path).as_posix() for p in motif_run.path.rglob("*") if p.is_file()}
    for needed in ("config.json", "split.csv", "labels.json", "status.json", "metrics.jsonl", "train.log",
                   "best/adapter/adapter_config.json", "best/adapter/adapter_model.safetensors",
                   "best/head.safetensors", "checkpoint/trainer_state.json", "checkpoint/trainer_state.safetensors", "test_report.json",
                   "test_predictions.csv", "val_predictions.csv"):
        assert needed in files, needed
    status = motif_run.status()
    assert status["state"] == "finished"
    assert status["trainable_parameters"] < status["total_parameters"]
    train_rec = next(m for m in motif_run.read_metrics() if m["kind"] == "train")
    for key in ("step", "epoch", "train_loss", "learning_rate", "elapsed_s", "samples_per_s"):
        assert key in train_rec
    eval_rec = next(m for m in motif_run.read_metrics() if m["kind"] == "eval")
    for key in ("val_loss", "val_mcc", "val_roc_auc", "val_accuracy"):
        assert key in eval_rec
    # the config re-creates the run
    assert TrainConfig.load(motif_run.config_path) == motif_run.config()
    split = pd.read_csv(motif_run.split_path)
    assert set(split["split"]) == {"train", "val", "test"}


def test_reloaded_run_gives_the_same_probabilities(motif_run):
    saved = pd.read_csv(motif_run.predictions_path("test"), dtype={"label": str})
    loaded = load_run(motif_run.path)
    probs = loaded.predict_proba(saved["sequence"].tolist())
    np.testing.assert_allclose(probs[:, 1], saved["prob_1"].to_numpy(), atol=1e-5)


def test_same_seed_gives_the_same_run(tiny_esm, motif_fasta, tmp_path):
    cfg = _config(tiny_esm, motif_fasta, max_steps=6, lora_dropout=0.1)
    a = train(cfg, run_dir=tmp_path / "a")
    b = train(cfg, run_dir=tmp_path / "b")
    pa = pd.read_csv(a.predictions_path("test"))["prob_1"].to_numpy()
    pb = pd.read_csv(b.predictions_path("test"))["prob_1"].to_numpy()
    np.testing.assert_allclose(pa, pb, atol=1e-6)


@pytest.mark.slow
def test_cancel_keeps_a_checkpoint_and_resume_finishes(tiny_esm, motif_fasta, tmp_path):
    cfg = _config(tiny_esm, motif_fasta, epochs=400, patience=None, logging_steps=1)
    run = create_run(cfg, run_dir=tmp_path / "long")
    start_worker(run)
    deadline = time.time() + 120
    while time.time() < deadline and (run.status().get("step") or 0) < 3:
        assert run.status()["state"] in ("queued", "running"), run.log_tail()
        time.sleep(0.2)
    assert cancel(run)
    status = wait(run, timeout=60)
    assert status["state"] == "cancelled", run.log_tail()
    assert not (run.checkpoint_dir / "trainer_state.pt").exists()  # no pickle
    assert (run.checkpoint_dir / "adapter" / "adapter_model.safetensors").exists()
    step = load_state(run.checkpoint_dir)["step"]
    assert step >= 3
    # resume with a smaller budget so the test ends quickly: the loop continues from the saved step
    cfg2 = json.loads(run.config_path.read_text())
    cfg2["max_steps"] = step + 4
    run.config_path.write_text(json.dumps(cfg2))
    final = train_run(run.path, resume=True)
    assert final["state"] == "finished" and final["step"] == step + 4


def test_resume_replays_exactly(tiny_esm, motif_fasta, tmp_path):
    cfg = _config(tiny_esm, motif_fasta, max_steps=20, patience=None, lora_dropout=0.1)
    straight = train(cfg, run_dir=tmp_path / "straight")
    run = create_run(cfg, run_dir=tmp_path / "interrupted")
    stop = {"flag": False}
    trainer = Trainer(run, stop=stop).setup()
    orig = trainer.loss_fn

    def loss_then_stop(logits, labels):
        if trainer.state["step"] == 7:  # stop mid-epoch, after 7 optimiser steps
            stop["flag"] = True
        return orig(logits, labels)

    trainer.loss_fn = loss_then_stop
    from plmcore.train import Cancelled

    with pytest.raises(Cancelled):
        trainer.fit()
    train_run(run.path, resume=True)
    a = pd.read_csv(straight.predictions_path("test"))["prob_1"].to_numpy()
    b = pd.read_csv(run.predictions_path("test"))["prob_1"].to_numpy()
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_a_crash_leaves_status_failed_with_the_reason(motif_fasta, tmp_path):
    run = create_run(_config(tmp_path / "no-such-model", motif_fasta), run_dir=tmp_path / "bad")
    with pytest.raises(ModelLoadError):
        train_run(run.path)
    status = run.status()
    assert status["state"] == "failed"
    assert "Cannot load model" in status["error"]
    assert "Run failed" in run.log_path.read_text()


def test_worker_that_dies_is_reported_failed(tmp_path):
    run = RunDir(tmp_path / "ghost")
    run.path.mkdir()
    TrainConfig().save(run.config_path)
    run.write_status("running", pid=2**22 + 12345)
    assert run.status()["state"] == "failed"
    assert "ended unexpectedly" in run.status()["error"]


def test_class_weights_multiclass_and_other_families(tiny_models, tmp_path):
    rng = np.random.default_rng(0)
    recs = []
    for i in range(90):
        label = ["a", "b", "c"][i % 3]
        seq = "".join(rng.choice(list("ACDEFGHIKLMNQRSTVW"), 12)) + {"a": "PP", "b": "WW", "c": "KK"}[label]
        recs.append((f"s{i}", seq, label))
    fasta = write_fasta(tmp_path / "three.fasta", recs)
    for family in ("bert", "t5"):
        run = train(_config(tiny_models[family], fasta, max_steps=6, class_weights="balanced", pooling="cls"),
                    run_dir=tmp_path / family)
        report = run.report()
        assert report["classes"] == ["a", "b", "c"]
        assert len(report["confusion_matrix"]) == 3
        assert "Class weights" in run.log_path.read_text()


def test_config_validation_names_field_and_allowed_values():
    with pytest.raises(ConfigError, match=r"pooling='max' is not allowed; choose one of mean, cls, center"):
        TrainConfig(pooling="max")
    with pytest.raises(ConfigError, match=r"lora_r=0 is out of range"):
        TrainConfig(lora_r=0)
    with pytest.raises(ConfigError, match=r"val_fraction \+ test_fraction"):
        DataSpec(val_fraction=0.6, test_fraction=0.5)
    with pytest.raises(ConfigError, match="unknown setting"):
        TrainConfig.from_dict({"learning_rat": 1e-3})
