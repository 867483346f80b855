"""Where a run came from: data files and their hashes, the split, the model and its revision,
seeds, software versions and threads. Recorded in config.json under "provenance"."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import pandas as pd

from plmcore import __version__

_CHUNK = 1 << 20
_MODEL_FILES = ("config.json", "*.safetensors", "*.bin", "tokenizer*", "vocab*", "spiece.model", "special_tokens*")


def sha256_file(path: Path | str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def file_record(path: Path | str, role: str) -> dict:
    """Name, path, size and SHA-256 of one input file."""
    p = Path(path)
    return {"role": role, "name": p.name, "path": str(p), "bytes": p.stat().st_size, "sha256": sha256_file(p)}


def split_hash(split: pd.DataFrame) -> str:
    """SHA-256 of the split as used: id, sequence, label and split of every record, in order."""
    h = hashlib.sha256()
    for row in split[["id", "sequence", "label", "split"]].astype(str).itertuples(index=False):
        h.update("\t".join(row).encode())
        h.update(b"\n")
    return h.hexdigest()


def software() -> dict:
    import peft
    import torch
    import transformers

    return {"plmcore": __version__, "torch": torch.__version__, "transformers": transformers.__version__,
            "peft": peft.__version__, "python": platform.python_version(), "platform": platform.platform()}


def folder_hash(folder: Path) -> str:
    """SHA-256 over a model folder's config, weight and tokenizer files (names and contents).

    Hashing gigabytes takes seconds, so results are cached by (path, size, modification time).
    """
    from plmcore.models import data_home

    files = sorted({p for pattern in _MODEL_FILES for p in folder.glob(pattern) if p.is_file()})
    key = json.dumps([[str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns] for p in files])
    cache = data_home() / "folder-hashes.json"
    try:
        known = json.loads(cache.read_text())
    except (OSError, json.JSONDecodeError):
        known = {}
    digest = hashlib.sha256(key.encode()).hexdigest()
    if digest in known:
        return known[digest]
    h = hashlib.sha256()
    for p in files:
        h.update(p.name.encode() + b"\0" + sha256_file(p).encode() + b"\n")
    known[digest] = h.hexdigest()
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(known))
    except OSError:
        pass
    return known[digest]


def model_record(source: str, model=None, random_weights: bool = False) -> dict:
    """Where the backbone came from: a preset's random weights, a local folder (content hash), or the hub (commit).

    Args:
        random_weights: the loader found the weights random (plmcore.models.Backbone.random_weights).
    """
    from plmcore.models import RANDOM_PREFIX, is_random

    if is_random(source):
        return {"source": source, "kind": "random weights", "preset": source[len(RANDOM_PREFIX):],
                "note": "the preset's architecture with seeded random weights: nothing learned"}
    folder = Path(source).expanduser()
    if folder.is_dir():
        record = {"source": source, "kind": "local folder", "sha256": folder_hash(folder)}
        return record | ({"random_weights": True} if random_weights or random_weights_source(source) else {})
    revision = getattr(getattr(model, "config", None), "_commit_hash", None) or _cached_revision(source)
    return {"source": source, "kind": "hub", "revision": revision}


def _cached_revision(repo_id: str) -> str | None:
    try:
        from huggingface_hub import try_to_load_from_cache

        hit = try_to_load_from_cache(repo_id, "config.json")
    except Exception:  # noqa: BLE001 - not a hub id, or no cache
        return None
    if isinstance(hit, str) and "/snapshots/" in hit:
        return hit.split("/snapshots/")[1].split("/")[0]
    return None


def describe(provenance: dict | None) -> list[tuple[str, str]]:
    """A run's provenance as (what, value) rows for people: data, split, model, seeds, software."""
    if not provenance:
        return [("recorded", "nothing (a run made before provenance was recorded)")]
    rows = []
    data = provenance.get("data") or {}
    if data.get("dataset"):
        rows.append(("dataset", str(data["dataset"])))
    for f in data.get("files") or []:
        what = f.get("role", "file") + (f" (uploaded as {f['uploaded_as']})" if f.get("uploaded_as") else "")
        rows.append((what, f"{f.get('name')} · SHA-256 {str(f.get('sha256'))[:16]}… · {f.get('bytes', 0):,} bytes"))
    split = data.get("split") or {}
    if split:
        counts = split.get("counts") or {}
        how = f"{split.get('split_method')}, validation {split.get('val_fraction')}, seed {split.get('split_seed')}"
        rows.append(("split", f"{how}; {counts.get('train', 0)} train · {counts.get('val', 0)} validation · "
                              f"{counts.get('test', 0)} test · SHA-256 {str(split.get('sha256'))[:16]}…"))
    model = provenance.get("model") or {}
    if model:
        detail = {"hub": f"revision {model.get('revision') or 'unknown (not in the local cache)'}",
                  "local folder": f"content SHA-256 {str(model.get('sha256'))[:16]}…",
                  "random weights": "random weights: nothing learned"}.get(model.get("kind"), "")
        rows.append(("model", f"{model.get('source')} ({model.get('kind')}; {detail})"))
    seeds = provenance.get("seeds") or {}
    if seeds:
        rows.append(("seeds", f"training {seeds.get('seed')}, split {seeds.get('split_seed')}"))
    if provenance.get("threads"):
        rows.append(("CPU threads", str(provenance["threads"])))
    soft = provenance.get("software") or {}
    if soft:
        rows.append(("software", ", ".join(f"{k} {v}" for k, v in soft.items() if k != "platform")))
    rows.append(("started from", f"{provenance.get('created_by', '?')} at {provenance.get('created_at', '?')}"))
    return rows


