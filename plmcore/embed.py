"""Per-sequence embeddings from a base model or a fine-tuned run, saved, cached and projected.

Batching is plmcore.inference's. Large sets stream to HDF5 so memory stays flat in the number
of sequences.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from plmcore import inference
from plmcore.classifier import Batch, pool
from plmcore.models import Backbone, ResidueEncoder, load_backbone, pick_device, set_cpu_threads

Progress = Callable[[int, int], None] | None


# Tokens per batch (padding included). Measured with bench/run.py and a sweep on 2 CPU cores
# (ESM-2 8M): 2048 embeds 33-residue windows 22% faster than 16384 and 50-1000-residue proteins
# 9% faster, because the activations stay in cache; peak memory is also lower.
MAX_TOKENS = 2048


class Embedder:
    """Pooled embeddings from a base backbone, or from a fine-tuned run's LoRA backbone."""

    def __init__(self, forward: Callable[[Batch], torch.Tensor], encoder: ResidueEncoder, device,
                 identity: str, hidden: int, max_residues: int):
        self.forward = forward
        self.encoder = encoder
        self.device = device
        self.identity = identity
        self.hidden = hidden
        self.max_residues = max_residues

    @classmethod
    def from_backbone(cls, backbone: Backbone, pooling: str = "mean", device: str = "auto") -> Embedder:
        from plmcore.fast import speed_up

        dev = pick_device(device)
        speed_up(backbone.model).to(dev).eval()

        def forward(batch: Batch) -> torch.Tensor:
            out = backbone.model(input_ids=batch.input_ids, attention_mask=batch.attention_mask)
            return pool(out.last_hidden_state, batch, pooling)

        return cls(forward, backbone.encoder, dev, f"base:{_source_identity(backbone.source)}:{pooling}",
                   backbone.hidden_size, backbone.max_residues)

    @classmethod
    def from_run(cls, loaded, pooling: str | None = None) -> Embedder:
        """Embeddings of a fine-tuned run: the LoRA backbone's pooled output, before the head."""
        from plmcore.classifier import pool as pool_fn

        how = pooling or loaded.config.pooling
        model = loaded.model

        def forward(batch: Batch) -> torch.Tensor:
            out = model.backbone(input_ids=batch.input_ids, attention_mask=batch.attention_mask)
            return pool_fn(out.last_hidden_state, batch, how)

        return cls(forward, loaded.backbone.encoder, loaded.device,
                   f"run:{loaded.weights_stamp}:{how}", loaded.backbone.hidden_size,
                   loaded.backbone.max_residues)

    def batches(self, sequences: list[str], max_tokens: int):
        """Yield (indices, embeddings) per length-sorted batch."""
        tokens = self.encoder.encode([s[: self.max_residues] for s in sequences])
        yield from inference.iter_outputs(self.forward, tokens, self.encoder, self.device, max_tokens=max_tokens)

    def embed(self, sequences: list[str], *, max_tokens: int = MAX_TOKENS, progress: Progress = None) -> np.ndarray:
        """(n, hidden) float32 embeddings in input order."""
        tokens = self.encoder.encode([s[: self.max_residues] for s in sequences])
        out = inference.run(self.forward, tokens, self.encoder, self.device, max_tokens=max_tokens, progress=progress)
        return out if len(sequences) else np.zeros((0, self.hidden), dtype=np.float32)


def _source_identity(source: str) -> str:
    path = Path(source).expanduser()
    if path.is_dir():
        cfg = path / "config.json"
        return f"{path.resolve()}@{cfg.stat().st_mtime_ns if cfg.exists() else 0}"
    return source


def load_embedder(source: str, *, pooling: str = "mean", device: str = "auto",
                  trust_remote_code: bool = False) -> Embedder:
    """An Embedder over a base model (hub id, folder or random:<preset>) or a run directory."""
    set_cpu_threads()
    if (Path(source) / "config.json").exists() and (Path(source) / "split.csv").exists():
        from plmcore.predict import load_run

        return Embedder.from_run(load_run(source, device=device, trust_remote_code=trust_remote_code), pooling)
    return Embedder.from_backbone(load_backbone(source, trust_remote_code=trust_remote_code), pooling, device)


# --------------------------------------------------------------------------- files
#
# One HDF5 layout, written by the CLI and the app alike, in the form ProtSpace reads: one
# float32 vector dataset per sequence id at the root, and a root attribute "model_name". An id
# that HDF5 cannot use as a name as it is ('/' makes nested groups, '.' is the root itself) is
# written with each '/' as '%2F' ('.' and '' become '%2E' and '%00'); the root attribute
# "renamed_ids" (JSON, written name -> original id) lists every such change, and read_hdf5
# undoes it.


