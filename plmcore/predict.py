"""Scoring with a trained run: site windows directly, whole proteins scanned residue by residue."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from plmcore import data as D
from plmcore import inference, tasks
from plmcore.classifier import SequenceClassifier, build_classifier, load_weights
from plmcore.config import TrainConfig
from plmcore.errors import ConfigError, RunError
from plmcore.models import Backbone, load_backbone, pick_device, set_cpu_threads
from plmcore.runs import RunDir

Progress = Callable[[int, int], None] | None


@dataclass
class LoadedRun:
    """A fine-tuned model rebuilt from its run directory alone, or from a Hub model folder."""

    run: RunDir | None  # None for a Hub model folder (plmcore.hub)
    config: TrainConfig
    lab: tasks.Labelling
    decision: dict
    backbone: Backbone
    model: SequenceClassifier
    device: torch.device

    source: Path | None = None  # the run directory or model folder it was loaded from
    weights_stamp: str = ""  # changes when the weights change (caches key on it)

    task = property(lambda self: self.lab.task)

    @property
    def name(self) -> str:
        return self.run.name if self.run is not None else Path(self.source or "model").name
    classes = property(lambda self: self.lab.classes)
    positive = property(lambda self: self.lab.positive)
    positive_index = property(lambda self: self.lab.positive_index)
    window_length = property(lambda self: self.lab.window_length)
    center_residues = property(lambda self: self.lab.center_residues or [])
    temperature = property(lambda self: self.decision.get("temperature"))

    @property
    def threshold(self) -> float:
        """The decision threshold chosen on validation (binary tasks), else 0.5."""
        return float(self.decision.get("threshold") or 0.5)

    @property
    def limit(self) -> int:
        return min(self.config.max_length or self.backbone.max_residues, self.backbone.max_residues)

    def autocast(self):
        if self.device.type == "cuda":
            dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
            return torch.autocast("cuda", dtype=dtype)
        return torch.autocast("cpu", enabled=False)

    def _kw(self, progress: Progress) -> dict:
        return dict(max_tokens=self.config.eval_batch_tokens, autocast=self.autocast, progress=progress)

    def logits(self, sequences: list[str], progress: Progress = None):
        """Raw outputs in input order: (n, outputs), or per residue one (residues, classes) array each."""
        encoder = self.backbone.encoder
        if self.task != "residue":
            tokens = encoder.encode([s[: self.limit] for s in sequences])
            return inference.run(self.model, tokens, encoder, self.device, **self._kw(progress))
        spans, chunks = [], []
        for i, seq in enumerate(sequences):  # proteins longer than the model takes: overlapping chunks
            for start, end in tasks.chunk_spans(len(seq), self.limit, self.config.chunk_overlap):
                spans.append((i, start, end))
                chunks.append(seq[start:end])
        parts = inference.run_residues(self.model, encoder.encode(chunks), encoder, self.device,
                                       **self._kw(progress))
        merged: list = [[] for _ in sequences]
        for (i, start, end), part in zip(spans, parts):
            merged[i].append(((start, end), part))
        return [tasks.merge_chunks([s for s, _ in m], [p for _, p in m], len(seq))
                for m, seq in zip(merged, sequences)]

    def predict(self, sequences: list[str], progress: Progress = None):
        """Predictions in their natural form (plmcore.tasks.outputs), with the run's temperature."""
        logits = self.logits(list(sequences), progress)
        T = self.temperature or 1.0
        if T != 1.0:
            logits = [x / T for x in logits] if self.task == "residue" else logits / T
        return tasks.outputs(self.lab, logits)

    def predict_proba(self, sequences: list[str], progress: Progress = None) -> np.ndarray:
        """Class probabilities (n, k) of a classification run, in input order."""
        if self.task != "classification":
            raise ConfigError(f"run {self.name} is a {self.task} run; it gives no class probabilities per "
                              "sequence")
        return self.predict(sequences, progress)


def load_model(source: Path | str | RunDir, *, device: str = "auto", trust_remote_code: bool = False) -> LoadedRun:
    """A trained model from a run directory, a Hub model folder (plmcore.hub) or a Hub id of one."""
    from plmcore import hub

    if isinstance(source, RunDir) or RunDir(source).exists():
        return load_run(source, device=device, trust_remote_code=trust_remote_code)
    return hub.load(source, device=device, trust_remote_code=trust_remote_code)


def build_loaded(config: TrainConfig, lab: tasks.Labelling, decision: dict, weights: Path, *,
                 adapter_dir: Path | None = None, device: str = "auto", trust_remote_code: bool = False,
                 run: RunDir | None = None, source: Path | None = None) -> LoadedRun:
    """Backbone + LoRA + head as `config` and `lab` describe, with the weights in `weights` (eval mode)."""
    set_cpu_threads(config.threads)
    backbone = load_backbone(config.model, trust_remote_code=trust_remote_code, family=config.family)
    model = build_classifier(backbone, lab.n_outputs, config, per_token=lab.task == "residue")
    dev = pick_device(device if device != "auto" else config.device)
    model.to(dev)
    load_weights(model, weights, adapter_dir)
    model.eval()
    head = weights / "head.safetensors"
    return LoadedRun(run, config, lab, decision, backbone, model, dev, source=source or weights,
                     weights_stamp=f"{head.resolve()}:{head.stat().st_mtime_ns}")


