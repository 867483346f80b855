"""Scoring with a trained run: site windows directly, whole proteins scanned residue by residue."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from plmcore import data as D
from plmcore import inference
from plmcore.classifier import SequenceClassifier, build_classifier, load_weights
from plmcore.config import TrainConfig
from plmcore.errors import ConfigError, RunError
from plmcore.models import Backbone, load_backbone, pick_device, set_cpu_threads
from plmcore.runs import RunDir
from plmcore.train import softmax

Progress = Callable[[int, int], None] | None


@dataclass
class LoadedRun:
    """A fine-tuned model rebuilt from its run directory alone."""

    run: RunDir
    config: TrainConfig
    classes: list[str]
    positive: str | None
    window_length: int | None
    center_residues: list[str]
    threshold: float
    temperature: float | None
    backbone: Backbone
    model: SequenceClassifier
    device: torch.device

    @property
    def positive_index(self) -> int:
        return self.classes.index(self.positive) if self.positive in self.classes else len(self.classes) - 1

    def autocast(self):
        if self.device.type == "cuda":
            dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
            return torch.autocast("cuda", dtype=dtype)
        return torch.autocast("cpu", enabled=False)

    def predict_proba(self, sequences: list[str], progress: Progress = None) -> np.ndarray:
        """Class probabilities (n, k) for residue strings, in input order."""
        limit = min(self.config.max_length or self.backbone.max_residues, self.backbone.max_residues)
        seqs = [s[:limit] for s in sequences]
        tokens = self.backbone.encoder.encode(seqs)
        logits = inference.run(self.model, tokens, self.backbone.encoder, self.device,
                               max_tokens=self.config.eval_batch_tokens, autocast=self.autocast, progress=progress)
        return softmax(logits / (self.temperature or 1.0))


def load_run(run_dir: Path | str | RunDir, *, checkpoint: str = "best", device: str = "auto",
             trust_remote_code: bool = False) -> LoadedRun:
    """Rebuild backbone + LoRA + head from a run directory and load its weights (eval mode).

    The model's own code runs only with `trust_remote_code`, the caller's decision; a run's files
    never turn it on.
    """
    run = run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir)
    run.require()
    config = run.config()
    labels = run.labels()
    folder = run.best_dir if checkpoint == "best" else run.checkpoint_dir
    if not (folder / "head.safetensors").exists():
        folder = run.checkpoint_dir if checkpoint == "best" else run.best_dir
    if not (folder / "head.safetensors").exists():
        raise RunError(
            f"run {run.name} has no saved model yet (no best/ or checkpoint/). It is "
            f"{run.status().get('state')}; wait for it to finish an epoch, or resume it."
        )
    set_cpu_threads(config.threads)
    backbone = load_backbone(config.model, trust_remote_code=trust_remote_code, family=config.family)
    model = build_classifier(backbone, len(labels["classes"]), config)
    dev = pick_device(device if device != "auto" else config.device)
    model.to(dev)
    load_weights(model, folder)
    model.eval()
    decision = run.decision()
    return LoadedRun(run, config, labels["classes"], labels.get("positive"), labels.get("window_length"),
                     labels.get("center_residues") or [], float(decision.get("threshold") or 0.5),
                     decision.get("temperature"), backbone, model, dev)


def score_windows(loaded: LoadedRun, ids: list[str], sequences: list[str], progress: Progress = None,
                  threshold: float | None = None) -> pd.DataFrame:
    """One row per sequence: probability of each class, and the predicted class."""
    probs = loaded.predict_proba(list(sequences), progress)
    df = pd.DataFrame({"id": list(ids), "sequence": list(sequences)})
    for j, c in enumerate(loaded.classes):
        df[f"prob_{c}"] = probs[:, j]
    df["predicted"] = _decide(loaded, probs, threshold)
    return df


def at_threshold(loaded: LoadedRun, scores: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """Window scores or scanned sites with "predicted" decided again at another threshold."""
    out = scores.copy()
    if "probability" in out.columns:  # sites: the positive class's probability
        out["predicted"] = out["probability"] >= threshold
    else:
        probs = out[[f"prob_{c}" for c in loaded.classes]].to_numpy()
        out["predicted"] = _decide(loaded, probs, threshold)
    return out


def _decide(loaded: LoadedRun, probs: np.ndarray, threshold: float | None) -> list[str]:
    if len(loaded.classes) == 2:
        t = loaded.threshold if threshold is None else threshold
        pi = loaded.positive_index
        return [loaded.classes[pi] if p >= t else loaded.classes[1 - pi] for p in probs[:, pi]]
    return [loaded.classes[i] for i in probs.argmax(1)]


def candidate_positions(protein: str, residues: str | list[str]) -> list[int]:
    """1-based positions of the candidate residue types in a protein."""
    wanted = set(residues)
    return [i + 1 for i, aa in enumerate(protein) if aa in wanted]


def scan_proteins(
    loaded: LoadedRun,
    proteins: list[tuple[str, str]],
    *,
    residues: str | list[str] | None = None,
    window: int | None = None,
    progress: Progress = None,
    threshold: float | None = None,
) -> pd.DataFrame:
    """Score every candidate residue of every protein with a window of the run's training length.

    Returns:
        protein_id, position (1-based), residue, window, probability (of the positive class) and
        predicted (probability >= threshold), one row per candidate site.
    """
    window = window or loaded.window_length
    if not window:
        raise ConfigError(
            f"run {loaded.run.name} was not trained on aligned site windows, so there is no window length "
            "to scan with; give one (CLI: --window 33) or score whole sequences instead"
        )
    residues = residues or loaded.center_residues
    if not residues:
        raise ConfigError("no candidate residues: give them, e.g. --residues Y or --residues STY")
    rows = []
    for pid, seq in proteins:
        for pos in candidate_positions(seq, residues):
            rows.append((pid, pos, seq[pos - 1], D.site_window(seq, pos, window)))
    df = pd.DataFrame(rows, columns=["protein_id", "position", "residue", "window"])
    if df.empty:
        df["probability"] = pd.Series(dtype=float)
        df["predicted"] = pd.Series(dtype=bool)
        return df
    probs = loaded.predict_proba(df["window"].tolist(), progress)
    pi = loaded.positive_index if len(loaded.classes) == 2 else int(np.argmax(probs.mean(0)))
    df["probability"] = probs[:, pi]
    t = loaded.threshold if threshold is None else threshold
    df["predicted"] = df["probability"] >= t
    return df


def clean_input(table: pd.DataFrame) -> tuple[pd.DataFrame, list]:
    """Validate sequences to score (no labels needed); raise on errors, return warnings."""
    report = D.validate(table, require_labels=False, min_classes=1)
    report.raise_for_errors()
    return report.table, report.warnings


def split_by_length(loaded: LoadedRun, table: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Sequences of the training window length are scored directly; longer ones are scanned."""
    if not loaded.window_length:
        return table, table.iloc[:0]
    long = table["sequence"].str.len() > loaded.window_length
    return table[~long], table[long]
