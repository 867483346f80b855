"""Train: pick a model and settings, start a LoRA fine-tuning run, and watch it live."""

import streamlit as st

from plmcore import data as D
from plmcore import datasets as DS
from plmcore import figures as F
from plmcore import ui
from plmcore.config import STOP_METRICS, DataSpec, TrainConfig
from plmcore.estimate import arch_for, estimate
from plmcore.metrics import METRIC_LABELS
from plmcore.models import DEFAULT_MODEL, FAMILIES, cache_status
from plmcore.runs import ACTIVE_STATES, RunDir, cancel, runs_root, start_worker
from plmcore.train import create_run

st.title("Train")
st.caption("LoRA fine-tuning: only small adapter matrices and a classification head are trained.")
OTHER = "Other: a HuggingFace id or a local folder"


def choose_data():
    store = DS.DatasetStore()
    datasets = store.list()
    if not datasets:
        st.info("Add a dataset on the Data page first (or fetch the tutorial dataset there).")
        st.page_link("pages/data.py", label="Go to Data", icon=":material/upload_file:")
        st.stop()
    names = [d.name for d in datasets]
    current = ui.remembered("dataset")
    name = st.selectbox("Dataset", names, index=names.index(current) if current in names else 0, key="train_dataset")
    ui.remember("dataset", name)
    ds = store.get(name)
    split = ds.split()
    if split is None:
        test = ds.test_table()
        split = D.split_table(ds.table(), val_fraction=0.1, test_fraction=0.0 if test is not None else 0.1,
                              seed=42, test_table=test)
        st.caption("No split saved for this dataset: using 10% validation"
                   + (" and its separate test file." if test is not None else " and 10% test, seed 42.")
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
        source = st.text_input("HuggingFace model id or local folder path", key="train_model_other",
                               value=current if current not in choices.values() else "").strip()
        if not source:
            st.stop()
    else:
        source = choices[label]
    if source != current:
        ui.remember("model", source)
    status = cache_status(source)
    if status == "download":
        st.caption(f"`{source}` is not in the local cache: it is downloaded when training starts "
                   "(this server needs internet for that).")
    return source


def settings(source: str, split) -> TrainConfig:
    c = st.columns(4)
    r = c[0].number_input("LoRA rank", 1, 128, 8, key="train_r")
    alpha = c[1].number_input("LoRA alpha", 1.0, 512.0, 16.0, key="train_alpha")
    dropout = c[2].number_input("LoRA dropout", 0.0, 0.9, 0.0, 0.05, key="train_lora_dropout",
                                help="0 is fastest on a CPU")
    pooling = c[3].selectbox("Pooling", ["mean", "cls", "center"], key="train_pooling",
                             format_func={"mean": "mean over residues", "cls": "first token (CLS)",
                                          "center": "centre residue (the site)"}.get)
    c = st.columns(4)
    epochs = c[0].number_input("Epochs", 1, 500, 10, key="train_epochs")
    lr = c[1].number_input("Learning rate", 1e-6, 1e-1, 3e-4, format="%.0e", key="train_lr")
    batch = c[2].number_input("Batch size", 1, 256, 8, key="train_batch")
    accum = c[3].number_input("Gradient accumulation", 1, 64, 1, key="train_accum")
    c = st.columns(4)
    counts = split[split["split"] == "train"]["label"].value_counts()
    imbalanced = counts.max() > 1.5 * counts.min()
    weights = c[0].selectbox("Class weights", ["none", "balanced"], index=1 if imbalanced else 0,
                             key="train_weights", help="balanced: rarer classes weigh more in the loss")
    metric = c[1].selectbox("Early-stopping metric", list(STOP_METRICS), key="train_stop_metric",
                            format_func=lambda m: METRIC_LABELS.get(m, "validation loss"))
    patience = c[2].number_input("Patience (epochs, 0 = off)", 0, 100, 5, key="train_patience")
    seed = c[3].number_input("Seed", 0, 2**31 - 1, 42, key="train_seed")
    with st.expander("Advanced"):
        arch = arch_for(source)
        family = FAMILIES.get(arch.family) if arch else None
        default_targets = ",".join(family.lora_targets) if family else ""
        targets = st.text_input("LoRA target modules (comma-separated; empty = the family's defaults)",
                                value=default_targets, key=f"train_targets_{source}")
        threads = st.number_input("CPU threads (0 = all cores)", 0, 256, 0, key="train_threads")
    data = DataSpec(dataset=st.session_state.get("train_dataset"), label_source="split")
    return TrainConfig(
        model=source, pooling=pooling, lora_r=int(r), lora_alpha=float(alpha), lora_dropout=float(dropout),
        lora_targets=tuple(t.strip() for t in targets.split(",") if t.strip()) or None,
        epochs=int(epochs), learning_rate=float(lr), batch_size=int(batch), grad_accum=int(accum),
        class_weights=weights, early_stopping_metric=metric, patience=int(patience) or None, seed=int(seed),
        threads=int(threads) or None, data=data,
    )


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
    run = create_run(config, split=split, root=runs_root())
    start_worker(run)
    ui.remember("train_run", run.name)
    st.toast(f"Started run {run.name}")


@st.fragment(run_every=1.5)
def live(run: RunDir) -> None:
    status = run.status()
    if status.get("state") not in ACTIVE_STATES:
        st.rerun()  # stop polling: the whole page reruns and shows the final state without a timer
    render(run, status)
    if st.button("Stop training", key="train_stop", type="secondary"):
        cancel(run)
        st.toast("Stopping: the run saves a checkpoint and ends as 'cancelled'.")


def render(run: RunDir, status: dict) -> None:
    frac, text = ui.run_progress(status)
    st.progress(frac, text=f"{run.name}: {text}")
    state = status.get("state")
    if state == "failed":
        st.error(f"The run failed: {status.get('error')}")
    elif state == "cancelled":
        st.warning("The run was stopped. Its last checkpoint is kept; it can be resumed from the command line "
                   f"with `python -m plmcore train --run-dir {run.path} --resume`.")
    elif state == "finished":
        st.success("Finished. The Runs page has the test metrics with confidence intervals, curves and more.")
    records = run.read_metrics()
    evals = [r for r in records if r.get("kind") == "eval"]
    if evals:
        last = evals[-1]
        c = st.columns(4)
        c[0].metric("Validation MCC", f"{last.get('val_mcc', float('nan')):.3f}")
        c[1].metric("Validation ROC-AUC", f"{last['val_roc_auc']:.3f}" if last.get("val_roc_auc") is not None else "–")
        c[2].metric("Validation accuracy", f"{last.get('val_accuracy', float('nan')):.3f}")
        c[3].metric("Epoch", f"{last['epoch']}")
    if records:
        c1, c2 = st.columns(2)
        c1.plotly_chart(F.loss_curves({run.name: records}), width="stretch", key=f"loss_{run.name}")
        if evals:
            c2.plotly_chart(F.val_metric_curves(records), width="stretch", key=f"valm_{run.name}")
    else:
        st.caption("Waiting for the first logged step…")
    tail = run.log_tail(12)
    if tail:
        with st.expander("Log", expanded=state == "failed"):
            st.code(tail, language=None)


def current_run() -> RunDir | None:
    """The active run, else the last one started from this page."""
    active = [RunDir(runs_root() / n) for n in ui.active_run_names()]
    if active:
        return active[0]
    name = ui.remembered("train_run")
    run = RunDir(runs_root() / name) if name else None
    return run if run is not None and run.exists() else None


def page() -> None:
    run = current_run()
    running = run is not None and run.status().get("state") in ACTIVE_STATES
    if run is not None:
        st.subheader("Training run" if running else "Last run")
        if running:
            live(run)
        else:
            render(run, run.status())
        st.divider()
    with st.expander("Start a new run", expanded=not running):
        ds, split = choose_data()
        source = choose_model()
        config = settings(source, split)
        show_estimate(config, split)
        if st.button("Start training", key="train_start", type="primary"):
            start(config, split)
            st.rerun()


ui.guard(page)
