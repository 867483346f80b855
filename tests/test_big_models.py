"""Big models: gradient checkpointing as a setting, the ESM-2 3B preset, GPU-only base weights refused on a
CPU, and the Train page's estimates against the memory section's recorded measurements."""

from __future__ import annotations

import pytest
import torch
from conftest import motif_windows, write_fasta

from plmcore import estimate as E
from plmcore.classifier import build_classifier, is_checkpointing, make_batch, set_checkpointing
from plmcore.config import DataSpec, TrainConfig
from plmcore.errors import ConfigError
from plmcore.models import PRESETS, base_weight_kwargs, load_backbone
from plmcore.train import Trainer, create_run

WINDOWS = ["ACDEFGHIKLMNPQRSTVWY", "MKTAYIAKQRQISFVKSHFS", "GSHMLEDPYKVLVLGAGYVG"]


def _loss_and_grads(model, batch):
    model.zero_grad(set_to_none=True)
    torch.manual_seed(1)  # the same dropout masks (tiny BERT has dropout); the recompute replays them
    loss = model(batch).float().pow(2).mean()
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}


@pytest.mark.parametrize("family", ["esm", "bert", "t5"])
def test_checkpointing_recomputes_layers_and_gives_the_same_loss_and_gradients(tiny_models, family):
    source = str(tiny_models[family])
    bb = load_backbone(source)
    model = build_classifier(bb, 2, TrainConfig(model=source, head_dropout=0.0))
    model.train()
    torch.manual_seed(0)
    with torch.no_grad():  # LoRA B starts at zero, which would leave A without a gradient to compare
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.1)
    batch = make_batch(bb.encoder.encode(WINDOWS), bb.encoder)
    # count forward passes inside the first encoder layer (transformers checkpoints a layer's forward,
    # so the layer's own hooks stay outside; its attention block runs again in backward)
    layers = [m for name, m in model.backbone.named_modules() if name.endswith(("layer.0.attention", "block.0.layer.0"))]
    assert len(layers) == 1, "found no first attention block to watch"
    calls = []
    layers[0].register_forward_hook(lambda *a: calls.append(1))

    loss_off, grads_off = _loss_and_grads(model, batch)
    passes_off = len(calls)
    set_checkpointing(model, True)
    assert is_checkpointing(model)
    calls.clear()
    loss_on, grads_on = _loss_and_grads(model, batch)
    assert passes_off == 1 and len(calls) == 2, (passes_off, len(calls))
    torch.testing.assert_close(loss_on, loss_off, rtol=1e-6, atol=1e-7)
    assert grads_on.keys() == grads_off.keys() and len(grads_on) > 4
    for name in grads_off:
        torch.testing.assert_close(grads_on[name], grads_off[name], rtol=1e-5, atol=1e-7, msg=name)
    assert all(g.abs().sum() > 0 for n, g in grads_on.items() if "lora_A" in n), "a LoRA A got no gradient"

    set_checkpointing(model, False)
    assert not is_checkpointing(model)
    calls.clear()
    _loss_and_grads(model, batch)
    assert len(calls) == 1


@pytest.fixture(scope="module")
def motif_fasta(tmp_path_factory):
    return write_fasta(tmp_path_factory.mktemp("data") / "motif.fasta", motif_windows(40))


@pytest.mark.parametrize("setting, expected", [("on", True), ("off", False), ("auto", False)])
def test_the_setting_reaches_the_trainer(tiny_esm, motif_fasta, tmp_path, setting, expected):
    config = TrainConfig(model=str(tiny_esm), max_steps=1, gradient_checkpointing=setting, baselines=False,
                         data=DataSpec(train=(str(motif_fasta),), val_fraction=0.2, test_fraction=0.2))
    trainer = Trainer(create_run(config, run_dir=tmp_path / "run")).setup()
    assert trainer.checkpointing is expected
    assert is_checkpointing(trainer.unwrapped) is expected
    status = trainer.run.read_status()
    assert status["gradient_checkpointing"] is expected
    assert "Gradient checkpointing" in status["checkpointing_note"]


