"""Run directories: layout, validated reading, status, metrics log, worker processes, listing.

A run directory holds everything about one fine-tuning run::

    config.json           every setting needed to re-run (TrainConfig)
    split.csv             id, sequence, label, split (train/val/test): the data exactly as used
    labels.json           classes, positive class, window length and centre residues
    status.json           state (queued/running/finished/failed/cancelled), progress, error
    metrics.jsonl         one JSON object per logging step and per evaluation
    train.log             the worker's log
    checkpoint/           last checkpoint: adapter/, head.safetensors, trainer_state.{json,safetensors}
    best/                 best checkpoint by the early-stopping metric: adapter/, head.safetensors
    val_predictions.csv   class probabilities of the best model on the validation split
    test_predictions.csv  ... and on the test split
    test_report.json      metrics, 95% bootstrap intervals, confusion matrix, curves
    about.json            what the user calls the run: name, tags, notes (optional; see check_about)
    threshold.json, baselines.json, comparison.json, leakage.json: see plmcore.assess

Every file is read through :class:`RunDir`, which checks it against the engine's schema: a
damaged or hand-edited file raises :class:`RunError` naming the run and the file, and a run
whose core files do not validate is listed as ``damaged`` instead of breaking every page.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback
import uuid
from datetime import datetime
from pathlib import Path

from plmcore.errors import PlmcoreError, RunError

log = logging.getLogger("plmcore.runs")

STATES = ("queued", "running", "finished", "failed", "cancelled")
ACTIVE_STATES = ("queued", "running")
FINAL_STATES = ("finished", "failed", "cancelled")
DAMAGED = "damaged"  # never written: what status() reports for a run whose files do not validate

# The files of the run format, relative to the run directory. A run archive may carry these and
# nothing else: never checkpoint/ (optimiser state), model code or other files.
RUN_FILES = (
    "config.json", "split.csv", "labels.json", "status.json", "metrics.jsonl", "train.log", "about.json",
    "test_report.json", "threshold.json", "baselines.json", "comparison.json", "leakage.json",
    "val_predictions.csv", "test_predictions.csv",
    "best/head.safetensors", "best/adapter/adapter_config.json", "best/adapter/adapter_model.safetensors",
    "best/adapter/README.md",
)


def workspace() -> Path:
    """Where the CLI keeps datasets and runs: $PLMCORE_WORKSPACE or ./plmcore_data.

    The app passes each signed-in user's own folder explicitly (plmcore.ui.workspace).
    """
    return Path(os.environ.get("PLMCORE_WORKSPACE", "plmcore_data")).expanduser()


def runs_root(root: Path | str | None = None) -> Path:
    return Path(root) if root else workspace() / "runs"


def _jsonable(obj):
    """NaN/inf become null and numpy scalars plain numbers, so the files are strict JSON."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):
        obj = obj.item()
    if isinstance(obj, float) and (obj != obj or obj in (float("inf"), float("-inf"))):
        return None
    return obj


