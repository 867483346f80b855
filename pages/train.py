"""Train: pick a model and settings, start a LoRA fine-tuning run, and watch it live."""

import streamlit as st

from plmcore import data as D
from plmcore import datasets as DS
from plmcore import splits as S
from plmcore import tasks, ui
from plmcore.config import TrainConfig
from plmcore.errors import PlmcoreError
from plmcore.estimate import arch_for, duration_words, estimate, estimate_line, run_seconds
from plmcore.models import DEFAULT_MODEL, FAMILIES, cache_status
from plmcore.recipes import DEFAULT_PRESET, TRAINING_PRESETS, preset_settings
from plmcore.runs import ACTIVE_STATES, RunDir, cancel, list_runs, start_worker
from plmcore.train import create_run

st.title("Train")
st.caption("LoRA fine-tuning: only small adapter matrices and a classification head are trained.")
OTHER = "Other: a HuggingFace id or a local folder"


def choose_data():
    store = ui.datasets()
    datasets = store.list()
    if not datasets:
        ui.empty_state("No dataset yet: add one on the Data page first, or build the tutorial set on the Home "
                       "page.", "data")
        st.stop()
    names = [d.name for d in datasets]
    current = ui.remembered("dataset")
    name = st.selectbox("Dataset", names, index=names.index(current) if current in names else 0, key="train_dataset")
    ui.remember("dataset", name)
    ds = store.get(name)
    split, saved = ds.split_or_default()
    if not saved:
        st.caption("No split saved for this dataset: using 10% validation"
                   + (" and its separate test file." if ds.test_table() is not None else " and 10% test, seed 42.")
                   + " Change it on the Data page.")
    counts = split["split"].value_counts()
    st.caption(f"Split: {counts.get('train', 0)} train · {counts.get('val', 0)} validation · "
               f"{counts.get('test', 0)} test")
    return ds, split


def choose_model() -> str:
    choices = ui.model_choices()
    labels = list(choices) + [OTHER]
    current = ui.remembered("model", DEFAULT_MODEL)
    index = next((i for i, label in enumerate(labels[:-1]) if choices[label] == current), None)
    if index is None:
        index = len(labels) - 1
    label = st.selectbox("Model", labels, index=index, key="train_model")
    if label == OTHER:
        what = "HuggingFace model id" if ui.served() else "HuggingFace model id or local folder path"
        source = st.text_input(what, key="train_model_other",
                               value=current if current not in choices.values() else "").strip()
        if not source:
            st.stop()
    else:
        source = choices[label]
    ui.check_model_source(source)
    if source != current:
        ui.remember("model", source)
    status = cache_status(source)
    if status == "download":
        st.caption(f"{ui.md(source)} is not in the local cache: it is downloaded when training starts "
                   "(this server needs internet for that).")
    return source


# The settings the form holds, each made from its declaration (plmcore.config). They are seeded from the
# last used settings (kept in the workspace), a preset, or a run to clone; the form never resets by itself.
MAIN = ("epochs",)
ADVANCED = {
    "Model and adapter": ("task", "pooling", "lora_r", "lora_alpha", "lora_dropout"),
    "Optimisation": ("learning_rate", "batch_size", "grad_accum", "class_weights", "early_stopping_metric",
                     "patience", "seed", "threads", "gradient_checkpointing"),
    "Evaluation": ("baselines", "threshold_objective", "threshold_target", "temperature_scaling"),
}
BY_TASK = {"regression": ("regression_loss", "standardize_targets"), "residue": ("residues", "chunk_overlap")}
FORM = MAIN + sum(ADVANCED.values(), ()) + sum(BY_TASK.values(), ())
TARGET_DEFAULT = 0.9  # a target for specificity / sensitivity, when one of those picks the threshold


def _seed(values: dict, *, force: bool) -> None:
    """Put `values` (TrainConfig field -> value) in the form's widgets; without `force`, only where the
    widget has no value yet (so what the user typed stays)."""
    for name in FORM:
        if name not in values or (not force and f"train_{name}" in st.session_state):
            continue
        value = values[name]
        if name == "threshold_target" and value is None:
            value = TARGET_DEFAULT
        st.session_state[f"train_{name}"] = ui.setting_state(TrainConfig, name, value)


