"""Training state (optimiser, scheduler, RNG, loop position) saved without pickle.

Tensors and numpy arrays go to ``trainer_state.safetensors``; everything else (numbers, strings,
lists, tuples, dicts) to ``trainer_state.json``, where a tensor is replaced by a reference to its
key. Loading reads both back with no unpickling, so a checkpoint cannot carry code.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from plmcore.errors import RunError

STATE_FILES = ("trainer_state.json", "trainer_state.safetensors")


def _flatten(obj, tensors: dict[str, torch.Tensor], path: str):
    if isinstance(obj, torch.Tensor):
        tensors[path] = obj.detach().contiguous().cpu()
        return {"__tensor__": path}
    if isinstance(obj, np.ndarray):
        tensors[path] = torch.from_numpy(np.ascontiguousarray(obj))
        return {"__ndarray__": path}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        if not all(isinstance(k, (str, int)) for k in obj):
            raise TypeError(f"cannot save a dict with keys {list(obj)[:3]} at {path}")
        # JSON keys are strings: remember which were integers (optimiser state is keyed by index)
        return {"__dict__": [[k, _flatten(v, tensors, f"{path}.{k}")] for k, v in obj.items()]}
    if isinstance(obj, tuple):
        return {"__tuple__": [_flatten(v, tensors, f"{path}.{i}") for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_flatten(v, tensors, f"{path}.{i}") for i, v in enumerate(obj)]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot save {type(obj).__name__} at {path} without pickle")


def _restore(obj, tensors: dict[str, torch.Tensor]):
    if isinstance(obj, list):
        return [_restore(v, tensors) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if "__tensor__" in obj:
        return tensors[obj["__tensor__"]]
    if "__ndarray__" in obj:
        return tensors[obj["__ndarray__"]].numpy()
    if "__tuple__" in obj:
        return tuple(_restore(v, tensors) for v in obj["__tuple__"])
    if "__dict__" in obj:
        return {k: _restore(v, tensors) for k, v in obj["__dict__"]}
    raise RunError(f"unexpected entry {list(obj)[:3]} in a saved training state")


def save_state(folder: Path, state: dict) -> None:
    """Write `state` as trainer_state.json + trainer_state.safetensors in `folder`."""
    from safetensors.torch import save_file

    tensors: dict[str, torch.Tensor] = {}
    tree = _flatten(state, tensors, "state")
    save_file(tensors, folder / STATE_FILES[1])
    (folder / STATE_FILES[0]).write_text(json.dumps(tree))


def load_state(folder: Path) -> dict:
    """Read back what `save_state` wrote; no pickle is involved."""
    from safetensors.torch import load_file

    try:
        tree = json.loads((folder / STATE_FILES[0]).read_text())
        tensors = load_file(folder / STATE_FILES[1])
    except (OSError, ValueError) as exc:
        raise RunError(f"the checkpoint in {folder} cannot be read ({exc}); start the run again without --resume") \
            from exc
    return _restore(tree, tensors)