def write_json(path: Path, data) -> None:
    """Write strict JSON atomically (readers polling the file never see half of it)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        tmp.write_text(json.dumps(_jsonable(data), indent=2, default=str) + "\n")
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise storage_error(exc, path.parent) from exc


def storage_error(exc: OSError, folder: Path) -> PlmcoreError:
    """A clear message for a workspace that cannot be written (full disk, read-only, no permission)."""
    from plmcore.errors import StorageError

    if isinstance(exc, PlmcoreError):
        return exc
    return StorageError.from_os_error(exc, "save in the workspace", folder, "PLMCORE_WORKSPACE")


# --------------------------------------------------------------------------- schemas


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_str_list(value) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


_CHECKS = {
    "str": (lambda v: isinstance(v, str), "text"),
    "int": (_is_int, "a whole number"),
    "num": (_is_number, "a number"),
    "bool": (lambda v: isinstance(v, bool), "true or false"),
    "strs": (_is_str_list, "a list of texts"),
}

# status.json fields and their types; null is allowed for each. Others are dropped when read.
STATUS_FIELDS = {
    **dict.fromkeys(("state", "kind", "error", "stage", "device", "precision", "verdict", "best_metric_name",
                     "fold_run", "how", "test_metric_name", "checkpointing_note"), "str"),
    **dict.fromkeys(("pid", "step", "total_steps", "epochs", "best_step", "fold", "folds", "exit_code",
                     "trainable_parameters", "total_parameters"), "int"),
    **dict.fromkeys(("pid_started", "created_at", "queued_at", "started_at", "ended_at", "updated_at", "epoch",
                     "elapsed_s", "train_loss", "best_metric", "duration_s", "threshold", "test_mcc",
                     "test_roc_auc", "test_accuracy", "test_metric", "estimated_s"), "num"),
    **dict.fromkeys(("leaks", "stopped_early", "gradient_checkpointing"), "bool"),
    "warnings": "strs",
}
LABELS_FIELDS = {"task": "str", "classes": "strs", "positive": "str", "window_length": "int", "aligned": "bool",
                 "center_residues": "strs", "target_mean": "num", "target_sd": "num", "residues": "str", "window_ends": "str"}


def _check_fields(raw, fields: dict[str, str], where: str) -> dict:
    if not isinstance(raw, dict):
        raise RunError(f"{where} holds {type(raw).__name__}, not a JSON object")
    out = {}
    for key, kind in fields.items():
        value = raw.get(key)
        if value is None:
            if key in raw:
                out[key] = None
            continue
        ok, what = _CHECKS[kind]
        if not ok(value):
            raise RunError(f"{where}: '{key}' must be {what}; got {json.dumps(value)[:60]}")
        out[key] = value
    return out


def check_status(raw, where: str = "status.json") -> dict:
    """status.json as the engine writes it; RunError when it is not."""
    status = _check_fields(raw, STATUS_FIELDS, where)
    if status.get("state") not in STATES:
        raise RunError(f"{where}: 'state' must be one of {', '.join(STATES)}; got {status.get('state')!r}")
    return status


def check_labels(raw, where: str = "labels.json") -> dict:
    """labels.json as the engine writes it; RunError when it is not."""
    labels = _check_fields(raw, LABELS_FIELDS, where)
    classes = labels.get("classes") or []
    if labels.get("task", "classification") not in ("classification", "regression", "multilabel", "residue"):
        raise RunError(f"{where}: 'task' must be classification, regression, multilabel or residue")
    if labels.get("task") != "regression" and (len(classes) < 2 or len(set(classes)) != len(classes)):
        raise RunError(f"{where}: 'classes' must list two or more distinct class names; got {classes}")
    if labels.get("positive") is not None and labels["positive"] not in classes:
        raise RunError(f"{where}: the positive class {labels['positive']!r} is not one of the classes {classes}")
    if labels.get("window_length") is not None and labels["window_length"] < 1:
        raise RunError(f"{where}: 'window_length' must be positive; got {labels['window_length']}")
    return labels


# about.json: the user's own words for a run, edited on the Train and Runs pages. Typed by a person,
# so it is checked like any other input: known fields only, plain text, bounded sizes.
ABOUT_LIMITS = {"name": 80, "tag": 30, "tags": 12, "notes": 4000}
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def check_about(raw, where: str = "about.json") -> dict:
    """about.json as {'name': str, 'tags': [str], 'notes': str}; RunError naming the field when it is not.

    Whitespace is trimmed, empty tags dropped and repeated tags kept once; control characters,
    over-long texts and too many tags are refused with the limit.
    """
    if not isinstance(raw, dict):
        raise RunError(f"{where} holds {type(raw).__name__}, not a JSON object")
    about = _check_fields(raw, {"name": "str", "tags": "strs", "notes": "str"}, where)
    name = (about.get("name") or "").strip()
    notes = (about.get("notes") or "").strip()
    tags = list(dict.fromkeys(t.strip() for t in about.get("tags") or [] if t.strip()))
    for field, value, limit in (("name", name, ABOUT_LIMITS["name"]), ("notes", notes, ABOUT_LIMITS["notes"]),
                                *(("tags", t, ABOUT_LIMITS["tag"]) for t in tags)):
        if len(value) > limit:
            raise RunError(f"{where}: '{field}' {value[:20]!r}... is {len(value)} characters; at most {limit}")
        if _CONTROL.search(value.replace("\n", "") if field == "notes" else value):
            raise RunError(f"{where}: '{field}' holds control characters; use plain text")
    if len(tags) > ABOUT_LIMITS["tags"]:
        raise RunError(f"{where}: {len(tags)} tags; at most {ABOUT_LIMITS['tags']}")
    if any("," in t for t in tags):
        raise RunError(f"{where}: a tag may not contain a comma (commas separate tags)")
    return {"name": name, "tags": tags, "notes": notes}


def read_json_file(path: Path, what: str | None = None):
    """Parse a JSON file; RunError naming it when it is missing or not JSON."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise RunError(f"{what or path} is missing") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RunError(f"{what or path} is not valid JSON ({exc})") from exc


