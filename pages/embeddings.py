"""Embeddings: project sequences with a base model and a fine-tuned run, and see what fine-tuning changed."""

import numpy as np
import pandas as pd
import streamlit as st

from plmcore import data as D
from plmcore import figures as F
from plmcore import ui
from plmcore.config import TrainConfig
from plmcore.embed import (
    PROJECTIONS,
    EmbeddingCache,
    cached_embeddings,
    cached_projection,
    embeddings_key,
    hdf5_bytes,
    held_out,
    separation,
)
from plmcore.errors import LabelError
from plmcore.predict import predicted_vs_true
from plmcore.runs import RunDir
from plmcore.splits import load_split
from plmcore.tasks import plot_labels

st.title("Embeddings")
st.caption("One vector per sequence (pooled over residues), projected to 2D or 3D. Compare the base model before "
           "fine-tuning with a fine-tuned run, on the same sequences.")

BEFORE, AFTER = "before fine-tuning", "after fine-tuning"


def choose_models() -> list[tuple[str, str, RunDir | None]]:
    """(panel title, source, run) for each model to embed with."""
    mode = st.radio("Models", ["Before and after fine-tuning, side by side", "A base model", "A fine-tuned run"],
                    key="emb_mode", horizontal=True)
    if mode == "A base model":
        choices = ui.model_choices()
        label = st.selectbox("Base model", list(choices), key="emb_base")
        return [(f"base model: {label.split(' · ')[0]}", choices[label], None)]
    run = ui.pick_run("Fine-tuned run", "emb_run", finished_only=True)
    if run is None:
        ui.empty_state("No finished run yet: train one on the Train page, or choose 'A base model' above.",
                       "train")
        st.stop()
    ui.random_badge(run)
    tuned = (AFTER if mode.startswith("Before") else f"fine-tuned: {run.title}", str(run.path), run)
    if mode == "A fine-tuned run":
        return [tuned]
    return [(BEFORE, run.config().model, None), tuned]


def choose_sequences(run: RunDir | None) -> pd.DataFrame | None:
    sources = (["The run's own data (train, validation, test)"] if run is not None else []) + [
        "From a dataset", "Upload a FASTA file"]
    how = st.radio("Sequences", sources, key="emb_data", horizontal=True)
    if how.startswith("The run's"):
        return load_split(run.split_path)
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
        ui.empty_state("No dataset yet: add one on the Data page, or upload a FASTA file here.", "data")
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


def projection_settings(run: RunDir | None) -> dict:
    """How to pool and project, folded away: the defaults suit most data (pooling: the run's own, so the
    "after" panel shows what its classifier head saw)."""
    with st.expander("Settings: pooling and projection"):
        c = st.columns(3)
        pooling = ui.setting_input(TrainConfig, "pooling", key="emb_pooling", where=c[2],
                                   value=run.config().pooling if run is not None else None)
        method = c[0].selectbox("Method", list(PROJECTIONS), key="emb_method", format_func=PROJECTIONS.get)
        dims = c[1].radio("Dimensions", [2, 3], horizontal=True, key="emb_dims",
                          help="2D panels can be lasso-selected; 3D ones rotated")
        c = st.columns(4)
        umap = method == "umap"
        n_neighbors = c[0].number_input("UMAP neighbours", 2, 200, 15, key="emb_nn", disabled=not umap,
                                        help="larger: more global structure; smaller: finer local clusters")
        min_dist = c[1].number_input("UMAP minimum distance", 0.0, 1.0, 0.1, 0.05, key="emb_md", disabled=not umap,
                                     help="how tightly UMAP packs points together")
        metric = c[2].selectbox("UMAP distance", ["euclidean", "cosine", "manhattan", "correlation"],
                                key="emb_metric", disabled=not umap)
        perplexity = c[3].number_input("t-SNE perplexity", 2.0, 100.0, 30.0, key="emb_perp",
                                       disabled=method != "tsne", help="roughly the number of neighbours t-SNE keeps")
    options = {"n_neighbors": int(n_neighbors), "min_dist": float(min_dist), "metric": metric} if umap else {}
    if method == "tsne":
        options["perplexity"] = float(perplexity)
    return {"method": method, "dims": int(dims), "options": options, "pooling": pooling}


def cache_for(models) -> EmbeddingCache:
    """On disk in the run folder when a run is shown (reopening it is instant), else in the workspace."""
    run = models[-1][2]
    return EmbeddingCache(run.path / "cache" if run is not None else ui.workspace() / "cache" / "embeddings")


