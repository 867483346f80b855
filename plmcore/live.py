"""What a run is doing now, in words: its phase, how far along it is, the time left, and how it ended.

Read from the run's status.json (which the worker updates) and metrics.jsonl; no Streamlit here, so
the Train and Runs pages show the same words and tests can check them.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from plmcore.estimate import duration_words

# stage texts the engine writes (plmcore.train, plmcore.assess) -> the phase they belong to
_STAGE_PHASES = (("baseline", "Baselines"), ("leakage", "Leakage check"), ("validation set", "Evaluation"),
                 ("scoring", "Final evaluation"), ("calibrat", "Final evaluation"), ("threshold", "Final evaluation"))


@dataclass(frozen=True)
class Phase:
    name: str  # "Waiting", "Loading the model", "Training", "Evaluation", "Final evaluation", "Baselines", ...
    text: str  # one line for the progress bar
    fraction: float  # of the bar
    ended: bool


def format_seconds(s: float | None) -> str:
    """A measured duration: '42 s', '3 min 05 s', '1 h 20 min'."""
    if s is None:
        return "?"
    s = max(0, int(round(s)))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {(s % 3600) // 60:02d} min"


def _epoch_now(status: dict) -> int:
    """The epoch being trained, counted from 1, never past the last."""
    epochs = status.get("epochs") or 1
    return min(int(math.floor(status.get("epoch") or 0)) + 1, epochs)


def _step_rate(records: list[dict]) -> float | None:
    """Seconds per optimiser step, from the logged training steps (None until two are logged)."""
    train = [r for r in records if r.get("kind") == "train" and r.get("elapsed_s") is not None]
    if len(train) < 2 or train[-1]["step"] <= train[0]["step"]:
        return None
    return (train[-1]["elapsed_s"] - train[0]["elapsed_s"]) / (train[-1]["step"] - train[0]["step"])


def time_left(status: dict, records: list[dict], now: float | None = None) -> str:
    """'about 2 minutes left', from the steps measured so far, or from the estimate made at the start
    ('… (estimate)') until two steps are logged; empty when neither is known."""
    now = now or time.time()
    step, total = status.get("step") or 0, status.get("total_steps") or 0
    rate = _step_rate(records)
    if rate is not None and total:
        return f"{duration_words(rate * max(total - step, 0))} left"
    estimated = status.get("estimated_s")
    if estimated:
        started = status.get("started_at") or status.get("created_at") or now
        left = estimated - (now - started) if status.get("state") == "running" else estimated
        return (f"{duration_words(left)} left (estimate)" if left > 1 else
                "a little longer than estimated")
    return ""


def _stage_phase(stage: str) -> str:
    low = stage.lower()
    return next((name for key, name in _STAGE_PHASES if key in low), "Finishing")


def phase(status: dict, records: list[dict] | None = None, *, now: float | None = None) -> Phase:
    """The phase of a run as one line: which step of the work, epoch k of n, and the time left."""
    records = records or []
    state = status.get("state")
    step, total, epochs = status.get("step") or 0, status.get("total_steps") or 0, status.get("epochs")
    if state == "queued":
        left = time_left(status, records, now)
        return Phase("Waiting", "Waiting to start" + (f" · {left}" if left else ""), 0.0, False)
    if state == "running":
        stage = status.get("stage")
        left = time_left(status, records, now)
        tail = f" · {left}" if left else ""
        if not total:
            return Phase("Loading the model", f"Loading the model and data{tail}", 0.0, False)
        fraction = min(step / total, 1.0)
        where = f"epoch {_epoch_now(status)} of {epochs}" if epochs else f"step {step} of {total}"
        if stage and (step >= total or status.get("stopped_early") or "validation set" not in stage):
            name = _stage_phase(stage)
            return Phase(name, f"{name}: {stage}", 1.0, False)
        if stage:
            return Phase("Evaluation", f"Epoch {_epoch_now(status)} of {epochs}: {stage}{tail}", fraction, False)
        return Phase("Training", f"Training: {where} · step {step} of {total}{tail}", fraction, False)
    return Phase(str(state).capitalize() if state else "Unknown", ending(status, records), 1.0 if state == "finished"
                 else min(step / total, 1.0) if total else 0.0, True)


def _evals(records: list[dict]) -> list[dict]:
    return [r for r in records if r.get("kind") == "eval"]


def ending(status: dict, records: list[dict] | None = None, *, patience: int | None = None) -> str:
    """How a run ended, in a sentence: finished (and whether it stopped early, and why), stopped, failed."""
    from plmcore.tasks import metric_words

    records = records or []
    state = status.get("state")
    started, ended = status.get("started_at"), status.get("ended_at")
    took = format_seconds(ended - started) if started is not None and ended is not None else None
    evals = _evals(records)
    epochs = status.get("epochs")
    done = int(evals[-1]["epoch"]) if evals else _epoch_now(status)
    if state == "finished":
        if status.get("stopped_early"):
            metric = metric_words((status.get("best_metric_name") or "").removeprefix("val_")) or "the metric"
            why = f"validation {metric} had not improved for {patience} epoch{'s' if patience != 1 else ''}" \
                if patience else f"validation {metric} had stopped improving"
            best = [r for r in evals if r.get("best")]
            kept = f" The best model, from epoch {int(best[-1]['epoch'])}, is kept." if best else ""
            return (f"Stopped early at epoch {done} of {epochs}: {why}. Finished"
                    + (f" in {took}" if took else "") + f".{kept}")
        return f"Finished: {done} epoch{'s' if done != 1 else ''}" + (f" in {took}" if took else "") + "."
    if state == "cancelled":
        return f"Stopped by you during epoch {done} of {epochs}" + (f", after {took}" if took else "") + "."
    if state == "failed":
        return f"Failed: {status.get('error') or 'no reason recorded'}"
    if state == "damaged":
        return status.get("error") or "The run's files do not validate."
    return f"State: {state}"
