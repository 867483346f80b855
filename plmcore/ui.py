"""The only module that imports Streamlit: who the user is and where their files live, cached
loaders, the sidebar and widgets shared by pages."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import streamlit as st

from plmcore import data as D
from plmcore import runs as R
from plmcore.errors import PlmcoreError, explain_os_errors
from plmcore.live import format_seconds
from plmcore.models import DEFAULT_MODEL, PRESETS, RANDOM_PREFIX, TINY_PRESETS, cache_status, find_preset, pick_device
from plmcore.runs import RunDir, active_runs, list_runs

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger("plmcore.ui")

MAX_ACTIVE_RUNS = int(os.environ.get("PLMCORE_MAX_ACTIVE_RUNS", "1"))
LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})


# --------------------------------------------------------------------------- text


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~:$])")


def md(text: object) -> str:
    """User-supplied text made safe for st.markdown and friends: every markdown character escaped,
    so an id like '![x](http://...)' shows as typed and fetches nothing."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", str(text))


# --------------------------------------------------------------------------- errors


def guard(body: Callable[[], None]) -> None:
    """Run a page body; show user-fixable problems as st.error and never a traceback."""
    _leave_pages_folder_mode()
    try:
        body()
    except PlmcoreError as exc:
        st.error(md(exc.render("app")))
    except Exception as exc:  # noqa: BLE001 - a demo must not show a traceback
        path = workspace() / "app-errors.log"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a") as fh:
                fh.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')}\n{traceback.format_exc()}\n")
            where = f"The technical details were written to {path.name} in your workspace"
        except OSError:
            where = "The technical details could not be saved (the workspace is not writable)"
        st.error(md(f"Something went wrong: {type(exc).__name__}: {exc}. Your data and runs are safe. "
                    f"{where}; please include them if you report this."))


_NAVIGATED = "_plmcore_app_navigation"


def _leave_pages_folder_mode() -> None:
    """A deep link (/runs) opened first after the server starts runs the page on its own.

    Streamlit decides, when its first session starts, that an app with a `pages/` folder uses the
    old folder navigation, and keeps that until app.py calls st.navigation. So the first page opened
    by URL runs without app.py: Streamlit's file-name navigation, no sidebar, and page links to
    "pages/x.py" raise StreamlitPageNotFoundError. Seen from a page, that mode means app.py has not
    run: switch it off and rerun, so app.py runs and st.navigation opens the same page (its URL path
    is the same in both modes). A session in which app.py has run (app_pages marks it) is not in
    that mode, whatever the flag says (AppTest sets the flag again before each run).
    """
    try:
        from streamlit.runtime.pages_manager import PagesManager
    except ImportError:  # a Streamlit without it has no folder mode to leave
        return
    if getattr(PagesManager, "uses_pages_directory", False) and _NAVIGATED not in st.session_state:
        PagesManager.uses_pages_directory = False
        st.rerun()


# --------------------------------------------------------------------------- pages and the guided path


def app_pages() -> list:
    """The app's pages for st.navigation: the home page, then the five steps (plmcore.guide.STEPS)."""
    from plmcore.guide import HOME_PAGE, STEPS

    st.session_state[_NAVIGATED] = True
    home = st.Page(HOME_PAGE, title="Home", icon=":material/home:", default=True)
    return [home, *(st.Page(s.page, title=s.title, icon=s.icon) for s in STEPS)]


def page_link(key: str, label: str | None = None, *, where=None) -> None:
    """A link to a step's page (plmcore.guide key: data, train, runs, embeddings, predict)."""
    from plmcore.guide import step

    s = step(key)
    (where or st).page_link(s.page, label=label or f"Go to {s.title}", icon=s.icon)


def empty_state(message: str, key: str) -> None:
    """What a page shows when the step before it is not done: an info box (never a red error) that
    says what is missing, and a link to the page that makes it (a plmcore.guide step key)."""
    st.info(message, icon=":material/info:")
    page_link(key)


def fail(message: str) -> None:
    """Show a user-fixable problem with its fix, then stop this page."""
    st.error(message)
    st.stop()


# --------------------------------------------------------------------------- who, and where their files are


