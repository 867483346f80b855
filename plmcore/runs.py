"""Run directories: layout, status, metrics log, starting a worker process, cancelling, listing.

A run directory holds everything about one fine-tuning run::

    config.json           every setting needed to re-run (TrainConfig)
    split.csv             id, sequence, label, split (train/val/test): the data exactly as used
    labels.json           classes, positive class, window length and centre residues
    status.json           state (queued/running/finished/failed/cancelled), progress, error
    metrics.jsonl         one JSON object per logging step and per evaluation
    train.log             the worker's log
    checkpoint/           last checkpoint: adapter/, head.safetensors, trainer_state.pt
    best/                 best checkpoint by the early-stopping metric: adapter/, head.safetensors
    val_predictions.csv   class probabilities of the best model on the validation split
    test_predictions.csv  ... and on the test split
    test_report.json      metrics, 95% bootstrap intervals, confusion matrix, curves
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from datetime import datetime
from pathlib import Path

from plmcore.errors import RunError

ACTIVE_STATES = ("queued", "running")
FINAL_STATES = ("finished", "failed", "cancelled")


def workspace() -> Path:
    """Where the app and the CLI keep datasets and runs: $PLMCORE_WORKSPACE or ./plmcore_data."""
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
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(_jsonable(data), indent=2, default=str) + "\n")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # a full disk must not leave half a file behind
        raise




def _pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child of this process is dead for our purposes
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return True


class RunDir:
    """Paths and small I/O helpers for one run directory."""

    def __init__(self, path: Path | str):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

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

    def config(self):
        from plmcore.config import TrainConfig

        return TrainConfig.load(self.require().config_path)

    def labels(self) -> dict:
        if not self.labels_path.exists():
            raise RunError(f"{self.labels_path} is missing; the run never started training")
        return json.loads(self.labels_path.read_text())

    # ------------------------------------------------------------------ status
    def read_status(self) -> dict:
        try:
            return json.loads(self.status_path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {"state": "unknown"}

    def write_status(self, state: str, **fields) -> dict:
        status = {k: v for k, v in self.read_status().items() if k != "state"}
        status.update(fields, state=state, updated_at=time.time())
        write_json(self.status_path, status)
        return status

    def status(self) -> dict:
        """Status, with a run whose worker died without saying so marked failed."""
        st = self.read_status()
        if st.get("state") in ACTIVE_STATES and st.get("pid") and not _pid_alive(st["pid"]):
            # re-read: the worker may have written its final state just before exiting
            st = self.read_status()
            if st.get("state") in ACTIVE_STATES:
                st = self.write_status(
                    "failed", error="The training process ended unexpectedly (killed, or out of "
                    f"memory). Its log is {self.log_path}; the last checkpoint is kept and the run "
                    "can be resumed."
                )
        return st

    # ------------------------------------------------------------------ metrics
    def append_metrics(self, record: dict) -> None:
        with self.metrics_path.open("a") as fh:
            fh.write(json.dumps(_jsonable(record), default=float) + "\n")
            fh.flush()

    def read_metrics(self) -> list[dict]:
        if not self.metrics_path.exists():
            return []
        out = []
        for line in self.metrics_path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:  # a line being written right now
                pass
        return out

    def log_tail(self, n: int = 20) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])

    def report(self) -> dict | None:
        return json.loads(self.report_path.read_text()) if self.report_path.exists() else None

    def summary(self) -> dict:
        """One row for the runs table."""
        st = self.status()
        cfg = {}
        try:
            cfg = json.loads(self.config_path.read_text())
        except (OSError, json.JSONDecodeError):
            pass
        started, ended = st.get("started_at"), st.get("ended_at")
        duration = (ended or (time.time() if st.get("state") == "running" else None) or 0) - (started or 0)
        return {
            "run": self.name,
            "state": st.get("state"),
            "model": cfg.get("model"),
            "dataset": (cfg.get("data") or {}).get("dataset") or ", ".join((cfg.get("data") or {}).get("train", [])),
            "started": datetime.fromtimestamp(started).strftime("%Y-%m-%d %H:%M") if started else "",
            "duration_s": round(duration, 1) if started else None,
            "best_metric": st.get("best_metric_name"),
            "best_value": st.get("best_metric"),
            "test_mcc": st.get("test_mcc"),
            "test_roc_auc": st.get("test_roc_auc"),
            "path": str(self.path),
        }


def new_run_dir(root: Path | str | None = None, hint: str = "run") -> RunDir:
    """A fresh, uniquely named run directory under `root`."""
    root = runs_root(root)
    root.mkdir(parents=True, exist_ok=True)
    slug = re.sub(r"[^A-Za-z0-9]+", "-", hint.rsplit("/", 1)[-1]).strip("-")[:40] or "run"
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    for i in range(1000):
        path = root / (f"{stamp}-{slug}" + (f"-{i}" if i else ""))
        try:
            path.mkdir()
            return RunDir(path)
        except FileExistsError:
            continue
    raise RunError(f"cannot create a run directory under {root}")


def list_runs(root: Path | str | None = None) -> list[RunDir]:
    """Run directories under `root`, newest first."""
    root = runs_root(root)
    if not root.exists():
        return []
    runs = [RunDir(p) for p in root.iterdir() if (p / "config.json").exists()]
    return sorted(runs, key=lambda r: r.path.stat().st_mtime if r.path.exists() else 0, reverse=True)


def active_runs(root: Path | str | None = None) -> list[RunDir]:
    return [r for r in list_runs(root) if r.status().get("state") in ACTIVE_STATES]


def start_worker(run: RunDir, *, resume: bool = False, extra_env: dict | None = None, command: str = "train") -> int:
    """Start `python -m plmcore train --run-dir RUN` (or `cv`) as a separate process; return its pid.

    A subprocess (not a fork) so CUDA initialises cleanly, in its own session so it outlives
    the browser tab and a restart of the web server.
    """
    run.require()
    cmd = [sys.executable, "-m", "plmcore", command, "--run-dir", str(run.path)]
    if resume:
        cmd.append("--resume")
    env = dict(os.environ, **(extra_env or {}))
    env.setdefault("PYTHONUNBUFFERED", "1")
    # the worker must import this same plmcore, whatever the server's working directory
    package_root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    run.write_status("queued", queued_at=time.time(), error=None)
    with open(run.path / "worker.out", "ab") as out:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, env=env, cwd=os.getcwd(),
        )
    run.write_status("queued", pid=proc.pid)
    return proc.pid


def cancel(run: RunDir) -> bool:
    """Ask a running worker to stop (SIGTERM); it saves a checkpoint and marks itself cancelled."""
    st = run.status()
    pid = st.get("pid")
    if st.get("state") not in ACTIVE_STATES or not _pid_alive(pid):
        return False
    os.kill(pid, signal.SIGTERM)
    return True


def wait(run: RunDir, timeout: float = 600, poll: float = 0.5) -> dict:
    """Block until the run reaches a final state (for tests and scripts)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        st = run.status()
        if st.get("state") in FINAL_STATES:
            return st
        time.sleep(poll)
    raise RunError(f"run {run.path} did not finish within {timeout:.0f} s (state {run.status().get('state')})")


