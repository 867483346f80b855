"""LoRA fine-tuning. Reads a run directory's config.json and split.csv, writes everything else.

The loop is a plain PyTorch loop driven by HF Accelerate, so the same code runs on a CPU, one
GPU, or several GPUs under `accelerate launch` / `torchrun` with no distribution code here.
Sequences are tokenised once, and batches are padded only to their own longest member.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import random
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from plmcore import data as D
from plmcore import inference, tasks
from plmcore import splits as S
from plmcore.classifier import (
    SequenceClassifier,
    build_classifier,
    load_weights,
    make_batch,
    save_weights,
    set_checkpointing,
)
from plmcore.config import TrainConfig
from plmcore.engine import stop_requested
from plmcore.errors import ConfigError, RunError, SequenceTooLongError
from plmcore.models import count_parameters, load_backbone, set_cpu_threads
from plmcore.runs import Cancelled, RunDir, lifecycle, place, runs_root, staging_dir, storage_error, write_json
from plmcore.state import STATE_FILES, load_state, save_state

log = logging.getLogger("plmcore.train")


# --------------------------------------------------------------------------- preparing a run


def read_labelled(spec, residues: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Read the training (and optional test) files a DataSpec names, unvalidated.

    With a sites table (per-residue labels), each protein's label is its track (data.residue_tracks).
    """
    kw = dict(label_source=spec.label_source, label_column=spec.label_column, id_columns=spec.id_columns,
              sequence_column=spec.sequence_column, group_column=spec.group_column,
              position_column=spec.position_column, header=spec.header)
    layout = {k: v for k, v in kw.items() if k != "label_source"}
    if spec.class_files:
        table = D.read_labelled_files(dict(spec.class_files), **layout)
    elif spec.train:
        table = D.concat_tables([D.read_table(p, **kw) for p in spec.train])
    else:
        raise ConfigError("no training data: give files (CLI: --train FILE, --class-file CLASS=FILE, or --split-file "
                          "CSV with a split made before)")
    if spec.test_class_files:
        test = D.read_labelled_files(dict(spec.test_class_files), **layout)
    else:
        test = D.read_table(spec.test, **kw) if spec.test else None
    if spec.sites_file:
        sites = D.read_sites(spec.sites_file)
        table = D.residue_tracks(table, sites, residues)
        test = D.residue_tracks(test, sites[sites["id"].isin(test["id"])], residues or _types(table)) \
            if test is not None else None
    return table, test


def _types(table: pd.DataFrame) -> str:
    """The residue types that carry labels in per-residue tracks."""
    return "".join(sorted({aa for s, t in zip(table["sequence"], table["label"]) for aa, c in zip(s, t) if c != "."}))


def prepare_split(config: TrainConfig) -> tuple[pd.DataFrame, list]:
    """Read, validate and split the data of a config; return the split table and the warnings."""
    spec = config.data
    if spec.split_file:
        report = D.validate(S.load_split(spec.split_file), max_length=config.max_length, too_long=config.too_long,
                            task=config.task)
        report.raise_for_errors()
        return report.table, list(report.warnings)
    table, test = read_labelled(spec, config.residues)
    vkw = dict(max_length=config.max_length, too_long=config.too_long)
    report = D.validate(table, task=config.task, **vkw)
    report.raise_for_errors()
    warnings = list(report.warnings)
    test_clean = None
    if test is not None:
        test_report = D.validate(test, min_classes=1, task=report.task, **vkw)
        test_report.raise_for_errors()
        warnings += test_report.warnings
        test_clean = test_report.table
    from plmcore.splits import make_split

    # per-residue examples are proteins' residues: a protein always stays on one side of the split
    method = "protein" if report.task == "residue" and spec.split_method == "random" else spec.split_method
    split, info = make_split(
        report.table, method=method, val_fraction=spec.val_fraction, test_fraction=spec.test_fraction,
        seed=spec.split_seed, stratify=spec.stratify and report.task == "classification", test_table=test_clean,
        group_column=spec.group_column, identity_threshold=spec.identity_threshold,
    )
    log.info("Split: %s", info)
    return split, warnings