def served() -> bool:
    """True when the app can be reached from other computers (not only from this one).

    Streamlit binds every interface when no address is set, so only an explicit loopback
    address counts as local. Behind a reverse proxy on this machine, set PLMCORE_SERVED=1.
    """
    if os.environ.get("PLMCORE_SERVED", "").strip().lower() in ("1", "true", "yes"):
        return True
    if (st.get_option("server.address") or "") not in LOOPBACK:
        return True
    ip = st.context.ip_address  # None for a browser on this computer
    return isinstance(ip, str) and ip not in LOOPBACK


def auth_configured() -> bool:
    """Whether sign-in (st.login with an OIDC provider) is set up in .streamlit/secrets.toml."""
    try:
        return "auth" in st.secrets
    except Exception:  # noqa: BLE001 - no secrets file at all
        return False


def require_sign_in() -> None:
    """When served: ask for sign-in (or stop with how to set it up). Local use needs none."""
    if not served():
        return
    if auth_configured():
        if not st.user.is_logged_in:
            st.title("PLM fine-tuning")
            st.write("This app is shared on your network. Sign in to reach your own datasets and runs.")
            if st.button("Sign in", key="sign_in", type="primary"):
                st.login()
            st.stop()
        return
    if os.environ.get("PLMCORE_ALLOW_ANONYMOUS", "").strip().lower() in ("1", "true", "yes"):
        return
    fail("This app is reachable from other computers, and sign-in is not set up, so it does not open. "
         "For use on this computer only, start it with `streamlit run app.py` from the project folder (its "
         "settings bind it to localhost). To share it, set up sign-in in `.streamlit/secrets.toml` as the "
         "README's 'Serving to a lab network' section explains, or set PLMCORE_ALLOW_ANONYMOUS=1 to accept "
         "that anyone who reaches it can use it.")


def user_folder(identity: str) -> str:
    """A folder name for one signed-in user: readable, and unique by a hash of the identity."""
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", identity)[:40].strip("._") or "user"
    return f"{readable}-{hashlib.sha256(identity.encode()).hexdigest()[:10]}"


def workspace() -> Path:
    """This session's workspace: the shared one locally; each signed-in user's own when served."""
    root = R.workspace()
    if not served():
        return root
    user = st.user
    identity = (user.get("email") or user.get("sub")) if user.get("is_logged_in") else None
    return root / "users" / (user_folder(identity) if identity else "anonymous")


def datasets():
    from plmcore.datasets import DatasetStore

    return DatasetStore(workspace() / "datasets")


def runs_root() -> Path:
    return workspace() / "runs"


def cv_root() -> Path:
    from plmcore.cv import cv_root as root

    return root(workspace())


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
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        R.write_json(path, state)
    except PlmcoreError:
        log.warning("could not save the choice %s to %s", key, path)


# --------------------------------------------------------------------------- settings


def setting_input(cls, name: str, *, key: str, where=None, value=None, label: str | None = None,
                  radio: bool = False, **kw):
    """The widget for one setting, made from its declaration (plmcore.config): a choice is a
    selectbox with the declared words, a switch a toggle, a number a number box within the
    declared range. An optional number whose range starts above 0 takes 0 for "none" (e.g.
    patience 0 = never stop early). Returns the setting's value."""
    from plmcore.config import spec

    s = spec(cls, name)
    where = where or st
    label = label or s["label"] or name.replace("_", " ").capitalize()
    current = s["default"] if value is None else value
    help_text = s["help"][:1].upper() + s["help"][1:]
    if s["values"] is not None:
        options, words = list(s["values"]), s["choices"] or {}
        widget = partial(where.radio, horizontal=True) if radio else where.selectbox
        return widget(label, options, index=options.index(current), key=key, help=help_text,
                      format_func=lambda v: words.get(v, str(v)), **kw)
    if s["type"] is bool:
        return where.toggle(label, value=bool(current), key=key, help=help_text, **kw)
    if s["type"] in (int, float):
        integer = s["type"] is int
        cast = int if integer else float
        zero_is_none = s["optional"] and (s["lo"] or 0) > 0
        lo = 0 if zero_is_none else s["lo"]
        if lo is not None and s["lo_open"] and not zero_is_none:
            lo = lo + 1 if integer else lo + 1e-6
        hi = s["hi"]
        if hi is not None and s["hi_open"]:
            hi = hi - 1 if integer else hi - 1e-6
        shown = 0 if current is None else current
        options = {"step": 1 if integer else float(s.get("step") or 0.05)}
        if s.get("format"):
            options["format"] = s["format"]
        got = where.number_input(label, min_value=None if lo is None else cast(lo),
                                 max_value=None if hi is None else cast(hi), value=cast(shown), key=key,
                                 help=help_text + (f" 0: {s['none']}." if zero_is_none else ""), **options, **kw)
        return None if zero_is_none and got == 0 else cast(got)
    text = where.text_input(label, value="" if current is None else str(current), key=key, help=help_text, **kw)
    return text.strip() or (None if s["optional"] else s["default"])


