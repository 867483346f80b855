"""Published protocols as ready-made configurations."""

from __future__ import annotations

from dataclasses import dataclass, field

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


# --------------------------------------------------------------------------- training presets


@dataclass(frozen=True)
class Preset:
    """A named set of TrainConfig values; every setting it does not name keeps its declared default."""

    title: str
    words: str  # what the preset is for, in a sentence
    settings: dict = field(default_factory=dict)


TRAINING_PRESETS = {
    "quick": Preset("Quick", "A first look in a few minutes: 3 epochs, a small adapter (LoRA rank 4), no early "
                             "stopping.",
                    {"epochs": 3, "lora_r": 4, "lora_alpha": 8.0, "learning_rate": 5e-4, "patience": None}),
    "recommended": Preset("Recommended", "The declared defaults: 10 epochs with LoRA rank 8, stopping early when "
                                         "validation stops improving.", {}),
    "thorough": Preset("Thorough", "For the result you report: up to 40 epochs, a larger adapter (LoRA rank 16) and "
                                   "a lower learning rate, stopping early after 5 epochs without improvement.",
                       {"epochs": 40, "lora_r": 16, "lora_alpha": 32.0, "learning_rate": 2e-4, "patience": 5}),
}
DEFAULT_PRESET = "recommended"


def preset_settings(name: str) -> dict:
    """The full set of TrainConfig values a preset gives, for the settings it names and the page's form.

    Raises ConfigError for an unknown preset or a value the setting does not allow."""
    from dataclasses import asdict

    from plmcore.errors import ConfigError

    if name not in TRAINING_PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(TRAINING_PRESETS)}")
    config = TrainConfig(**TRAINING_PRESETS[name].settings)  # validates the values
    return {k: v for k, v in asdict(config).items() if k not in ("data", "provenance", "model")}
