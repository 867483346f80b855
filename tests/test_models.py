"""Model loading, families, tokenisation and LoRA wrapping, with tiny models built on the fly."""

from __future__ import annotations

import pytest
import torch

from plmcore.classifier import add_lora, make_batch, pool
from plmcore.config import TrainConfig
from plmcore.errors import ConfigError, ModelLoadError
from plmcore.models import (
    FAMILIES,
    PRESETS,
    cache_status,
    count_parameters,
    load_backbone,
    pick_device,
)


@pytest.mark.parametrize("family", ["esm", "bert", "t5"])
def test_tiny_model_loads_from_folder_with_family(tiny_models, family):
    bb = load_backbone(str(tiny_models[family]))
    assert bb.family.name == family
    assert bb.hidden_size == 32
    assert not bb.model.training
    assert cache_status(str(tiny_models[family])) == "local folder"


@pytest.mark.parametrize("family", ["esm", "bert", "t5"])
def test_fast_encoder_matches_the_tokenizer(tiny_models, family):
    bb = load_backbone(str(tiny_models[family]))
    seqs = ["ACDEFGHIKLMNPQRSTVWY", "MKUXZOB", "Y"]
    fast = bb.encoder.encode(seqs)
    assert bb.encoder.table is not None, "the fast lookup path should be used for this family"
    for seq, ids in zip(seqs, fast):
        text = bb.family.format(seq)
        expected = bb.tokenizer(text, is_split_into_words=bb.family.residue_format == "split")["input_ids"]
        assert ids.tolist() == list(expected)


def test_prott5_style_formatting_maps_rare_residues_and_spaces():
    assert FAMILIES["t5"].format("AUZOB") == "A X X X X"
    assert FAMILIES["bert"].format("MKU") == "M K X"
    assert FAMILIES["esm"].format("MKU") == "MKU"
    assert FAMILIES["ankh"].format("MKU") == ["M", "K", "U"]


def test_special_token_layout_gives_residue_offsets(tiny_models):
    esm = load_backbone(str(tiny_models["esm"]))
    t5 = load_backbone(str(tiny_models["t5"]))
    assert esm.encoder.offset == 1 and esm.encoder.n_special == 2  # <cls> ... <eos>
    assert t5.encoder.offset == 0 and t5.encoder.n_special == 1  # ... </s>


def test_missing_hub_model_offline_says_how_to_fix(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError, match=r"hf download someone/not-a-model") as err:
        load_backbone("someone/not-a-model")
    assert "local folder" in str(err.value)
    assert "HF_HUB_OFFLINE=1" in str(err.value)


def test_folder_without_config_is_refused(tmp_path):
    (tmp_path / "weights.bin").write_bytes(b"x")
    with pytest.raises(ModelLoadError, match="has no config.json"):
        load_backbone(str(tmp_path))


def test_unknown_random_preset_lists_the_choices():
    with pytest.raises(ModelLoadError, match="random:facebook/esm2_t6_8M_UR50D"):
        load_backbone("random:nope")


def test_random_preset_builds_once_and_loads_like_a_folder():
    bb = load_backbone("random:tiny-esm")
    assert bb.random_weights and bb.family.name == "esm"
    again = load_backbone("random:tiny-esm")
    a = dict(bb.model.named_parameters())
    for name, p in again.model.named_parameters():
        assert torch.equal(p, a[name])


def test_presets_cover_the_issue_and_count_parameters_from_configs():
    for hub_id in ("facebook/esm2_t6_8M_UR50D", "facebook/esm2_t12_35M_UR50D", "facebook/esm2_t30_150M_UR50D",
                   "facebook/esm2_t33_650M_UR50D", "Rostlab/prot_bert", "Rostlab/prot_t5_xl_uniref50",
                   "ElnaggarLab/ankh-base"):
        assert hub_id in PRESETS
    # the ProtT5-XL encoder: the tutorial's 1,209,193,474 minus its 1,051,650-parameter head
    assert PRESETS["Rostlab/prot_t5_xl_uniref50"].parameters == 1_208_141_824
    assert 7.0e6 < PRESETS["facebook/esm2_t6_8M_UR50D"].parameters < 8.0e6
    assert 600e6 < PRESETS["facebook/esm2_t33_650M_UR50D"].parameters < 660e6


def test_a_model_with_its_own_code_does_not_run_it_unless_asked(tmp_path):
    import json

    sentinel = tmp_path / "SENTINEL"
    (tmp_path / "configuration_x.py").write_text(f"open({str(sentinel)!r}, 'w')\n")
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "x", "auto_map": {
        "AutoConfig": "configuration_x.XConfig", "AutoModel": "configuration_x.XModel"}}))
    with pytest.raises(ModelLoadError, match="needs its own code"):
        load_backbone(str(tmp_path))
    assert not sentinel.exists()
    assert "trust_remote_code" not in TrainConfig().to_dict()  # a session's choice, never a file's
    assert "trust_remote_code" not in TrainConfig.from_dict({"trust_remote_code": True}).to_dict()


def test_device_falls_back_to_cpu_here():
    if not torch.cuda.is_available():
        assert pick_device().type in ("cpu", "mps")
    with pytest.raises(ConfigError, match="device"):
        pick_device("not-a-device")


@pytest.mark.parametrize("family,targets", [("esm", {"query", "key", "value", "dense"}),
                                            ("bert", {"query", "key", "value"}),
                                            ("t5", {"q", "k", "v", "o"})])
def test_lora_wraps_the_family_targets_and_freezes_the_rest(tiny_models, family, targets):
    bb = load_backbone(str(tiny_models[family]))
    wrapped = add_lora(bb, r=4, alpha=8, dropout=0.0, targets=None)
    trainable = [n for n, p in wrapped.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    adapted = {n.split(".")[-4] for n in trainable if n.endswith("lora_A.default.weight")}
    assert adapted == targets
    t, total = count_parameters(wrapped)
    assert 0 < t < total


def test_lora_target_typo_names_the_real_layers(tiny_models):
    bb = load_backbone(str(tiny_models["esm"]))
    with pytest.raises(ConfigError, match=r"match no module.*query"):
        add_lora(bb, r=4, alpha=8, dropout=0.0, targets=("qkv",))


def test_pooling_choices(tiny_models):
    bb = load_backbone(str(tiny_models["esm"]))
    batch = make_batch(bb.encoder.encode(["ACDEF", "ACDEFGHIK"]), bb.encoder)
    hidden = torch.arange(batch.input_ids.numel() * 2, dtype=torch.float32).reshape(*batch.input_ids.shape, 2)
    mean = pool(hidden, batch, "mean")
    # residues of the first sequence sit at tokens 1..5 (after <cls>)
    assert torch.allclose(mean[0], hidden[0, 1:6].mean(0))
    assert torch.equal(pool(hidden, batch, "cls")[1], hidden[1, 0])
    assert torch.equal(pool(hidden, batch, "center")[1], hidden[1, 1 + 4])  # centre residue of 9 is index 4