def load(models, frame: pd.DataFrame, pooling: str, cache: EmbeddingCache, *, compute: bool) -> dict | None:
    """Each model's embeddings (and the run's predictions, for colouring): from the disk cache, or computed when
    `compute`, with one status box for the progress. None when something is missing and not `compute`."""
    seqs = frame["sequence"].tolist()
    labelled = frame["label"].notna().all()
    keys = {title: embeddings_key(source, seqs, pooling) for title, source, _ in models}
    if not compute:
        out = {}
        for title, source, run in models:
            X = cache.get(keys[title])
            extra = cache.get_json(f"{keys[title]}-predicted") if run is not None and labelled else {}
            if X is None or extra is None:
                return None
            out[title] = {"X": X, "cached": True, "model": _model_name(source, run), **extra}
        return out
    out = {}
    with st.status(f"Embedding {len(seqs)} sequences…", expanded=True) as box:
        for title, source, run in models:
            bar = ui.Progress(f"Embedding with the model {title}")
            if run is not None:
                from plmcore.embed import Embedder

                def factory(run=run):
                    return Embedder.from_run(ui.loaded_run(run), pooling)
            else:
                def factory(source=source):
                    return ui.cached_embedder(source, pooling)
            X, hit = cached_embeddings(source, seqs, pooling=pooling, progress=bar, embedder_factory=factory,
                                       cache=cache)
            bar.done()
            extra = {}
            if run is not None and labelled:
                extra = cache.get_json(f"{keys[title]}-predicted")
                if extra is None:
                    box.write("Predicting each sequence with the fine-tuned run (for colouring by error)…")
                    extra = predicted_vs_true(ui.loaded_run(run), seqs, frame["label"].tolist())
                    cache.put_json(f"{keys[title]}-predicted", extra)
            out[title] = {"X": X, "cached": hit, "model": _model_name(source, run), **extra}
        box.update(label=f"Embeddings of {len(seqs)} sequences ready", state="complete", expanded=False)
    return out


def _model_name(source: str, run: RunDir | None) -> str:
    return source if run is None else f"{run.config().model} fine-tuned ({run.title})"


def points(frame: pd.DataFrame, results: dict, run: RunDir | None) -> pd.DataFrame:
    """One row per point: id, sequence, label in words, split, whether the run trained on it, prediction."""
    shown = frame[["id", "sequence", "label", "split"]].reset_index(drop=True).copy()
    shown["label"] = plot_labels(shown["label"].fillna("(none)").tolist(), shown["sequence"].tolist())
    if run is not None and run.split_path.exists():
        shown["held_out"] = held_out(load_split(run.split_path),
                                     shown["sequence"].tolist())
    else:  # a base model was trained on none of them
        shown["held_out"] = True
    for res in results.values():
        for extra in ("predicted", "error"):
            if extra in res:
                shown[extra] = res[extra]
    return shown


def separation_row(results: dict, shown: pd.DataFrame) -> None:
    """How well the classes separate among held-out points, per panel, before → after."""
    labels = frame_labels(shown)
    if labels is None:
        return
    scores = {title: separation(res["X"], labels, shown["held_out"]) for title, res in results.items()}
    first = next(iter(scores.values()))
    if first["knn_accuracy"] is None:
        hint = (" The run trained on all of these sequences: choose its own data above to score its test split."
                if not shown["held_out"].any() else "")
        st.caption(f"Class separation needs two classes with two held-out points each; {first['n']} held-out "
                   f"points have labels.{hint}")
        return
    cols = st.columns(len(scores))
    before = None
    for col, (title, s) in zip(cols, scores.items()):
        delta = None if before is None else f"{s['knn_accuracy'] - before:+.2f} vs before"
        col.metric(f"Classes separated, {title}", f"{s['knn_accuracy']:.2f}", delta=delta,
                   help=f"kNN accuracy: the share of the {s['n']} held-out points whose {s['k']} nearest held-out "
                        "neighbours in the embedding space (cosine distance, before any projection) mostly share "
                        f"their class. Chance (always the commonest class): {s['chance']:.2f}. 1 is perfect.")
        col.caption(f"silhouette {s['silhouette']:+.2f} (−1 to 1; above 0: nearer their own class) · chance "
                    f"{s['chance']:.2f} · {s['n']} held-out points")
        before = s["knn_accuracy"] if before is None else before


def frame_labels(shown: pd.DataFrame) -> pd.Series | None:
    """Class labels for the separation score (None for regression targets or no labels)."""
    labels = shown["label"].where(shown["label"] != "(none)")
    if labels.notna().sum() < 4:
        return None
    numbers = pd.to_numeric(labels.dropna(), errors="coerce")
    if numbers.notna().all() and numbers.nunique() > 10:
        return None
    return labels


def selected_ids() -> list[str]:
    """Ids of the points last selected (lasso, box or click) in either panel. Kept in the session, because the
    chart's own selection is reset once the figure is redrawn to show it in both panels."""
    event = st.session_state.get("emb_fig")
    try:
        picked = [p["customdata"][-1] for p in event["selection"]["points"] if p.get("customdata")]
    except (KeyError, TypeError):
        picked = []
    if picked:
        st.session_state["emb_selected"] = picked
    return st.session_state.get("emb_selected", [])


