"""Embeddings: project sequences with a base model and a fine-tuned run, and see what fine-tuning changed."""


import pandas as pd
import streamlit as st

from plmcore import data as D
from plmcore import figures as F
from plmcore import ui
from plmcore.config import TrainConfig
from plmcore.embed import PROJECTIONS, EmbeddingCache, cached_embeddings, hdf5_bytes, project
from plmcore.errors import LabelError
from plmcore.predict import predicted_vs_true
from plmcore.runs import RunDir
from plmcore.tasks import plot_labels

st.title("Embeddings")
st.caption("One vector per sequence (pooled over residues), projected to 2D or 3D. Compare a base model with "
           "a fine-tuned run on the same sequences.")


def choose_models() -> list[tuple[str, str, RunDir | None]]:
    """(title, source, run) for each model to embed with."""
    mode = st.radio("Models", ["Base model and fine-tuned run, side by side", "A base model", "A fine-tuned run"],
                    key="emb_mode", horizontal=True)
    if mode == "A base model":
        choices = ui.model_choices()
        label = st.selectbox("Base model", list(choices), key="emb_base")
        return [(f"base: {label.split(' · ')[0]}", choices[label], None)]
    run = ui.pick_run("Fine-tuned run", "emb_run", finished_only=True)
    if run is None:
        ui.empty_state("No finished run yet: train one on the Train page, or choose 'A base model' above.",
                       "train")
        st.stop()
    tuned = (f"fine-tuned: {run.name}", str(run.path), run)
    if mode == "A fine-tuned run":
        return [tuned]
    return [(f"base: {run.config().model}", run.config().model, None), tuned]


def choose_sequences() -> pd.DataFrame | None:
    how = st.radio("Sequences", ["From a dataset", "Upload a FASTA file"], key="emb_data", horizontal=True)
    if how == "Upload a FASTA file":
        up = st.file_uploader("FASTA, or a table with a sequence column (labels are optional)", key="emb_upload",
                              type=ui.UPLOAD_TYPES)
        if up is None:
            return None
        try:  # labels colour the projection when the file has them (FASTA header tags, a label column)
            table = ui.read_upload(up, label_source="header")
        except LabelError:
            table = ui.read_upload(up, label_source="none")
        report = D.validate(table, require_labels=False, min_classes=1)
        report.raise_for_errors()
        frame = report.table
        frame["split"] = "uploaded"
        return frame
    store = ui.datasets()
    names = [d.name for d in store.list()]
    if not names:
        ui.empty_state("No dataset yet: add one on the Data page, or choose 'Upload a FASTA file' above.", "data")
        st.stop()
    current = ui.remembered("dataset")
    name = st.selectbox("Dataset", names, index=names.index(current) if current in names else 0, key="emb_dataset")
    ds = store.get(name)
    split = ds.split()
    if split is None:
        frame = ds.table().assign(split="all")
        test = ds.test_table()
        if test is not None:
            frame = pd.concat([frame, test.assign(split="test")], ignore_index=True)
    else:
        frame = split
    parts = sorted(set(frame["split"]))
    chosen = st.multiselect("Splits", parts, default=parts, key="emb_splits")
    return frame[frame["split"].isin(chosen)].reset_index(drop=True)


@st.cache_data(show_spinner="Projecting…", max_entries=32)
def cached_projection(key: str, _X, method: str, dims: int, n_neighbors: int, min_dist: float, metric: str,
                      perplexity: float):
    return project(_X, method, dims, n_neighbors=n_neighbors, min_dist=min_dist, metric=metric,
                   perplexity=perplexity)


def compute(models, frame: pd.DataFrame, pooling: str) -> dict:
    out = {}
    seqs = frame["sequence"].tolist()
    for title, source, run in models:
        bar = ui.Progress(f"Embedding with {title}")
        if run is not None:
            from plmcore.embed import Embedder

            def factory(run=run):
                return Embedder.from_run(ui.loaded_run(run), pooling)
        else:
            def factory(source=source):
                return ui.cached_embedder(source, pooling)
        X, hit = cached_embeddings(source, seqs, pooling=pooling, progress=bar, embedder_factory=factory,
                                   cache=EmbeddingCache(ui.workspace() / "cache" / "embeddings"))
        bar.done()
        extra = {}
        if run is not None and frame["label"].notna().all():
            extra = predicted_vs_true(ui.loaded_run(run), seqs, frame["label"].tolist())
        out[title] = {"X": X, "cached": hit, "model": source if run is None else f"{run.config().model} fine-tuned "
                      f"({run.name})", **extra}
    return out


