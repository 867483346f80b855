"""Published protocols as ready-made configurations."""

from __future__ import annotations

from plmcore.config import DataSpec, TrainConfig

TUTORIAL_MODEL = "Rostlab/prot_t5_xl_uniref50"
TUTORIAL_DESCRIPTION = (
    "Galaxy Training Network, 'Fine tune large protein model (ProtTrans) using HuggingFace': "
    "ProtT5-XL encoder, LoRA rank 4 on q, k, v and o, mean pooling, learning rate 3e-4, batch 1 x "
    "gradient accumulation 8, 20 epochs, 80/20 train/validation split of the training file with "
    "seed 42, the separate test file as test set."
)


def tutorial_config(train: str | None, test: str | None, *, model: str | None = None, **overrides) -> TrainConfig:
    """The tutorial's protocol; `model` swaps the backbone (LoRA targets follow its family)."""
    model = model or TUTORIAL_MODEL
    t5_like = model in (TUTORIAL_MODEL, "random:" + TUTORIAL_MODEL) or "t5" in model.lower()
    settings = dict(
        model=model, lora_r=4, lora_alpha=8.0, lora_dropout=0.0,
        # q, k, v, o are T5's names; other families use their own attention projections
        lora_targets=("q", "k", "v", "o") if t5_like else None,
        pooling="mean", learning_rate=3e-4, batch_size=1, grad_accum=8, epochs=20, warmup_ratio=0.0,
        patience=None, early_stopping_metric="mcc", seed=42,
        data=DataSpec(train=(train,) if train else (), test=test, val_fraction=0.2, test_fraction=0.0,
                      split_seed=42, dataset="GTN dephosphorylation sites (Y)"),
    )
    settings.update(overrides)
    return TrainConfig(**settings)
