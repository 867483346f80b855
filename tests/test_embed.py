"""Embeddings: order and padding do not change them; files, cache and projections work."""

from __future__ import annotations

import numpy as np
import pytest

from plmcore.embed import (
    Embedder,
    EmbeddingCache,
    cached_embeddings,
    embed_to_hdf5,
    exact_knn,
    hdf5_bytes,
    project,
    read_hdf5,
    save_embeddings,
)
from plmcore.errors import ConfigError
from plmcore.models import load_backbone


@pytest.fixture(scope="module")
def embedder(tiny_models):
    return Embedder.from_backbone(load_backbone(str(tiny_models["esm"])), "mean", "cpu")


SEQS = ["MKTAYIAKQRQISFVKSHFSRQ", "ACDY", "MLSRAVCGTSRQLAPVLGYLGSRQKHSLPDYVRQ", "WWY", "GGGGGGGGGGGGGY"]


def test_batched_embeddings_equal_one_at_a_time_in_input_order(embedder):
    together = embedder.embed(SEQS, max_tokens=64)  # several length-sorted batches with padding
    alone = np.stack([embedder.embed([s])[0] for s in SEQS])
    np.testing.assert_allclose(together, alone, atol=1e-5)
    assert together.shape == (len(SEQS), 32)


def test_hdf5_and_npy_round_trip(embedder, tmp_path):
    X = embedder.embed(SEQS)
    ids = [f"sp|P{i}|X/Y" for i in range(len(SEQS))]
    save_embeddings(tmp_path / "e.h5", ids, X, model_name="tiny")
    got_ids, got = read_hdf5(tmp_path / "e.h5")
    assert got_ids == ids  # input order, and the '/' in the ids restored
    np.testing.assert_allclose(got, X)
    import h5py

    with h5py.File(tmp_path / "e.h5") as f:  # the layout ProtSpace reads
        assert f.attrs["model_name"] == "tiny"
        assert all("/" not in name and f[name].shape == (32,) and f[name].dtype == np.float32 for name in f)
        assert "sp|P0|X%2FY" in f
    assert hdf5_bytes(ids, X, "tiny")[:8] == b"\x89HDF\r\n\x1a\n"
    save_embeddings(tmp_path / "e.npy", ids, X)
    np.testing.assert_allclose(np.load(tmp_path / "e.npy"), X)
    assert (tmp_path / "e.ids.txt").read_text().split() == ids


def test_streaming_hdf5_matches_in_memory(embedder, tmp_path):
    seqs = SEQS * 7
    ids = [f"s{i}" for i in range(len(seqs))]
    path = embed_to_hdf5(embedder, ids, seqs, tmp_path / "big.h5", chunk=8, max_tokens=128)
    got_ids, got = read_hdf5(path)
    assert got_ids == ids
    np.testing.assert_allclose(got, embedder.embed(seqs), atol=1e-5)


def test_second_request_comes_from_cache_without_the_model(tiny_models, embedder, tmp_path):
    cache = EmbeddingCache(tmp_path / "cache")
    calls = []

    def factory():
        calls.append(1)
        return embedder

    X1, hit1 = cached_embeddings(str(tiny_models["esm"]), SEQS, cache=cache, embedder_factory=factory)
    X2, hit2 = cached_embeddings(str(tiny_models["esm"]), SEQS, cache=cache, embedder_factory=factory)
    assert (hit1, hit2) == (False, True) and len(calls) == 1
    np.testing.assert_array_equal(X1, X2)
    # another pooling is another request
    _, hit3 = cached_embeddings(str(tiny_models["esm"]), SEQS, pooling="cls", cache=cache,
                                embedder_factory=factory)
    assert not hit3 and len(calls) == 2


@pytest.mark.parametrize("method", ["pca", "tsne", "umap"])
@pytest.mark.parametrize("dims", [2, 3])
def test_projections(method, dims):
    rng = np.random.default_rng(0)
    # 3D t-SNE needs ~100 points a cluster to settle (scikit-learn's defaults)
    X = np.vstack([rng.normal(0, 1, (100, 16)), rng.normal(6, 1, (100, 16))])
    Y = project(X, method, dims, n_neighbors=10, perplexity=30)
    assert Y.shape == (200, dims)
    # the two clusters stay apart: a point's 5 nearest neighbours are from its own cluster
    d = ((Y[:, None] - Y[None]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    cluster = np.arange(200) >= 100
    same = (cluster[np.argsort(d, 1)[:, :5]] == cluster[:, None]).mean()
    assert same >= 0.95


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_exact_knn_matches_scikit_learn(metric):
    from sklearn.neighbors import NearestNeighbors

    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 12)).astype(np.float32)
    X[5] = X[7]  # a duplicate: each copy must still list itself first
    idx, dist = exact_knn(X, 6, metric, block=64)  # several blocks
    ref_dist, ref_idx = NearestNeighbors(n_neighbors=6, metric=metric).fit(X).kneighbors(X)
    assert (idx[:, 0] == np.arange(300)).all() and (dist[:, 0] == 0).all()
    np.testing.assert_allclose(dist, ref_dist, atol=2e-3)
    assert np.mean([set(a) == set(b) for a, b in zip(idx[:, 1:], ref_idx[:, 1:])]) > 0.98


def test_projection_refuses_too_few_points():
    with pytest.raises(ConfigError, match="too few"):
        project(np.zeros((3, 4)), "pca", 3)
