"""Run configuration: validated dataclasses, saved as config.json in every run directory."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from plmcore.errors import ConfigError

POOLINGS = ("mean", "cls", "center")
SCHEDULES = ("linear", "cosine", "constant")
CLASS_WEIGHTS = ("none", "balanced")
STOP_METRICS = ("mcc", "roc_auc", "pr_auc", "accuracy", "f1", "val_loss")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
THRESHOLD_OBJECTIVES = ("mcc", "specificity", "sensitivity", "fixed")
TOO_LONG = ("truncate", "error")
LABEL_SOURCES = ("header", "column", "files", "split")
SPLIT_METHODS = ("random", "protein", "identity")


def _choice(name: str, value, allowed) -> None:
    if value not in allowed:
        raise ConfigError(f"{name}={value!r} is not allowed; choose one of {', '.join(map(str, allowed))}")


def _range(name: str, value, lo=None, hi=None, *, lo_open=False, hi_open=False) -> None:
    bad = (lo is not None and (value < lo or (lo_open and value == lo))) or (
        hi is not None and (value > hi or (hi_open and value == hi))
    )
    if bad:
        lo_s = "" if lo is None else f"{'>' if lo_open else '>='} {lo}"
        hi_s = "" if hi is None else f"{'<' if hi_open else '<='} {hi}"
        raise ConfigError(f"{name}={value!r} is out of range; it must be {' and '.join(filter(None, [lo_s, hi_s]))}")


@dataclass(frozen=True)
class DataSpec:
    """Where the labelled data comes from and how it is split."""

    train: tuple[str, ...] = ()
    class_files: tuple[tuple[str, str], ...] = ()  # (class name, path): one file per class
    test: str | None = None
    label_source: str = "header"
    label_column: str | None = None
    id_column: str | None = None
    sequence_column: str | None = None
    group_column: str | None = None
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    split_seed: int = 42
    stratify: bool = True
    split_method: str = "random"
    identity_threshold: float = 0.5
    dataset: str | None = None  # name of the app dataset it came from, for display

    def __post_init__(self):
        object.__setattr__(self, "train", tuple(self.train))
        object.__setattr__(self, "class_files", tuple(tuple(p) for p in self.class_files))
        _choice("label_source", self.label_source, LABEL_SOURCES)
        _choice("split_method", self.split_method, SPLIT_METHODS)
        _range("val_fraction", self.val_fraction, 0, 1, hi_open=True)
        _range("test_fraction", self.test_fraction, 0, 1, hi_open=True)
        _range("identity_threshold", self.identity_threshold, 0, 1, lo_open=True)
        if self.val_fraction + self.test_fraction >= 1:
            raise ConfigError(
                f"val_fraction + test_fraction = {self.val_fraction + self.test_fraction} leaves no "
                "training data; keep their sum below 1"
            )


@dataclass(frozen=True)
class TrainConfig:
    """Everything needed to re-run a fine-tuning run."""

    model: str = "facebook/esm2_t6_8M_UR50D"
    family: str | None = None
    pooling: str = "mean"
    lora_r: int = 8
    lora_alpha: float = 16.0
    # 0 by default: on a CPU, dropout's random masks on every adapted layer cost ~30% of a step
    lora_dropout: float = 0.0
    lora_targets: tuple[str, ...] | None = None  # None: the family's defaults
    head_dropout: float = 0.1
    epochs: int = 10
    max_steps: int | None = None  # optimiser steps; overrides epochs when set
    learning_rate: float = 3e-4
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    schedule: str = "linear"
    batch_size: int = 8
    grad_accum: int = 1
    class_weights: str = "none"
    early_stopping_metric: str = "mcc"
    patience: int | None = 5  # evaluations without improvement; None = never stop early
    seed: int = 42
    logging_steps: int = 5
    eval_batch_tokens: int = 2048  # as plmcore.embed.MAX_TOKENS: small batches stay in cache (bench/)
    max_length: int | None = None  # residues; None = the model's limit
    too_long: str = "truncate"
    device: str = "auto"
    precision: str = "auto"
    threads: int | None = None
    checkpoint_every_epochs: int = 1
    baselines: bool = True  # fit simple baselines on the same split and compare
    threshold_objective: str = "mcc"  # how the decision threshold is chosen on validation
    threshold_target: float | None = None  # for objective specificity/sensitivity
    temperature_scaling: bool = False  # calibrate probabilities on validation
    data: DataSpec = field(default_factory=DataSpec)

    def __post_init__(self):
        if isinstance(self.data, dict):
            object.__setattr__(self, "data", DataSpec(**self.data))
        if self.lora_targets is not None:
            object.__setattr__(self, "lora_targets", tuple(self.lora_targets))
            if not self.lora_targets:
                raise ConfigError("lora_targets is empty; give module names such as query,value or omit it")
        _choice("pooling", self.pooling, POOLINGS)
        _choice("schedule", self.schedule, SCHEDULES)
        _choice("class_weights", self.class_weights, CLASS_WEIGHTS)
        _choice("early_stopping_metric", self.early_stopping_metric, STOP_METRICS)
        _choice("precision", self.precision, PRECISIONS)
        _choice("too_long", self.too_long, TOO_LONG)
        _choice("threshold_objective", self.threshold_objective, THRESHOLD_OBJECTIVES)
        if self.threshold_objective in ("specificity", "sensitivity"):
            if self.threshold_target is None:
                raise ConfigError(f"threshold_objective={self.threshold_objective!r} needs threshold_target, "
                                  "e.g. 0.9 for 90% on the validation split")
            _range("threshold_target", self.threshold_target, 0, 1, lo_open=True)
        _range("lora_r", self.lora_r, 1)
        _range("lora_alpha", self.lora_alpha, 0, lo_open=True)
        _range("lora_dropout", self.lora_dropout, 0, 1, hi_open=True)
        _range("head_dropout", self.head_dropout, 0, 1, hi_open=True)
        _range("epochs", self.epochs, 1)
        if self.max_steps is not None:
            _range("max_steps", self.max_steps, 1)
        _range("learning_rate", self.learning_rate, 0, 1, lo_open=True)
        _range("weight_decay", self.weight_decay, 0)
        _range("warmup_ratio", self.warmup_ratio, 0, 1, hi_open=True)
        _range("batch_size", self.batch_size, 1)
        _range("grad_accum", self.grad_accum, 1)
        if self.patience is not None:
            _range("patience", self.patience, 1)
        _range("logging_steps", self.logging_steps, 1)
        _range("eval_batch_tokens", self.eval_batch_tokens, 64)
        if self.max_length is not None:
            _range("max_length", self.max_length, 1)
        _range("checkpoint_every_epochs", self.checkpoint_every_epochs, 1)

    @property
    def metric_mode(self) -> str:
        """'min' for losses, 'max' for scores."""
        return "min" if self.early_stopping_metric == "val_loss" else "max"

    def to_dict(self) -> dict:
        return asdict(self)

    def save(self, path: Path | str) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def from_dict(cls, raw: dict) -> TrainConfig:
        if not isinstance(raw, dict):
            raise ConfigError(f"a config is a JSON object of settings; got {type(raw).__name__}")
        raw = dict(raw)
        # Running a model's own code is decided in the current session (CLI flag, or the app's
        # local-only switch), never by a file: configs from older versions may still carry it.
        if raw.pop("trust_remote_code", False):
            import logging

            logging.getLogger("plmcore.config").warning(
                "trust_remote_code in a config file is ignored; pass --trust-remote-code to run a model's own code")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ConfigError(f"unknown setting(s) {', '.join(unknown)} in config; allowed: {', '.join(sorted(known))}")
        raw = dict(raw)
        if isinstance(raw.get("data"), dict):
            data_known = {f.name for f in fields(DataSpec)}
            bad = sorted(set(raw["data"]) - data_known)
            if bad:
                raise ConfigError(f"unknown data setting(s) {', '.join(bad)}; allowed: {', '.join(sorted(data_known))}")
            raw["data"] = DataSpec(**raw["data"])
        return cls(**raw)

    @classmethod
    def load(cls, path: Path | str) -> TrainConfig:
        try:
            raw = json.loads(Path(path).read_text())
        except FileNotFoundError as exc:
            raise ConfigError(f"{path} does not exist; a run directory needs its config.json") from exc
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path} is not valid JSON (line {exc.lineno}): {exc.msg}") from exc
        return cls.from_dict(raw)

    def replace(self, **changes) -> TrainConfig:
        return replace(self, **changes)