def table_with_coordinates(shown: pd.DataFrame, coords: dict[str, np.ndarray]) -> pd.DataFrame:
    """The points with each panel's projected coordinates (before_x, before_y, ...), for the CSV."""
    out = shown.drop(columns=["sequence"]).copy()
    out.insert(1, "sequence", shown["sequence"])
    for title, xy in coords.items():
        prefix = "".join(ch if ch.isalnum() else "_" for ch in title.split(" ")[0].split(":")[0])
        for j, axis in enumerate("xyz"[: xy.shape[1]]):
            out[f"{prefix}_{axis}"] = xy[:, j]
    return out


def downloads(results: dict, shown: pd.DataFrame, coords: dict, fig, method: str, run: RunDir | None) -> None:
    """One menu: the points with both panels' coordinates (CSV), each model's embeddings (HDF5), the figure."""
    stem = ui.random_label(run, run.title) if run is not None else "embeddings"
    stem = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in stem)[:60]
    with st.popover("Download", icon=":material/download:"):
        st.download_button("Points with coordinates (CSV)", table_with_coordinates(shown, coords).to_csv(index=False),
                           f"{stem}_{method}_points.csv", mime="text/csv", key="emb_csv", width="stretch",
                           help="id, sequence, label, split, held out, prediction and each panel's coordinates")
        for i, (title, res) in enumerate(results.items()):
            st.download_button(f"Embeddings {title} (HDF5)",
                               lambda res=res: hdf5_bytes(shown["id"].tolist(), res["X"], res["model"]),
                               f"{stem}_{'before' if title == BEFORE else 'after' if title == AFTER else i}.h5",
                               key=f"emb_h5_{i}", width="stretch",
                               help="one vector per sequence id, the layout `python -m plmcore embed` writes")
        st.download_button("Figure (HTML)", fig.to_html(include_plotlyjs="cdn"), f"{stem}_{method}.html",
                           key="emb_html", width="stretch")


def page() -> None:
    left, right = st.columns(2, gap="large")
    with left:
        models = choose_models()
    tuned = models[-1][2]
    with right:
        frame = choose_sequences(tuned)
    if frame is None or frame.empty:
        return
    how = projection_settings(tuned)
    pooling = how.pop("pooling")
    cache = cache_for(models)
    ready = load(models, frame, pooling, cache, compute=False)
    go_ = st.button(f"Compute embeddings of {len(frame)} sequences", key="emb_go", type="primary",
                    disabled=ready is not None, help="already computed: read from the disk" if ready else None)
    results = ready if ready is not None else load(models, frame, pooling, cache, compute=go_)
    if results is None:
        st.caption("Embeddings are kept on disk (in the run's folder): asking again for the same ones is instant.")
        return
    shown = points(frame, results, tuned)
    coords = {}
    with st.spinner("Projecting…"):
        for title, res in results.items():
            coords[title], _ = cached_projection(res["X"], how["method"], how["dims"], cache=cache, **how["options"])
    c = st.columns(2, vertical_alignment="bottom")
    colours = ["label", "split"] + (["predicted", "error"] if "predicted" in shown.columns else [])
    colour = c[0].selectbox("Colour by", colours, key="emb_colour",
                            format_func={"error": "error of the fine-tuned run", "predicted": "predicted by the run",
                                         "label": "label", "split": "split"}.get)
    only = c[1].toggle("Colour held-out points only", value=tuned is not None, key="emb_held_out",
                       help="grey out the points the run was trained on (its training and validation splits)",
                       disabled=bool(shown["held_out"].all()))
    separation_row(results, shown)
    ids = set(shown["id"].astype(str))
    chosen = [i for i in selected_ids() if i in ids]
    fig = F.projection_pair(coords, shown, colour, held_out_only=only, selected=chosen,
                            title=ui.random_label(tuned or models[0][1],
                                                  f"{PROJECTIONS[how['method']]} of the same {len(shown)} sequences"))
    ui.chart(fig, key="emb_fig", on_select="rerun", selection_mode=("points", "box", "lasso"))
    where = ("from the disk cache" if all(r["cached"] for r in results.values()) else "computed now")
    st.caption(f"Embeddings {where} · {next(iter(results.values()))['X'].shape[1]} dimensions · drag a lasso "
               "around points (or click one) in either panel to see the same sequences in the other.")
    if chosen:
        c = st.columns([3, 1], vertical_alignment="center")
        c[0].markdown(f"**{len(chosen)} selected**, highlighted in both panels")
        if c[1].button("Clear selection", key="emb_clear", icon=":material/deselect:"):
            st.session_state.pop("emb_selected", None)
            st.rerun()
        st.dataframe(shown[shown["id"].astype(str).isin(chosen)].drop(columns=["sequence"]), hide_index=True,
                     column_config={"held_out": st.column_config.CheckboxColumn("held out")},
                     width="stretch", height=min(35 * (len(chosen) + 1) + 3, 300))
    downloads(results, shown, coords, fig, how["method"], tuned)


ui.guard(page)