def test_auto_turns_checkpointing_on_when_the_run_would_not_fit(tiny_esm, motif_fasta, tmp_path, monkeypatch):
    monkeypatch.setattr(E, "available_memory_gb", lambda device_type="cpu": 0.01)  # 10 MB free
    config = TrainConfig(model=str(tiny_esm), max_steps=1, baselines=False,
                         data=DataSpec(train=(str(motif_fasta),), val_fraction=0.2, test_fraction=0.2))
    trainer = Trainer(create_run(config, run_dir=tmp_path / "run")).setup()
    assert trainer.checkpointing and is_checkpointing(trainer.unwrapped)
    assert "turns on automatically" in trainer.checkpointing_note
    trainer.fit()
    assert trainer.state["step"] == 1


def test_auto_decision_and_the_page_sentence():
    source = "random:facebook/esm2_t36_3B_UR50D"
    kw = dict(n_train=181, window_tokens=33, r=4, batch_size=1, timing=False)
    roomy = E.estimate(source, gradient_checkpointing="auto", available_gb=64.0, **kw)
    tight = E.estimate(source, gradient_checkpointing="auto", available_gb=roomy.memory_gb * 0.99, **kw)
    assert not roomy.checkpointing and tight.checkpointing
    assert tight.memory_gb < tight.memory_gb_without_checkpointing == roomy.memory_gb
    assert "turns on automatically" in tight.checkpointing_note and "stays off" in roomy.checkpointing_note
    forced = E.estimate(source, gradient_checkpointing="on", available_gb=64.0, **kw)
    assert forced.checkpointing and "your setting" in forced.checkpointing_note
    assert not E.estimate(source, gradient_checkpointing="off", available_gb=0.1, **kw).checkpointing


def test_esm2_3b_preset_has_the_published_shape():
    preset = PRESETS["facebook/esm2_t36_3B_UR50D"]
    arch = preset.architecture
    assert (arch["num_hidden_layers"], arch["hidden_size"], arch["num_attention_heads"],
            arch["intermediate_size"]) == (36, 2560, 40, 10240)
    assert 2.80e9 < preset.parameters < 2.85e9  # ESM-2 3B: 2.84B parameters with its LM head
    assert E.arch_for("random:facebook/esm2_t36_3B_UR50D").d_model == 2560


# --------------------------------------------------------------------------- GPU-only settings on a CPU


@pytest.mark.parametrize("weights", ["bf16", "int8", "int4"])
def test_gpu_only_base_weights_are_refused_on_a_cpu(tiny_esm, weights):
    with pytest.raises(ConfigError, match=f"base_weights='{weights}'.*GPU-only.*base_weights=fp32"):
        base_weight_kwargs(weights, "cpu")
    with pytest.raises(ConfigError, match="GPU-only"):
        load_backbone(str(tiny_esm), base_weights=weights, device="cpu")
    with pytest.raises(ConfigError, match=f"base_weights='{weights}' needs a CUDA GPU"):
        TrainConfig(model=str(tiny_esm), device="cpu", base_weights=weights)
    assert base_weight_kwargs("fp32", "cpu") == {}


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without a GPU")
def test_a_run_asking_for_bf16_weights_fails_before_loading_on_a_cpu_machine(tiny_esm, motif_fasta, tmp_path):
    config = TrainConfig(model=str(tiny_esm), max_steps=1, base_weights="bf16", baselines=False,
                         data=DataSpec(train=(str(motif_fasta),), val_fraction=0.2, test_fraction=0.2))
    with pytest.raises(ConfigError, match="GPU-only"):
        Trainer(create_run(config, run_dir=tmp_path / "run")).setup()


def test_cpu_never_autocasts(tiny_esm):
    from plmcore.train import mixed_precision

    for precision in ("auto", "bf16", "fp16", "fp32"):
        assert mixed_precision(TrainConfig(model=str(tiny_esm), precision=precision), "cpu") == "no"


# --------------------------------------------------------------------------- estimates vs measurements

ESM3B = "random:facebook/esm2_t36_3B_UR50D"


def _recorded_points() -> list[dict]:
    points = E.profile().get("cpu", {}).get("big_models", {}).get("points", [])
    assert points, "plmcore/perf_profile.json holds no memory-section measurements (bench/run.py --only memory)"
    return points