def load_run(run_dir: Path | str | RunDir, *, checkpoint: str = "best", device: str = "auto",
             trust_remote_code: bool = False) -> LoadedRun:
    """Rebuild backbone + LoRA + head from a run directory and load its weights (eval mode).

    The model's own code runs only with `trust_remote_code`, the caller's decision; a run's files
    never turn it on.
    """
    run = run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir)
    run.require()
    config = run.config()
    lab = tasks.Labelling.from_dict(run.labels())
    folder = run.best_dir if checkpoint == "best" else run.checkpoint_dir
    if not (folder / "head.safetensors").exists():
        folder = run.checkpoint_dir if checkpoint == "best" else run.best_dir
    if not (folder / "head.safetensors").exists():
        raise RunError(
            f"run {run.name} has no saved model yet (no best/ or checkpoint/). It is "
            f"{run.status().get('state')}; wait for it to finish an epoch, or resume it."
        )
    return build_loaded(config, lab, run.decision(), folder, device=device, trust_remote_code=trust_remote_code,
                        run=run, source=run.path)


def score_windows(loaded: LoadedRun, ids: list[str], sequences: list[str], progress: Progress = None,
                  threshold: float | None = None) -> pd.DataFrame:
    """One row per sequence: the class probabilities and class, the value (regression), or each
    label's probability and the labels called (multi-label)."""
    out = loaded.predict(list(sequences), progress)
    df = pd.DataFrame({"id": list(ids), "sequence": list(sequences)})
    if loaded.task == "regression":
        df["predicted"] = np.asarray(out)
        return df
    for j, c in enumerate(loaded.classes):
        df[f"prob_{c}"] = out[:, j]
    return at_threshold(loaded, df, threshold)


def at_threshold(loaded: LoadedRun, scores: pd.DataFrame, threshold: float | None = None) -> pd.DataFrame:
    """Window scores or scanned sites with "predicted" decided at `threshold` (default: the run's own).

    Multi-label runs use each label's own threshold from validation.
    """
    out = scores.copy()
    if loaded.task == "regression":
        return out
    t = loaded.threshold if threshold is None else threshold
    if "probability" in out.columns:  # sites: the positive class's probability
        out["predicted"] = out["probability"] >= t
    elif loaded.task == "multilabel":
        th = loaded.decision.get("thresholds") or [0.5] * len(loaded.classes)
        P = out[[f"prob_{c}" for c in loaded.classes]].to_numpy()
        out["predicted"] = [tasks.SEPARATOR.join(c for j, c in enumerate(loaded.classes) if row[j] >= th[j])
                            for row in P]
    else:
        from plmcore.assess import decide_class

        probs = out[[f"prob_{c}" for c in loaded.classes]].to_numpy()
        out["predicted"] = [decide_class(loaded.lab, row, t) for row in probs]
    return out


def scan_residues(loaded: LoadedRun, proteins: list[tuple[str, str]], *, residues: str | None = None,
                  progress: Progress = None, threshold: float | None = None) -> pd.DataFrame:
    """A per-residue run over whole proteins, one pass each (long ones in overlapping chunks).

    Returns protein_id, position (1-based), residue, the probability of each class (binary runs:
    "probability" of the positive class) and predicted, for the residues of the types asked for
    (default: the run's own, or all).
    """
    wanted = set(residues or loaded.lab.residues or "")
    outs = loaded.predict([seq for _, seq in proteins], progress)
    rows = []
    for (pid, seq), probs in zip(proteins, outs):
        for i, aa in enumerate(seq):
            if wanted and aa not in wanted:
                continue
            rows.append({"protein_id": pid, "position": i + 1, "residue": aa,
                         **{f"prob_{c}": float(probs[i, j]) for j, c in enumerate(loaded.classes)}})
    df = pd.DataFrame(rows, columns=["protein_id", "position", "residue", *(f"prob_{c}" for c in loaded.classes)])
    if len(loaded.classes) == 2:
        df["probability"] = df[f"prob_{loaded.positive}"]
    return at_threshold(loaded, df, threshold)


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
            f"run {loaded.name} was not trained on aligned site windows, so there is no window length "
            "to scan with; give one (CLI: --window 33) or score whole sequences instead"
        )
    residues = residues or loaded.center_residues
    if not residues:
        raise ConfigError("no candidate residues: give them, e.g. --residues Y or --residues STY")
    rows = []
    for pid, seq in proteins:
        for pos in candidate_positions(seq, residues):
            # windows near a protein's end as in training: padded with X, or cut short (data.window_info)
            pad = None if loaded.lab.window_ends == "cut" else D.PAD_CHAR
            rows.append((pid, pos, seq[pos - 1], D.site_window(seq, pos, window, pad)))
    df = pd.DataFrame(rows, columns=["protein_id", "position", "residue", "window"])
    if df.empty:
        df["probability"] = pd.Series(dtype=float)
        df["predicted"] = pd.Series(dtype=bool)
        return df
    probs = loaded.predict_proba(df["window"].tolist(), progress)
    pi = loaded.positive_index if len(loaded.classes) == 2 else int(np.argmax(probs.mean(0)))
    df["probability"] = probs[:, pi]
    return at_threshold(loaded, df, threshold)


