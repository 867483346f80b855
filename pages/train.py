"""Train: pick a model and settings, start a LoRA fine-tuning run, and watch it live."""

import streamlit as st

from plmcore import data as D
from plmcore import datasets as DS
from plmcore import figures as F
from plmcore import splits as S
from plmcore import tasks, ui
from plmcore.config import TrainConfig
from plmcore.estimate import arch_for, estimate
from plmcore.models import DEFAULT_MODEL, FAMILIES, cache_status
from plmcore.runs import ACTIVE_STATES, RunDir, cancel, resume_command, start_worker
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


def settings(source: str, ds, split) -> TrainConfig:
    """The run's settings: every widget is made from the setting's declaration (plmcore.config)."""
    def row(*names, **values):
        cols = st.columns(len(names))
        return {n: ui.setting_input(TrainConfig, n, key=f"train_{n}", where=col, value=values.get(n))
                for n, col in zip(names, cols)}

    detected, why = tasks.detect(split["label"].tolist(), split["sequence"].tolist())
    chosen = row("task", "lora_r", "lora_alpha", "pooling")
    task = detected if chosen["task"] == "auto" else chosen["task"]
    st.caption(f"Task: **{task}**" + (f" (from the labels: {ui.md(why)})" if chosen["task"] == "auto" else
                                      f" (chosen; the labels look like {detected})"))
    if task == "regression":
        chosen |= row("regression_loss", "standardize_targets")
    elif task == "residue":
        chosen |= row("residues", "chunk_overlap")
    chosen |= row("epochs", "learning_rate", "batch_size", "grad_accum")
    counts = split[split["split"] == "train"]["label"].value_counts()
    imbalanced = task == "classification" and counts.max() > 1.5 * counts.min()
    chosen |= row("class_weights", "early_stopping_metric", "patience", "seed",
                  class_weights="balanced" if imbalanced else None)
    with st.expander("Advanced"):
        arch = arch_for(source)
        family = FAMILIES.get(arch.family) if arch else None
        targets = st.text_input("LoRA target modules (comma-separated; empty = the family's defaults)",
                                value=",".join(family.lora_targets) if family else "", key=f"train_targets_{source}")
        chosen["lora_targets"] = tuple(t.strip() for t in targets.split(",") if t.strip()) or None
        chosen["threads"] = ui.setting_input(TrainConfig, "threads", key="train_threads")
        chosen["lora_dropout"] = ui.setting_input(TrainConfig, "lora_dropout", key="train_lora_dropout")
        ui.trust_remote_code_switch()
    chosen |= row("baselines", "threshold_objective", "threshold_target", "temperature_scaling", threshold_target=0.9)
    if chosen["threshold_objective"] not in ("specificity", "sensitivity"):
        chosen["threshold_target"] = None
    return TrainConfig(model=source, data=ds.data_spec(), **chosen)


def show_estimate(config: TrainConfig, split) -> None:
    train_rows = split[split["split"] == "train"]
    mean_len = int(train_rows["sequence"].str.len().mean())
    est = estimate(config.model, n_train=len(train_rows), window_tokens=mean_len, r=config.lora_r,
                   targets=config.lora_targets, batch_size=config.batch_size,
                   n_classes=len(D.classes_of(split["label"])), device_type=_device_type())
    if est is None:
        st.caption("Size and cost are shown once the model's config.json is available locally.")
        return
    c = st.columns(4)
    c[0].metric("Parameters", f"{est.total_parameters:,}")
    c[1].metric("Trained with LoRA", f"{est.trainable_parameters:,}",
                f"{100 * est.trainable_parameters / est.total_parameters:.2f}%", delta_color="off")
    c[2].metric("Memory (estimate)", f"{est.memory_gb:.1f} GB")
    c[3].metric("Time per epoch (estimate)",
                ui.format_seconds(est.seconds_per_epoch) if est.seconds_per_epoch else "not measured")
    st.caption(f"Estimates for {ui.device_name()}: {est.basis}.")


def _device_type() -> str:
    name = ui.device_name()
    return "cuda" if name.startswith("GPU") else "cpu"


def start(config: TrainConfig, split) -> None:
    ok, message = ui.can_start_run()
    if not ok:
        ui.fail(message)
    ds = ui.datasets().get(config.data.dataset)
    run = create_run(config, split=split, root=ui.runs_root(), created_by="app",
                     files=ds.provenance_files() if ds else [])
    _start(run)
    st.toast(f"Started run {ui.md(run.name)}")


def _start(run: RunDir, command: str = "train") -> None:
    start_worker(run, command=command, trust_remote_code=ui.trust_remote_code(), workspace_dir=ui.workspace())
    ui.remember("train_run_path", str(run.path))


@st.fragment(run_every=1.5)
def live(run: RunDir) -> None:
    status = run.status()
    if status.get("state") not in ACTIVE_STATES:
        st.rerun()  # stop polling: the whole page reruns and shows the final state without a timer
    render(run, status)
    if st.button("Stop training", key="train_stop", type="secondary"):
        cancel(run)
        st.toast("Stopping: the run saves a checkpoint and ends as 'cancelled'.")


def render(run: RunDir, status: dict, key: str = "") -> None:
    frac, text = ui.run_progress(status)
    st.progress(frac, text=f"{run.name}: {text}")
    state = status.get("state")
    if status.get("stage") and state == "running":
        st.caption(f"Finishing: {ui.md(status['stage'])}…")
    if state == "failed":
        st.error(f"The run failed: {ui.md(status.get('error'))}")
    elif state == "cancelled":
        st.warning("The run was stopped. Its last checkpoint is kept; it can be resumed from the command line with:")
        st.code(resume_command(run.path), language="bash")
    elif state == "finished":
        st.success("Finished. The Runs page has the test metrics with confidence intervals, the baselines and "
                   "the leakage report.")
        if status.get("verdict"):
            st.info(ui.md(status["verdict"]))
    records = run.read_metrics()
    evals = [r for r in records if r.get("kind") == "eval"]
    task = run.labels().get("task", "classification") if run.labels_path.exists() else "classification"
    shown = tasks.LIVE_METRICS[task]
    if evals:
        last = evals[-1]
        c = st.columns(4)
        for col, m in zip(c, shown):
            value = last.get(f"val_{m}")
            col.metric(f"Validation {tasks.metric_words(m)}", "–" if value is None else f"{value:.3f}")
        c[3].metric("Epoch", f"{last['epoch']}")
    if records:
        c1, c2 = st.columns(2)
        c1.plotly_chart(F.loss_curves({run.name: records}), width="stretch", key=f"loss_{run.name}{key}")
        if evals:
            c2.plotly_chart(F.val_metric_curves(records, metrics=shown), width="stretch",
                            key=f"valm_{run.name}{key}")
    else:
        st.caption("Waiting for the first logged step…")
    tail = run.log_tail(12)
    if tail:
        with st.expander("Log", expanded=state == "failed"):
            st.code(tail, language=None)


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
            render(fold_run, fold_run.status(), key=f"fold{fold}")
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
        elif running:
            live(run)
        else:
            render(run, status)
        st.divider()
    else:
        running = False
    with st.expander("Start a new run", expanded=not running):
        ds, split = choose_data()
        source = choose_model()
        config = settings(source, ds, split)
        show_estimate(config, split)
        c = st.columns([1, 1, 1, 2])
        if c[0].button("Start training", key="train_start", type="primary"):
            start(config, split)
            st.rerun()
        folds = c[2].number_input("Folds", 2, 20, 5, key="train_cv_folds", label_visibility="collapsed")
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