def create_run(config: TrainConfig, split: pd.DataFrame | None = None, *, run_dir=None, root=None,
               created_by: str = "cli", files: list[dict] | None = None) -> RunDir:
    """Write a new run directory (config.json, split.csv, status queued), ready for a worker.

    The saved config names the run's own split.csv as its split_file and records where
    everything came from (plmcore.provenance), so `train --config RUN/config.json` re-runs it
    exactly. The files are written to a hidden staging folder, which is renamed into place only
    when complete: a full disk or a crash never leaves half a run in the list.
    """
    from plmcore.provenance import start_record

    if split is None:
        split, warnings = prepare_split(config)
    else:
        warnings = []
    record = start_record(config, split, created_by=created_by, files=files)
    config = config.replace(data=dataclasses.replace(config.data, split_file="split.csv"), provenance=record)
    final = Path(run_dir) if run_dir else None
    if final is not None:
        if RunDir(final).exists():
            raise RunError(f"{final} already holds a run; choose a new --run-dir or add --resume")
        if final.is_dir() and any(final.iterdir()):
            raise RunError(f"{final} exists and is not empty; choose a new --run-dir")
    parent = final.parent if final is not None else runs_root(root)
    staged = staging_dir(parent)
    try:
        stage = RunDir(staged)
        config.save(stage.config_path)
        S.save_split(split, stage.split_path)
        stage.write_status("queued", created_at=time.time(), warnings=[w.message for w in warnings])
    except OSError as exc:
        shutil.rmtree(staged, ignore_errors=True)
        raise storage_error(exc, parent) from exc
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    return place(staged, final, parent, config.model)


# --------------------------------------------------------------------------- batching


class EpochBatches(torch.utils.data.Sampler):
    """Shuffled batches, seeded per epoch, grouped by length so little padding is computed.

    Deterministic from (seed, epoch), so a resumed run replays the same order and skips the
    batches it had already done.
    """

    def __init__(self, lengths, batch_size: int, seed: int):
        self.lengths = np.asarray(lengths)
        self.batch_size = batch_size
        self.seed = seed
        self.epoch = 0
        self.skip = 0

    def batches(self, epoch: int) -> list[list[int]]:
        rng = np.random.default_rng([self.seed, epoch])
        idx = rng.permutation(len(self.lengths))
        if len(np.unique(self.lengths)) > 1:
            # sort inside chunks of 50 batches: near-equal lengths per batch, still random
            chunk = self.batch_size * 50
            parts = [idx[i:i + chunk] for i in range(0, len(idx), chunk)]
            idx = np.concatenate([p[np.argsort(self.lengths[p], kind="stable")] for p in parts])
        out = [idx[i:i + self.batch_size].tolist() for i in range(0, len(idx), self.batch_size)]
        order = rng.permutation(len(out))
        batches = [out[i] for i in order]
        # a partial batch goes last, where data-parallel sharding (accelerate) expects it
        return sorted(batches, key=lambda b: len(b) < self.batch_size)

    def __iter__(self):
        yield from self.batches(self.epoch)[self.skip:]

    def __len__(self) -> int:
        return math.ceil(len(self.lengths) / self.batch_size) - self.skip


@dataclass
class Encoded:
    """One split, tokenised: the model's examples and their targets.

    For per-residue tasks an example is a chunk of a protein (`spans`: record, start, end), its
    target the slice of the record's track, and `tracks` holds each record's whole track.
    """

    tokens: list[np.ndarray]
    labels: np.ndarray | list[np.ndarray]
    ids: list[str]
    spans: list[tuple[int, int, int]] | None = None
    tracks: list[np.ndarray] | None = None
    lengths: list[int] | None = None

    def __len__(self) -> int:
        return len(self.ids)