def delete_run(run: RunDir) -> None:
    if run.status().get("state") in ACTIVE_STATES:
        raise RunError(f"run {run.name} is still active; stop it before deleting it")
    shutil.rmtree(run.path)


_EXPORT_SKIP = ("checkpoint/trainer_state.pt",)


def export_zip(run: RunDir) -> bytes:
    """The run as a zip: config, split, labels, metrics, reports, predictions, best adapter and head."""
    run.require()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(run.path.rglob("*")):
            rel = path.relative_to(run.path).as_posix()
            if path.is_file() and not rel.startswith("checkpoint/") and not rel.startswith("."):
                zf.write(path, f"{run.name}/{rel}")
    return buf.getvalue()


def import_zip(data: bytes, root: Path | str | None = None) -> RunDir:
    """Unpack a zip made by `export_zip` as a new run under `root`."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise RunError("the file is not a zip archive; export a run from the Runs page and import that") from exc
    names = zf.namelist()
    configs = [n for n in names if n.count("/") == 1 and n.endswith("/config.json")]
    if len(configs) != 1:
        raise RunError("the zip holds no run (expected <run>/config.json at its top level)")
    top = configs[0].split("/")[0]
    dest = runs_root(root) / top
    if dest.exists():
        dest = new_run_dir(root, top)
    dest.mkdir(parents=True, exist_ok=True)
    for name in names:
        if not name.startswith(top + "/") or name.endswith("/"):
            continue
        rel = Path(name[len(top) + 1:])
        if rel.is_absolute() or ".." in rel.parts:
            raise RunError(f"unsafe path {name!r} in zip")
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(zf.read(name))
    run = RunDir(dest)
    st = run.read_status()
    if st.get("state") in ACTIVE_STATES:
        run.write_status("failed", error="imported while it was still running; only its files came along")
    return run