def h5_name(record_id: str) -> str:
    """The dataset name for a sequence id (see above)."""
    if record_id in ("", "."):
        return {"": "%00", ".": "%2E"}[record_id]
    return record_id.replace("/", "%2F")


def write_hdf5(target, ids: list[str], rows, *, model_name: str, progress: Progress = None) -> None:
    """Write (id, vector) pairs in the layout above. `target`: a path or a binary file object;
    `rows`: an array (n, d) or an iterable of (indices, vectors) blocks, streamed as they come."""
    import h5py

    renamed = {}
    with h5py.File(target, "w", track_order=True) as f:  # datasets come back in input order
        f.attrs["model_name"] = model_name
        blocks = [(np.arange(len(ids)), np.asarray(rows))] if isinstance(rows, np.ndarray) else rows
        done = 0
        for idx, vectors in blocks:
            for i, vector in zip(idx, vectors):
                name = h5_name(ids[i])
                if name in f:
                    raise ValueError(f"the id {ids[i]!r} appears twice; HDF5 keeps one vector per id")
                if name != ids[i]:
                    renamed[name] = ids[i]
                f.create_dataset(name, data=np.asarray(vector, dtype=np.float32))
            done += len(idx)
            if progress:
                progress(done, len(ids))
        f.attrs["renamed_ids"] = json.dumps(renamed)


def save_embeddings(path: Path | str, ids: list[str], X: np.ndarray, model_name: str = "") -> Path:
    """HDF5 (.h5/.hdf5, the layout above) or .npy with the ids in a sidecar .ids.txt."""
    path = Path(path)
    if path.suffix in (".h5", ".hdf5"):
        write_hdf5(path, ids, X, model_name=model_name)
    elif path.suffix == ".npy":
        np.save(path, X)
        path.with_suffix(".ids.txt").write_text("\n".join(ids) + "\n")
    else:
        raise ValueError(f"{path}: use a .h5, .hdf5 or .npy file name")
    return path


def hdf5_bytes(ids: list[str], X: np.ndarray, model_name: str) -> bytes:
    """The same HDF5 file, in memory (the app's download)."""
    buf = io.BytesIO()
    write_hdf5(buf, ids, X, model_name=model_name)
    return buf.getvalue()


def embed_to_hdf5(embedder: Embedder, ids: list[str], sequences: list[str], path: Path | str, *,
                  model_name: str = "", max_tokens: int = MAX_TOKENS, chunk: int = 4096,
                  progress: Progress = None) -> Path:
    """Stream embeddings to HDF5 without holding them all in memory (`chunk` sequences at a time)."""

    def blocks():  # a chunk at a time, in input order, so the file lists the ids as given
        for start in range(0, len(sequences), chunk):
            part = sequences[start:start + chunk]
            buf = np.zeros((len(part), embedder.hidden), dtype=np.float32)
            for idx, emb in embedder.batches(part, max_tokens):
                buf[idx] = emb
            yield np.arange(start, start + len(part)), buf

    write_hdf5(Path(path), ids, blocks(), model_name=model_name, progress=progress)
    return Path(path)


def read_hdf5(path) -> tuple[list[str], np.ndarray]:
    """Ids (as they were before renaming) and the (n, d) matrix of an HDF5 file in the layout above."""
    import h5py

    with h5py.File(path, "r") as f:
        renamed = json.loads(f.attrs.get("renamed_ids", "{}"))
        names = list(f.keys())
        return [renamed.get(n, n) for n in names], np.stack([f[n][:] for n in names]) if names else np.zeros((0, 0))


# --------------------------------------------------------------------------- cache


def cache_key(identity: str, sequences: list[str]) -> str:
    h = hashlib.sha256(identity.encode())
    for s in sequences:
        h.update(s.encode())
        h.update(b"\n")
    return h.hexdigest()[:32]


class EmbeddingCache:
    """Embeddings on disk, keyed by (model identity, pooling, sequences): a repeat never loads the model."""

    def __init__(self, folder: Path | str | None = None):
        from plmcore.runs import workspace

        self.folder = Path(folder) if folder else workspace() / "cache" / "embeddings"

    def path(self, key: str) -> Path:
        return self.folder / f"{key}.npy"

    def get(self, key: str) -> np.ndarray | None:
        p = self.path(key)
        return np.load(p) if p.exists() else None

    def get_json(self, key: str):
        """A small JSON result kept beside the arrays (e.g. predictions), or None."""
        p = self.folder / f"{key}.result.json"
        try:
            return json.loads(p.read_text()) if p.exists() else None
        except (OSError, json.JSONDecodeError):
            return None

    def put_json(self, key: str, value) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.folder / f".{key}.{os.getpid()}.json"
        tmp.write_text(json.dumps(value))
        os.replace(tmp, self.folder / f"{key}.result.json")

    def put(self, key: str, X: np.ndarray, meta: dict | None = None) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.folder / f".{key}.{os.getpid()}.npy"
        np.save(tmp, X)
        os.replace(tmp, self.path(key))
        if meta:
            (self.folder / f"{key}.json").write_text(json.dumps(meta))


