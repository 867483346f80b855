"""Shared pytest fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test item, so fixtures can tell whether the test failed."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


def plain(markdown: str) -> str:
    """Markdown as the reader sees it: the app escapes user text with plmcore.ui.md."""
    import re

    return re.sub(r"\\(.)", r"\1", markdown)


@pytest.fixture
def shared_data() -> Path:
    """The shared data folder ../shared/data next to the project; skip when it is absent."""
    path = Path(__file__).resolve().parents[1].parent / "shared" / "data"
    if not path.is_dir():
        pytest.skip(f"../shared/data is absent: expected the shared data sets at {path}")
    return path


# --------------------------------------------------------------------------- tiny models
# Built on the fly from small configs, saved with save_pretrained and loaded back through the
# same code path as a hub model (plmcore.models.load_backbone on a folder).

import os  # noqa: E402

import numpy as np  # noqa: E402


@pytest.fixture(autouse=True, scope="session")
def _isolated_home(tmp_path_factory):
    """Keep plmcore's caches and workspace inside pytest's temp folder."""
    home = tmp_path_factory.mktemp("plmcore_home")
    old = {k: os.environ.get(k) for k in ("PLMCORE_HOME", "PLMCORE_WORKSPACE", "HF_HUB_OFFLINE")}
    os.environ.update(PLMCORE_HOME=str(home / "home"), PLMCORE_WORKSPACE=str(home / "ws"), HF_HUB_OFFLINE="1")
    yield
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def build_tiny_model(folder: Path, family: str) -> Path:
    """Save a tiny random ESM, BERT or T5-encoder model with a residue tokenizer to `folder`."""
    import torch
    from transformers import BertConfig, BertModel, EsmConfig, EsmModel, T5Config, T5EncoderModel

    from plmcore.models import _write_tokenizer

    torch.manual_seed(0)
    folder.mkdir(parents=True, exist_ok=True)
    if family == "esm":
        cfg = EsmConfig(vocab_size=33, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=1026, position_embedding_type="rotary",
                        token_dropout=True, mask_token_id=32, pad_token_id=1, hidden_dropout_prob=0.0,
                        attention_probs_dropout_prob=0.0)
        model = EsmModel(cfg, add_pooling_layer=False)
    elif family == "bert":
        cfg = BertConfig(vocab_size=30, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                         intermediate_size=64, max_position_embeddings=512, pad_token_id=0)
        model = BertModel(cfg, add_pooling_layer=False)
    elif family == "t5":
        cfg = T5Config(vocab_size=128, d_model=32, d_ff=64, num_layers=2, num_heads=4, d_kv=8,
                       feed_forward_proj="relu", dropout_rate=0.0, pad_token_id=0, eos_token_id=1)
        model = T5EncoderModel(cfg)
    else:
        raise ValueError(family)
    model.config.plmcore_random_weights = True  # built here, not pretrained: the app badges it as such
    model.save_pretrained(folder)
    _write_tokenizer(folder, family)
    return folder


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny_models")
    return {fam: build_tiny_model(root / fam, fam) for fam in ("esm", "bert", "t5")}


@pytest.fixture(scope="session")
def tiny_esm(tiny_models) -> Path:
    return tiny_models["esm"]


def motif_windows(n: int, length: int = 15, seed: int = 0) -> list[tuple[str, str, str]]:
    """A learnable task: label 1 when a proline sits right after the centre tyrosine.

    Returns (id, sequence, label) triples; prolines appear nowhere else.
    """
    rng = np.random.default_rng(seed)
    alphabet = np.array(list("ACDEFGHIKLMNQRSTVW"))
    out = []
    for i in range(n):
        seq = rng.choice(alphabet, size=length)
        centre = length // 2
        seq[centre] = "Y"
        label = int(i % 2)
        if label:
            seq[centre + 1] = "P"
        out.append((f"win{i}", "".join(seq), str(label)))
    return out


def write_fasta(path: Path, records) -> Path:
    path.write_text("".join(f">{rid} LABEL={label}\n{seq}\n" for rid, seq, label in records))
    return path


@pytest.fixture(scope="session")
def tiny_run_archive(tmp_path_factory) -> bytes:
    """A finished tiny run (a random-weight architecture, so it loads anywhere) exported as a zip."""
    from plmcore.archive import export_zip
    from plmcore.config import DataSpec, TrainConfig
    from plmcore.train import train

    folder = tmp_path_factory.mktemp("archive_src")
    fasta = write_fasta(folder / "motif.fasta", motif_windows(60))
    config = TrainConfig(model="random:tiny-esm", epochs=1, baselines=False,
                         data=DataSpec(train=(str(fasta),), val_fraction=0.2, test_fraction=0.2))
    return export_zip(train(config, run_dir=folder / "src-run"))


@pytest.fixture
def evil_model(tmp_path) -> tuple[Path, Path]:
    """A model folder whose own code would create a sentinel file if it ever ran: (folder, sentinel)."""
    import json

    folder, sentinel = tmp_path / "evil_model", tmp_path / "SENTINEL"
    folder.mkdir()
    code = f"open({str(sentinel)!r}, 'w').write('code ran')\nfrom transformers import PretrainedConfig\n" \
           "class EvilConfig(PretrainedConfig):\n    model_type = 'evil'\n"
    for name in ("configuration_evil.py", "modeling_evil.py"):
        (folder / name).write_text(code)
    (folder / "config.json").write_text(json.dumps({"model_type": "evil", "auto_map": {
        "AutoConfig": "configuration_evil.EvilConfig", "AutoModel": "modeling_evil.EvilConfig"}}))
    return folder, sentinel
