"""Measurements that run in their own process: `python -m bench.workers TASK ARGS.json RESULT.json`.

One process per measurement so that its peak RSS (VmHWM) belongs to it alone. Every worker sets
torch's threads with the project's own `plmcore.models.set_cpu_threads()` (the parent passes the
number in PLMCORE_THREADS) and records what was in effect while it measured.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from pathlib import Path

from bench.common import (
    ESM8M,
    TEST_FASTA,
    TRAIN_FASTA,
    current_rss_mb,
    peak_rss_mb,
    real_windows,
    ru_maxrss_mb,
    sample_windows,
    write_result,
)

now = time.perf_counter


def _threads() -> int:
    from plmcore.models import set_cpu_threads

    return set_cpu_threads()


def _train_config(a: dict, **over):
    from plmcore.config import DataSpec, TrainConfig

    kw = dict(
        model=a["source"], pooling="cls", lora_r=8, lora_alpha=16, lora_dropout=0.0,
        head_dropout=a.get("head_dropout", 0.0), batch_size=8, learning_rate=3e-4, warmup_ratio=0.1,
        max_steps=a["steps"], patience=None, device=a.get("device", "cpu"), precision=a.get("precision", "auto"),
        data=DataSpec(train=(str(TRAIN_FASTA),), test=str(TEST_FASTA), val_fraction=0.1),
    )
    kw.update(over)
    return TrainConfig(**kw)


def _instrument(trainer) -> dict:
    """Time optimiser steps, end-of-epoch evaluation and checkpoints; count the windows trained on."""
    import torch

    marks = {"steps": [], "eval_s": 0.0, "checkpoint_s": 0.0, "windows": 0, "evals": 0, "checkpoints": 0}
    cuda = trainer.device.type == "cuda"

    def sync():
        if cuda:
            torch.cuda.synchronize()

    # a post-step hook on the underlying torch optimizer: accelerate only calls it on real
    # (gradient-synchronising) steps, so it fires once per optimiser step. A hook, not a patched
    # method, so checkpoints (which pickle the optimizer/scheduler state) stay as they are.
    opt = getattr(trainer.optimizer, "optimizer", trainer.optimizer)

    def after_step(optimizer, args, kwargs):
        sync()
        marks["steps"].append(now())

    opt.register_step_post_hook(after_step)

    for name, key in (("_end_of_epoch", "eval_s"), ("save_checkpoint", "checkpoint_s")):
        fn = getattr(trainer, name)

        def wrapped(*args, _fn=fn, _key=key, **kw):
            t = now()
            try:
                return _fn(*args, **kw)
            finally:
                marks[_key] += now() - t
                marks["evals" if _key == "eval_s" else "checkpoints"] += 1

        setattr(trainer, name, wrapped)

    loss_fn = trainer.loss_fn

    def counting_loss(logits, labels):
        marks["windows"] += int(labels.shape[0])
        return loss_fn(logits, labels)

    trainer.loss_fn = counting_loss
    return marks


def _describe_optimizer(opt) -> str:
    inner = getattr(opt, "optimizer", opt)
    d = inner.defaults
    if d.get("fused"):
        how = "fused"
    elif d.get("foreach"):
        how = "foreach"
    elif all(p.is_cuda for g in inner.param_groups for p in g["params"]):
        how = "foreach (default on CUDA)"
    else:
        how = "for-loop over tensors (foreach/fused unset: the CPU default)"
    return f"{type(inner).__name__}, {how}"


def _step_stats(marks: dict, t_begin: float) -> dict:
    steps = marks["steps"]
    deltas = [b - a for a, b in zip([t_begin, *steps[:-1]], steps)]
    timed = deltas[1:] if len(deltas) > 1 else deltas  # the first step pays one-off allocation
    timed = sorted(timed)
    return {"step_s": deltas, "median_step_s": timed[len(timed) // 2] if timed else None}


# --------------------------------------------------------------------------- tasks


def task_prepare(a: dict) -> dict:
    """Build the random-weight models once (untimed for the comparisons) and check the two training
    recipes compute the same function: same token ids, same logits, loss and LoRA gradients."""
    from plmcore.models import materialize_random

    _threads()
    built = {}
    for src in a["build"]:
        t = now()
        folder = materialize_random(src)
        built[src] = {"folder": str(folder), "seconds": now() - t,
                      "size_mb": sum(p.stat().st_size for p in folder.iterdir()) / 2**20}
        print(f"built {src} in {built[src]['seconds']:.1f} s", flush=True)
    out = {"built": built}
    if a.get("equivalence"):
        out["equivalence"] = _equivalence(a)
    return out


def _equivalence(a: dict) -> dict:
    import numpy as np
    import torch

    from bench.reference import build_reference_model
    from plmcore import data as D
    from plmcore import splits as S
    from plmcore.classifier import build_classifier, make_batch
    from plmcore.models import load_backbone, materialize_random

    folder = materialize_random(ESM8M)
    cfg = _train_config({"source": ESM8M, "steps": 1})
    split = S.load_split(a["split_csv"])
    classes = D.classes_of(split["label"])
    test = split[split["split"] == "test"]
    seqs = test["sequence"].tolist()
    y = torch.tensor([classes.index(v) for v in test["label"]])

    backbone = load_backbone(ESM8M)
    ours = build_classifier(backbone, len(classes), cfg)
    ref = build_reference_model(folder)
    torch.manual_seed(1)
    ours_params = dict(ours.named_parameters())
    ref_params = dict(ref.named_parameters())
    pairs = []
    for name, p in ours_params.items():
        if not p.requires_grad:
            continue
        if "lora_B" in name:  # B starts at zero; give it values so the adapters matter
            with torch.no_grad():
                p.normal_(0, 0.02)
        if name.startswith("head."):
            suffix = "classifier.modules_to_save.default." + name[len("head."):]
        else:
            suffix = "encoder." + name.split(".encoder.", 1)[1]
        match = [n for n in ref_params if n.endswith(suffix)]
        if len(match) != 1:
            raise RuntimeError(f"no unique reference parameter for {name}: {match}")
        with torch.no_grad():
            ref_params[match[0]].copy_(p)
        pairs.append((name, match[0]))
    n_ref_trainable = sum(1 for p in ref_params.values() if p.requires_grad)

    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    enc = tokenizer(seqs, padding=True, return_tensors="pt")
    batch = make_batch(backbone.encoder.encode(seqs), backbone.encoder)
    same_ids = bool(torch.equal(enc["input_ids"], batch.input_ids))

    ours.train()
    ref.train()
    lo = ours(batch)
    lr_ = ref(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits
    loss_o = torch.nn.functional.cross_entropy(lo, y)
    loss_r = torch.nn.functional.cross_entropy(lr_, y)
    loss_o.backward()
    loss_r.backward()
    grad_diff = max(float((ours_params[o].grad - ref_params[r].grad).abs().max()) for o, r in pairs)
    grad_scale = max(float(ours_params[o].grad.abs().max()) for o, _ in pairs)
    return {
        "same_token_ids": same_ids,
        "trainable_tensors": len(pairs), "reference_trainable_tensors": n_ref_trainable,
        "trainable_params_ours": int(sum(ours_params[o].numel() for o, _ in pairs)),
        "logits_max_abs_diff": float((lo - lr_).detach().abs().max()),
        "loss_ours": float(loss_o), "loss_reference": float(loss_r),
        "grad_max_abs_diff": grad_diff, "grad_max_abs": grad_scale,
        "windows": len(seqs), "tokens_per_window": int(batch.input_ids.shape[1]),
        "logits_ours_first": np.asarray(lo[0].detach()).tolist(),
    }


def task_train_ours(a: dict) -> dict:
    """The project's Trainer: setup() untimed, fit() timed; then the loss on the held-out windows."""
    import torch

    from plmcore import splits as S
    from plmcore.train import Trainer, create_run

    cfg = _train_config(a)
    run = create_run(cfg, S.load_split(a["split_csv"]), run_dir=a["run_dir"])
    t = now()
    trainer = Trainer(run).setup()
    setup_s = now() - t
    marks = _instrument(trainer)
    threads = torch.get_num_threads()
    rss_before = current_rss_mb()
    cuda = trainer.device.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats()
        torch.cuda.synchronize()
    t0 = now()
    if a.get("profile"):
        from torch.profiler import ProfilerActivity, profile

        acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
        with profile(activities=acts, record_shapes=True) as prof:
            trainer.fit()
        _write_profile(prof, a["profile"])
    else:
        trainer.fit()
    if cuda:
        torch.cuda.synchronize()
    seconds = now() - t0
    out = {
        "seconds": seconds, "setup_s": setup_s, "steps": trainer.state["step"], "windows": marks["windows"],
        "trainable": trainer.trainable, "total_params": trainer.total,
        "tokens_per_window": int(max(len(t) for t in trainer.sets["train"].tokens)),
        "threads": threads, "eval_s": marks["eval_s"], "checkpoint_s": marks["checkpoint_s"],
        "evals": marks["evals"], "checkpoints": marks["checkpoints"],
        "rss_before_fit_mb": rss_before, "device": str(trainer.device),
        "mixed_precision": trainer.accelerator.mixed_precision,
        "optimizer": _describe_optimizer(trainer.optimizer),
        **_step_stats(marks, t0),
    }
    if cuda:
        out["gpu_peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
    out["val_loss"] = trainer.evaluate(trainer.sets["test"])["val_loss"]
    out["n_train"] = len(trainer.sets["train"].tokens)
    out["n_val"] = len(trainer.sets["val"].tokens)
    out["n_test"] = len(trainer.sets["test"].tokens)
    return out


def task_train_ref(a: dict) -> dict:
    """HF transformers.Trainer + peft on the same train windows; loop timed by a callback."""
    from plmcore import data as D
    from plmcore import splits as S
    from plmcore.models import materialize_random

    threads = _threads()
    split = S.load_split(a["split_csv"])
    classes = D.classes_of(split["label"])
    tr = split[split["split"] == "train"]
    te = split[split["split"] == "test"]
    folder = materialize_random(a["source"])
    if a.get("profile"):
        import torch.profiler as tp

        with tp.profile(activities=[tp.ProfilerActivity.CPU], record_shapes=True) as prof:
            res = _ref(a, folder, tr, te, classes)
        _write_profile(prof, a["profile"])
    else:
        res = _ref(a, folder, tr, te, classes)
    res["threads_set"] = threads
    return res


def _ref(a, folder, tr, te, classes):
    from bench.reference import hf_reference_train

    return hf_reference_train(
        folder, tr["sequence"].tolist(), [classes.index(v) for v in tr["label"]],
        te["sequence"].tolist(), [classes.index(v) for v in te["label"]],
        max_steps=a["steps"], output_dir=Path(a["run_dir"]), device=a.get("device", "cpu"),
        mixed=a.get("mixed", "no"),
    )


def _write_profile(prof, path: str) -> None:
    text = []
    for key in ("self_cpu_time_total", "cpu_time_total"):
        text.append(f"== sorted by {key}\n")
        text.append(prof.key_averages().table(sort_by=key, row_limit=40))
    text.append("\n== by input shape (self CPU)\n")
    text.append(prof.key_averages(group_by_input_shape=True).table(sort_by="self_cpu_time_total", row_limit=40))
    Path(path).write_text("\n".join(text))
    events = prof.key_averages()
    summary = sorted(((e.key, e.self_cpu_time_total / 1e6, e.count) for e in events), key=lambda r: -r[1])
    Path(path).with_suffix(".json").write_text(json.dumps(summary[:80], indent=0))


def task_embed(a: dict) -> dict:
    """Embed the named inputs with the project's Embedder ("ours") or the naive loop; time each."""
    import numpy as np
    import torch

    from bench.flops import arch_for, embed_flops
    from bench.reference import naive_embed
    from plmcore.embed import Embedder
    from plmcore.inference import length_batches
    from plmcore.models import load_backbone

    threads = _threads()
    inputs = json.loads(Path(a["inputs"]).read_text())
    t = now()
    backbone = load_backbone(a["source"])
    load_s = now() - t
    arch = arch_for(a["source"])
    side = a["side"]
    results = {}
    if side == "ours":
        emb = Embedder.from_backbone(backbone, "mean", "cpu")
        emb.embed(inputs[a["which"][0]][:8])  # warm-up, untimed
    else:
        naive_embed(backbone.model, backbone.tokenizer, inputs[a["which"][0]][:8], a["batch_size"])
    for which in a["which"]:
        seqs = inputs[which]
        lengths = [len(x) for x in backbone.encoder.encode([s[: backbone.max_residues] for s in seqs])]
        rss_before = current_rss_mb()
        t0 = now()
        if side == "ours":
            X = emb.embed(seqs)
            seconds = now() - t0
            computed = sum(len(b) * max(lengths[i] for i in b) for b in length_batches(lengths, a["max_tokens"]))
        else:
            X, computed = naive_embed(backbone.model, backbone.tokenizer, seqs, a["batch_size"])
            seconds = now() - t0
        if a.get("save"):
            np.save(Path(a["save"]) / f"{side}-{which}.npy", X)
        real = int(sum(lengths))
        results[which] = {
            "seconds": seconds, "sequences": len(seqs), "real_tokens": real, "computed_tokens": int(computed),
            "padding_waste": 1 - real / computed, "tokens_per_s": real / seconds,
            "useful_flops": embed_flops(arch, lengths),
            "rss_before_mb": rss_before, "peak_rss_mb_so_far": peak_rss_mb(),
        }
    return {"side": side, "threads": threads, "torch_threads": torch.get_num_threads(), "load_s": load_s,
            "inputs": results}


def task_scale(a: dict) -> dict:
    """Stream n windows to HDF5 with plmcore.embed.embed_to_hdf5 (its defaults); time and peak RSS."""
    from plmcore.embed import Embedder, embed_to_hdf5
    from plmcore.models import load_backbone

    threads = _threads()
    seqs = sample_windows(a["n"], a["seed"], real_windows())
    ids = [f"w{i}" for i in range(len(seqs))]
    t = now()
    emb = Embedder.from_backbone(load_backbone(a["source"]), "mean", "cpu")
    load_s = now() - t
    rss_before = current_rss_mb()
    peak_before = peak_rss_mb()
    t0 = now()
    path = embed_to_hdf5(emb, ids, seqs, a["path"])
    seconds = now() - t0
    return {"n": a["n"], "seconds": seconds, "load_s": load_s, "threads": threads,
            "windows_per_s": a["n"] / seconds, "tokens_per_s": a["n"] * 35 / seconds,
            "rss_before_mb": rss_before, "peak_rss_before_mb": peak_before, "peak_rss_mb": peak_rss_mb(),
            "file_mb": Path(path).stat().st_size / 2**20}


def task_project(a: dict) -> dict:
    """Second request through cached_embeddings (factory counted), then UMAP / t-SNE / PCA timings."""
    import numpy as np

    from plmcore.embed import Embedder, EmbeddingCache, cached_embeddings, project, read_hdf5
    from plmcore.models import load_backbone

    threads = _threads()
    out = {"threads": threads}
    # cache: first request computes, second must come from disk without building the embedder
    seqs = sample_windows(a["cache_n"], a["seed"] + 1, real_windows())
    calls = []

    def factory():
        calls.append(now())
        return Embedder.from_backbone(load_backbone(a["source"]), "mean", "cpu")

    cache = EmbeddingCache(a["cache_dir"])
    t = now()
    X1, hit1 = cached_embeddings(a["source"], seqs, cache=cache, embedder_factory=factory)
    first = now() - t
    calls_after_first = len(calls)
    t = now()
    X2, hit2 = cached_embeddings(a["source"], seqs, cache=cache, embedder_factory=factory)
    second = now() - t
    out["cache"] = {"n": len(seqs), "first_s": first, "second_s": second, "first_was_cached": hit1,
                    "second_was_cached": hit2, "factory_calls_after_first": calls_after_first,
                    "factory_calls_after_second": len(calls), "identical": bool(np.array_equal(X1, X2))}
    print("cache done", out["cache"], flush=True)

    X = read_hdf5(a["h5"])[1][: a["points"]]  # the app's HDF5 layout (one dataset per record)
    out["points"] = len(X)
    timings = {}
    # numba compiles UMAP's kernels on first use: pay that on a small set, report it separately
    t = now()
    project(X[: min(500, len(X))], "umap", seed=0)
    timings["umap_warmup_500_s"] = now() - t
    for method in ("umap", "tsne", "pca"):
        t = now()
        Y = project(X, method, seed=0)
        timings[f"{method}_s"] = now() - t
        assert Y.shape == (len(X), 2)
        print(method, timings[f"{method}_s"], flush=True)
    out["timings"] = timings
    out["peak_rss_mb"] = peak_rss_mb()
    return out


def task_bigtrain(a: dict) -> dict:
    """A few optimiser steps of the project's Trainer on a bigger model; per-step time and memory."""
    import torch

    from bench.flops import arch_for, train_flops
    from plmcore import splits as S
    from plmcore.train import Trainer, create_run

    over = dict(pooling=a.get("pooling", "mean"), lora_r=a["lora_r"], lora_alpha=a.get("lora_alpha", 16),
                batch_size=a["batch_size"], grad_accum=a["grad_accum"], head_dropout=0.1,
                gradient_checkpointing=a.get("gradient_checkpointing", "auto"),
                base_weights=a.get("base_weights", "fp32"))
    if a.get("lora_targets"):
        over["lora_targets"] = tuple(a["lora_targets"])
    cfg = _train_config(a, **over)
    run = create_run(cfg, S.load_split(a["split_csv"]), run_dir=a["run_dir"])
    t = now()
    trainer = Trainer(run).setup()
    setup_s = now() - t
    if a.get("skip_eval"):  # memory section: only the training steps matter, and a 3B evaluation takes minutes
        trainer._end_of_epoch = lambda epoch: None
    marks = _instrument(trainer)
    cuda = trainer.device.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    rss_before = current_rss_mb()
    t0 = now()
    trainer.fit()
    seconds = now() - t0
    stats = _step_stats(marks, t0)
    windows_per_step = a["batch_size"] * a["grad_accum"]
    s_per_window = stats["median_step_s"] / windows_per_step
    T = int(max(len(t) for t in trainer.sets["train"].tokens))
    fl = train_flops(arch_for(a["source"]), T, lora_r=a["lora_r"])["total"]
    out = {
        "source": a["source"], "setup_s": setup_s, "fit_s": seconds, "steps": trainer.state["step"],
        "windows": marks["windows"], "windows_per_step": windows_per_step, "batch_size": a["batch_size"], **stats,
        "s_per_window": s_per_window, "eval_s": marks["eval_s"], "checkpoint_s": marks["checkpoint_s"],
        "n_train": len(trainer.sets["train"].tokens), "n_val": len(trainer.sets["val"].tokens),
        "trainable": trainer.trainable, "total_params": trainer.total, "tokens_per_window": T,
        "train_flops_per_window": fl, "achieved_gflops": fl / s_per_window / 1e9,
        "threads": torch.get_num_threads(), "rss_before_fit_mb": rss_before, "peak_rss_mb": peak_rss_mb(),
        "device": str(trainer.device), "mixed_precision": trainer.accelerator.mixed_precision,
        "gradient_checkpointing": trainer.checkpointing, "base_weights": cfg.base_weights,
    }
    if cuda:
        out["gpu_peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
        out["gpu_name"] = torch.cuda.get_device_name(0)
    return out


from bench.proteome import task_proteome_compare, task_proteome_run, task_proteome_scan  # noqa: E402,F401

TASKS = {name[5:]: fn for name, fn in globals().items() if name.startswith("task_")}


def main(argv: list[str]) -> int:
    task, args_path, result_path = argv
    a = json.loads(Path(args_path).read_text())
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        result = TASKS[task](a)
    except Exception:
        traceback.print_exc()
        return 1
    result["peak_rss_mb"] = result.get("peak_rss_mb", peak_rss_mb())
    result["process_peak_rss_mb"] = peak_rss_mb()
    result["ru_maxrss_mb"] = ru_maxrss_mb()  # for reference only: floored at the parent's RSS (see peak_rss_mb)
    write_result(result_path, result)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