def _apply_preset() -> None:
    _seed(preset_settings(st.session_state["train_preset"]), force=True)
    ui.remember("train_preset", st.session_state["train_preset"])


def _clone() -> None:
    run = RunDir(st.session_state["train_clone"])
    try:
        config = run.config()
    except PlmcoreError as exc:
        st.session_state["train_clone_error"] = str(exc)
        return
    _seed(config.to_dict(), force=True)
    st.session_state["train_cloned"] = run.title


def clone_control() -> None:
    runs = list_runs(ui.runs_root())
    if not runs:
        return
    with st.popover("Clone settings from a run", icon=":material/content_copy:"):
        st.selectbox("Run", [str(r.path) for r in runs], key="train_clone",
                     format_func=lambda p: ui.random_label(RunDir(p), RunDir(p).title))
        st.button("Use its settings", key="train_clone_go", on_click=_clone,
                  help="Every setting below takes the run's value; the dataset and model stay as chosen here.")
    if st.session_state.pop("train_cloned", None):
        st.toast("Settings cloned from the run.")
    if st.session_state.get("train_clone_error"):
        st.warning(ui.md(st.session_state.pop("train_clone_error")))


def settings(source: str, ds, split) -> tuple[TrainConfig, dict]:
    """The run's settings (every widget made from the setting's declaration) and its name and notes."""
    counts = split[split["split"] == "train"]["label"].value_counts()
    detected, why = tasks.detect(split["label"].tolist(), split["sequence"].tolist())
    imbalanced = detected == "classification" and counts.max() > 1.5 * counts.min()
    presets = list(TRAINING_PRESETS)
    if "train_preset" not in st.session_state:
        st.session_state["train_preset"] = ui.remembered("train_preset", DEFAULT_PRESET)
        if st.session_state["train_preset"] not in presets:
            st.session_state["train_preset"] = DEFAULT_PRESET
    start = preset_settings(st.session_state["train_preset"])
    if imbalanced:
        start["class_weights"] = "balanced"
    _seed(start | (ui.remembered("train_settings") or {}), force=False)

    def widget(name: str, where=None):  # the seeded value is also the widget's default (within its range)
        key = f"train_{name}"
        return ui.setting_input(TrainConfig, name, key=key, where=where, value=st.session_state.get(key))

    c = st.columns([3, 1])
    preset = c[0].radio("Preset", presets, key="train_preset", horizontal=True, on_change=_apply_preset,
                        format_func=lambda p: TRAINING_PRESETS[p].title,
                        help="Sets the epochs, adapter size, learning rate and early stopping together; "
                             "Advanced shows every setting.")
    c[0].caption(TRAINING_PRESETS[preset].words)
    chosen = {"epochs": widget("epochs", c[1])}
    with st.expander("Advanced: every setting"):
        for group, names in ADVANCED.items():
            st.markdown(f"**{group}**")
            cols = st.columns(4)
            for i, name in enumerate(names):
                chosen[name] = widget(name, cols[i % 4])
            if group == "Model and adapter":
                task = detected if chosen["task"] == "auto" else chosen["task"]
                extra = BY_TASK.get(task, ())
                for i, name in enumerate(extra):
                    chosen[name] = widget(name, cols[(len(names) + i) % 4])
                arch = arch_for(source)
                family = FAMILIES.get(arch.family) if arch else None
                targets = st.text_input("LoRA target modules (comma-separated; empty = the family's defaults)",
                                        value=",".join(family.lora_targets) if family else "",
                                        key=f"train_targets_{source}")
                chosen["lora_targets"] = tuple(t.strip() for t in targets.split(",") if t.strip()) or None
        ui.trust_remote_code_switch()
    if chosen["threshold_objective"] not in ("specificity", "sensitivity"):
        chosen["threshold_target"] = None
    task = detected if chosen["task"] == "auto" else chosen["task"]
    st.caption(f"Task: **{task}**" + (f" (from the labels: {ui.md(why)})" if chosen["task"] == "auto" else
                                      f" (chosen; the labels look like {detected})"))
    remembered = {k: v for k, v in chosen.items() if k in FORM}
    if remembered != ui.remembered("train_settings"):
        ui.remember("train_settings", remembered)
    c = st.columns([1, 2])
    about = {"name": c[0].text_input("Run name (optional)", key="train_name", max_chars=80,
                                     placeholder="e.g. ESM-2 8M, mean pooling"),
             "notes": c[1].text_input("Notes (optional)", key="train_notes", max_chars=4000,
                                      placeholder="what this run tries, for you and your collaborators")}
    return TrainConfig(model=source, data=ds.data_spec(), **chosen), about


