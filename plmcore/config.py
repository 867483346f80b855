"""Run configuration: every setting declared once, validated, saved as config.json in each run.

Each setting is one dataclass field. Its type gives the allowed values (``Literal[...]`` for a
choice), the field's default is the default, and its metadata holds the help text, the range of
a number, the words the app shows for each choice and how the command line spells it. The
command line (plmcore.cli) and the app's widgets (plmcore.ui.setting_input) are generated from
these fields, and ``validate`` checks any value against them in one place, the way
huggingface/peft's LoraConfig and scikit-learn's ``_parameter_constraints`` do.
"""

from __future__ import annotations

import json
import types
import typing
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from functools import cache
from pathlib import Path
from typing import Any, Literal

from plmcore.errors import ConfigError

# The choice settings: {value: the words the app shows for it}. Each Literal type below is made
# from its dict, so a choice's values are written once.
POOLINGS = {"mean": "mean over residues", "cls": "first token (CLS)", "center": "centre residue (the site)"}
SCHEDULES = {"linear": "linear decay", "cosine": "cosine decay", "constant": "constant"}
CLASS_WEIGHTS = {"none": "none", "balanced": "balanced (rarer classes weigh more)"}
STOP_METRICS = {"auto": "the task's own (MCC; Spearman for regression; ROC-AUC for multi-label)", "mcc": "MCC",
                "roc_auc": "ROC-AUC", "pr_auc": "PR-AUC", "accuracy": "Accuracy", "f1": "F1",
                "spearman": "Spearman correlation", "pearson": "Pearson correlation", "r2": "R²", "rmse": "RMSE",
                "mae": "MAE", "val_loss": "validation loss"}
# metrics where lower is better
LOWER_IS_BETTER = frozenset({"val_loss", "rmse", "mae", "brier"})
TASKS = {"auto": "from the labels", "classification": "classification: one class per sequence",
         "regression": "regression: a number per sequence",
         "multilabel": "multi-label: several labels per sequence",
         "residue": "per-residue: a class for each residue"}
REGRESSION_LOSSES = {"mse": "mean squared error", "huber": "Huber (less swayed by outliers)"}
PRECISIONS = {"auto": "auto", "fp32": "fp32", "bf16": "bf16", "fp16": "fp16"}
CHECKPOINTINGS = {"auto": "auto (on when the estimate says the run would not fit in memory)", "on": "on",
                  "off": "off"}
# How the frozen base weights are stored. Everything but fp32 is GPU-only (plmcore.models.load_backbone);
# the LoRA adapters and the head always train in fp32.
BASE_WEIGHTS = {"fp32": "fp32", "bf16": "bf16 (GPU only)", "int8": "8-bit, bitsandbytes (GPU only)",
                "int4": "4-bit NF4, QLoRA via bitsandbytes (GPU only)"}
GPU_ONLY_BASE_WEIGHTS = ("bf16", "int8", "int4")
THRESHOLD_OBJECTIVES = {"mcc": "best MCC on validation", "specificity": "target specificity",
                        "sensitivity": "target sensitivity", "fixed": "fixed at 0.5"}
TOO_LONG = {"truncate": "truncate", "error": "refuse"}
LABEL_SOURCES = {"auto": "by file type", "header": "FASTA header tags", "column": "a table column"}
HEADERS = {"auto": "detect it", "yes": "the first row names the columns",
           "no": "no header row: columns are numbered from 0"}
ENGINES = {"auto": "measured choice (plmcore/perf_profile.json)", "single": "one process",
           "multi": "data-parallel processes (torchrun), one per core on a CPU"}
COMPILES = {"auto": "measured choice (plmcore/perf_profile.json)", "on": "torch.compile", "off": "eager"}
SPLIT_METHODS = {"random": "random, stratified by label", "protein": "grouped by protein (UniProt accession)",
                 "identity": "by sequence identity (clusters never straddle splits)"}

