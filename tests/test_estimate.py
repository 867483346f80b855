"""The Train page's size, FLOP, memory and time estimate against the real models it describes."""

from __future__ import annotations

import json

import numpy as np
import pytest
from torch.utils.flop_counter import FlopCounterMode

from plmcore import estimate as E
from plmcore.classifier import build_classifier, make_batch
from plmcore.config import TrainConfig
from plmcore.models import count_parameters, load_backbone


@pytest.mark.parametrize("family", ["esm", "bert", "t5"])
@pytest.mark.parametrize("r", [2, 8])
def test_trainable_parameters_match_the_built_classifier(tiny_models, family, r):
    source = str(tiny_models[family])
    model = build_classifier(load_backbone(source), 3, TrainConfig(model=source, lora_r=r))
    trainable, total = count_parameters(model)
    est = E.estimate(source, n_train=10, window_tokens=20, r=r, n_classes=3)
    assert est.trainable_parameters == trainable
    # the estimate leaves out biases and layer norms, which are a large share only in tiny models
    assert 0.7 * total < est.total_parameters <= total


def test_total_parameters_of_a_real_config_within_one_percent():
    source = "random:facebook/esm2_t6_8M_UR50D"
    model = build_classifier(load_backbone(source), 2, TrainConfig(model=source, lora_r=8))
    _, total = count_parameters(model)
    est = E.estimate(source, n_train=10, window_tokens=33, r=8)
    assert abs(est.total_parameters - total) / total < 0.01


def test_training_flops_match_what_torch_counts_on_the_esm2_8m_config():
    """The analytic count against torch's own FLOP counter over one forward and backward pass."""
    source = "random:facebook/esm2_t6_8M_UR50D"
    bb = load_backbone(source)
    model = build_classifier(bb, 2, TrainConfig(model=source, lora_r=8, lora_dropout=0.0))
    rng = np.random.default_rng(0)
    windows = ["".join(rng.choice(list("ACDEFGHIKLMNPQRSTVWY"), 33)) for _ in range(8)]
    batch = make_batch(bb.encoder.encode(windows), bb.encoder)
    with FlopCounterMode(display=False) as counter:
        model(batch).sum().backward()
    counted = counter.get_total_flops() / len(windows)
    analytic = E.train_flops(E.arch_for(source), 35, 8)
    # autograd skips the first layer's q/k/v input gradient, which the formula counts (~1.5%)
    assert 0.97 < analytic / counted < 1.04, (analytic, counted)


def test_efficiency_is_read_at_the_nearest_measured_batch_and_width():
    points = [[280, 320, 0.30], [35, 480, 0.17], [34, 1024, 0.45]]
    assert E._efficiency(points, 280, 320) == 0.30
    assert E._efficiency(points, 35, 640) == 0.17
    assert E._efficiency(points, 34, 1280) == 0.45
    assert E._efficiency(None, 280, 320) is None
    assert E._efficiency(0.25, 10, 10) == 0.25


def test_time_and_memory_come_from_the_profile(tmp_path, monkeypatch):
    source = "random:facebook/esm2_t6_8M_UR50D"
    monkeypatch.setattr(E, "PROFILE_PATH", tmp_path / "missing.json")
    assert E.estimate(source, n_train=100, window_tokens=33, r=8).seconds_per_epoch is None

    prof = {"cpu": {"machine": "test", "measured": "today", "train_efficiency_vs_1024": [[280, 320, 0.5]],
                    "memory": {"runtime_bytes": 1e9, "bytes_per_parameter": 10.0}}}
    path = tmp_path / "perf_profile.json"
    path.write_text(json.dumps(prof))
    monkeypatch.setattr(E, "PROFILE_PATH", path)
    monkeypatch.setattr(E, "measured_matmul_gflops", lambda: 100.0)
    est = E.estimate(source, n_train=100, window_tokens=33, r=8, batch_size=8)
    assert est.seconds_per_epoch == pytest.approx(est.train_flops_per_window * 100 / (100e9 * 0.5))
    assert est.memory_gb > (1e9 + 10 * est.total_parameters) / 1e9
    assert "50%" in est.basis


def test_checkpointing_time_factor_is_measured_or_else_counted(tmp_path, monkeypatch):
    arch = E.arch_for("random:facebook/esm2_t6_8M_UR50D")
    path = tmp_path / "perf_profile.json"
    monkeypatch.setattr(E, "PROFILE_PATH", path)
    path.write_text(json.dumps({"cpu": {"checkpointing_time_factor": 1.7}}))
    assert E.checkpointing_time_factor(arch, 35, 8) == (1.7, "measured")
    path.write_text("{}")
    factor, how = E.checkpointing_time_factor(arch, 35, 8)
    parts = E.train_flops_parts(arch, 35, 8)
    assert factor == pytest.approx((parts["total"] + parts["forward"]) / parts["total"])
    assert 1.3 < factor < 1.6 and how.startswith("counted")


def test_checkpointing_saves_activation_memory_where_activations_dominate():
    arch = E.arch_for("random:facebook/esm2_t33_650M_UR50D")
    short = [E.memory_bytes(arch, 35, trainable=10**6, batch_size=1, checkpointing=c) for c in (False, True)]
    long = [E.memory_bytes(arch, 1024, trainable=10**6, batch_size=8, checkpointing=c) for c in (False, True)]
    assert short[1] < short[0] < 1.1 * short[1]  # the tutorial's batch of 1 window: the weights dominate
    assert long[0] > 3 * long[1]  # 8 proteins of 1,000 residues: most of the memory is activations
    half = E.memory_bytes(arch, 35, trainable=10**6, batch_size=1, checkpointing=False, base_weights="bf16")
    assert half < 0.65 * short[0]  # half the weight bytes; the runtime stays
