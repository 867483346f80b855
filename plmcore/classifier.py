"""The fine-tunable model: a backbone with LoRA adapters, a pooling choice and a classification head,
and the padded batch it takes (batches are padded only to their own longest member)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from plmcore.models import Backbone, ResidueEncoder


@dataclass
class Batch:
    """Padded token ids and the masks pooling needs."""

    input_ids: torch.Tensor  # (B, T)
    attention_mask: torch.Tensor  # (B, T) 1 for real tokens
    residue_mask: torch.Tensor  # (B, T) 1 for residue tokens (no special tokens)
    center: torch.Tensor  # (B,) token index of each sequence's centre residue

    def to(self, device) -> Batch:
        return Batch(*(t.to(device, non_blocking=True) for t in
                       (self.input_ids, self.attention_mask, self.residue_mask, self.center)))


def make_batch(tokens: list[np.ndarray], encoder: ResidueEncoder) -> Batch:
    """Pad a list of token-id arrays to the longest and build the masks."""
    lengths = np.array([len(t) for t in tokens])
    width = int(lengths.max())
    ids = np.full((len(tokens), width), encoder.pad_id, dtype=np.int64)
    attn = np.zeros((len(tokens), width), dtype=np.int64)
    for i, t in enumerate(tokens):
        ids[i, : len(t)] = t
        attn[i, : len(t)] = 1
    n_res = lengths - encoder.n_special
    pos = np.arange(width)[None, :]
    res = (pos >= encoder.offset) & (pos < encoder.offset + n_res[:, None])
    center = encoder.offset + n_res // 2
    return Batch(
        torch.from_numpy(ids), torch.from_numpy(attn),
        torch.from_numpy(res.astype(np.int64)), torch.from_numpy(center.astype(np.int64)),
    )


def pool(hidden: torch.Tensor, batch: Batch, how: str) -> torch.Tensor:
    """Reduce per-token states (B, T, H) to one vector per sequence (B, H)."""
    if how == "mean":
        m = batch.residue_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * m).sum(1) / m.sum(1).clamp(min=1)
    if how == "cls":
        return hidden[:, 0]
    if how == "center":
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), batch.center]
    raise ValueError(f"pooling={how!r}; use mean, cls or center")


class ClassificationHead(nn.Module):
    """dropout -> dense -> tanh -> dropout -> out, as in the ProtTrans fine-tuning recipe."""

    def __init__(self, hidden: int, n_classes: int, dropout: float):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.dense = nn.Linear(hidden, hidden)
        self.out_proj = nn.Linear(hidden, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.tanh(self.dense(self.dropout(x)))
        return self.out_proj(self.dropout(x))


class SequenceClassifier(nn.Module):
    """Backbone (optionally LoRA-wrapped) + pooling + head: one output vector per sequence.

    With ``per_token`` the head is applied to every token instead of a pooled vector (per-residue
    tasks): the output is (B, T, n_outputs), and `embed` still pools (for projections).
    """

    def __init__(self, backbone: nn.Module, hidden: int, n_classes: int, pooling: str, dropout: float,
                 per_token: bool = False):
        super().__init__()
        self.backbone = backbone
        self.pooling = pooling
        self.per_token = per_token
        self.head = ClassificationHead(hidden, n_classes, dropout)

    compiled_backbone = None  # set by plmcore.fast.compile_model: used for training steps only

    def hidden(self, batch: Batch) -> torch.Tensor:
        net = self.compiled_backbone if self.training and self.compiled_backbone is not None else self.backbone
        return net(input_ids=batch.input_ids, attention_mask=batch.attention_mask).last_hidden_state

    def embed(self, batch: Batch) -> torch.Tensor:
        return pool(self.hidden(batch), batch, self.pooling)

    def forward(self, batch: Batch) -> torch.Tensor:
        # the head is fp32 even over a bf16 or quantised base (base_weights): states are cast up to it
        dtype = self.head.dense.weight.dtype
        if self.per_token:
            return self.head(self.hidden(batch).to(dtype))
        return self.head(self.embed(batch).to(dtype))


def add_lora(backbone: Backbone, r: int, alpha: float, dropout: float, targets: tuple[str, ...] | None):
    """Wrap the backbone's encoder with peft LoRA adapters; only they (and the head) will train."""
    from peft import LoraConfig, get_peft_model

    from plmcore.errors import ConfigError

    targets = tuple(targets or backbone.family.lora_targets)
    names = {name.rsplit(".", 1)[-1] for name, _ in backbone.model.named_modules()}
    missing = [t for t in targets if t not in names]
    if missing:
        linear = sorted({n.rsplit(".", 1)[-1] for n, m in backbone.model.named_modules()
                         if isinstance(m, nn.Linear)})
        raise ConfigError(
            f"lora_targets {missing} match no module of {backbone.source!r}; its linear layers are "
            f"named {', '.join(linear)}"
        )
    cfg = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=list(targets), bias="none")
    quantized = any(getattr(backbone.model, a, None) for a in ("hf_quantizer", "is_loaded_in_8bit", "is_loaded_in_4bit"))
    if quantized:  # 8/4-bit base (QLoRA): norms to fp32, base frozen
        from peft import prepare_model_for_kbit_training

        prepare_model_for_kbit_training(backbone.model, use_gradient_checkpointing=False)
    # autocast_adapter_dtype: with a bf16 or quantised base, the adapters are still created in fp32
    wrapped = get_peft_model(backbone.model, cfg, autocast_adapter_dtype=True)
    # the model as the user named it (hub id, preset, random:<preset>), not the folder it was read from
    wrapped.peft_config["default"].base_model_name_or_path = backbone.source
    return wrapped


