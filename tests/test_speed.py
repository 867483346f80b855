"""The speed levers compute the same function: data-parallel workers and torch.compile give the
losses of the single eager process (tolerance in bench/README.md, "Time to result")."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from conftest import motif_windows

from plmcore import engine
from plmcore.config import DataSpec, TrainConfig
from plmcore.errors import ConfigError, RunError
from plmcore.train import Trainer, create_run, train_run

# bench/README.md states these: float reduction order only
LOSS_TOL = 1e-4


def _split(n_train: int = 64) -> pd.DataFrame:
    rows = motif_windows(n_train + 32, seed=3)
    return pd.DataFrame({"id": [r[0] for r in rows], "sequence": [r[1] for r in rows], "label": [r[2] for r in rows],
                         "split": ["train"] * n_train + ["val"] * 16 + ["test"] * 16})


def _config(model, **kw) -> TrainConfig:
    base = dict(model=str(model), epochs=2, batch_size=8, learning_rate=3e-3, head_dropout=0.0, lora_dropout=0.0,
                patience=None, baselines=False, logging_steps=1, data=DataSpec(train=("unused",)))
    base.update(kw)
    return TrainConfig(**base)


def _val_losses(run) -> list[float]:
    lines = [json.loads(x) for x in (run.path / "metrics.jsonl").read_text().splitlines()]
    return [x["val_loss"] for x in lines if x["kind"] == "eval"]


@pytest.mark.slow
@pytest.mark.parametrize("n_train", [64, 61])  # 61: a partial batch of 5 at the end of each epoch
def test_two_processes_give_the_single_process_losses(tiny_esm, tmp_path, n_train):
    split = _split(n_train)
    runs = {e: create_run(_config(tiny_esm, engine=e), split, run_dir=tmp_path / e) for e in ("single", "multi")}
    for run in runs.values():
        assert train_run(run.path)["state"] == "finished"
    single, multi = _val_losses(runs["single"]), _val_losses(runs["multi"])
    assert len(single) == len(multi) == 2
    status = runs["multi"].read_status()
    assert runs["multi"].config().engine == "multi" and status["step"] == runs["single"].read_status()["step"]
    if n_train % 8 == 0:
        assert single == pytest.approx(multi, abs=LOSS_TOL)
    else:  # accelerate fills the last partial batch with windows from the epoch's first batch
        assert single != pytest.approx(multi, abs=1e-7)
        assert single == pytest.approx(multi, abs=0.05)
    assert "2 processes" in runs["multi"].log_path.read_text()


def _record_losses(trainer) -> list[float]:
    seen, fn = [], trainer.loss_fn

    def loss(logits, y):
        value = fn(logits, y)
        seen.append(float(value))
        return value

    trainer.loss_fn = loss
    return seen


@pytest.mark.slow
def test_compiled_model_gives_the_eager_losses(tiny_esm, tmp_path):
    losses = {}
    for compiled in (False, True):
        run = create_run(_config(tiny_esm, max_steps=3), _split(), run_dir=tmp_path / str(compiled))
        trainer = Trainer(run, compiled=compiled).setup()
        losses[compiled] = _record_losses(trainer)
        trainer.fit()
    assert len(losses[True]) == 4  # 3 training steps, then the end-of-epoch validation loss
    assert losses[True] == pytest.approx(losses[False], abs=LOSS_TOL)


def test_auto_follows_the_measured_rule(monkeypatch):
    cfg = TrainConfig(epochs=20, batch_size=8)
    monkeypatch.setattr(engine, "rule", lambda: {"multi_min_window_passes": 2000, "processes": 2, "compile": False})
    assert engine.plan(cfg, 161, cores=2, on_gpu=False).engine == "multi"  # 3220 window passes
    assert engine.plan(cfg.replace(epochs=2), 161, cores=2, on_gpu=False).engine == "single"
    assert engine.plan(cfg, 161, cores=1, on_gpu=False).engine == "single"
    assert engine.plan(cfg, 161, cores=2, on_gpu=True).engine == "single"
    assert engine.plan(cfg.replace(batch_size=7), 161, cores=2, on_gpu=False).engine == "single"
    assert engine.plan(cfg.replace(engine="single"), 161, cores=2, on_gpu=False).engine == "single"
    p = engine.plan(cfg, 161, cores=4, on_gpu=False)
    assert (p.processes, p.threads) == (2, 2)
    monkeypatch.setenv("WORLD_SIZE", "2")  # already launched by torchrun: never launch again
    assert engine.plan(cfg, 161, cores=2, on_gpu=False).engine == "single"
    monkeypatch.delenv("WORLD_SIZE")
    monkeypatch.setattr(engine, "rule", lambda: dict(engine.DEFAULT_RULE))
    assert engine.plan(cfg, 161, cores=2, on_gpu=False).engine == "single"  # nothing measured: one process
    with pytest.raises(RunError, match="not divisible by 2"):
        engine.plan(cfg.replace(engine="multi", batch_size=7), 161, cores=2, on_gpu=False)
    with pytest.raises(ConfigError, match="engine='fast' is not allowed"):
        TrainConfig(engine="fast")


@pytest.mark.slow
def test_app_worker_cancels_and_resumes_a_data_parallel_run(tiny_esm, tmp_path):
    """The app's worker (start_worker) on engine=multi: cancel keeps a checkpoint, status stays the parent's."""
    import time

    from plmcore.runs import cancel, start_worker, wait
    from plmcore.state import load_state

    run = create_run(_config(tiny_esm, engine="multi", epochs=400), _split(), run_dir=tmp_path / "long")
    pid = start_worker(run)
    deadline = time.time() + 600
    while time.time() < deadline and (run.status().get("step") or 0) < 3:
        assert run.status()["state"] in ("queued", "running"), run.log_tail()
        time.sleep(0.5)
    assert run.status()["pid"] == pid  # the parent: what cancel signals
    assert cancel(run)
    status = wait(run, timeout=300)
    assert status["state"] == "cancelled", run.log_tail()
    step = load_state(run.checkpoint_dir)["step"]
    assert step >= 3
    deadline = time.time() + 60  # the parent removes the stop request once its workers have exited
    while (run.path / engine.STOP_FILE).exists() and time.time() < deadline:
        time.sleep(0.2)
    assert not (run.path / engine.STOP_FILE).exists()
    cfg = json.loads(run.config_path.read_text())
    cfg["max_steps"] = step + 2
    run.config_path.write_text(json.dumps(cfg))
    final = train_run(run.path, resume=True)
    assert final["state"] == "finished" and final["step"] == step + 2