def setting_state(cls, name: str, value):
    """What the widget of `setting_input` holds for a setting's value (to put in st.session_state): None is
    0 for a number whose 0 means "none", the default where the widget cannot show None, "" for a text."""
    from plmcore.config import spec

    s = spec(cls, name)
    if s["values"] is not None:
        return value if value in s["values"] else s["default"]
    if s["type"] is bool:
        return bool(s["default"] if value is None else value)
    if s["type"] in (int, float):
        if value is None:
            value = 0 if s["optional"] and (s["lo"] or 0) > 0 else s["default"]
        return s["type"](value) if value is not None else value
    return "" if value is None else str(value)


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
    out.update(admin_models())
    return out


def model_dirs() -> list[Path]:
    """Folders an administrator lists in PLMCORE_MODEL_DIRS (os.pathsep-separated): each subfolder
    holding a config.json is offered as a model, also when the app is served."""
    return [Path(p).expanduser() for p in os.environ.get("PLMCORE_MODEL_DIRS", "").split(os.pathsep) if p.strip()]


def admin_models() -> dict[str, str]:
    """Label -> folder for the models in the administrator's folders."""
    out = {}
    for root in model_dirs():
        for folder in sorted(root.glob("*/config.json")):
            out[f"{folder.parent.name} · local model ({root})"] = str(folder.parent)
    return out


_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,95}(/[A-Za-z0-9][A-Za-z0-9_.-]{0,95})?$")


def check_model_source(source: str) -> None:
    """Stop the page with a message when this app may not load `source`.

    Locally anything goes. A served app loads presets, random:<preset>, hub ids and the
    administrator's folders, never other server folders: a box that loads any path would let
    anyone who reaches the app probe the server's files.
    """
    if not served():
        return
    if find_preset(source.removeprefix(RANDOM_PREFIX)) is not None:
        return
    if any(Path(source).expanduser().resolve().is_relative_to(d.resolve()) for d in model_dirs()):
        return
    if _HUB_ID.match(source) and ".." not in source and not Path(source).exists():
        return
    fail(f"This app is shared, so it loads models only from the HuggingFace hub, the preset list, or the "
         f"folders its administrator lists in PLMCORE_MODEL_DIRS; {md(source)} is none of those. Give a hub id "
         "such as facebook/esm2_t6_8M_UR50D.")


def trust_remote_code() -> bool:
    """This session's choice to let a model run its own code: offered only locally, never saved."""
    return not served() and bool(st.session_state.get("trust_remote_code"))


def trust_remote_code_switch() -> bool:
    """The local-only switch for a model's own code, behind an explicit warning."""
    if served():
        return False
    on = st.toggle("Run the model's own code (trust_remote_code)", key="trust_remote_code",
                   help="Some hub models ship Python code that runs on this computer when they load. Turn this on "
                        "only for a repository you trust. It lasts for this browser session and is never saved "
                        "in a run or a setting.")
    if on:
        st.warning("The chosen model's code will run on this computer with your permissions. Only do this for a "
                   "repository you trust.")
    return on


@st.cache_resource(show_spinner="Loading the model…", max_entries=2)
def cached_run(path: str, stamp: str, trust: bool = False):
    """A fine-tuned run rebuilt for scoring; `stamp` changes when its weights change."""
    from plmcore.predict import load_run

    return load_run(path, trust_remote_code=trust)


def loaded_run(run: RunDir):
    """The run's model, loaded once per server; checks that this app may load its backbone."""
    check_model_source(run.config().model)
    head = run.best_dir / "head.safetensors"
    stamp = str(head.stat().st_mtime_ns) if head.exists() else "none"
    return cached_run(str(run.path.resolve()), stamp, trust_remote_code())


