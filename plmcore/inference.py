"""One batched-inference loop, for evaluation during training, embedding and prediction.

Sequences are tokenised once, sorted by length and packed into batches under a token budget,
so almost no compute goes to padding; results come back in input order.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import numpy as np
import torch

from plmcore.classifier import Batch, make_batch

Progress = Callable[[int, int], None] | None


def length_batches(lengths, max_tokens: int, max_items: int | None = None,
                   max_padding: float = 0.08) -> list[np.ndarray]:
    """Group indices by length, longest first, so that little compute goes to padding.

    A batch holds at most `max_tokens` padded tokens, and a sequence joins it only if it is at
    most `max_padding` shorter than the batch's longest: every batch, and so the whole set,
    wastes under that fraction of its compute on padding.
    """
    lengths = np.asarray(lengths)
    order = np.argsort(-lengths, kind="stable")
    batches, current, width = [], [], 0
    for i in order:
        n = int(lengths[i])
        full = current and (
            width * (len(current) + 1) > max_tokens
            or (max_items and len(current) >= max_items)
            or n < width * (1 - max_padding)
        )
        if full:
            batches.append(np.array(current))
            current = []
        if not current:
            width = n
        current.append(i)
    if current:
        batches.append(np.array(current))
    return batches


def iter_outputs(fn: Callable[[Batch], torch.Tensor], tokens: list[np.ndarray], encoder, device, *,
                 max_tokens: int, autocast=None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (indices, fn(batch) as float32 numpy) for length-sorted batches of `tokens`."""
    with torch.inference_mode():
        for idx in length_batches([len(t) for t in tokens], max_tokens):
            batch = make_batch([tokens[i] for i in idx], encoder).to(device)
            with autocast() if autocast else contextlib.nullcontext():
                values = fn(batch)
            yield idx, values.float().cpu().numpy()


def run_residues(fn: Callable[[Batch], torch.Tensor], tokens: list[np.ndarray], encoder, device, *, max_tokens: int,
                 autocast=None, progress: Progress = None) -> list[np.ndarray]:
    """fn(batch) -> (B, T, k) per-token outputs, kept for the residue tokens only: one (residues, k)
    array per sequence, in input order."""
    out: list[np.ndarray | None] = [None] * len(tokens)
    done = 0
    for idx, values in iter_outputs(fn, tokens, encoder, device, max_tokens=max_tokens, autocast=autocast):
        for row, i in enumerate(idx):
            n = len(tokens[i]) - encoder.n_special
            out[i] = values[row, encoder.offset:encoder.offset + n]
        done += len(idx)
        if progress:
            progress(done, len(tokens))
    return out


def run(fn: Callable[[Batch], torch.Tensor], tokens: list[np.ndarray], encoder, device, *, max_tokens: int,
        autocast=None, progress: Progress = None) -> np.ndarray:
    """fn(batch) for every sequence, stacked in input order: (n, d) float32."""
    out = None
    done = 0
    for idx, values in iter_outputs(fn, tokens, encoder, device, max_tokens=max_tokens, autocast=autocast):
        if out is None:
            out = np.zeros((len(tokens), *values.shape[1:]), dtype=np.float32)
        out[idx] = values
        done += len(idx)
        if progress:
            progress(done, len(tokens))
    return out if out is not None else np.zeros((0, 0), dtype=np.float32)