# --------------------------------------------------------------------------- processes


def process_started(pid: int) -> float | None:
    """When process `pid` started (seconds since the epoch), or None if there is no such process."""
    import psutil

    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


def worker_alive(status: dict) -> bool:
    """Whether the worker a status names is still running: its pid exists, is not a zombie, and
    started when the status says (so a reused pid does not make a dead run look alive)."""
    import psutil

    pid = status.get("pid")
    if not pid:
        return False
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        started = status.get("pid_started")
        return started is None or abs(proc.create_time() - started) < 1.0
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True


# --------------------------------------------------------------------------- run directories


class RunDir:
    """Paths and validated reading of one run directory."""

    def __init__(self, path: Path | str):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, RunDir) and self.path == other.path

    def __hash__(self) -> int:
        return hash(self.path)

    @property
    def name(self) -> str:
        return self.path.name

    config_path = property(lambda self: self.path / "config.json")
    split_path = property(lambda self: self.path / "split.csv")
    labels_path = property(lambda self: self.path / "labels.json")
    status_path = property(lambda self: self.path / "status.json")
    metrics_path = property(lambda self: self.path / "metrics.jsonl")
    log_path = property(lambda self: self.path / "train.log")
    checkpoint_dir = property(lambda self: self.path / "checkpoint")
    best_dir = property(lambda self: self.path / "best")
    report_path = property(lambda self: self.path / "test_report.json")
    about_path = property(lambda self: self.path / "about.json")

    def predictions_path(self, split: str) -> Path:
        return self.path / f"{split}_predictions.csv"

    def exists(self) -> bool:
        return self.config_path.exists()

    def require(self) -> RunDir:
        if not self.exists():
            raise RunError(
                f"{self.path} is not a run directory (no config.json). Fix: give a folder written by "
                "`python -m plmcore train`, or list runs with `python -m plmcore runs list`."
            )
        return self

    def _damaged(self, file: str, detail: str) -> RunError:
        return RunError(
            f"Run {self.name} is damaged: {file} {detail}. Delete the run (or import it again from an archive "
            "exported by this app)."
        )

    def config(self):
        """The run's TrainConfig, validated."""
        from plmcore.config import TrainConfig
        from plmcore.errors import ConfigError

        raw = read_json_file(self.require().config_path, f"{self.name}/config.json")
        try:
            return TrainConfig.from_dict(raw)
        except (ConfigError, TypeError, ValueError) as exc:
            raise self._damaged("config.json", f"does not validate ({exc})") from exc

    def labels(self) -> dict:
        if not self.labels_path.exists():
            raise RunError(f"{self.labels_path} is missing; the run never started training")
        try:
            return check_labels(read_json_file(self.labels_path), "labels.json")
        except RunError as exc:
            raise self._damaged("labels.json", str(exc)) from exc

    def update_provenance(self, **parts) -> None:
        """Add what the worker learns (model revision, threads, device) to config.json's provenance."""
        config = self.config()
        config.replace(provenance={**(config.provenance or {}), **parts}).save(self.config_path)

    def problem(self) -> str | None:
        """Why the run cannot be used (its config, status or labels do not validate), else None."""
        try:
            self.config()
            if self.status_path.exists():
                check_status(read_json_file(self.status_path))
            if self.labels_path.exists():
                self.labels()
        except RunError as exc:
            return str(exc)
        return None

    # ------------------------------------------------------------------ the user's words
    def about(self) -> dict:
        """Name, tags and notes the user gave the run (empty when none, or when the file does not validate:
        a damaged label must not hide the run)."""
        if not self.about_path.exists():
            return {"name": "", "tags": [], "notes": ""}
        try:
            return check_about(read_json_file(self.about_path, f"{self.name}/about.json"))
        except RunError as exc:
            log.warning("%s", exc)
            return {"name": "", "tags": [], "notes": ""}

    def set_about(self, *, name: str | None = None, tags: list[str] | str | None = None,
                  notes: str | None = None) -> dict:
        """Change the name, tags (a list, or one comma-separated text) or notes; the others stay. RunError
        when a value breaks the limits (nothing is written then)."""
        about = self.about()
        if name is not None:
            about["name"] = name
        if tags is not None:
            about["tags"] = tags.split(",") if isinstance(tags, str) else list(tags)
        if notes is not None:
            about["notes"] = notes
        about = check_about(about, f"the {'name, tags or notes'} of run {self.name}")
        write_json(self.about_path, about)
        return about

    @property
    def title(self) -> str:
        """What to call the run on screen: the user's name for it, else its folder name."""
        return self.about()["name"] or self.name

    # ------------------------------------------------------------------ status
    def read_status(self) -> dict:
        """status.json as written, validated; {'state': 'damaged', 'error': ...} when it does not validate."""
        if not self.status_path.exists():
            return {"state": "unknown"}
        try:
            return check_status(read_json_file(self.status_path, "status.json"))
        except RunError as exc:
            return {"state": DAMAGED, "error": str(self._damaged("status.json", str(exc)))}

    def write_status(self, state: str, **fields) -> dict:
        status = {k: v for k, v in self.read_status().items() if k != "state"}
        if (status.get("error") or "").startswith(f"Run {self.name} is damaged"):
            status = {}
        status.update(fields, state=state, updated_at=time.time())
        write_json(self.status_path, status)
        return status

    def status(self) -> dict:
        """Status, with a run whose worker died without saying so marked failed."""
        st = self.read_status()
        # a worker this process started is recorded by its reaper thread, with its exit code
        if st.get("state") in ACTIVE_STATES and st.get("pid") and st["pid"] not in _children \
                and not worker_alive(st):
            # re-read: the worker may have written its final state just before exiting
            st = self.read_status()
            if st.get("state") in ACTIVE_STATES:
                st = self.write_status("failed", ended_at=time.time(), error=self.died_message())
        return st

    def died_message(self, code: int | None = None) -> str:
        how = f" with exit code {code}" if code not in (None, 0) else ""
        return (f"The training process ended unexpectedly{how} (killed, or out of memory). Its log is "
                f"{self.log_path.name} in the run folder; the last checkpoint is kept and the run can be resumed.")

    # ------------------------------------------------------------------ metrics and reports
    def append_metrics(self, record: dict) -> None:
        with self.metrics_path.open("a") as fh:
            fh.write(json.dumps(_jsonable(record), default=float) + "\n")
            fh.flush()

    def read_metrics(self) -> list[dict]:
        if not self.metrics_path.exists():
            return []
        out = []
        for line in self.metrics_path.read_text(errors="replace").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:  # a line being written right now
                continue
            if isinstance(record, dict):
                out.append(record)
        return out

    def log_tail(self, n: int = 20) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])

    def read_report(self, name: str) -> dict | None:
        """A JSON report of the run (test_report.json, threshold.json, ...), or None if it has none."""
        path = self.path / name
        if not path.exists():
            return None
        raw = read_json_file(path, f"{self.name}/{name}")
        if not isinstance(raw, dict):
            raise self._damaged(name, f"holds {type(raw).__name__}, not a JSON object")
        return raw

    decision_path = property(lambda self: self.path / "threshold.json")
    baselines_path = property(lambda self: self.path / "baselines.json")
    comparison_path = property(lambda self: self.path / "comparison.json")
    leakage_path = property(lambda self: self.path / "leakage.json")

    def report(self) -> dict | None:
        """test_report.json: test metrics with intervals, curves, calibration."""
        return self.read_report(self.report_path.name)

    def decision(self) -> dict:
        """threshold.json: the decision threshold and temperature chosen on validation (0.5 and none if absent)."""
        return self.read_report(self.decision_path.name) or {"threshold": 0.5, "temperature": None,
                                                             "objective": "fixed"}

    def baselines(self) -> dict | None:
        """baselines.json: the baselines fitted on the run's split."""
        return self.read_report(self.baselines_path.name)

    def comparison(self) -> dict | None:
        """comparison.json: the paired comparison with the baselines and the verdict."""
        return self.read_report(self.comparison_path.name)

    def leakage(self) -> dict | None:
        """leakage.json: what the test split shares with training."""
        return self.read_report(self.leakage_path.name)

    def summary(self) -> dict:
        """One row for the runs table; a damaged run gets state 'damaged' and its error."""
        st = self.status()
        try:
            cfg = self.config()
            model, data = cfg.model, cfg.data
            dataset = data.dataset or ", ".join(Path(p).name for p in data.train)
        except RunError as exc:
            st, model, dataset = {"state": DAMAGED, "error": str(exc)}, None, ""
        started, ended = st.get("started_at"), st.get("ended_at")
        duration = (ended or (time.time() if st.get("state") == "running" else None) or 0) - (started or 0)
        about = self.about()
        return {
            "run": self.name,
            "name": about["name"] or self.name,
            "tags": about["tags"],
            "state": st.get("state"),
            "error": st.get("error"),
            "model": model,
            "dataset": dataset,
            "started": datetime.fromtimestamp(started).strftime("%Y-%m-%d %H:%M") if started else "",
            "duration_s": round(duration, 1) if started else None,
            "best_metric": st.get("best_metric_name"),
            "best_value": st.get("best_metric"),
            "test_mcc": st.get("test_mcc"),
            "test_roc_auc": st.get("test_roc_auc"),
            "path": str(self.path),
        }