class _Collate:
    def __init__(self, enc: Encoded, encoder):
        self.enc, self.encoder = enc, encoder

    def __call__(self, idx: list[int]):
        batch = make_batch([self.enc.tokens[i] for i in idx], self.encoder)
        if self.enc.spans is None:
            return batch, torch.from_numpy(np.asarray(self.enc.labels)[idx])
        target = torch.full(batch.input_ids.shape, tasks.IGNORE, dtype=torch.long)  # specials and padding
        for row, i in enumerate(idx):
            t = self.enc.labels[i]
            target[row, self.encoder.offset:self.encoder.offset + len(t)] = torch.from_numpy(t)
        return batch, target


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


# --------------------------------------------------------------------------- the run


def mixed_precision(config: TrainConfig, device_type: str) -> str:
    """'no' on CPU (bf16 there is far slower than fp32); bf16 or fp16 autocast on a GPU."""
    if config.precision == "fp32" or device_type != "cuda":
        if config.precision in ("bf16", "fp16") and device_type == "cpu":
            log.warning("precision=%s ignored on CPU: half precision is only used on a GPU", config.precision)
        return "no"
    if config.precision in ("bf16", "fp16"):
        return config.precision
    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"


def checkpointing_for(config: TrainConfig, train_rows: pd.DataFrame, n_outputs: int,
                      device_type: str) -> tuple[bool, str]:
    """Whether this run uses gradient checkpointing, and the sentence that says why.

    `auto` asks plmcore.estimate whether the run (its longest training sequence, its batch) fits in
    the memory available now; on/off are the user's.
    """
    from plmcore.estimate import estimate

    lengths = train_rows["sequence"].str.len()
    longest = int(min(lengths.max(), config.max_length or lengths.max())) if len(lengths) else 1
    est = estimate(config.model, n_train=len(train_rows), window_tokens=longest, r=config.lora_r,
                   targets=config.lora_targets, batch_size=config.batch_size, n_classes=max(2, n_outputs),
                   device_type=device_type, gradient_checkpointing=config.gradient_checkpointing,
                   base_weights=config.base_weights, timing=False)
    if est is None:
        on = config.gradient_checkpointing == "on"
        return on, (f"Gradient checkpointing is {'on' if on else 'off'}: no size estimate for {config.model} "
                    "(auto keeps it off)")
    return est.checkpointing, est.checkpointing_note


def _adamw(params, config: TrainConfig) -> torch.optim.Optimizer:
    """AdamW, with the fused single-kernel update where this torch build has it (same update rule)."""
    try:
        return torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=config.weight_decay, fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=config.weight_decay)


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _fit_lengths(table: pd.DataFrame, limit: int, policy: str) -> pd.DataFrame:
    too_long = table["sequence"].str.len() > limit
    if not too_long.any():
        return table
    names = ", ".join(f"{i} ({n} residues)" for i, n in
                      zip(table.loc[too_long, "id"][:5], table.loc[too_long, "sequence"].str.len()[:5]))
    if policy == "error":
        raise SequenceTooLongError(
            f"{int(too_long.sum())} sequence(s) are longer than the model's limit of {limit} residues: "
            f"{names}. Fix: shorten them (e.g. cut windows around the sites) or set too_long=truncate."
        )
    log.warning("Truncated %d sequence(s) to the model's limit of %d residues: %s",
                int(too_long.sum()), limit, names)
    table = table.copy()
    table.loc[too_long, "sequence"] = table.loc[too_long, "sequence"].str[:limit]
    return table