@st.cache_resource(show_spinner="Loading the model…", max_entries=2)
def _cached_model(source: str, trust: bool):
    from plmcore.predict import load_model

    return load_model(source, trust_remote_code=trust)


def loaded_model(source: str):
    """An exported model (a folder, or a Hub id of one), loaded once per server. Its base model must
    be one this app may load, like any other."""
    from plmcore import hub

    check_model_source(source)
    check_model_source(hub.read_info(hub.fetch(source))["config"].model)
    return _cached_model(source, trust_remote_code())


@st.cache_resource(show_spinner="Loading the model…", max_entries=2)
def _cached_embedder(source: str, pooling: str, trust: bool):
    from plmcore.embed import load_embedder

    return load_embedder(source, pooling=pooling, trust_remote_code=trust)


def cached_embedder(source: str, pooling: str):
    check_model_source(source)
    return _cached_embedder(source, pooling, trust_remote_code())


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


def run_progress(status: dict, records: list[dict] | None = None) -> tuple[float, str]:
    """Fraction done and one line naming the phase (loading, epoch k of n, evaluation, baselines) with the
    time left (plmcore.live)."""
    from plmcore.live import phase

    now = phase(status, records)
    return now.fraction, now.text


# --------------------------------------------------------------------------- pickers


def pick_run(label: str, key: str, *, finished_only: bool = False, runs: list[RunDir] | None = None) -> RunDir | None:
    """A run chosen from a list; with `finished_only`, finished runs whose files validate."""
    runs = runs if runs is not None else list_runs(runs_root())
    if finished_only:
        runs = [r for r in runs if r.status().get("state") == "finished" and r.problem() is None]
    if not runs:
        return None
    names = [r.name for r in runs]
    labels = {r.name: _run_label(r) for r in runs}
    default = remembered(f"{key}_choice")
    index = names.index(default) if default in names else 0
    choice = st.selectbox(label, names, index=index, key=key, format_func=labels.get)
    remember(f"{key}_choice", choice)
    return next(r for r in runs if r.name == choice)


def _run_label(run: RunDir) -> str:
    s = run.summary()
    model = (s["model"] or "").replace(RANDOM_PREFIX, "random ")
    return random_label(run, f"{s['name']} · {model} · {s['state']}")


# --------------------------------------------------------------------------- sidebar


def sidebar() -> None:
    """Current model and where it comes from, the device, and the active training run."""
    with st.sidebar:
        if served() and auth_configured() and st.user.get("is_logged_in"):
            st.caption(f"Signed in as {md(st.user.get('email') or st.user.get('name') or 'you')}")
            if st.button("Sign out", key="sign_out"):
                st.logout()
        model = remembered("model", DEFAULT_MODEL)
        status = cache_status(model) if not served() or find_preset(model.removeprefix(RANDOM_PREFIX)) else "hub"
        st.markdown(f"**Model** {md(model)}")
        hint = {"download": "not cached: downloads on first use", "cached": "in the local cache",
                "local folder": "local folder", "random weights": "random weights (for trying the interface)",
                "hub": "from the HuggingFace hub"}
        st.caption(hint.get(status, status))
        st.markdown(f"**Device** {md(device_name())}")
        _active_run_box()


@st.fragment(run_every=3)
def _active_run_box() -> None:
    guard(_active_runs_panel)


def _active_runs_panel() -> None:
    active = all_active()
    if not active:
        st.caption("No training running.")
        return
    for run in active:
        status = run.status()
        if status.get("kind") == "cv":
            st.markdown(f"**Cross-validation** {md(run.name)}")
            st.progress((status.get("fold") or 0) / max(status.get("folds") or 1, 1),
                        text=f"fold {status.get('fold') or 0} of {status.get('folds') or '?'}")
            continue
        st.markdown(f"**Training** {md(run.name)}")
        frac, text = run_progress(status, run.read_metrics())
        st.progress(frac, text=text)


def all_active() -> list[RunDir]:
    """This user's active training runs and cross-validations."""
    return active_runs(runs_root()) + active_runs(cv_root())


def server_active() -> int:
    """Active runs and cross-validations on this server, every user's."""
    root = R.workspace()
    roots = [root, *(p for p in (root / "users").glob("*") if p.is_dir())]
    return sum(len(active_runs(r / "runs")) + len(active_runs(r / "cv")) for r in roots)