def build_classifier(backbone: Backbone, n_outputs: int, config, *, per_token: bool = False) -> SequenceClassifier:
    """A LoRA-wrapped model as the run's config describes (with plmcore.fast's equivalent kernels).

    `n_outputs`: classes, labels, or 1 for regression; `per_token`: one output per residue.
    """
    from plmcore.fast import speed_up

    wrapped = add_lora(backbone, config.lora_r, config.lora_alpha, config.lora_dropout, config.lora_targets)
    return speed_up(SequenceClassifier(wrapped, backbone.hidden_size, n_outputs, config.pooling, config.head_dropout,
                                       per_token=per_token))


def set_checkpointing(model: SequenceClassifier, on: bool) -> None:
    """Turn gradient (activation) checkpointing of the backbone's layers on or off.

    Non-reentrant checkpointing (torch.utils.checkpoint with use_reentrant=False): it needs no input
    that requires grad, so it works with frozen embeddings under LoRA, for ESM, BERT and T5 encoders.
    It only acts in training mode; evaluation is unchanged.
    """
    base = model.backbone.get_base_model() if hasattr(model.backbone, "get_base_model") else model.backbone
    if on:
        enable = getattr(base, "activation_checkpointing_enable", None)
        if enable is not None:  # transformers >= 5.x; gradient_checkpointing_enable is its deprecated alias
            enable(activation_checkpointing_kwargs={"use_reentrant": False})
        else:
            base.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    elif getattr(base, "supports_gradient_checkpointing", False):
        disable = getattr(base, "activation_checkpointing_disable", None) or base.gradient_checkpointing_disable
        disable()


def is_checkpointing(model: SequenceClassifier) -> bool:
    """Whether any layer of the backbone recomputes its activations in the backward pass."""
    return any(getattr(m, "gradient_checkpointing", False) is True for m in model.backbone.modules())


def save_weights(model: SequenceClassifier, folder: Path, meta: dict) -> None:
    """Adapter in PEFT format (adapter/) and head in safetensors (head.safetensors), self-describing."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    # embeddings are never adapted; saying so skips peft's check of the base model's vocabulary,
    # which would ask the hub on every save
    model.backbone.save_pretrained(folder / "adapter", save_embedding_layers=False)
    state = {k: v.detach().contiguous().cpu() for k, v in model.head.state_dict().items()}
    save_file(state, folder / "head.safetensors", metadata={"plmcore": json.dumps(meta)})


def load_weights(model: SequenceClassifier, folder: Path, adapter_dir: Path | None = None) -> None:
    """Load adapter and head weights saved by `save_weights` into an identically built model.

    `adapter_dir`: where the PEFT adapter is, when not in folder/adapter (a Hub model folder
    keeps it at its root, as peft's own `from_pretrained` expects).
    """
    from peft import set_peft_model_state_dict
    from peft.utils import load_peft_weights
    from safetensors.torch import load_file

    device = next(model.parameters()).device
    adapter_dir = adapter_dir or folder / "adapter"
    if not (adapter_dir / "adapter_model.safetensors").exists():
        from plmcore.errors import RunError

        raise RunError(f"{adapter_dir} holds no adapter_model.safetensors; adapters are only read from safetensors")
    adapter = load_peft_weights(str(adapter_dir), device=str(device))
    result = set_peft_model_state_dict(model.backbone, adapter)
    unexpected = getattr(result, "unexpected_keys", [])
    if unexpected:
        raise RuntimeError(f"adapter in {folder} does not fit this model: unexpected {unexpected[:3]}")
    model.head.load_state_dict(load_file(folder / "head.safetensors", device=str(device)))
