"""The only module that imports Streamlit: cached loaders, the sidebar and widgets shared by pages."""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import streamlit as st

from plmcore import data as D
from plmcore.errors import PlmcoreError, explain_os_errors
from plmcore.models import DEFAULT_MODEL, PRESETS, RANDOM_PREFIX, TINY_PRESETS, cache_status, pick_device
from plmcore.runs import ACTIVE_STATES, RunDir, active_runs, list_runs, workspace

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger("plmcore.ui")

MAX_ACTIVE_RUNS = int(os.environ.get("PLMCORE_MAX_ACTIVE_RUNS", "1"))


# --------------------------------------------------------------------------- errors


def guard(body: Callable[[], None]) -> None:
    """Run a page body; show user-fixable problems as st.error and never a traceback."""
    try:
        body()
    except PlmcoreError as exc:
        st.error(str(exc))
    except Exception as exc:  # noqa: BLE001 - a demo must not show a traceback
        path = workspace() / "app-errors.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as fh:
            fh.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')}\n{traceback.format_exc()}\n")
        st.error(
            f"Something went wrong: {type(exc).__name__}: {exc}. Your data and runs are safe. "
            f"The technical details were written to {path}; please include them if you report this."
        )


def fail(message: str) -> None:
    """Show a user-fixable problem with its fix, then stop this page."""
    st.error(message)
    st.stop()


# --------------------------------------------------------------------------- uploads

# What the file uploaders accept: the suffixes plmcore.data reads, plain or gzipped.
UPLOAD_TYPES = [s.lstrip(".") for s in (*D.FASTA_SUFFIXES, *D.CSV_SUFFIXES, *D.TSV_SUFFIXES)] + ["txt", "gz"]


@contextmanager
def upload_paths(*uploads) -> Iterator[list[Path]]:
    """Uploaded files written to a temporary folder, which is removed on leaving, whatever happens."""
    doing = f"store the upload {', '.join(up.name for up in uploads)}"
    with explain_os_errors(doing, tempfile.gettempdir(), "TMPDIR"):
        folder = tempfile.TemporaryDirectory(prefix="plm-upload-")
    with folder:
        # one subfolder each, as two uploads may share a name; the browser's name keeps the suffix
        paths = [Path(folder.name, str(i), Path(up.name).name or "upload") for i, up in enumerate(uploads)]
        with explain_os_errors(doing, folder.name, "TMPDIR"):
            for path, up in zip(paths, uploads):
                path.parent.mkdir()
                path.write_bytes(up.getbuffer())
        yield paths


def read_upload(upload, **kwargs) -> pd.DataFrame:
    """An uploaded file read with plmcore.data.read_table (messages name the browser's file name).

    Args:
        upload: a Streamlit UploadedFile.
        kwargs: read_table's options (label_source, label_column, ...).
    """
    with upload_paths(upload) as (path,):
        return D.read_table(path, display_name=upload.name, **kwargs)


# --------------------------------------------------------------------------- remembered choices


def _state_path() -> Path:
    return workspace() / "ui_state.json"


def remembered(key: str, default=None):
    """A choice that survives page reloads and new visits (kept in the workspace)."""
    if key in st.session_state:
        return st.session_state[key]
    try:
        return json.loads(_state_path().read_text()).get(key, default)
    except (OSError, json.JSONDecodeError):
        return default


def remember(key: str, value) -> None:
    st.session_state[key] = value
    path = _state_path()
    try:
        state = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        state = {}
    state[key] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(state))


# --------------------------------------------------------------------------- models


def show_test_models() -> bool:
    """Tiny random-weight models are offered when asked for (tests, demos without downloads)."""
    return os.environ.get("PLMCORE_SHOW_TEST_MODELS", "1") != "0"


def model_choices() -> dict[str, str]:
    """Label shown in the model picker -> model source."""
    out = {}
    for p in PRESETS.values():
        out[f"{p.display} · {p.size_label} · {p.family} · {cache_status(p.id)}"] = p.id
    for p in PRESETS.values():
        out[f"{p.display} · random weights, for trying the interface"] = RANDOM_PREFIX + p.id
    if show_test_models():
        for p in TINY_PRESETS.values():
            out[f"{p.display} · random weights, for trying the interface (seconds to train)"] = RANDOM_PREFIX + p.id
    return out


@st.cache_resource(show_spinner="Loading the model…", max_entries=2)
def cached_run(path: str, stamp: str):
    """A fine-tuned run rebuilt for scoring; `stamp` changes when its weights change."""
    from plmcore.predict import load_run

    return load_run(path)


def loaded_run(run: RunDir):
    head = run.best_dir / "head.safetensors"
    stamp = str(head.stat().st_mtime_ns) if head.exists() else "none"
    return cached_run(str(run.path.resolve()), stamp)


@st.cache_resource(show_spinner="Loading the model…", max_entries=2)
def cached_embedder(source: str, pooling: str):
    from plmcore.embed import load_embedder

    return load_embedder(source, pooling=pooling)


@st.cache_resource
def device_name() -> str:
    dev = pick_device()
    if dev.type == "cuda":
        import torch

        return f"GPU: {torch.cuda.get_device_name(dev)}"
    return {"mps": "Apple GPU (MPS)", "cpu": f"CPU ({os.cpu_count()} cores)"}.get(dev.type, str(dev))


# --------------------------------------------------------------------------- progress