Pooling = Literal[tuple(POOLINGS)]
Schedule = Literal[tuple(SCHEDULES)]
ClassWeights = Literal[tuple(CLASS_WEIGHTS)]
StopMetric = Literal[tuple(STOP_METRICS)]
Precision = Literal[tuple(PRECISIONS)]
Checkpointing = Literal[tuple(CHECKPOINTINGS)]
BaseWeights = Literal[tuple(BASE_WEIGHTS)]
ThresholdObjective = Literal[tuple(THRESHOLD_OBJECTIVES)]
TooLong = Literal[tuple(TOO_LONG)]
LabelSource = Literal[tuple(LABEL_SOURCES)]
Task = Literal[tuple(TASKS)]
RegressionLoss = Literal[tuple(REGRESSION_LOSSES)]
SplitMethod = Literal[tuple(SPLIT_METHODS)]
Header = Literal[tuple(HEADERS)]
Engine = Literal[tuple(ENGINES)]
Compile = Literal[tuple(COMPILES)]


def setting(default: Any = MISSING, help: str = "", *, label: str | None = None, choices: dict | None = None,
            lo: float | None = None, hi: float | None = None, lo_open: bool = False, hi_open: bool = False,
            flag: str | None = None, aliases: tuple[str, ...] = (), cli: bool = True, group: str = "training",
            none: str | None = None, metavar: str | None = None, step: float | None = None,
            format: str | None = None, factory: Any = MISSING, widget: str | None = None):
    """A dataclass field that declares one setting.

    Args:
        help: what it does, for --help and the app's tooltips.
        label: the app's short name for it.
        choices: {value: words shown in the app} for a Literal setting.
        lo, hi, lo_open, hi_open: the allowed range of a number.
        flag, aliases: the command-line spelling (default --name-with-dashes).
        cli: False for fields that are recorded but not set on the command line.
        none: what None means, when None is allowed (e.g. "the model's limit").
        step, format: how the app's number box steps and shows the value.
        widget: how messages name the setting's control in the app (default: its label in quotes).
    """
    meta = {"help": help, "label": label, "choices": choices, "lo": lo, "hi": hi, "lo_open": lo_open,
            "hi_open": hi_open, "flag": flag, "aliases": aliases, "cli": cli, "group": group, "none": none,
            "metavar": metavar, "step": step, "format": format, "widget": widget}
    if factory is not MISSING:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


# --------------------------------------------------------------------------- introspection


@cache
def _hints(cls) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def spec(cls, name: str) -> dict:
    """The declaration of one setting: its metadata plus default, base type, choices and whether None is allowed."""
    f = next((f for f in fields(cls) if f.name == name), None)
    if f is None:
        raise ConfigError(f"{cls.__name__} has no setting {name!r}")
    kind = _hints(cls)[name]
    optional = False
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(kind) if a is not type(None)]
        optional = len(args) < len(typing.get_args(kind))
        kind = args[0]
    values = tuple(typing.get_args(kind)) if typing.get_origin(kind) is Literal else None
    base = type(values[0]) if values else (typing.get_origin(kind) or kind)
    default = f.default if f.default is not MISSING else f.default_factory()
    return {**f.metadata, "name": name, "default": default, "type": base, "values": values, "optional": optional}


def choices(cls, name: str) -> tuple:
    """The allowed values of a choice setting, in declaration order."""
    values = spec(cls, name)["values"]
    if values is None:
        raise ConfigError(f"{cls.__name__}.{name} is not a choice")
    return values


def default(cls, name: str):
    return spec(cls, name)["default"]


def describe_range(s: dict) -> str:
    parts = []
    if s["lo"] is not None:
        parts.append(f"{'>' if s['lo_open'] else '>='} {s['lo']:g}")
    if s["hi"] is not None:
        parts.append(f"{'<' if s['hi_open'] else '<='} {s['hi']:g}")
    return " and ".join(parts)


