"""plmcore.fast computes the same function as the stock transformers/peft code, forward and backward."""

from __future__ import annotations

import pytest
import torch

from plmcore.classifier import SequenceClassifier, add_lora, make_batch
from plmcore.fast import SHORT_ATTENTION, speed_up
from plmcore.models import load_backbone

SEQS = ["ACDEFGHIKLMNPQRSTVWYACDEFGHIKLMNP", "MKTAYIAKQRQISFVK", "GGGGGGGGGGGGGGGGGGGGGGGY"]


def _pair(folder, pooling="mean"):
    """Two identical LoRA classifiers (random non-zero adapters); the second one sped up."""
    models = []
    for _ in range(2):
        bb = load_backbone(str(folder))
        torch.manual_seed(3)
        model = SequenceClassifier(add_lora(bb, 4, 8.0, 0.0, None), bb.hidden_size, 2, pooling, 0.0)
        torch.manual_seed(4)
        for p in model.parameters():
            if p.requires_grad:
                p.data.normal_(0, 0.05)
        models.append(model)
    return models[0], speed_up(models[1]), bb


@pytest.mark.parametrize("family", ["esm", "bert", "t5"])
def test_same_outputs_and_gradients_with_padding(tiny_models, family):
    stock, fast, bb = _pair(tiny_models[family])
    batch = make_batch(bb.encoder.encode(SEQS), bb.encoder)  # mixed lengths: padding and masks
    a, b = stock(batch), fast(batch)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
    a.square().sum().backward()
    b.square().sum().backward()
    grads = dict(stock.named_parameters())
    for name, p in fast.named_parameters():
        if p.requires_grad:
            torch.testing.assert_close(p.grad, grads[name].grad, atol=1e-5, rtol=1e-4, msg=name)


def test_long_sequences_fall_back_to_sdpa(tiny_models, monkeypatch):
    import transformers.integrations.sdpa_attention as sdpa

    stock, fast, bb = _pair(tiny_models["esm"])
    calls = []
    real = sdpa.sdpa_attention_forward
    monkeypatch.setattr(sdpa, "sdpa_attention_forward", lambda *a, **k: calls.append(1) or real(*a, **k))
    short = make_batch(bb.encoder.encode(SEQS), bb.encoder)
    fast(short)
    assert calls == []  # short windows take the bmm path
    long = ["M" + "ACDEFGHIKLMNPQRSTVWY" * 8]  # 163 tokens: above the short-attention limit
    assert len(long[0]) ** 2 > SHORT_ATTENTION
    batch = make_batch(bb.encoder.encode(long), bb.encoder)
    torch.testing.assert_close(stock(batch), fast(batch), atol=1e-5, rtol=1e-4)
    assert len(calls) == 2  # one per layer of the tiny model: the fallback ran


def test_disabled_adapters_give_the_frozen_backbone(tiny_models):
    stock, fast, bb = _pair(tiny_models["esm"])
    batch = make_batch(bb.encoder.encode(SEQS), bb.encoder)
    base = load_backbone(str(tiny_models["esm"])).model
    expected = base(input_ids=batch.input_ids, attention_mask=batch.attention_mask).last_hidden_state
    with fast.backbone.disable_adapter():
        got = fast.backbone(input_ids=batch.input_ids, attention_mask=batch.attention_mask).last_hidden_state
    keep = batch.attention_mask.bool()
    torch.testing.assert_close(got[keep], expected[keep], atol=1e-5, rtol=1e-4)