def page() -> None:
    models = choose_models()
    frame = choose_sequences()
    if frame is None or frame.empty:
        return
    tuned = models[-1][2]
    pooling = ui.setting_input(TrainConfig, "pooling", key="emb_pooling",
                               value=tuned.config().pooling if tuned is not None else None)
    request = (tuple(m[1] for m in models), pooling, tuple(frame["id"]))
    if st.button(f"Compute embeddings of {len(frame)} sequences", key="emb_go", type="primary"):
        st.session_state["emb_result"] = (request, compute(models, frame, pooling), frame)
    stored = st.session_state.get("emb_result")
    if not stored or stored[0] != request:
        st.caption("Embeddings are cached on the server: asking again for the same ones is instant.")
        return
    _, results, frame = stored
    c = st.columns(5)
    method = c[0].selectbox("Projection", list(PROJECTIONS), key="emb_method", format_func=PROJECTIONS.get)
    dims = c[1].radio("Dimensions", [2, 3], horizontal=True, key="emb_dims")
    colours = ["label", "split"] + (["predicted", "error"] if any("predicted" in r for r in results.values()) else [])
    colour = c[2].selectbox("Colour by", colours, key="emb_colour")
    n_neighbors = c[3].number_input("UMAP neighbours", 2, 200, 15, key="emb_nn", disabled=method != "umap")
    min_dist = c[4].number_input("UMAP min_dist", 0.0, 1.0, 0.1, 0.05, key="emb_md", disabled=method != "umap")
    c = st.columns(5)
    metric = c[0].selectbox("UMAP metric", ["euclidean", "cosine", "manhattan", "correlation"], key="emb_metric",
                            disabled=method != "umap")
    perplexity = c[1].number_input("t-SNE perplexity", 2.0, 100.0, 30.0, key="emb_perp", disabled=method != "tsne")
    cols = st.columns(len(results))
    for col, (title, res) in zip(cols, results.items()):
        key = f"{title}|{len(frame)}|{hash(tuple(frame['id']))}|{pooling}"
        coords = cached_projection(key, res["X"], method, int(dims), int(n_neighbors), float(min_dist), metric,
                                   float(perplexity))
        shown = frame[["id", "sequence", "label", "split"]].copy()
        shown["label"] = shown["label"].fillna("(none)")
        shown["label"] = plot_labels(shown["label"].tolist(), shown["sequence"].tolist())
        for extra in ("predicted", "error"):
            if extra in res:
                shown[extra] = res[extra]
        fig = F.projection(coords, shown, colour if colour in shown.columns else "label",
                           f"{title} · {method.upper()}")
        ui.chart(fig, where=col, key=f"emb_fig_{title}")
        col.caption(("from the cache" if res["cached"] else "computed now") + f" · {res['X'].shape[1]} dimensions")
        emb = pd.DataFrame(res["X"], columns=[f"e{i}" for i in range(res["X"].shape[1])])
        table = pd.concat([shown.reset_index(drop=True), emb], axis=1)
        safe = "".join(ch if ch.isalnum() else "_" for ch in title)[:60]
        col.download_button("Embeddings (CSV)", table.to_csv(index=False), f"{safe}.csv", key=f"emb_csv_{title}")
        col.download_button("Embeddings (HDF5)", hdf5_bytes(frame["id"].tolist(), res["X"], res["model"]),
                            f"{safe}.h5",
                            key=f"emb_h5_{title}")
        col.download_button("Figure (HTML)", fig.to_html(include_plotlyjs="cdn"), f"{safe}_{method}.html",
                            key=f"emb_html_{title}")
    st.caption("PNG: use the camera icon in a figure's toolbar.")


ui.guard(page)