def _slug(hint: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", hint.rsplit("/", 1)[-1]).strip("-")[:40] or "run"


def fresh_name(root: Path, hint: str, *, stamp: bool = True) -> Path:
    """A path under `root` that does not exist yet, named from `hint` (slugged) and the time."""
    base = (datetime.now().strftime("%Y%m%d-%H%M%S") + "-" if stamp else "") + _slug(hint)
    for i in range(1000):
        path = root / (base + (f"-{i}" if i else ""))
        if not path.exists():
            return path
    raise RunError(f"cannot find a free run name under {root}")


def new_run_dir(root: Path | str | None = None, hint: str = "run") -> RunDir:
    """A fresh, uniquely named (empty) run directory under `root`."""
    root = runs_root(root)
    try:
        root.mkdir(parents=True, exist_ok=True)
        for _ in range(100):
            path = fresh_name(root, hint)
            try:
                path.mkdir()
                return RunDir(path)
            except FileExistsError:
                continue
    except OSError as exc:
        raise storage_error(exc, root) from exc
    raise RunError(f"cannot create a run directory under {root}")


def staging_dir(root: Path) -> Path:
    """A hidden folder beside the runs, where a run is written before it is renamed into place."""
    try:
        root.mkdir(parents=True, exist_ok=True)
        path = root / f".staging-{uuid.uuid4().hex[:12]}"
        path.mkdir()
    except OSError as exc:
        raise storage_error(exc, root) from exc
    return path


def place(staged: Path, final: Path | None, root: Path, hint: str) -> RunDir:
    """Rename a completely written run folder into place: at `final`, or at a fresh name under `root`."""
    try:
        if final is not None:
            os.rename(staged, final)  # fails if `final` holds anything
            return RunDir(final)
        for _ in range(100):
            target = fresh_name(root, hint)
            try:
                os.rename(staged, target)
                return RunDir(target)
            except OSError:
                if not target.exists():
                    raise
    except OSError as exc:
        shutil.rmtree(staged, ignore_errors=True)
        raise storage_error(exc, root) from exc
    shutil.rmtree(staged, ignore_errors=True)
    raise RunError(f"cannot find a free run name under {root}")


def list_runs(root: Path | str | None = None) -> list[RunDir]:
    """Run directories under `root` (damaged ones included), newest first."""
    root = runs_root(root)
    if not root.exists():
        return []
    runs = [RunDir(p) for p in root.iterdir() if not p.name.startswith(".") and (p / "config.json").exists()]

    def mtime(run: RunDir) -> float:
        try:
            return run.path.stat().st_mtime
        except OSError:
            return 0.0

    return sorted(runs, key=mtime, reverse=True)


def active_runs(root: Path | str | None = None) -> list[RunDir]:
    return [r for r in list_runs(root) if r.status().get("state") in ACTIVE_STATES]


# --------------------------------------------------------------------------- a run's lifecycle


class Cancelled(Exception):
    """Raised inside a run after SIGTERM, once its checkpoint is safe."""


@contextlib.contextmanager
def lifecycle(run: RunDir, *, kind: str | None = None):
    """Everything around a run's work, for training and cross-validation alike.

    Logs to the run's train.log, marks it running with this process's pid and start time, turns
    SIGTERM into a stop request (the yielded dict's "flag"; the work raises Cancelled once its
    checkpoint is safe), and records how it ended: `cancelled`, or `failed` with the reason
    (the exception is re-raised). The work itself writes `finished`.
    """
    handler = logging.FileHandler(run.log_path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
    root = logging.getLogger("plmcore")
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    stop = {"flag": False}

    def on_term(signum, frame):
        stop["flag"] = True
        log.info("Stop requested (signal %d); stopping after the current step", signum)

    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, on_term) if main else None
    run.write_status("running", pid=os.getpid(), pid_started=process_started(os.getpid()), started_at=time.time(),
                     ended_at=None, error=None, exit_code=None, **({"kind": kind} if kind else {}))
    try:
        yield stop
    except Cancelled:
        run.write_status("cancelled", ended_at=time.time())
        log.info("Cancelled; the last checkpoint is kept")
    except BaseException as exc:
        message = str(exc) if isinstance(exc, PlmcoreError) else f"{type(exc).__name__}: {exc}"
        if isinstance(exc, KeyboardInterrupt):
            message = "interrupted (Ctrl-C); the last checkpoint is kept"
        log.error("Run failed: %s\n%s", message, traceback.format_exc())
        run.write_status("failed", ended_at=time.time(), error=message)
        raise
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        root.removeHandler(handler)
        handler.close()


# --------------------------------------------------------------------------- workers

_children: dict[int, subprocess.Popen] = {}  # workers this process started, until reaped


def _reap(proc: subprocess.Popen, run: RunDir) -> None:
    """Wait for a worker (so it never lingers as a zombie), then mark it failed if it died silently."""
    code = proc.wait()
    _children.pop(proc.pid, None)
    status = run.read_status()
    if status.get("state") in ACTIVE_STATES and status.get("pid") == proc.pid:
        if code == -signal.SIGTERM:  # stopped (by cancel) before it could install its own handler
            run.write_status("cancelled", ended_at=time.time(), exit_code=code,
                             error="stopped before training began")
        else:
            run.write_status("failed", ended_at=time.time(), exit_code=code, error=run.died_message(code))


def start_worker(run: RunDir, *, resume: bool = False, extra_env: dict | None = None, command: str = "train",
                 trust_remote_code: bool = False, workspace_dir: Path | str | None = None,
                 args: list[str] | None = None) -> int:
    """Start `python -m plmcore train --run-dir RUN` (or `cv`) as a separate process; return its pid.

    A subprocess (not a fork) so CUDA initialises cleanly, in its own session so it outlives the
    browser tab and is not stopped by Ctrl-C in the server's terminal. A thread of this process
    waits for it, so a finished worker never stays a zombie, and marks the run failed if the worker
    died without saying so. If this process stops first, the worker carries on on its own
    (`python -m plmcore runs cancel RUN` stops it).

    `trust_remote_code` is the caller's decision for this start only; it is never read from a file.
    `args` replaces the command line after `python -m plmcore` (a scan: plmcore.scan.start_scan).
    """
    run.require()
    cmd = [sys.executable, "-m", "plmcore", *(args or [command, "--run-dir", str(run.path)])]
    if resume:
        cmd.append("--resume")
    if trust_remote_code:
        cmd.append("--trust-remote-code")
    env = dict(os.environ, **(extra_env or {}))
    env.setdefault("PYTHONUNBUFFERED", "1")
    if workspace_dir is not None:
        env["PLMCORE_WORKSPACE"] = str(workspace_dir)
    # the worker must import this same plmcore, whatever the server's working directory
    package_root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    run.write_status("queued", queued_at=time.time(), error=None, exit_code=None)
    with open(run.path / "worker.out", "ab") as out:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, env=env, cwd=os.getcwd(),
        )
    _children[proc.pid] = proc
    run.write_status("queued", pid=proc.pid, pid_started=process_started(proc.pid))
    threading.Thread(target=_reap, args=(proc, run), name=f"reap-{proc.pid}", daemon=True).start()
    return proc.pid