def _check(cls, name: str, value) -> None:
    s = spec(cls, name)
    if value is None:
        if not s["optional"]:
            raise ConfigError(f"{name} is required; it cannot be empty")
        return
    where = f"{name}={value!r}"
    if s["values"] is not None:
        if value not in s["values"]:
            raise ConfigError(f"{where} is not allowed; choose one of {', '.join(map(str, s['values']))}")
        return
    kind = s["type"]
    if kind is bool:
        ok = isinstance(value, bool)
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif kind is str:
        ok = isinstance(value, str)
    elif kind is tuple:
        ok = isinstance(value, tuple)
    else:
        ok = True
    if not ok:
        raise ConfigError(f"{where} has the wrong type; {name} takes {getattr(kind, '__name__', kind)}")
    if kind in (int, float):
        lo, hi = s["lo"], s["hi"]
        bad = (lo is not None and (value < lo or (s["lo_open"] and value == lo))) or (
            hi is not None and (value > hi or (s["hi_open"] and value == hi)))
        if bad:
            raise ConfigError(f"{where} is out of range; it must be {describe_range(s)}")


def validate(obj) -> None:
    """Check every setting of a config dataclass against its declaration (nested ones check themselves)."""
    for f in fields(obj):
        s = spec(type(obj), f.name)
        if s["values"] is not None or s["type"] in (bool, int, float, str, tuple):
            _check(type(obj), f.name, getattr(obj, f.name))


def known_keys(cls, raw: dict, what: str) -> None:
    """Refuse keys that are not settings of `cls`, naming them and the allowed ones."""
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"unknown {what}(s) {', '.join(unknown)} in config; allowed: {', '.join(sorted(known))}")


# --------------------------------------------------------------------------- the settings