def show_estimate(config: TrainConfig, split) -> float | None:
    """The one-line estimate in words, with the details folded; returns the estimated seconds."""
    train_rows = split[split["split"] == "train"]
    n_train, n_val = len(train_rows), int((split["split"] == "val").sum())
    mean_len = int(train_rows["sequence"].str.len().mean())
    est = estimate(config.model, n_train=n_train, window_tokens=mean_len, r=config.lora_r,
                   targets=config.lora_targets, batch_size=config.batch_size,
                   n_classes=len(D.classes_of(split["label"])), device_type=_device_type(),
                   gradient_checkpointing=config.gradient_checkpointing, base_weights=config.base_weights)
    st.markdown(":material/schedule: " + estimate_line(est, epochs=config.epochs, n_train=n_train, n_val=n_val,
                                                       early_stopping=bool(config.patience)))
    if est is not None and (est.checkpointing or config.gradient_checkpointing != "auto"):
        st.caption(est.checkpointing_note)
    if est is None:
        return None
    with st.expander("How big the model is, and what the estimate rests on"):
        c = st.columns(4)
        c[0].metric("Parameters", f"{est.total_parameters:,}")
        c[1].metric("Trained with LoRA", f"{est.trainable_parameters:,}",
                    help=f"{100 * est.trainable_parameters / est.total_parameters:.2f}% of the parameters: "
                         "the adapters and the classification head")
        c[2].metric("Memory (estimate)", f"{est.memory_gb:.1f} GB")
        c[3].metric("Time per epoch (estimate)", duration_words(est.seconds_per_epoch)
                    if est.seconds_per_epoch else "not measured")
        st.caption(f"On {ui.device_name()}. The time counts training and the validation pass after each epoch, "
                   "not loading the model or the final evaluation and baselines. It comes from this computer's "
                   "speed, measured just now, and the share of it the trainer reached in the project's benchmark "
                   f"({ui.md(est.basis)}).")
    return run_seconds(est, epochs=config.epochs, n_train=n_train, n_val=n_val)


def _device_type() -> str:
    name = ui.device_name()
    return "cuda" if name.startswith("GPU") else "cpu"


def start(config: TrainConfig, split, about: dict, estimated_s: float | None) -> None:
    ok, message = ui.can_start_run()
    if not ok:
        ui.fail(message)
    ds = ui.datasets().get(config.data.dataset)
    run = create_run(config, split=split, root=ui.runs_root(), created_by="app",
                     files=ds.provenance_files() if ds else [])
    if about["name"].strip() or about["notes"].strip():
        run.set_about(name=about["name"].strip(), notes=about["notes"].strip())
    if estimated_s:
        run.write_status("queued", estimated_s=round(estimated_s, 1))
    _start(run)
    st.toast(f"Started run {ui.md(run.title)}")


def _start(run: RunDir, command: str = "train") -> None:
    start_worker(run, command=command, trust_remote_code=ui.trust_remote_code(), workspace_dir=ui.workspace())
    ui.remember("train_run_path", str(run.path))


def current_run() -> RunDir | None:
    """The active run or cross-validation, else the last one started from this page."""
    active = ui.all_active()
    if active:
        return active[0]
    path = ui.remembered("train_run_path")
    run = RunDir(path) if path else None
    return run if run is not None and run.exists() else None