def model_identity(source: str, pooling: str) -> str:
    """What makes embeddings differ, known without loading the model."""
    if (Path(source) / "split.csv").exists():
        head = Path(source) / "best" / "head.safetensors"
        stamp = f"{head.stat().st_mtime_ns}" if head.exists() else "none"
        return f"run:{Path(source).resolve()}:{stamp}:{pooling}"
    return f"base:{_source_identity(source)}:{pooling}"


def embeddings_key(source: str, sequences: list[str], pooling: str = "mean") -> str:
    """The cache key of these sequences' embeddings by this model and pooling (known without loading it)."""
    return cache_key(model_identity(source, pooling), sequences)


def cached_embeddings(source: str, sequences: list[str], *, pooling: str = "mean",
                      cache: EmbeddingCache | None = None, progress: Progress = None,
                      embedder_factory: Callable[[], Embedder] | None = None) -> tuple[np.ndarray, bool]:
    """Embeddings from the cache, or computed and cached; returns (X, was_cached)."""
    cache = cache or EmbeddingCache()
    key = embeddings_key(source, sequences, pooling)
    hit = cache.get(key)
    if hit is not None:
        return hit, True
    embedder = embedder_factory() if embedder_factory else load_embedder(source, pooling=pooling)
    X = embedder.embed(sequences, progress=progress)
    cache.put(key, X, {"source": source, "pooling": pooling, "n": len(sequences)})
    return X, False


# --------------------------------------------------------------------------- projections

PROJECTIONS = {"umap": "UMAP", "tsne": "t-SNE", "pca": "PCA"}
PRE_PCA = 50  # UMAP and t-SNE run on this many principal components (standard practice; much faster)


def project(X: np.ndarray, method: str = "umap", n_components: int = 2, *, seed: int = 0,
            n_neighbors: int = 15, min_dist: float = 0.1, metric: str = "euclidean",
            perplexity: float = 30.0) -> np.ndarray:
    """2D/3D coordinates by UMAP, t-SNE or PCA.

    UMAP and t-SNE see the first 50 principal components when the embeddings are wider: the
    neighbourhoods barely change and the projection is several times faster.
    """
    from plmcore.errors import ConfigError

    X = np.asarray(X, dtype=np.float32)
    n = len(X)
    if method not in PROJECTIONS:
        raise ConfigError(f"projection {method!r}; use one of {', '.join(PROJECTIONS)}")
    if n_components not in (2, 3):
        raise ConfigError(f"n_components={n_components}; use 2 or 3")
    if n < n_components + 2:
        raise ConfigError(f"{n} sequences are too few to project; give at least {n_components + 2}")
    from sklearn.decomposition import PCA

    if method == "pca":
        return PCA(n_components=n_components, random_state=seed).fit_transform(X)
    if X.shape[1] > PRE_PCA and n > PRE_PCA:
        X = PCA(n_components=PRE_PCA, random_state=seed).fit_transform(X).astype(np.float32)
    if method == "tsne":
        from sklearn.manifold import TSNE

        perp = min(perplexity, max(1.0, (n - 1) / 3))
        return TSNE(n_components=n_components, perplexity=perp, random_state=seed, init="pca").fit_transform(X)
    import warnings

    import umap

    nn_ = max(2, min(n_neighbors, n - 1))
    # Exact neighbours by blocked matrix products (under a second for 20k points) instead of
    # UMAP's single-threaded NN-descent when a seed is set; PCA initialisation instead of the
    # spectral one, whose eigensolver can run for tens of seconds and then fail on
    # fragmented graphs. Measured by bench/run.py on 20k windows: 74 s before, 9 s after.
    knn = exact_knn(X, nn_, metric) if metric in ("euclidean", "cosine") else (None, None, None)
    reducer = umap.UMAP(n_components=n_components, n_neighbors=nn_, min_dist=min_dist, metric=metric,
                        random_state=seed, init="pca", precomputed_knn=knn)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="n_jobs value", category=UserWarning)
        warnings.filterwarnings("ignore", message="precomputed_knn", category=UserWarning)
        return reducer.fit_transform(X)