def can_start_run() -> tuple[bool, str]:
    mine = all_active()
    if mine and len(mine) >= MAX_ACTIVE_RUNS:
        names = ", ".join(r.name for r in mine)
        return False, (f"A training run is already active ({names}). This server runs {MAX_ACTIVE_RUNS} at a time: "
                       "wait for it to finish, or stop it on the Train page.")
    if server_active() >= MAX_ACTIVE_RUNS:
        return False, ("Another user's training run is active, and this server runs "
                       f"{MAX_ACTIVE_RUNS} at a time. Try again when it has finished.")
    return True, ""


# --------------------------------------------------------------------------- shared panels


# --------------------------------------------------------------------------- badges, words, charts


def random_badge(what, *, where=None, banner: bool = False) -> bool:
    """The random-weight badge for a run, a TrainConfig or a model source, when its weights are random
    (plmcore.provenance.random_weights decides); with `banner`, a red box that says why too.
    Returns whether it is random, so callers can label text as well."""
    from plmcore.provenance import RANDOM_WEIGHTS_MARK, RANDOM_WEIGHTS_WHY, random_weights

    if not random_weights(what):
        return False
    where = where or st
    if banner:
        where.error(f"**{RANDOM_WEIGHTS_MARK}.** {RANDOM_WEIGHTS_WHY}", icon=":material/warning:")
    else:
        where.badge(RANDOM_WEIGHTS_MARK, color="red", help=RANDOM_WEIGHTS_WHY)  # the mark starts with its ⚠
    return True


def random_label(what, text: str) -> str:
    """`text` with the random-weight mark after it when `what` (a run, config or source) has random weights:
    for select boxes, table cells, chart titles and file names, where a badge cannot go."""
    from plmcore.provenance import with_random_mark

    return with_random_mark(text, what)


def leakage_badge(what, *, where=None) -> str | None:
    """A badge with the worst finding of a run's leakage report (a RunDir, or the report itself), to sit
    beside a headline test metric; nothing when the test split is clean or was not checked. Returns the text."""
    from plmcore.leakage import headline

    report = what.leakage() if isinstance(what, RunDir) else what
    text = headline(report)
    if text:
        (where or st).badge(text, color="orange",
                            help="The test set shares proteins or sequence with training, so its scores are likely "
                                 "optimistic. The Runs page's leakage report has the details and the fix.")
    return text


def metric_help(metric: str) -> str | None:
    """A widget tooltip for a metric id: its name in words, meaning and range (plmcore.glossary)."""
    from plmcore.glossary import explain

    return explain(metric) or None


def glossary(metrics) -> None:
    """A folded list of what each of these metric ids means, under a table that shows them."""
    from plmcore.glossary import explain

    lines = [f"- {explain(m)}" for m in dict.fromkeys(metrics) if explain(m)]
    if lines:
        with st.expander("What these metrics mean"):
            st.markdown("\n".join(lines))


# Every chart shares one plotly config: no mode bar (its buttons are a dozen tab stops per chart for a
# keyboard user); zoom by dragging and double-click to reset still work.
PLOTLY_CONFIG = {"displayModeBar": False, "displaylogo": False, "responsive": True}


def chart(fig, *, key: str | None = None, where=None, alt: str | None = None, **kwargs):
    """Show a plotly figure the app's way (shared config, full width). Returns st.plotly_chart's value."""
    title = getattr(getattr(getattr(fig, "layout", None), "title", None), "text", None)
    return (where or st).plotly_chart(fig, width="stretch", config=PLOTLY_CONFIG, key=key,
                                      alt=alt or title or "chart", **kwargs)


def show_leakage(leak: dict, *, detailed: bool = False) -> None:
    """Warnings and headline counts of a leakage report; with `detailed`, the histogram and pairs too."""
    import pandas as pd

    from plmcore import figures as F

    if leak["leaks"]:
        for w in leak["warnings"]:
            st.warning(md(w))
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
    chart(F.identity_histogram(leak), where=c1, key="leak_hist")
    if ow.get("pairs"):
        c2.markdown("**Overlapping pairs** (test ~ training)")
        c2.dataframe(pd.DataFrame(ow["pairs"]), hide_index=True, width="stretch", height=300)