def train_run(run_dir: Path | str, *, resume: bool = False, progress: bool = False,
              trust_remote_code: bool = False) -> dict:
    """Train the run in `run_dir` to the end; return its final status.

    `trust_remote_code` lets the model's own code run; it is the caller's decision, never a file's.
    SIGTERM stops it cleanly: the last checkpoint is saved and the status becomes `cancelled`.
    Any other failure leaves status `failed` with the reason, and the log (plmcore.runs.lifecycle).
    """
    from plmcore import engine

    run = RunDir(run_dir).require()
    if engine.is_worker():  # one of the processes engine.run_processes started
        with engine.worker_lifecycle(run) as stop:
            config = run.config()
            trainer = Trainer(run, config, stop=stop, trust_remote_code=trust_remote_code,
                              compiled=os.environ.get("PLMCORE_COMPILE") == "1").setup(resume)
            trainer.fit()
            trainer.finish()
        return run.read_status()
    with lifecycle(run) as stop:
        config = run.config()
        split = S.load_split(run.split_path)
        plan = engine.plan(config, int((split["split"] == "train").sum()))
        if plan.engine == "multi":
            engine.run_processes(run, plan, stop, resume=resume, trust_remote_code=trust_remote_code)
        else:
            log.info("Engine: one process (%s)%s", plan.why, ", compiled" if plan.compile else "")
            trainer = Trainer(run, config, stop=stop, show_progress=progress, trust_remote_code=trust_remote_code,
                              compiled=plan.compile).setup(resume)
            trainer.fit()
            trainer.finish()
    return run.read_status()