def _estimate_for(point: dict) -> E.Estimate:
    arch = E.arch_for(point["model"])
    targets = ("q", "k", "v", "o") if arch.family == "t5" else None  # the tutorial recipe, as measured
    return E.estimate(point["model"], n_train=1, window_tokens=point["tokens_per_window"] - arch.n_special, r=4,
                      targets=targets, batch_size=point["batch_size"],
                      gradient_checkpointing="on" if point["gradient_checkpointing"] else "off")


def test_train_page_estimates_match_the_recorded_measurements_within_20_percent(monkeypatch):
    """Each recorded run of the memory section (bench/run.py --only memory --write-profile) against the
    estimate for the same model and settings, with the machine's matmul rate as it was measured then.
    Memory comes from one least-squares line over all measured models, and time with checkpointing from
    one time factor for all models, so neither is the measurement read back. Times measured while other
    processes held the CPUs (bench/run.py QUIET_CORES) calibrate nothing and are not compared."""
    from bench.run import QUIET_CORES

    points = _recorded_points()
    assert ESM3B in {p["model"] for p in points} and len({p["model"] for p in points}) >= 2
    assert {True, False} <= {p["gradient_checkpointing"] for p in points}
    for p in points:
        monkeypatch.setattr(E, "measured_matmul_gflops", lambda p=p: p["gflops_1024"])
        est = _estimate_for(p)
        where = f"{p['model']} checkpointing={p['gradient_checkpointing']}"
        assert est.checkpointing is p["gradient_checkpointing"]
        if p["other_load_cores"] <= QUIET_CORES:
            assert est.seconds_per_epoch == pytest.approx(p["s_per_window"], rel=0.2), where
        assert est.memory_gb * 1e9 == pytest.approx(p["peak_rss_mb"] * 2**20, rel=0.2), where


def test_esm2_3b_memory_is_predicted_from_the_smaller_models_and_stays_under_20_gb(monkeypatch):
    """Leave 3B out of the memory fit: the line through the smaller models must still predict its peak."""
    import numpy as np

    prof = E.profile()
    others = [p for p in prof["cpu"]["points"] if p["model"] != ESM3B]
    slope, icpt = np.polyfit([p["total_params"] for p in others], [p["peak_rss_mb"] * 2**20 for p in others], 1)
    reduced = {"cpu": {**prof["cpu"], "memory": {"runtime_bytes": icpt, "bytes_per_parameter": slope}}}
    monkeypatch.setattr(E, "profile", lambda: reduced)
    for p in (p for p in _recorded_points() if p["model"] == ESM3B):
        assert p["peak_rss_mb"] < 20_000
        est = _estimate_for(p)
        assert est.memory_gb * 1e9 == pytest.approx(p["peak_rss_mb"] * 2**20, rel=0.2)


def test_gpu_bench_skips_cleanly_without_cuda():
    import subprocess
    import sys
    from pathlib import Path

    if torch.cuda.is_available():
        pytest.skip("a GPU is present: the GPU section would run")
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "bench/run.py", "--gpu"], cwd=root, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "mode=gpu gpu_available=0"


@pytest.mark.parametrize("family", ["esm", "t5"])
def test_bf16_base_weights_keep_lora_and_head_in_fp32(tiny_models, family, monkeypatch):
    """The wiring of base_weights=bf16, run on a CPU by lifting the GPU-only refusal: frozen weights bf16,
    everything that trains fp32, and a finite gradient reaches every adapter."""
    import plmcore.models as M

    monkeypatch.setattr(M, "base_weight_kwargs", lambda weights, device: {"dtype": torch.bfloat16})
    source = str(tiny_models[family])
    bb = load_backbone(source, base_weights="bf16")
    model = build_classifier(bb, 2, TrainConfig(model=source, head_dropout=0.0))
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    frozen_linear = [m.weight for m in model.backbone.modules()
                     if type(m) is torch.nn.Linear and not m.weight.requires_grad]
    assert frozen_linear and all(w.dtype == torch.bfloat16 for w in frozen_linear)
    assert trainable and all(p.dtype == torch.float32 for p in trainable.values())
    with torch.no_grad():
        for n, p in trainable.items():
            if "lora_B" in n:
                p.normal_(0, 0.1)
    batch = make_batch(bb.encoder.encode(WINDOWS), bb.encoder)
    model.train()
    out = model(batch)
    assert out.dtype == torch.float32
    out.pow(2).mean().backward()
    for n, p in trainable.items():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, n