class Progress:
    """A progress bar with an ETA, usable as a (done, total) callback."""

    def __init__(self, label: str):
        self.label = label
        self.bar = st.progress(0.0, text=label)
        self.t0 = time.time()

    def __call__(self, done: int, total: int) -> None:
        frac = done / max(total, 1)
        elapsed = time.time() - self.t0
        eta = elapsed / frac - elapsed if frac > 0 else 0
        self.bar.progress(min(frac, 1.0), text=f"{self.label}: {done}/{total} · {format_seconds(eta)} left")

    def done(self) -> None:
        self.bar.empty()


def format_seconds(s: float | None) -> str:
    if s is None:
        return "?"
    s = max(0, int(round(s)))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {(s % 3600) // 60:02d} min"


def run_progress(status: dict) -> tuple[float, str]:
    """Fraction done and a one-line description (step, epoch, ETA) of a run's status."""
    step, total = status.get("step") or 0, status.get("total_steps") or 0
    state = status.get("state")
    if state == "queued" or not total:
        return 0.0, "starting (loading the model and data)…"
    frac = min(step / total, 1.0)
    started = status.get("started_at") or time.time()
    elapsed = (status.get("ended_at") or time.time()) - started
    text = f"step {step}/{total} · epoch {status.get('epoch', 0):.2f}/{status.get('epochs', '?')}"
    if state == "running" and step:
        rate = (status.get("elapsed_s") or elapsed) / step
        text += f" · {format_seconds(rate * (total - step))} left"
    elif state in ("finished", "cancelled", "failed"):
        text += f" · {state} after {format_seconds(elapsed)}"
    return frac, text


# --------------------------------------------------------------------------- pickers


def pick_run(label: str, key: str, *, finished_only: bool = False, runs: list[RunDir] | None = None) -> RunDir | None:
    runs = runs if runs is not None else list_runs()
    if finished_only:
        runs = [r for r in runs if r.status().get("state") == "finished"]
    if not runs:
        return None
    names = [r.name for r in runs]
    default = remembered(f"{key}_choice")
    index = names.index(default) if default in names else 0
    choice = st.selectbox(label, names, index=index, key=key,
                          format_func=lambda n: _run_label(next(r for r in runs if r.name == n)))
    remember(f"{key}_choice", choice)
    return next(r for r in runs if r.name == choice)


def _run_label(run: RunDir) -> str:
    s = run.summary()
    model = (s["model"] or "").replace(RANDOM_PREFIX, "random ")
    return f"{s['run']} · {model} · {s['state']}"


# --------------------------------------------------------------------------- sidebar


def sidebar() -> None:
    """Current model and where it comes from, the device, and the active training run."""
    with st.sidebar:
        model = remembered("model", DEFAULT_MODEL)
        status = cache_status(model)
        st.markdown(f"**Model** `{model}`")
        hint = {"download": "not cached: downloads on first use", "cached": "in the local cache",
                "local folder": "local folder", "random weights": "random weights (for trying the interface)"}
        st.caption(hint.get(status, status))
        st.markdown(f"**Device** {device_name()}")
        _active_run_box()


@st.fragment(run_every=3)
def _active_run_box() -> None:
    active = all_active()
    if not active:
        st.caption("No training running.")
        return
    for run in active:
        status = run.status()
        if status.get("kind") == "cv":
            st.markdown(f"**Cross-validation** `{run.name}`")
            st.progress((status.get("fold") or 0) / max(status.get("folds") or 1, 1),
                        text=f"fold {status.get('fold', 0)} of {status.get('folds', '?')}")
            continue
        st.markdown(f"**Training** `{run.name}`")
        frac, text = run_progress(status)
        st.progress(frac, text=text)


def all_active() -> list[RunDir]:
    """Active training runs and cross-validations."""
    from plmcore.cv import cv_root

    return active_runs() + active_runs(cv_root())


def can_start_run() -> tuple[bool, str]:
    active = [r for r in all_active() if r.status().get("state") in ACTIVE_STATES]
    if len(active) >= MAX_ACTIVE_RUNS:
        names = ", ".join(r.name for r in active)
        return False, (f"A training run is already active ({names}). This server runs one at a time: "
                       "wait for it to finish, or stop it on the Train page.")
    return True, ""


# --------------------------------------------------------------------------- shared panels


def show_leakage(leak: dict, *, detailed: bool = False) -> None:
    """Warnings and headline counts of a leakage report; with `detailed`, the histogram and pairs too."""
    import pandas as pd

    from plmcore import figures as F

    if leak["leaks"]:
        for w in leak["warnings"]:
            st.warning(w)
    else:
        st.success("No leakage found: no test item shares a protein with, overlaps, or closely resembles a "
                   "training item.")
    po, ow = leak["protein_overlap"], leak["overlapping_windows"]
    c = st.columns(4)
    c[0].metric("Test items", leak["n_test"])
    c[1].metric("From proteins also in training", f"{po['n_test_items']} ({po['fraction']:.0%})")
    c[2].metric("Overlapping a training window", ow["n_test_items"])
    c[3].metric("Median identity to closest training item", f"{leak['identity']['summary'].get('median', 0):.2f}")
    if not detailed:
        return
    c1, c2 = st.columns(2)
    c1.plotly_chart(F.identity_histogram(leak), width="stretch", key="leak_hist")
    if ow.get("pairs"):
        c2.markdown("**Overlapping pairs** (test ~ training)")
        c2.dataframe(pd.DataFrame(ow["pairs"]), hide_index=True, width="stretch", height=300)
