"""The random-weight decision, the leakage headline and the glossary behind the app's badges and tooltips."""

from __future__ import annotations

import json

import pytest

from plmcore import glossary, tasks
from plmcore.leakage import headline, leakage_report
from plmcore.provenance import RANDOM_WEIGHTS_MARK, random_weights, with_random_mark


def test_random_sources(tmp_path, tiny_esm):
    assert random_weights("random:tiny-esm") and random_weights("random:facebook/esm2_t6_8M_UR50D")
    assert not random_weights("facebook/esm2_t6_8M_UR50D")  # a hub id: pretrained
    assert random_weights(str(tiny_esm))  # built by the tests, flagged in its config.json
    real = tmp_path / "real"
    real.mkdir()
    (real / "config.json").write_text(json.dumps({"model_type": "esm"}))
    assert random_weights(str(real)), "a folder without weight files cannot be pretrained"
    (real / "model.safetensors").write_bytes(b"x")
    assert not random_weights(str(real))
    exported = tmp_path / "exported"
    exported.mkdir()
    (exported / "plmcore.json").write_text(json.dumps({"config": {"model": "random:tiny-esm"}}))
    assert random_weights(str(exported))
    (exported / "plmcore.json").write_text(json.dumps({"config": {"model": str(real)}}))
    assert not random_weights(str(exported))


def test_random_runs_and_marks(tmp_path):
    from plmcore.config import DataSpec, TrainConfig

    config = TrainConfig(model="facebook/esm2_t6_8M_UR50D", data=DataSpec(train=("x.fasta",)))
    assert not random_weights(config)
    assert random_weights(config.replace(provenance={"model": {"kind": "local folder", "random_weights": True}}))
    assert random_weights(config.replace(model="random:tiny-esm"))
    assert with_random_mark("run-1", "random:tiny-esm") == f"run-1 · {RANDOM_WEIGHTS_MARK}"
    assert with_random_mark("run-1", "facebook/esm2_t6_8M_UR50D") == "run-1"


def test_leakage_headline():
    import pandas as pd

    train = pd.DataFrame({"id": ["a1", "b1"], "protein": ["A", "B"], "sequence": ["ACDEFGHIKLM", "MLKIHGFEDCA"]})
    test = pd.DataFrame({"id": ["a2", "c1", "d1"], "protein": ["A", "C", "D"],
                         "sequence": ["QWERTYQWERT", "WWWWWWWWWWW", "PPPPPPPPPPP"]})
    report = leakage_report(train, test, group_column="protein")
    assert report["protein_overlap"]["n_test_items"] == 1
    assert headline(report) == "⚠ 33% of test windows from training proteins"
    clean = leakage_report(train.iloc[1:], test.iloc[1:], group_column="protein")
    assert not clean["leaks"] and headline(clean) is None
    assert headline(None) is None


@pytest.mark.parametrize("metric", sorted({m for ms in tasks.LIVE_METRICS.values() for m in ms}
                                          | {"brier", "ece", "roc_auc", "pr_auc", "mcc", "f1"}))
def test_every_shown_metric_is_explained(metric):
    text = glossary.explain(f"val_{metric}")
    assert glossary.term(metric).words.lower() in text.lower() and "Range:" in text


def test_baselines_in_words():
    text = glossary.explain_baseline("composition + logistic regression")
    assert "composition" in text and "linear classifier" in text