def rerun_command(run: RunDir) -> str:
    """The shell command that trains the run again, exactly (its config names its own split.csv)."""
    import shlex

    again = run.path.with_name(run.name + "-again")
    return f"python -m plmcore train --config {shlex.quote(str(run.config_path))} --run-dir {shlex.quote(str(again))}"


def resume_command(run_dir: Path | str) -> str:
    """The shell command that resumes a run, safe to copy and paste whatever the folder is called."""
    import shlex

    return f"python -m plmcore train --run-dir {shlex.quote(str(run_dir))} --resume"


def cancel(run: RunDir) -> bool:
    """Ask a running worker to stop (SIGTERM); it saves a checkpoint and marks itself cancelled."""
    st = run.status()
    if st.get("state") not in ACTIVE_STATES or not worker_alive(st):
        return False
    os.kill(st["pid"], signal.SIGTERM)
    return True


def wait(run: RunDir, timeout: float = 600, poll: float = 0.5) -> dict:
    """Block until the run reaches a final state (for tests and scripts)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        st = run.status()
        if st.get("state") in (*FINAL_STATES, DAMAGED):
            return st
        time.sleep(poll)
    raise RunError(f"run {run.path} did not finish within {timeout:.0f} s (state {run.status().get('state')})")


def delete_run(run: RunDir) -> None:
    st = run.status()
    if st.get("state") in ACTIVE_STATES and worker_alive(st):
        raise RunError(f"run {run.name} is still active; stop it before deleting it")
    shutil.rmtree(run.path)