def start_record(config, split: pd.DataFrame, *, created_by: str, files: list[dict] | None = None) -> dict:
    """What is known when a run is created: data, split, seeds, software and how it was started."""
    spec = config.data
    if files is None:
        files = [file_record(p, "train") for p in spec.train if Path(p).is_file()]
        files += [file_record(p, f"class {c}") for c, p in spec.class_files if Path(p).is_file()]
        if spec.test and Path(spec.test).is_file():
            files.append(file_record(spec.test, "test"))
    counts = split["split"].value_counts()
    return {
        "created_by": created_by,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "data": {
            "dataset": spec.dataset,
            "files": files,
            "split": {"sha256": split_hash(split), "file": "split.csv",
                      "counts": {k: int(counts.get(k, 0)) for k in ("train", "val", "test")},
                      **spec.split_settings()},
        },
        "seeds": {"seed": config.seed, "split_seed": spec.split_seed},
        "software": software(),
        "command": "python -m plmcore train --config config.json --run-dir NEW_FOLDER",
        "argv": shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]]) if created_by == "cli" else None,
        "host": {"cpus": os.cpu_count()},
    }


# --------------------------------------------------------------------------- random weights

RANDOM_WEIGHTS_MARK = "⚠ Random weights — not a result"
RANDOM_WEIGHTS_WHY = ("This model was not loaded from pretrained weights: its backbone has random weights (built to "
                      "try the tool and measure its speed). Its metrics, verdicts, projections and predicted sites "
                      "say nothing about how a real protein language model does; do not use them as results.")
_WEIGHT_FILES = ("*.safetensors", "*.bin", "*.pt", "*.pth", "*.h5", "*.msgpack", "*.ckpt")


def random_weights_source(source: str) -> bool:
    """Whether a model source has random weights: `random:<preset>`, a folder saved from one (its config
    says so), a folder with no weight files, or an exported plmcore model whose base model is one of those."""
    from plmcore.models import is_random

    if is_random(source):
        return True
    folder = Path(source).expanduser()
    if not folder.is_dir():
        return False  # a hub id: pretrained weights
    info = folder / "plmcore.json"
    if info.is_file():  # a model exported by plmcore (plmcore.hub): judge its base model
        try:
            base = json.loads(info.read_text())["config"]["model"]
        except (OSError, ValueError, KeyError, TypeError):
            return False
        return random_weights_source(str(base))
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        config = {}
    if isinstance(config, dict) and config.get("plmcore_random_weights"):
        return True
    return not any(next(folder.glob(pattern), None) for pattern in _WEIGHT_FILES)


def random_weights(what) -> bool:
    """Whether the numbers of a run (RunDir), a run's TrainConfig or a model source (str) come from a model
    with random weights: the one decision behind every random-weight badge, label and banner.

    A run counts as random when its recorded provenance says so (what the loader found when it trained)
    or its model source does (plmcore.provenance.random_weights_source). A damaged run counts as not random
    here; it shows its damage instead.
    """
    from plmcore.errors import PlmcoreError

    if isinstance(what, (str, Path)):
        return random_weights_source(str(what))
    config = what
    if hasattr(what, "config") and callable(what.config):  # a RunDir
        try:
            config = what.config()
        except PlmcoreError:
            return False
    record = (getattr(config, "provenance", None) or {}).get("model") or {}
    if record.get("kind") == "random weights" or record.get("random_weights"):
        return True
    return random_weights_source(str(config.model))


def with_random_mark(text: str, what) -> str:
    """`text` followed by the random-weight mark when `what` (a run, config or model source) has random
    weights: for titles, table cells, CSV columns and file names."""
    return f"{text} · {RANDOM_WEIGHTS_MARK}" if random_weights(what) else text