# --------------------------------------------------------------------------- a run, live


def run_live(run: RunDir, *, key: str = "train", stop: bool = True) -> None:
    """A training run as it goes: its phase in words with the time left, the bar, the latest validation
    scores and the curves; refreshed every 1.5 s while it is active, with a Stop button (`stop`). An ended
    run shows how it ended. The Train page and the Runs page (for a running run) both use this."""
    from plmcore.runs import ACTIVE_STATES

    status = run.status()
    if status.get("state") in ACTIVE_STATES:
        _run_live_fragment(run, key, stop)
    else:
        run_view(run, status, key=key)


@st.fragment(run_every=1.5)
def _run_live_fragment(run: RunDir, key: str, stop: bool) -> None:
    from plmcore.runs import ACTIVE_STATES, cancel

    status = run.status()
    if status.get("state") not in ACTIVE_STATES:
        st.rerun()  # stop polling: the whole page reruns and shows the ending without a timer
    run_view(run, status, key=key)
    if stop and st.button("Stop training", key=f"{key}_stop", type="secondary"):
        cancel(run)
        st.toast("Stopping: the run saves a checkpoint and ends as 'cancelled'.")


def run_view(run: RunDir, status: dict, *, key: str = "train") -> None:
    """One rendering of a run's progress (see run_live)."""
    from plmcore import figures as F
    from plmcore import tasks
    from plmcore.live import ending, phase
    from plmcore.runs import resume_command

    records = run.read_metrics()
    now = phase(status, records)
    c = st.columns([5, 2])
    c[0].markdown(f"**{md(run.title)}**" + (f" · {md(run.name)}" if run.title != run.name else ""))
    random_badge(run, where=c[1])
    st.progress(now.fraction, text=now.text)
    state = status.get("state")
    if now.ended:
        try:
            patience = run.config().patience
        except PlmcoreError:
            patience = None
        words = ending(status, records, patience=patience)
        if state == "finished":
            st.success(f"{words} The Runs page has the test metrics with confidence intervals, the baselines and "
                       "the leakage report.", icon=":material/check_circle:")
            if status.get("verdict"):
                st.info(md(status["verdict"]))
        elif state == "cancelled":
            st.warning(f"{words} Its last checkpoint is kept; it can be resumed from the command line with:")
            st.code(resume_command(run.path), language="bash")
        else:
            st.error(md(words))
    evals = [r for r in records if r.get("kind") == "eval"]
    task = run.labels().get("task", "classification") if run.labels_path.exists() else "classification"
    shown = tasks.LIVE_METRICS[task]
    epochs = status.get("epochs")
    if evals:
        last = evals[-1]
        cols = st.columns(4)
        for col, m in zip(cols, shown):
            value = last.get(f"val_{m}")
            col.metric(f"Validation {tasks.metric_words(m)}", "–" if value is None else f"{value:.3f}",
                       help=metric_help(m))
        cols[3].metric("Epoch", f"{int(last['epoch'])} of {epochs}" if epochs else f"{int(last['epoch'])}")
    if not records:
        st.caption("The curves appear with the first logged training step.")
        return
    smoothing = st.select_slider("Smoothing of the training loss", options=[0.0, 0.3, 0.6, 0.8, 0.9],
                                 value=remembered("loss_smoothing", 0.0), key=f"{key}_smoothing",
                                 format_func=lambda v: "none" if v == 0 else f"{v:g}",
                                 help="An exponential moving average, as in TensorBoard; the raw values stay faint "
                                      "behind the smoothed line.")
    if smoothing != remembered("loss_smoothing", 0.0):
        remember("loss_smoothing", smoothing)
    c1, c2 = st.columns(2)
    chart(F.loss_curves({run.name: records}, x="epoch", epochs=epochs, smoothing=smoothing), where=c1,
          key=f"{key}_loss_{run.name}", alt="Training and validation loss by epoch")
    if evals:
        chart(F.val_metric_curves(records, metrics=shown, x="epoch", epochs=epochs), where=c2,
              key=f"{key}_valm_{run.name}", alt="Validation metrics by epoch")
    else:
        c2.caption("Validation scores appear after the first epoch.")
    tail = run.log_tail(12)
    if tail:
        with st.expander("Log", expanded=state == "failed"):
            st.code(tail, language=None)