@dataclass(frozen=True)
class DataSpec:
    """Where the labelled data comes from and how it is split."""

    train: tuple[str, ...] = setting(
        (), "FASTA/CSV/TSV file(s) with labelled sequences", group="data", metavar="FILE")
    class_files: tuple[tuple[str, str], ...] = setting(
        (), "one file per class, CLASS=FILE or FILE (class from its name: train_Pos_ST.fasta is Pos_ST); repeat the "
        "flag for each class", group="data", flag="--class-file",
        metavar="CLASS=FILE")
    test: str | None = setting(
        None, "a separate labelled test file", group="data", metavar="FILE",
        none="a test split is held out of the training data")
    split_file: str | None = setting(
        None, "a split table (id, sequence, label, split) to train on exactly as it is, such as a run's "
        "split.csv; a relative path is read from the config file's folder", group="data", metavar="CSV",
        none="split the files as the split settings say")
    label_source: LabelSource = setting(
        "auto", "where the labels are: FASTA header tags (LABEL=1), a table column, or auto (header for FASTA, "
        "column for tables)", group="data",
        choices=LABEL_SOURCES)
    test_class_files: tuple[tuple[str, str], ...] = setting(
        (), "one test file per class, CLASS=FILE or FILE (class from its name: test_Pos_ST.fasta is Pos_ST); repeat "
        "the flag for each class; instead of --test",
        group="data", flag="--test-class-file", metavar="CLASS=FILE",
        widget="the test files of 'One file per class' on the Data page")
    header: Header = setting(
        "auto", "whether a table's first row names its columns; without one, columns are numbered from 0",
        group="data", label="Header row", choices=HEADERS, widget="the 'Header row' choice on the Data page")
    label_column: str | None = setting(
        None, "table column holding the labels, by name or 0-based number", group="data",
        none="label, class, target or y", widget="the 'Label' role in the column mapper")
    id_columns: tuple[str, ...] | None = setting(
        None, "table column(s) whose values, joined with _, make each record's id, e.g. accession,site "
        "(names or 0-based numbers)", group="data", aliases=("--id-column",), metavar="COLUMNS",
        none="id, name or accession; repeated ids get _2, _3", widget="the 'Id part' role in the column mapper")
    sequence_column: str | None = setting(
        None, "table column holding the sequences, by name or 0-based number", group="data",
        none="sequence, seq or window; without a header, the column of longest protein sequences",
        widget="the 'Sequence' role in the column mapper")
    group_column: str | None = setting(
        None, "table column naming each record's protein: its values never straddle splits", group="data",
        none="an accession column, else the UniProt accession in the id",
        widget="the 'Group' role in the column mapper")
    position_column: str | None = setting(
        None, "table column holding the site's position in its protein (kept as 'position')", group="data",
        none="position, pos or site; without a header, the most varied number column",
        widget="the 'Position' role in the column mapper")
    class_names: tuple[tuple[str, str], ...] = setting(
        (), "a display name for a class, CLASS=NAME (repeat for each), e.g. 1=phosphosite", group="data",
        flag="--class-name", metavar="CLASS=NAME", widget="the class names on the Data page")
    split_method: SplitMethod = setting(
        "random", "how records are split: at random, grouped by protein, or by sequence-identity clusters",
        group="data", label="How to split",
        choices=SPLIT_METHODS)
    val_fraction: float = setting(0.1, "fraction of the training data held out for validation", group="data",
                                  label="Validation fraction", lo=0, hi=1, hi_open=True)
    test_fraction: float = setting(0.1, "fraction held out for testing (ignored with a test file)", group="data",
                                   label="Test fraction", lo=0, hi=1, hi_open=True)
    split_seed: int = setting(42, "seed of the split", group="data", label="Seed", lo=0)
    stratify: bool = setting(True, "keep class proportions equal across splits", group="data",
                             label="Stratify by label")
    identity_threshold: float = setting(
        0.5, "sequence identity at which records are kept on one side (split method identity)", group="data",
        label="Identity threshold", lo=0, hi=1, lo_open=True)
    sites_file: str | None = setting(
        None, "per-residue labels as a table of id, position (1-based) and label, for the proteins of the "
        "training and test FASTA files; residues of the listed types that it does not list are negatives (0)",
        group="data", metavar="CSV", none="labels come with the sequences")
    dataset: str | None = setting(None, "name of the app dataset the data came from", cli=False)

    def __post_init__(self):
        object.__setattr__(self, "train", tuple(self.train))
        for name in ("class_files", "test_class_files", "class_names"):
            object.__setattr__(self, name, tuple(tuple(p) for p in getattr(self, name)))
        if self.id_columns is not None:
            object.__setattr__(self, "id_columns", tuple(str(c) for c in self.id_columns))
        for name in ("label_column", "sequence_column", "group_column", "position_column"):
            if isinstance(getattr(self, name), int):  # a column number in a config file
                object.__setattr__(self, name, str(getattr(self, name)))
        validate(self)
        if self.test and self.test_class_files:
            raise ConfigError("give the test data once: either {test} or {test_class_files}, not both")
        if self.val_fraction + self.test_fraction >= 1:
            raise ConfigError(
                f"val_fraction + test_fraction = {self.val_fraction + self.test_fraction:g} leaves no "
                "training data; keep their sum below 1"
            )

    @classmethod
    def from_dict(cls, raw: dict) -> DataSpec:
        if not isinstance(raw, dict):
            raise ConfigError(f"the data settings are a JSON object; got {type(raw).__name__}")
        raw = dict(raw)
        if raw.get("label_source") in ("files", "split"):  # written by earlier versions; now implied
            raw["label_source"] = "auto"
        if "id_column" in raw:  # written by earlier versions: one id column
            old = raw.pop("id_column")
            raw.setdefault("id_columns", None if old is None else [old])
        known_keys(cls, raw, "data setting")
        return cls(**raw)

    def split_settings(self) -> dict:
        """How the split is made, as recorded with a run."""
        return {k: getattr(self, k) for k in ("split_method", "val_fraction", "test_fraction", "split_seed",
                                              "stratify", "identity_threshold", "group_column")}