class Trainer:
    """One run's training: `setup()` loads data and model, `fit()` trains, `finish()` reports.

    Split in three so tests and benchmarks can look at the model between the steps.
    """

    def __init__(self, run: RunDir, config: TrainConfig | None = None, *, stop: dict | None = None,
                 show_progress: bool = False, trust_remote_code: bool = False, compiled: bool = False):
        self.run = run
        self.compiled = compiled
        self.trust_remote_code = trust_remote_code
        self.config = config or run.config()
        self.stop = stop if stop is not None else {"flag": False}
        self.show_progress = show_progress
        self.t_start = time.time()
        self.state = {"step": 0, "epoch": 0, "batch": 0, "best": None, "best_step": None, "bad_evals": 0}
        self.stopped_early = False

    # ------------------------------------------------------------------ setup
    def setup(self, resume: bool = False) -> Trainer:
        from accelerate import Accelerator, DataLoaderConfiguration
        from transformers import get_scheduler

        from plmcore import engine

        config, run = self.config, self.run
        worker = engine.is_worker()
        # a worker gets its share of the cores from the parent (PLMCORE_THREADS)
        threads = set_cpu_threads(None if worker else config.threads)
        table = S.load_split(run.split_path)
        train_rows = table[table["split"] == "train"]
        task = tasks.resolve(config.task, table["label"].tolist(), table["sequence"].tolist())
        lab = tasks.labelling(task, train_rows["label"].tolist(), table["label"].tolist(), residues=config.residues,
                              standardize=config.standardize_targets,
                              train_sequences=train_rows["sequence"].tolist())
        if task == "classification":
            if len(D.classes_of(train_rows["label"])) < 2:
                raise ConfigError("the training split holds a single class; nothing can be learned")
            info = D.window_info(train_rows)
            lab.window_length, lab.aligned, lab.center_residues = (info["length"], info["aligned"],
                                                                   info["center_residues"])
            lab.window_ends = info["ends"]
        self.lab, self.classes, self.positive = lab, lab.classes, lab.positive
        self.stop_key = tasks.stop_metric(config, task)
        log.info("Task: %s (%s)", task, "chosen" if config.task != "auto" else
                 tasks.detect(table["label"].tolist(), table["sequence"].tolist())[1])
        write_json(run.labels_path, lab.to_dict())

        use_cuda = config.device != "cpu" and torch.cuda.is_available()
        self.accelerator = acc = Accelerator(
            cpu=config.device == "cpu" or worker,
            # data-parallel workers split each batch, so the global batch stays config.batch_size
            dataloader_config=DataLoaderConfiguration(split_batches=worker),
            mixed_precision=mixed_precision(config, "cuda" if use_cuda else "cpu"),
            gradient_accumulation_steps=config.grad_accum,
        )
        self.device = acc.device
        # decided before loading, from the estimate and the memory free now (plmcore.estimate)
        self.checkpointing, self.checkpointing_note = checkpointing_for(config, train_rows, lab.n_outputs,
                                                                        acc.device.type)
        log.info(self.checkpointing_note)
        log.info("Loading %s", config.model)
        backbone = load_backbone(config.model, trust_remote_code=self.trust_remote_code, family=config.family,
                                 base_weights=config.base_weights, device=acc.device)
        limit = min(config.max_length or backbone.max_residues, backbone.max_residues)
        self.limit = limit
        # per-residue tasks cut long proteins into overlapping chunks instead of truncating them
        self.table = table = table if task == "residue" else _fit_lengths(table, limit, config.too_long)
        self.encoder = encoder = backbone.encoder
        # Seeded here, after loading: loading may draw random numbers (a random-weight model is
        # built on first use), and the run must not depend on whether that happened.
        _seed_everything(config.seed)
        model = build_classifier(backbone, lab.n_outputs, config, per_token=task == "residue")
        set_checkpointing(model, self.checkpointing)
        self.trainable, self.total = count_parameters(model)
        log.info("Parameters: %s trainable of %s total (%.2f%%)", f"{self.trainable:,}", f"{self.total:,}",
                 100 * self.trainable / self.total)

        self.sets = {name: self._encode(table[table["split"] == name]) for name in ("train", "val", "test")}
        train_set = self.sets["train"]
        self.sampler = EpochBatches([len(t) for t in train_set.tokens], config.batch_size, config.seed)
        # its own generator: creating an iterator must not draw from the global RNG, or a resumed run
        # (which creates one mid-epoch) would get different dropout masks than an uninterrupted one
        loader = torch.utils.data.DataLoader(
            list(range(len(train_set.tokens))), batch_sampler=self.sampler, collate_fn=_Collate(train_set, encoder),
            generator=torch.Generator().manual_seed(config.seed),
        )
        if self.compiled:
            from plmcore.fast import compile_model

            compile_model(model)
        log.info("Device %s, precision %s, %d CPU threads", self.device, acc.mixed_precision, threads)

        self.params = [p for p in model.parameters() if p.requires_grad]
        optimizer = _adamw(self.params, config)
        self.model, self.optimizer, self.loader = acc.prepare(model, optimizer, loader)
        self.unwrapped: SequenceClassifier = acc.unwrap_model(self.model)
        self.batches_per_epoch = len(self.loader)  # per process, after sharding across GPUs
        steps_per_epoch = math.ceil(self.batches_per_epoch / config.grad_accum)
        self.total_steps = config.max_steps or steps_per_epoch * config.epochs
        self.epochs = math.ceil(self.total_steps / steps_per_epoch)
        self.scheduler = get_scheduler(
            config.schedule if config.schedule != "constant" else "constant_with_warmup", self.optimizer,
            num_warmup_steps=int(config.warmup_ratio * self.total_steps), num_training_steps=self.total_steps,
        )
        self.class_weight = None
        if config.class_weights == "balanced" and task in ("classification", "residue"):
            classes = lab.classes
            y = np.concatenate(train_set.tracks) if task == "residue" else np.asarray(train_set.labels)
            y = y[y != tasks.IGNORE]
            counts = np.bincount(y, minlength=len(classes))
            self.class_weight = torch.tensor(len(y) / (len(classes) * np.maximum(counts, 1)), dtype=torch.float32)
            log.info("Class weights: %s", dict(zip(classes, self.class_weight.round(decimals=3).tolist())))
        weight = self.class_weight.to(self.device) if self.class_weight is not None else None
        self.loss_fn = tasks.loss_fn(lab, class_weight=weight, regression_loss=config.regression_loss)
        if resume and (run.checkpoint_dir / STATE_FILES[0]).exists():
            self._load_checkpoint()
            log.info("Resumed from step %d (epoch %d, batch %d)", self.state["step"], self.state["epoch"],
                     self.state["batch"])
        elif resume:
            log.info("No checkpoint to resume from; starting from the beginning")
        self.meta = {"task": task, "classes": lab.classes, "positive": self.positive, "model": config.model,
                     "pooling": config.pooling}
        if self.is_main:
            from plmcore.provenance import model_record

            run.update_provenance(model=model_record(config.model, backbone.model, backbone.random_weights), threads=threads,
                                  device=str(self.device), processes=acc.num_processes)
            run.write_status("running", total_steps=self.total_steps, step=self.state["step"], epochs=self.epochs,
                             trainable_parameters=self.trainable, total_parameters=self.total,
                             device=str(self.device), precision=acc.mixed_precision,
                             gradient_checkpointing=self.checkpointing, checkpointing_note=self.checkpointing_note)
        return self

    @property
    def is_main(self) -> bool:
        return self.accelerator.is_main_process


    # ------------------------------------------------------------------ pieces
    def _encode(self, rows: pd.DataFrame) -> Encoded:
        """Tokens and targets of one split (per-residue: one example per chunk of each protein)."""
        sequences, ids = rows["sequence"].tolist(), rows["id"].tolist()
        y = tasks.targets(self.lab, rows["label"].tolist(), sequences)
        if self.lab.task != "residue":
            return Encoded(self.encoder.encode(sequences), y, ids)
        spans, chunks, labels = [], [], []
        for i, seq in enumerate(sequences):
            for start, end in tasks.chunk_spans(len(seq), self.limit, self.config.chunk_overlap):
                spans.append((i, start, end))
                chunks.append(seq[start:end])
                labels.append(y[i][start:end])
        return Encoded(self.encoder.encode(chunks), labels, ids, spans=spans, tracks=y,
                       lengths=[len(s) for s in sequences])

    def predict(self, split: Encoded):
        """Logits of the current model for one encoded split: (n, outputs), or per residue a list of
        (residues, classes) arrays, one per record, with overlapping chunks merged."""
        self.unwrapped.eval()
        kw = dict(max_tokens=self.config.eval_batch_tokens, autocast=self.accelerator.autocast)
        if split.spans is None:
            return inference.run(self.unwrapped, split.tokens, self.encoder, self.device, **kw)
        parts = inference.run_residues(self.unwrapped, split.tokens, self.encoder, self.device, **kw)
        return merge_records(split, parts)

    def evaluate(self, split: Encoded) -> dict:
        logits = self.predict(split)
        if split.spans is None:
            lg, y = torch.from_numpy(np.asarray(logits)), torch.from_numpy(np.asarray(split.labels))
        else:
            lg = torch.from_numpy(np.concatenate(logits))
            y = torch.from_numpy(np.concatenate(split.tracks))
        loss = float(self.loss_fn(lg.to(self.device), y.to(self.device)))
        truth = split.tracks if split.spans is not None else split.labels
        return tasks.val_scores(self.lab, truth, tasks.outputs(self.lab, logits), loss)

    def save_checkpoint(self) -> None:
        """Write checkpoint/ atomically: weights, optimiser, scheduler, RNG and loop position."""
        if not self.is_main:
            return
        run = self.run
        tmp = run.path / "checkpoint.tmp"
        if tmp.exists():
            shutil.rmtree(tmp)
        save_weights(self.unwrapped, tmp, self.meta)
        save_state(tmp, {
            **self.state, "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
            "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()},
        })
        old = run.path / "checkpoint.old"
        if run.checkpoint_dir.exists():
            os.replace(run.checkpoint_dir, old)
        os.replace(tmp, run.checkpoint_dir)
        if old.exists():
            shutil.rmtree(old)

    def _load_checkpoint(self) -> None:
        load_weights(self.unwrapped, self.run.checkpoint_dir)
        saved = load_state(self.run.checkpoint_dir)
        self.optimizer.load_state_dict(saved.pop("optimizer"))
        self.scheduler.load_state_dict(saved.pop("scheduler"))
        rng = saved.pop("rng")
        torch.set_rng_state(rng["torch"])
        np.random.set_state(rng["numpy"])
        random.setstate(rng["python"])
        self.state.update({k: saved[k] for k in self.state if k in saved})

    def _log_train(self, epoch: int, window: dict) -> None:
        now = time.time()
        record = {
            "kind": "train", "step": self.state["step"],
            "epoch": round(epoch + self.state["batch"] / self.batches_per_epoch, 4),
            "train_loss": window["loss"] / max(1, window["n"]),
            "learning_rate": self.scheduler.get_last_lr()[0],
            "elapsed_s": round(now - self.t_start, 3),
            "samples_per_s": round(window["n"] / max(now - window["t"], 1e-9), 2),
        }
        if self.is_main:
            self.run.append_metrics(record)
            self.run.write_status("running", step=self.state["step"], epoch=record["epoch"],
                                  elapsed_s=record["elapsed_s"], train_loss=record["train_loss"])
        window.update(loss=0.0, n=0, t=now)

    def _end_of_epoch(self, epoch: int) -> None:
        config, state = self.config, self.state
        val = self.sets["val"]
        if not len(val.tokens):
            return
        if self.is_main:
            self.run.write_status("running", stage=f"evaluating epoch {epoch + 1} on the validation set")
        scores = self.evaluate(val)
        key = "val_loss" if self.stop_key == "val_loss" else f"val_{self.stop_key}"
        value = scores.get(key, float("nan"))
        better = (lambda a, b: a < b) if tasks.lower_is_better(key) else (lambda a, b: a > b)
        improved = state["best"] is None or (not math.isnan(value) and better(value, state["best"]))
        if improved:
            state.update(best=value, best_step=state["step"], bad_evals=0)
            if self.is_main:
                save_weights(self.unwrapped, self.run.best_dir, {**self.meta, "step": state["step"], key: value})
        else:
            state["bad_evals"] += 1
        if self.is_main:
            self.run.append_metrics({"kind": "eval", "split": "val", "step": state["step"], "epoch": epoch + 1,
                                     "elapsed_s": round(time.time() - self.t_start, 3), **scores,
                                     "best": improved})
            self.run.write_status("running", best_metric_name=key, best_metric=state["best"],
                                  best_step=state["best_step"], stage=None)
        log.info("epoch %d step %d: %s", epoch + 1, state["step"],
                 " ".join(f"{k}={v:.4f}" for k, v in scores.items() if isinstance(v, float)))
        if config.patience and state["bad_evals"] >= config.patience:
            log.info("Early stop: %s did not improve for %d evaluations", key, config.patience)
            self.stopped_early = True

    # ------------------------------------------------------------------ loop
    def fit(self) -> None:
        """Train to the step budget or early stop; SIGTERM (stop flag) raises Cancelled after a checkpoint."""
        config, state, acc = self.config, self.state, self.accelerator
        model, optimizer, scheduler = self.model, self.optimizer, self.scheduler
        bar = None
        if self.show_progress and self.is_main:
            from tqdm.auto import tqdm

            bar = tqdm(total=self.total_steps, initial=state["step"], unit="step", desc="training",
                       dynamic_ncols=True)
        window = {"loss": 0.0, "n": 0, "t": time.time()}
        try:
            for epoch in range(state["epoch"], self.epochs):
                self.sampler.epoch = epoch
                self.sampler.skip = state["batch"] if epoch == state["epoch"] else 0
                state["batch"] = self.sampler.skip
                model.train()
                for batch, labels in self.loader:
                    with acc.accumulate(model):
                        logits = model(batch)
                        loss = self.loss_fn(logits.float(), labels)
                        acc.backward(loss)
                        if acc.sync_gradients:
                            acc.clip_grad_norm_(self.params, 1.0)
                        optimizer.step()
                        optimizer.zero_grad(set_to_none=True)
                    state["batch"] += 1
                    window["loss"] += float(loss.detach()) * len(labels)
                    window["n"] += len(labels)
                    if acc.sync_gradients:
                        scheduler.step()
                        state["step"] += 1
                        if bar:
                            bar.update(1)
                            bar.set_postfix(loss=f"{float(loss):.4f}", refresh=False)
                        if state["step"] % config.logging_steps == 0 or state["step"] == self.total_steps:
                            self._log_train(epoch, window)
                    if stop_requested(self.run.path, self.stop["flag"], acc):
                        self.save_checkpoint()
                        raise Cancelled()
                    if state["step"] >= self.total_steps:
                        break
                state["epoch"], state["batch"] = epoch + 1, 0
                self._end_of_epoch(epoch)
                done = self.stopped_early or state["step"] >= self.total_steps
                if (epoch + 1) % config.checkpoint_every_epochs == 0 or done:
                    self.save_checkpoint()
                if stop_requested(self.run.path, self.stop["flag"], acc):
                    raise Cancelled()
                if done:
                    break
        finally:
            if bar:
                bar.close()

    def frozen_embeddings(self, sequences: list[str]) -> np.ndarray:
        """Pooled embeddings of the backbone without its adapters (the frozen-embedding baseline)."""
        model = self.unwrapped
        model.eval()
        tokens = self.encoder.encode(sequences)
        with model.backbone.disable_adapter():
            return inference.run(model.embed, tokens, self.encoder, self.device,
                                 max_tokens=self.config.eval_batch_tokens, autocast=self.accelerator.autocast)

    def finish(self) -> dict:
        """Best model: threshold and calibration on val, test report, leakage, baselines, verdict, status."""
        from plmcore.assess import assess

        run, config, state = self.run, self.config, self.state
        if not self.is_main:  # rank 0 alone reports (and may still be writing best/)
            return {"best_metric": state["best"], "best_step": state["best_step"], "stopped_early": self.stopped_early}
        if run.best_dir.exists() and len(self.sets["val"].tokens):
            load_weights(self.unwrapped, run.best_dir)
        elif self.is_main:
            save_weights(self.unwrapped, run.best_dir, {**self.meta, "step": state["step"]})
        result = {"best_metric": state["best"], "best_step": state["best_step"],
                  "stopped_early": self.stopped_early}
        if self.accelerator.num_processes > 1:  # the other workers are done: the rest uses every core
            from plmcore.engine import cpu_cores

            set_cpu_threads(cpu_cores())

        def stage(text: str) -> None:
            log.info("Finishing: %s", text)
            run.write_status("running", stage=text, stopped_early=self.stopped_early)

        stage("scoring the best model on the validation and test sets")
        logits = {name: self.predict(self.sets[name]) for name in ("val", "test") if len(self.sets[name].tokens)}
        labels = {name: self.sets[name].tracks if self.lab.task == "residue" else self.sets[name].labels
                  for name in logits}

        embed = self.frozen_embeddings if self.lab.task != "residue" else None
        result.update(assess(run, config, self.table, self.lab, logits, labels, embed_fn=embed, on_stage=stage))
        duration = time.time() - self.t_start
        log.info("Finished in %.1f s", duration)
        return run.write_status("finished", ended_at=time.time(), step=state["step"], stage=None,
                                duration_s=round(duration, 2), **result)


def merge_records(split: Encoded, parts: list[np.ndarray]) -> list[np.ndarray]:
    """Per-chunk, per-residue outputs merged into one array per record (overlaps averaged)."""
    by_record: dict[int, list] = {}
    for (i, start, end), part in zip(split.spans, parts):
        by_record.setdefault(i, []).append(((start, end), part))
    return [tasks.merge_chunks([s for s, _ in by_record[i]], [p for _, p in by_record[i]], split.lengths[i])
            for i in range(len(split.lengths))]


def train(config: TrainConfig, *, run_dir=None, root=None, progress: bool = False,
          trust_remote_code: bool = False) -> RunDir:
    """Prepare a run from `config` and train it in this process (the CLI and tests use this)."""
    run = create_run(config, run_dir=run_dir, root=root)
    train_run(run.path, progress=progress, trust_remote_code=trust_remote_code)
    return run


if __name__ == "__main__":  # pragma: no cover
    sys.exit("use: python -m plmcore train --help")