def predict_table(loaded: LoadedRun, table: pd.DataFrame, *, scan: bool = False, residues: str | None = None,
                  window: int | None = None, threshold: float | None = None, progress=None) -> dict[str, pd.DataFrame]:
    """Score a table of sequences the way its task and lengths call for (the CLI and the app alike).

    Returns {"windows": one row per sequence scored whole, "sites": one row per scanned residue}
    (either may be absent). `progress(what)` gives a (done, total) callback for each part.
    """
    progress = progress or (lambda what: None)
    direct, whole = (table.iloc[:0], table) if scan else split_by_length(loaded, table)
    out = {}
    if len(direct):
        out["windows"] = score_windows(loaded, direct["id"].tolist(), direct["sequence"].tolist(),
                                       progress("scoring"), threshold)
    if len(whole):
        proteins = list(zip(whole["id"], whole["sequence"]))
        if loaded.task == "residue":
            out["sites"] = scan_residues(loaded, proteins, residues=residues, progress=progress("scanning"),
                                         threshold=threshold)
        else:
            out["sites"] = scan_proteins(loaded, proteins, residues=residues, window=window,
                                         progress=progress("scanning"), threshold=threshold)
    return out


def describe_run(loaded: LoadedRun) -> str:
    """What a run predicts, in one line for people."""
    if loaded.task == "regression":
        return "Predicts a number per sequence (regression)."
    if loaded.task == "multilabel":
        return f"Predicts which of the labels {', '.join(loaded.classes)} apply to each sequence (multi-label)."
    if loaded.task == "residue":
        which = f"residues {loaded.lab.residues}" if loaded.lab.residues else "every residue"
        return f"Predicts a class ({', '.join(loaded.classes)}) for {which} of whole proteins, in one pass each."
    text = f"Classes {', '.join(loaded.classes)}"
    if loaded.window_length:
        text += (f"; trained on {loaded.window_length}-residue windows centred on "
                 f"{', '.join(loaded.center_residues)}")
    return text + "."


def predicted_vs_true(loaded: LoadedRun, sequences: list[str], labels: list[str]) -> dict[str, list]:
    """Per sequence, what the run predicts and how it compares with the label (for colouring plots).

    classification: the class, and right/wrong; regression: the value and its absolute error;
    multi-label: the labels called, and right/wrong (exact set); per-residue: the share of residues
    called positive (binary) and nothing to compare.
    """
    out = loaded.predict(list(sequences))
    if loaded.task == "regression":
        values = np.asarray(out)
        truth = pd.to_numeric(pd.Series(labels), errors="coerce").to_numpy()
        return {"predicted": values.tolist(), "error": np.abs(values - truth).tolist()}
    if loaded.task == "residue":
        pos = loaded.positive_index
        return {"predicted": [float((np.asarray(p)[:, pos] >= loaded.threshold).mean()) for p in out]}
    frame = pd.DataFrame({f"prob_{c}": np.asarray(out)[:, j] for j, c in enumerate(loaded.classes)})
    called = at_threshold(loaded, frame)["predicted"].tolist()
    if loaded.task == "multilabel":
        truth = [tasks.SEPARATOR.join(sorted(tasks.split_labels(v))) for v in labels]
        called = [tasks.SEPARATOR.join(sorted(tasks.split_labels(v))) for v in called]
    else:
        truth = list(labels)
    return {"predicted": called, "error": ["right" if p == t else "wrong" for p, t in zip(called, truth)]}


def clean_input(table: pd.DataFrame) -> tuple[pd.DataFrame, list]:
    """Validate sequences to score (no labels needed); raise on errors, return warnings."""
    report = D.validate(table, require_labels=False, min_classes=1)
    report.raise_for_errors()
    return report.table, report.warnings


def split_by_length(loaded: LoadedRun, table: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Sequences of the training window length are scored directly; longer ones are scanned.

    Per-residue runs take every sequence whole (scan_residues); other runs not trained on aligned
    windows score every sequence as it is.
    """
    if loaded.task == "residue":
        return table.iloc[:0], table
    if not loaded.window_length:
        return table, table.iloc[:0]
    long = table["sequence"].str.len() > loaded.window_length
    return table[~long], table[long]