@dataclass(frozen=True)
class TrainConfig:
    """Everything needed to re-run a fine-tuning run."""

    model: str = setting("facebook/esm2_t6_8M_UR50D", "preset or hub id, local folder, or random:<preset>",
                         group="model", label="Model")
    family: str | None = setting(None, "model family (esm, bert, t5, ankh, other)", group="model",
                                 none="detected from the model's config")
    pooling: Pooling = setting("mean", "how per-residue states become one vector per sequence", group="model",
                               label="Pooling", choices=POOLINGS)
    lora_r: int = setting(8, "LoRA rank", group="model", label="LoRA rank", lo=1, hi=1024)
    lora_alpha: float = setting(16.0, "LoRA scaling numerator (alpha / rank scales the update)", group="model",
                                label="LoRA alpha", lo=0, lo_open=True, step=1.0)
    # 0 by default: on a CPU, dropout's random masks on every adapted layer cost ~30% of a step
    lora_dropout: float = setting(0.0, "dropout on the LoRA input (0 is fastest on a CPU)", group="model",
                                  label="LoRA dropout", lo=0, hi=1, hi_open=True)
    lora_targets: tuple[str, ...] | None = setting(
        None, "module names to adapt, comma-separated", group="model", label="LoRA target modules",
        none="the family's attention projections")
    head_dropout: float = setting(0.1, "dropout in the classification head", group="model", lo=0, hi=1,
                                  hi_open=True)
    epochs: int = setting(10, "passes over the training data", label="Epochs", lo=1, hi=10_000)
    max_steps: int | None = setting(None, "optimiser steps; overrides epochs", lo=1, none="set by epochs")
    learning_rate: float = setting(3e-4, "peak learning rate", label="Learning rate", lo=0, hi=1, lo_open=True,
                                   flag="--lr", aliases=("--learning-rate",), step=1e-4, format="%.0e")
    weight_decay: float = setting(0.01, "AdamW weight decay", lo=0)
    warmup_ratio: float = setting(0.1, "fraction of the steps spent warming the learning rate up", lo=0, hi=1,
                                  hi_open=True)
    schedule: Schedule = setting("linear", "learning-rate schedule after warm-up",
                                 choices=SCHEDULES)
    batch_size: int = setting(8, "sequences per batch", label="Batch size", lo=1, hi=4096)
    grad_accum: int = setting(1, "batches per optimiser step", label="Gradient accumulation", lo=1, hi=1024)
    class_weights: ClassWeights = setting("none", "weigh rarer classes more in the loss", label="Class weights",
                                          choices=CLASS_WEIGHTS)
    early_stopping_metric: StopMetric = setting(
        "auto", "validation metric that picks the best checkpoint and stops training early (auto: MCC for "
        "classification, ROC-AUC per residue, Spearman for regression, macro ROC-AUC for multi-label)",
        label="Early-stopping metric",
        choices=STOP_METRICS)
    patience: int | None = setting(5, "evaluations without improvement before stopping (0 on the command line: "
                                   "never)", label="Patience (epochs, 0 = off)", lo=1, none="never stop early")
    seed: int = setting(42, "seed of initialisation, batch order and dropout", label="Seed", lo=0)
    logging_steps: int = setting(5, "optimiser steps between logged training losses", lo=1)
    eval_batch_tokens: int = setting(2048, "padded tokens per evaluation batch", lo=64)
    max_length: int | None = setting(None, "longest sequence in residues", lo=1, none="the model's limit")
    too_long: TooLong = setting("truncate", "what to do with longer sequences",
                                choices=TOO_LONG)
    device: str = setting("auto", "auto, cpu, cuda, cuda:1 or mps")
    precision: Precision = setting("auto", "bf16/fp16 autocast on a GPU (auto: bf16 where supported); CPUs "
                                   "always use fp32",
                                   choices=PRECISIONS)
    gradient_checkpointing: Checkpointing = setting(
        "auto", "recompute each layer's activations in the backward pass instead of keeping them: less memory, "
        "more time per step (README, Performance: Big models); auto turns it on when the memory "
        "estimate says the run would not fit in the memory available", label="Gradient checkpointing",
        choices=CHECKPOINTINGS)
    base_weights: BaseWeights = setting(
        "fp32", "how the frozen base model's weights are held: fp32, or on a CUDA GPU only bf16, or 8-bit / 4-bit "
        "(QLoRA, needs bitsandbytes); the LoRA adapters and the head always train in fp32",
        label="Base weights", choices=BASE_WEIGHTS)
    threads: int | None = setting(None, "CPU threads for torch", label="CPU threads", lo=1, none="all cores")
    # --- speed (plmcore.engine): the same function, computed faster; chosen from measurement
    engine: Engine = setting(
        "auto", "how training runs: one process, or data-parallel processes through torchrun with the same global "
        "batch (auto: what plmcore/perf_profile.json measured on this machine; multi only when it was faster for "
        "a run this long)", label="Training engine", choices=ENGINES)
    compile: Compile = setting(
        "auto", "torch.compile the training steps, with the compiled code cached on disk (PLMCORE_HOME/inductor) so "
        "the compile is paid once per machine, model and batch shape (auto: as measured in "
        "plmcore/perf_profile.json)",
        label="Compile the model", choices=COMPILES)
    # --- end speed
    checkpoint_every_epochs: int = setting(1, "epochs between checkpoints", lo=1)
    baselines: bool = setting(True, "fit composition, one-hot and frozen-embedding baselines on the same split "
                              "and compare them with the fine-tuned model", label="Baselines", group="evaluation")
    threshold_objective: ThresholdObjective = setting(
        "mcc", "how the decision threshold is chosen on validation", label="Decision threshold",
        group="evaluation",
        choices=THRESHOLD_OBJECTIVES)
    threshold_target: float | None = setting(
        None, "target specificity or sensitivity, e.g. 0.9", label="Target (for specificity / sensitivity)",
        group="evaluation", lo=0, hi=1, lo_open=True, none="no target")
    temperature_scaling: bool = setting(False, "calibrate probabilities on validation", label="Temperature scaling",
                                        group="evaluation")
    task: Task = setting("auto", "what to predict: a class, a number or several labels per sequence, or a class "
                         "per residue; auto decides from the labels", label="Task", group="task", choices=TASKS)
    residues: str | None = setting(
        None, "per-residue task: the residue types that are examples, e.g. STY for phosphosites", group="task",
        label="Residues that count", none="every labelled residue")
    regression_loss: RegressionLoss = setting("mse", "regression loss", group="task", label="Regression loss",
                                              choices=REGRESSION_LOSSES)
    standardize_targets: bool = setting(
        True, "regression: train on targets scaled to mean 0 and sd 1 (from the training split); predictions are "
        "scaled back", group="task", label="Standardise targets")
    chunk_overlap: int = setting(
        64, "per-residue task: residues shared by consecutive chunks of a protein longer than the model takes; "
        "predictions in the overlap are averaged", group="task", lo=0)
    data: DataSpec = setting(help="where the data comes from and how it is split", factory=DataSpec, cli=False)
    # What the run was made from (files and their hashes, model revision, software, threads):
    # written by the engine, shown on the Runs page, never a setting.
    provenance: dict | None = setting(None, "what the run was made from", cli=False)

    def __post_init__(self):
        if isinstance(self.data, dict):
            object.__setattr__(self, "data", DataSpec.from_dict(self.data))
        if self.lora_targets is not None:
            object.__setattr__(self, "lora_targets", tuple(self.lora_targets))
            if not self.lora_targets:
                raise ConfigError("lora_targets is empty; give module names such as query,value or omit it")
        validate(self)
        if self.provenance is not None and not isinstance(self.provenance, dict):
            raise ConfigError("provenance must be a JSON object")
        if self.residues is not None:
            from plmcore.data import VALID_RESIDUES

            letters = self.residues.strip().upper()
            if not letters or set(letters) - set(VALID_RESIDUES):
                raise ConfigError(f"residues={self.residues!r}: give one-letter residue codes such as STY")
            object.__setattr__(self, "residues", "".join(sorted(set(letters))))
        if self.base_weights in GPU_ONLY_BASE_WEIGHTS and self.device in ("cpu", "mps"):
            raise ConfigError(f"base_weights={self.base_weights!r} needs a CUDA GPU, but device={self.device!r}; "
                              "use base_weights=fp32 on a CPU")
        if self.threshold_objective in ("specificity", "sensitivity") and self.threshold_target is None:
            raise ConfigError(f"threshold_objective={self.threshold_objective!r} needs threshold_target, "
                              "e.g. 0.9 for 90% on the validation split")



    def to_dict(self) -> dict:
        return asdict(self)

    def save(self, path: Path | str) -> None:
        from plmcore.runs import write_json

        write_json(Path(path), self.to_dict())

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
        known_keys(cls, raw, "setting")
        if isinstance(raw.get("data"), dict):
            raw["data"] = DataSpec.from_dict(raw["data"])
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