def start_cv(config: TrainConfig, ds, folds: int, grouped: bool) -> None:
    from plmcore.cv import create_cv

    ok, message = ui.can_start_run()
    if not ok:
        ui.fail(message)
    cv = create_cv(config, ds.table(), folds=folds, grouped=grouped, root=ui.cv_root())
    _start(cv, command="cv")


def start_tutorial(source: str) -> None:
    from plmcore.recipes import tutorial_config

    store = ui.datasets()
    ds = store.get(DS.TUTORIAL_NAME)
    if ds is None:
        with st.spinner("Fetching the tutorial dataset from Zenodo…"):
            ds = DS.load_tutorial(store)
    ok, message = ui.can_start_run()
    if not ok:
        ui.fail(message)
    config = tutorial_config(None, None, model=source)
    split = S.split_table(ds.table(), val_fraction=0.2, seed=42, test_table=ds.test_table())
    run = create_run(config, split=split, root=ui.runs_root(), created_by="app", files=ds.provenance_files())
    _start(run)


@st.fragment(run_every=2)
def live_cv(cv: RunDir) -> None:
    status = cv.status()
    if status.get("state") not in ACTIVE_STATES:
        st.rerun()
    render_cv(cv, status)
    if st.button("Stop cross-validation", key="train_stop_cv"):
        cancel(cv)
        st.toast("Stopping after saving the current fold's checkpoint.")


def render_cv(cv: RunDir, status: dict) -> None:
    folds = status.get("folds") or 1
    fold = status.get("fold") or 0
    state = status.get("state")
    done = folds if state == "finished" else max(fold - 1, 0)
    st.progress(done / folds, text=f"Cross-validation {cv.name}: {state}, fold {fold} of {folds}")
    if state == "failed":
        st.error(f"Cross-validation failed: {ui.md(status.get('error'))}")
    if status.get("fold_run") and state in ACTIVE_STATES:
        fold_run = RunDir(status["fold_run"])
        if fold_run.exists():
            ui.run_view(fold_run, fold_run.status(), key=f"train_fold{fold}")
    if state == "finished":
        st.success("Cross-validation finished: the Runs page ('Cross-validation') has mean ± sd and per-fold figures.")


def page() -> None:
    run = current_run()
    if run is not None:
        status = run.status()
        running = status.get("state") in ACTIVE_STATES
        is_cv = status.get("kind") == "cv"
        st.subheader(("Cross-validation" if is_cv else "Training run") if running else "Last run")
        if is_cv:
            live_cv(run) if running else render_cv(run, status)
        else:
            ui.run_live(run, key="train")
        st.divider()
    else:
        running = False
    with st.expander("Start a new run", expanded=not running):
        ds, split = choose_data()
        source = choose_model()
        clone_control()
        config, about = settings(source, ds, split)
        estimated_s = show_estimate(config, split)
        c = st.columns([1, 1, 1, 2], vertical_alignment="bottom")
        if c[0].button("Start training", key="train_start", type="primary"):
            start(config, split, about, estimated_s)
            st.rerun()
        folds = c[2].number_input("Folds for cross-validation", 2, 20, 5, key="train_cv_folds")
        if c[1].button(f"Cross-validate ({int(folds)} folds)", key="train_cv",
                       help="k-fold cross-validation of this model and the baselines, folds grouped by protein"):
            start_cv(config, ds, int(folds), grouped=True)
            st.rerun()
        with c[3].popover("Run the tutorial recipe"):
            from plmcore.recipes import TUTORIAL_DESCRIPTION

            st.markdown(TUTORIAL_DESCRIPTION)
            st.markdown(f"Backbone: **{ui.md(source)}** (choose another in the Model list above). The ProtT5-XL "
                        "model needs a GPU to run this in reasonable time.")
            if st.button("Run it on the tutorial dataset", key="train_tutorial"):
                start_tutorial(source)
                st.rerun()


ui.guard(page)