def exact_knn(X: np.ndarray, k: int, metric: str = "euclidean", block: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Each row's k nearest rows (itself first) and their distances, by blocked matrix products."""
    Y = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
    if metric == "cosine":
        Y = torch.nn.functional.normalize(Y, dim=1)
    sq = (Y * Y).sum(1)
    n = len(Y)
    idx = np.empty((n, k), dtype=np.int32)
    dist = np.empty((n, k), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, n, block):
            rows = Y[start:start + block]
            if metric == "cosine":
                d = 1.0 - rows @ Y.T
            else:
                d = (sq[start:start + block, None] + sq[None, :] - 2.0 * rows @ Y.T).clamp_min_(0.0)
            own = torch.arange(start, start + len(rows))
            d[torch.arange(len(rows)), own] = -1.0  # a point is its own nearest neighbour
            vals, nbrs = torch.topk(d, k, dim=1, largest=False)
            vals[:, 0] = 0.0
            if metric != "cosine":
                vals = vals.sqrt_()
            idx[start:start + len(rows)] = nbrs.numpy()
            dist[start:start + len(rows)] = vals.clamp_min_(0.0).numpy()
    return idx, dist


def cached_projection(X: np.ndarray, method: str = "umap", n_components: int = 2, *,
                      cache: EmbeddingCache | None = None, **options) -> tuple[np.ndarray, bool]:
    """`project(X, ...)` kept on disk, keyed by the embeddings' bytes and every option, so reopening a
    page (or another session) gets the same coordinates at once. Returns (coordinates, was_cached)."""
    cache = cache or EmbeddingCache()
    X = np.ascontiguousarray(X, dtype=np.float32)
    h = hashlib.sha256(X.tobytes())
    h.update(json.dumps([X.shape, method, n_components, sorted(options.items())], default=str).encode())
    key = f"projection-{h.hexdigest()[:32]}"
    hit = cache.get(key)
    if hit is not None:
        return hit, True
    coords = project(X, method, n_components, **options)
    cache.put(key, np.asarray(coords, dtype=np.float32))
    return coords, False


# --------------------------------------------------------------------------- separation


def separation(X: np.ndarray, labels, held_out=None, *, k: int = 5, metric: str = "cosine") -> dict:
    """How well the classes separate among held-out points, in the embedding space itself (not a projection,
    so the number does not move with UMAP's settings).

    Args:
        X: (n, d) embeddings.
        labels: n class labels (None or NaN: unlabelled, left out).
        held_out: n booleans, True for a point the model was not trained on; only those are scored (None: all).
        k: neighbours for the kNN accuracy.
        metric: distance for both scores ("cosine" or "euclidean").

    Returns:
        {"knn_accuracy": share of held-out points whose k nearest other held-out points mostly share their
        class (leave-one-out), "chance": the share of the commonest class (what always guessing it scores),
        "silhouette": mean silhouette width (−1 to 1; above 0: closer to their own class than to the next),
        "n": points scored, "k": k}; the scores are None when fewer than two classes with two points each remain.
    """
    import pandas as pd
    from sklearn.metrics import silhouette_score
    from sklearn.neighbors import KNeighborsClassifier

    X = np.asarray(X, dtype=np.float32)
    y = pd.Series(list(labels), dtype=object)
    keep = y.notna().to_numpy().copy()
    if held_out is not None:
        keep &= np.asarray(held_out, dtype=bool)
    X, y = X[keep], y[keep].astype(str).to_numpy()
    counts = pd.Series(y).value_counts()
    out = {"knn_accuracy": None, "chance": None, "silhouette": None, "n": int(len(y)), "k": k}
    if len(counts) < 2 or (counts >= 2).sum() < 2 or len(y) < 4:
        return out
    out["chance"] = float(counts.iloc[0] / len(y))
    out["silhouette"] = float(silhouette_score(X, y, metric=metric))
    kk = min(k, len(y) - 1)
    knn = KNeighborsClassifier(n_neighbors=kk + 1, metric=metric).fit(X, y)
    neighbours = knn.kneighbors(X, return_distance=False)
    right = 0
    for i, row in enumerate(neighbours):
        others = [j for j in row if j != i][:kk]  # leave the point itself out
        votes = pd.Series(y[others]).value_counts()
        right += int(votes.index[0] == y[i] and (len(votes) == 1 or votes.iloc[0] > votes.iloc[1]))
    out["knn_accuracy"] = right / len(y)
    return out


def held_out(run_split, sequences: list[str]) -> np.ndarray:
    """True for each sequence a run never trained on: absent from the train and validation rows of its split.csv
    (`run_split`, a DataFrame with sequence and split columns)."""
    seen = set(run_split.loc[run_split["split"].isin(["train", "val"]), "sequence"])
    return np.array([s not in seen for s in sequences], dtype=bool)
