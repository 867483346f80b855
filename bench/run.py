"""plmcore benchmark: `python bench/run.py [--quick] [--out bench/out]`.

Prints one table per section, writes <out>/results.json and <out>/report.md, and ends with one
line of space-separated key=value pairs. Every figure is measured in the run that prints it.
Comparisons alternate the two sides (A, B, A, B, ...) in fresh processes and report medians.
Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import time
import traceback
from datetime import datetime
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` and `plmcore` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (  # noqa: E402
    ESM3B,
    ESM8M,
    PROTT5,
    TEST_FASTA,
    TRAIN_FASTA,
    OtherLoad,
    fmt,
    log,
    machine_info,
    md_table,
    median,
    real_windows,
    run_worker,
    sample_proteins,
    sample_windows,
    spread,
)
from bench.flops import FORMULA, arch_for, train_flops  # noqa: E402
from bench.proteome import section as proteome_section  # noqa: E402
from plmcore.embed import MAX_TOKENS  # noqa: E402

NAN = float("nan")
QUIET_CORES = 0.5  # other processes' load up to which a memory-section time calibrates the estimates


def size_label(n: int) -> str:
    if n >= 1000 and n % 1000 == 0:
        return f"{n // 1000}k"
    if n >= 1000:
        return f"{n / 1000:g}k"
    return str(n)


class Bench:
    def __init__(self, args):
        self.args = args
        self.quick = args.quick
        self.mode = "gpu" if getattr(args, "gpu", False) else "quick" if args.quick else "full"
        self.out = Path(args.out).resolve()
        self.results: dict = {"mode": self.mode, "started": datetime.now().isoformat(timespec="seconds")}
        self.summary: dict = {"mode": self.mode}
        self.report: list[str] = []
        self.notes: list[str] = []
        self.achieved: list[tuple[str, str, float, str]] = []  # (mfu key, label, GFLOP/s, peak kind)
        self.trainer_points: list[dict] = []  # the project's trainer, for --write-profile

    # ------------------------------------------------------------------ output
    def emit(self, title: str, table: str, notes: list[str] | None = None) -> None:
        block = [f"### {title}", "", table]
        if notes:
            block += [""] + [f"- {n}" for n in notes]
        text = "\n".join(block) + "\n"
        print(text, flush=True)
        self.report.append(text)

    def put(self, **kv) -> None:
        for k, v in kv.items():
            self.summary[k] = v

    @staticmethod
    def warn(cores) -> str:
        cores = max([c for c in (cores if isinstance(cores, list) else [cores]) if c is not None] or [0])
        if cores > 0.3:
            return (f" WARNING: other processes kept up to {cores:.2f} cores busy during these measurements; "
                    "their timings are unreliable.")
        return ""

    def wait_quiet(self) -> None:
        """Wait (up to --wait-quiet seconds) until other processes leave the CPUs alone."""
        limit = self.args.wait_quiet
        if not limit:
            return
        t0 = time.time()
        while True:
            with OtherLoad() as load:
                time.sleep(1.0)
            if load.cores < 0.15 or time.time() - t0 > limit:
                break
        waited = time.time() - t0
        if waited > 2:
            log(f"  waited {waited:.0f} s for other processes to go quiet (now {load.cores:.2f} cores busy)")

    def worker(self, task: str, args: dict, tag: str, timeout: float | None = None, retry: bool = True) -> dict:
        """Run one measurement process; with --retry-noisy, once more if other processes disturbed it."""
        discarded = []
        for attempt in range(2 if self.args.retry_noisy and retry else 1):
            self.wait_quiet()
            log(f"  {tag} ...")
            res = run_worker(task, args, self.out, tag=tag if not attempt else f"{tag}-retry", timeout=timeout)
            log(f"  {tag} done in {res['_process_wall_s']:.1f} s (other load {res['_other_load_cores']:.2f} cores)")
            if not (self.args.retry_noisy and retry) or res["_other_load_cores"] <= self.args.retry_noisy:
                break
            if attempt == 0:
                log(f"  {tag}: other processes kept {res['_other_load_cores']:.2f} cores busy; measuring again")
                discarded.append(res)
                for key in ("run_dir", "cache_dir"):  # a fresh start for the second attempt
                    if args.get(key):
                        shutil.rmtree(args[key], ignore_errors=True)
        if discarded:
            res["_discarded_noisy_runs"] = discarded
            self.results.setdefault("discarded_noisy_runs", []).append({"tag": tag, "runs": discarded})
        return res

    # ------------------------------------------------------------------ setup
    def setup(self) -> None:
        out = self.out
        out.mkdir(parents=True, exist_ok=True)
        for sub in ("train", "embed", "scale", "big", "memory", "gpu", "logs", "workspace", "profile"):
            shutil.rmtree(out / sub, ignore_errors=True)
        os.environ["PLMCORE_HOME"] = str(out / "plmcore_home")  # random models are built once, here
        os.environ["PLMCORE_WORKSPACE"] = str(out / "workspace")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        if self.args.threads:
            os.environ["PLMCORE_THREADS"] = str(self.args.threads)
        from plmcore.models import set_cpu_threads

        self.threads = set_cpu_threads(self.args.threads)
        os.environ["PLMCORE_THREADS"] = str(self.threads)  # every worker uses the same number
        self.machine = machine_info(self.threads)
        self.results["machine"] = self.machine
        self.results["threads"] = self.threads
        m = self.machine
        desc = (f"{m['cpu_model']} ({m['physical_cores']} physical cores, {m['logical_cpus']} logical CPUs, "
                f"{m['cpu_flags']}), {m['ram_gb']} GB RAM; torch {m['torch']} with {self.threads} threads "
                f"(plmcore.models.set_cpu_threads); transformers {m['transformers']}, peft {m['peft']}, "
                f"accelerate {m['accelerate']}; python {m['python']}; "
                f"GPU: {m['gpu'] or 'none'}; load average at start {m.get('loadavg_at_start')}")
        self.machine_desc = desc
        print(f"## plmcore benchmark ({self.mode} mode)\n\nMachine: {desc}\n", flush=True)
        self.put(threads=self.threads)

    # ------------------------------------------------------------------ 1. peak
    def peak_rates(self, repeats: int, min_time: float) -> dict:
        import torch
        import torch.nn.functional as F

        def rate(rows, k, n):
            x, w, b = torch.randn(rows, k), torch.randn(n, k), torch.randn(n)
            for _ in range(3):
                F.linear(x, w, b)
            it, t = 1, 0.0
            while True:  # calibrate: each timed repeat lasts at least min_time
                t0 = time.perf_counter()
                for _ in range(it):
                    F.linear(x, w, b)
                t = time.perf_counter() - t0
                if t >= min_time:
                    break
                it = max(it * 2, int(it * min_time / max(t, 1e-6)) + 1)
            times = [t / it]
            for _ in range(repeats - 1):
                t0 = time.perf_counter()
                for _ in range(it):
                    F.linear(x, w, b)
                times.append((time.perf_counter() - t0) / it)
            sec = min(times)  # best of N: a peak is what the CPU can do; other load only lowers it
            return {"rows": rows, "k": k, "n": n, "seconds": sec, "gflops": 2 * rows * k * n / sec / 1e9,
                    "median_gflops": 2 * rows * k * n / median(times) / 1e9}

        d, f = 320, 1280
        groups = {}
        for name, rows in (("train", 280), ("embed", MAX_TOKENS)):
            shapes = [("q,k,v,o dense", rows, d, d, 4), ("intermediate", rows, d, f, 1), ("output dense", rows, f, d, 1)]
            res = []
            for label, r, k, n, count in shapes:
                x = rate(r, k, n)
                x.update(label=label, count=count)
                res.append(x)
            flops = sum(2 * x["rows"] * x["k"] * x["n"] * x["count"] for x in res)
            secs = sum(x["seconds"] * x["count"] for x in res)
            groups[name] = {"shapes": res, "combined_gflops": flops / secs / 1e9}
        groups["square"] = {"shapes": [dict(rate(1024, 1024, 1024), label="1024x1024x1024", count=1)]}
        groups["square"]["combined_gflops"] = groups["square"]["shapes"][0]["gflops"]
        return groups

    def sec_peak(self) -> None:
        log("1. peak: fp32 F.linear rate on the ESM-2 8M shapes")
        self.wait_quiet()
        with OtherLoad() as load:
            g = self.peak_rates(3 if self.quick else 5, 0.1 if self.quick else 0.25)
        self.results["peak"] = {"start": g, "other_load_cores": load.cores}
        self.peak = g["train"]["combined_gflops"]
        self.peak_embed = g["embed"]["combined_gflops"]
        rows = []
        for name, title in (("train", "training, batch 8 x 35 tokens"), ("embed", f"embedding, {MAX_TOKENS}-token batch"),
                            ("square", "reference")):
            for x in g[name]["shapes"]:
                rows.append([title, x["label"], f"{x['rows']}x{x['k']} . {x['k']}x{x['n']}", x["count"],
                             x["seconds"] * 1e3, x["gflops"]])
            if name != "square":
                rows.append([title, "**combined (FLOP-weighted)**", "one layer's forward", "", "",
                             g[name]["combined_gflops"]])
        self.emit("1. Peak fp32 matmul rate (torch F.linear = addmm, the op the model runs)",
                  md_table(["use", "matmul", "shape", "per layer", "ms each", "GFLOP/s"], rows),
                  ["Best of N timed repeats per shape. The training-shape combined figure is the peak for "
                   f"training MFU, the {MAX_TOKENS}-row one (the embedder's token budget) for embedding MFU. The peak "
                   "is measured again at the end; MFU uses the higher of the two (see the MFU table).",
                   f"{self.threads} torch threads; other processes kept {load.cores:.2f} cores busy meanwhile."
                   + self.warn(load.cores)])
        self.put(peak_gflops_start=self.peak, peak_gflops_embed_start=self.peak_embed,
                 gflops_1024=g["square"]["combined_gflops"])

    def sec_peak_end(self) -> None:
        log("peak again at the end, then MFU")
        self.wait_quiet()
        with OtherLoad() as load:
            g = self.peak_rates(3 if self.quick else 5, 0.1 if self.quick else 0.25)
        self.results["peak"]["end"] = g
        self.results["peak"]["end_other_load_cores"] = load.cores
        peak = {"train": max(self.peak, g["train"]["combined_gflops"]),
                "embed": max(self.peak_embed, g["embed"]["combined_gflops"])}
        self.results["peak"]["used"] = peak
        self.put(peak_gflops=peak["train"], peak_gflops_embed=peak["embed"],
                 peak_gflops_end=g["train"]["combined_gflops"])
        rows = [["training shapes, combined GFLOP/s", self.peak, g["train"]["combined_gflops"], peak["train"]],
                ["embedding shapes, combined GFLOP/s", self.peak_embed, g["embed"]["combined_gflops"], peak["embed"]],
                ["other processes (cores busy)", self.results["peak"]["other_load_cores"], load.cores, ""]]
        self.emit("Peak at the start and at the end", md_table(["", "start", "end", "used for MFU (higher)"], rows))
        rows = []
        for key, label, gflops, kind in self.achieved:
            mfu = gflops / peak[kind]
            rows.append([label, gflops, f"peak_gflops{'' if kind == 'train' else '_embed'} {fmt(peak[kind])}",
                         f"{mfu:.1%}"])
            self.put(**{key: mfu})
        notes = []
        if any(g / peak[k] > 1 for _, _, g, k in self.achieved):
            notes.append("WARNING: an MFU above 100% means the peak was measured while other processes held "
                         "the CPUs (see 'other processes' above): rerun on an idle machine.")
        self.emit("MFU (analytic FLOPs per second achieved / measured peak)",
                  md_table(["what", "achieved GFLOP/s", "peak", "MFU"], rows), notes)

    # ------------------------------------------------------------------ prepare
    def sec_prepare(self) -> None:
        from plmcore.config import DataSpec, TrainConfig
        from plmcore.train import create_run

        log("preparing: the data split, random-weight models, equivalence check")
        cfg = TrainConfig(model=ESM8M, pooling="cls", max_steps=1, patience=None,
                          data=DataSpec(train=(str(TRAIN_FASTA),), test=str(TEST_FASTA), val_fraction=0.1))
        run = create_run(cfg, run_dir=self.out / "train" / "split")
        self.split_csv = str(run.split_path)
        import pandas as pd

        split = pd.read_csv(self.split_csv)
        self.n_train = int((split["split"] == "train").sum())
        build = [ESM8M, "random:facebook/esm2_t12_35M_UR50D"]
        if self.args.gpu:
            build = [ESM8M, PROTT5]
        elif not self.quick:
            build += ["random:facebook/esm2_t30_150M_UR50D", "random:facebook/esm2_t33_650M_UR50D", PROTT5]
        res = self.worker("prepare", {"build": build, "equivalence": True, "split_csv": self.split_csv},
                          "prepare", timeout=3600, retry=False)
        self.results["prepare"] = res
        self.equivalence = res["equivalence"]

    # ------------------------------------------------------------------ 2. training
    def sec_train(self) -> None:
        log("2. training: plmcore Trainer vs HF transformers.Trainer + peft")
        N = math.ceil(self.n_train / 8) * (1 if self.quick else 3)
        reps = self.args.reps or (2 if self.quick else 5)
        per = {"ours": [], "ref": []}
        for rep in range(reps):
            for side in ("ours", "ref"):
                a = {"source": ESM8M, "steps": N, "split_csv": self.split_csv,
                     "run_dir": str(self.out / "train" / f"{side}-{rep}")}
                per[side].append(self.worker("train_" + side, a, f"train-{side}-{rep}"))
        self.results["train"] = {"steps": N, "reps": reps, "runs": per, "equivalence": self.equivalence}
        fl = train_flops(arch_for(ESM8M), 35, lora_r=8, n_classes=2)
        self.results["train"]["flops_per_window"] = fl

        def wps(r):
            return r["windows"] / r["seconds"]

        med = {s: median([wps(r) for r in per[s]]) for s in per}
        ratio = med["ours"] / med["ref"]
        pairs = [wps(o) / wps(r) for o, r in zip(per["ours"], per["ref"])]
        achieved = {s: fl["total"] * med[s] / 1e9 for s in per}
        self.achieved += [("train_mfu", "training, plmcore Trainer (ESM-2 8M)", achieved["ours"], "train"),
                          ("reference_mfu", "training, HF reference (ESM-2 8M)", achieved["ref"], "train")]
        rss = {s: median([r["peak_rss_mb"] for r in per[s]]) for s in per}
        self.trainer_points.append({"model": ESM8M, "tokens_per_step": 8 * per["ours"][0]["tokens_per_window"],
                                    "d_model": arch_for(ESM8M).d_model, "gflops": achieved["ours"],
                                    "total_params": per["ours"][0]["total_params"], "peak_rss_mb": rss["ours"]})
        loss = {s: median([r["val_loss"] for r in per[s]]) for s in per}
        step = {s: median([r["median_step_s"] for r in per[s]]) for s in per}
        secs = {s: median([r["seconds"] for r in per[s]]) for s in per}
        o0, r0 = per["ours"][0], per["ref"][0]
        rows = [
            ["optimiser steps (batch 8)", N, N],
            ["windows trained (per run)", o0["windows"], r0["windows"]],
            ["tokens per window", o0["tokens_per_window"], r0.get("tokens_per_window")],
            ["torch threads in the loop", o0["threads"], r0["threads"]],
            ["loop seconds, median", secs["ours"], secs["ref"]],
            ["  of which end-of-epoch eval + checkpoint (ours)",
             median([r["eval_s"] + r["checkpoint_s"] for r in per["ours"]]), "none (eval/save off)"],
            ["**windows/s, median**", med["ours"], med["ref"]],
            ["windows/s, all runs (in order)", " ".join(fmt(wps(r)) for r in per["ours"]),
             " ".join(fmt(wps(r)) for r in per["ref"])],
            ["median step ms (steady state, first step excluded)", step["ours"] * 1e3, step["ref"] * 1e3],
            ["achieved GFLOP/s (train FLOPs/window x windows/s)", achieved["ours"], achieved["ref"]],
            ["peak RSS MB (own process), median", rss["ours"], rss["ref"]],
            ["loss on the 50 held-out windows after training", loss["ours"], loss["ref"]],
            ["optimizer", o0.get("optimizer", "?"), f"{r0['optimizer']} (optim={r0['optim_arg']})"],
            ["other processes' load during the runs (cores)", spread([r["_other_load_cores"] for r in per["ours"]]),
             spread([r["_other_load_cores"] for r in per["ref"]])],
        ]
        eq = self.equivalence
        notes = [
            f"**train_ratio_vs_reference = {ratio:.3f}** (ours/reference windows/s, ratio of medians; "
            f"per alternated pair: {', '.join(f'{p:.2f}' for p in pairs)}).",
            f"Same function check (50 held-out windows, identical LoRA/head weights copied across, dropout 0): "
            f"token ids identical: {fmt(eq['same_token_ids'])}; max |logit diff| {eq['logits_max_abs_diff']:.2e}; "
            f"loss {eq['loss_ours']:.6f} vs {eq['loss_reference']:.6f}; max |grad diff| over "
            f"{eq['trainable_tensors']} trainable tensors {eq['grad_max_abs_diff']:.2e} (max |grad| "
            f"{eq['grad_max_abs']:.2e}); trainable parameters {eq['trainable_params_ours']:,} on both sides.",
            "Both sides: ESM-2 8M architecture with random weights, LoRA r=8 alpha=16 dropout 0 on "
            "query,key,value,dense, CLS pooling + dense-tanh-out head (head dropout 0 on both: the "
            "reference's EsmClassificationHead uses the config's hidden_dropout_prob=0), lr 3e-4 linear with "
            "10% warmup, weight decay 0.01, clip 1.0, batch 8, seed 42, same 181 train windows. "
            "Initial head/LoRA weights and batch order differ (each side's own seeding), so losses agree "
            "only approximately.",
            "Timed: ours Trainer.fit() (includes its end-of-epoch validation on 20 windows and checkpoint "
            "writes); reference from the on_train_begin to the on_train_end callback. Model loading, "
            "tokenising and setup excluded on both sides.",
            f"Training FLOPs per window (T=35): forward {fl['forward'] / 1e6:.1f} M, backward "
            f"{(fl['backward_input'] + fl['backward_weight']) / 1e6:.1f} M, total {fl['total'] / 1e6:.1f} M "
            "(formula below); MFU is in the MFU table at the end.",
        ]
        w = self.warn([r["_other_load_cores"] for s in per for r in per[s]])
        if w:
            notes.append(w.strip())
        self.emit(f"2. Training: plmcore Trainer vs HF Trainer + peft (ESM-2 8M, {N} steps, "
                  f"{reps} alternated runs per side)", md_table(["", "plmcore (ours)", "HF reference"], rows), notes)
        print("FLOP formula:\n" + FORMULA + "\n", flush=True)
        self.report.append("FLOP formula:\n\n```\n" + FORMULA + "\n```\n")
        self.put(train_ratio_vs_reference=ratio, train_windows_per_s=med["ours"],
                 reference_windows_per_s=med["ref"], train_gflops=achieved["ours"], reference_gflops=achieved["ref"],
                 train_peak_rss_mb=rss["ours"], reference_peak_rss_mb=rss["ref"],
                 val_loss_ours=loss["ours"], val_loss_reference=loss["ref"],
                 train_step_ms=step["ours"] * 1e3, reference_step_ms=step["ref"] * 1e3,
                 train_flops_per_window=fl["total"], equivalence_logits_max_abs_diff=eq["logits_max_abs_diff"])

    # ------------------------------------------------------------------ 3. embeddings
    def sec_embed(self) -> None:
        import numpy as np

        log("3. embeddings: plmcore Embedder vs a naive loop")
        n_w, n_p = (256, 32) if self.quick else (2048, 150)
        reps = self.args.reps or (2 if self.quick else 3)
        pool = real_windows()
        inputs = {"windows": sample_windows(n_w, 1, pool), "proteins": sample_proteins(n_p, 2, pool)}
        d = self.out / "embed"
        d.mkdir(parents=True, exist_ok=True)
        (d / "inputs.json").write_text(json.dumps(inputs))
        groups = [["windows", "proteins"]] if self.quick else [["windows"], ["proteins"]]
        runs = {(w, s): [] for w in inputs for s in ("ours", "naive")}
        for which in groups:
            for rep in range(reps):
                for side in ("ours", "naive"):
                    a = {"source": ESM8M, "side": side, "inputs": str(d / "inputs.json"), "which": which,
                         "batch_size": 32, "max_tokens": MAX_TOKENS, "save": str(d) if rep == 0 else None}
                    r = self.worker("embed", a, f"embed-{'+'.join(which)}-{side}-{rep}")
                    for w in which:
                        runs[(w, side)].append({**r["inputs"][w], "other_load": r["_other_load_cores"],
                                                "threads": r["torch_threads"]})
        self.results["embed"] = {"sizes": {"windows": n_w, "proteins": n_p}, "reps": reps,
                                 "runs": {f"{w}/{s}": v for (w, s), v in runs.items()}}
        rows, stats = [], {}
        for w in inputs:
            diff = float(np.abs(np.load(d / f"ours-{w}.npy") - np.load(d / f"naive-{w}.npy")).max())
            scale = float(np.abs(np.load(d / f"naive-{w}.npy")).max())
            for side in ("ours", "naive"):
                rs = runs[(w, side)]
                tps = median([r["tokens_per_s"] for r in rs])
                sec = median([r["seconds"] for r in rs])
                gf = rs[0]["useful_flops"] / sec / 1e9
                st = {"tokens_per_s": tps, "seconds": sec, "gflops": gf, "waste": rs[0]["padding_waste"],
                      "rss": median([r["peak_rss_mb_so_far"] for r in rs]), "diff": diff}
                stats[(w, side)] = st
                rows.append([f"{w} ({len(inputs[w])})", "plmcore Embedder" if side == "ours" else "naive loop (bs 32)",
                             rs[0]["real_tokens"], rs[0]["computed_tokens"], f"{st['waste']:.1%}", sec, tps,
                             gf, st["rss"], f"{diff:.1e} (max |x| {scale:.2g})",
                             spread([r["other_load"] for r in rs])])
        notes = [
            "tokens/s counts real tokens (residues + <cls> + <eos>); padding waste = padded tokens computed / "
            "all tokens computed (ours: from plmcore.inference.length_batches with the embedder's "
            f"{MAX_TOKENS}-token "
            "budget; naive: batch of 32 in input order padded to its longest).",
            "useful GFLOP/s = forward FLOPs of each sequence at its real length (no padding) / seconds; "
            "MFU (against peak_gflops_embed) is in the MFU table at the end.",
            "Timed: the embed call including tokenisation; model load and a small warm-up batch excluded. "
            "Mean pooling over residue tokens on both sides.",
        ]
        if self.quick:
            notes.append("--quick: both inputs run in the same process per side, so the proteins row's peak RSS "
                         "is the larger of the two inputs'.")
        self.emit(f"3. Embeddings: plmcore Embedder vs naive loop (ESM-2 8M, {reps} alternated runs per side)",
                  md_table(["input", "side", "real tokens", "computed tokens", "padding waste", "seconds",
                            "tokens/s", "useful GFLOP/s", "peak RSS MB", "max abs diff vs other side",
                            "other load"], rows),
                  notes + ([self.warn([r["other_load"] for v in runs.values() for r in v]).strip()]
                           if self.warn([r["other_load"] for v in runs.values() for r in v]) else []))
        o_w, o_p, n_w_, n_p_ = (stats[("windows", "ours")], stats[("proteins", "ours")],
                                stats[("windows", "naive")], stats[("proteins", "naive")])
        self.achieved += [
            ("embed_mfu", "embedding 33-residue windows, plmcore Embedder", o_w["gflops"], "embed"),
            ("naive_embed_mfu", "embedding 33-residue windows, naive loop", n_w_["gflops"], "embed"),
            ("embed_mfu_proteins", "embedding 50-1000-residue proteins, plmcore Embedder", o_p["gflops"], "embed"),
            ("naive_embed_mfu_proteins", "embedding 50-1000-residue proteins, naive loop", n_p_["gflops"], "embed"),
        ]
        self.put(embed_padding_waste=o_p["waste"],
                 embed_tokens_per_s=o_w["tokens_per_s"], embed_tokens_per_s_proteins=o_p["tokens_per_s"],
                 naive_embed_tokens_per_s=n_w_["tokens_per_s"], naive_embed_tokens_per_s_proteins=n_p_["tokens_per_s"],
                 naive_padding_waste=n_p_["waste"], embed_ratio_vs_naive_proteins=o_p["tokens_per_s"] / n_p_["tokens_per_s"],
                 embed_ratio_vs_naive_windows=o_w["tokens_per_s"] / n_w_["tokens_per_s"],
                 embed_peak_rss_mb=o_p["rss"], naive_embed_peak_rss_mb=n_p_["rss"],
                 embed_max_abs_diff=max(o_w["diff"], o_p["diff"]))

    # ------------------------------------------------------------------ 4. scale
    def sec_scale(self) -> None:
        log("4. scale: streaming embeddings to HDF5, projections, cache")
        # --quick: the embedder does ~110 windows/s on 2 idle cores, so 2k/6k/20k alone would take 4-5 minutes
        sizes = [200, 600, 2000] if self.quick else [10000, 30000, 100000]
        points = sizes[-1] if self.quick else 20000
        cache_n = 128 if self.quick else 2000
        d = self.out / "scale"
        d.mkdir(parents=True, exist_ok=True)
        runs = []
        for n in sizes:
            a = {"source": ESM8M, "n": n, "seed": 7, "path": str(d / f"emb-{size_label(n)}.h5")}
            runs.append(self.worker("scale", a, f"scale-{size_label(n)}", timeout=7200))
        for r in runs[:-1]:  # keep only the largest file (it feeds the projections)
            Path(d / f"emb-{size_label(r['n'])}.h5").unlink(missing_ok=True)
        rows = [[f"{size_label(r['n'])} windows", r["seconds"], r["windows_per_s"], r["tokens_per_s"],
                 r["rss_before_mb"], r["peak_rss_mb"], r["file_mb"], r["_other_load_cores"]] for r in runs]
        label = "quick sizes" if self.quick else "full sizes"
        self.emit(f"4a. Streaming embeddings to HDF5 (plmcore.embed.embed_to_hdf5, defaults; {label})",
                  md_table(["input", "seconds", "windows/s", "tokens/s", "RSS before (model loaded) MB",
                            "peak RSS MB", "file MB", "other load"], rows),
                  ["One fresh process per size, so peak RSS (VmHWM) is per size; model load excluded from seconds.",
                   *([f"--quick: {'/'.join(size_label(n) for n in sizes)} windows instead of 10k/30k/100k "
                      "(the keys are named by the size measured)."] if self.quick else [])])
        for r in runs:
            lab = size_label(r["n"])
            self.put(**{f"embed_{lab}_s": r["seconds"], f"embed_{lab}_peak_rss_mb": r["peak_rss_mb"]})
        self.results["scale"] = {"runs": runs}

        a = {"source": ESM8M, "h5": str(d / f"emb-{size_label(sizes[-1])}.h5"), "points": points,
             "cache_n": cache_n, "cache_dir": str(d / "cache"), "seed": 7}
        p = self.worker("project", a, "project", timeout=7200)
        self.results["project"] = p
        t, c, lab = p["timings"], p["cache"], size_label(p["points"])
        rows = [[f"UMAP ({lab} points, 320-d)", t["umap_s"]], [f"t-SNE ({lab} points)", t["tsne_s"]],
                [f"PCA ({lab} points)", t["pca_s"]],
                ["UMAP warm-up on 500 points (numba JIT compile, first use in a process)", t["umap_warmup_500_s"]]]
        self.emit(f"4b. Projections via plmcore.embed.project ({lab} points"
                  f"{'; --quick: ' + lab + ' instead of 20k' if self.quick else ''})",
                  md_table(["projection", "seconds"], rows),
                  [f"Embeddings: the first {lab} rows of the {size_label(sizes[-1])}-window HDF5 file; "
                   f"other processes' load {p['_other_load_cores']:.2f} cores."])
        self.put(**{f"umap_{lab}_s": t["umap_s"], f"tsne_{lab}_s": t["tsne_s"], f"pca_{lab}_s": t["pca_s"],
                    "umap_warmup_s": t["umap_warmup_500_s"]})
        new_calls = c["factory_calls_after_second"] - c["factory_calls_after_first"]
        self.emit("4c. Second request for the same embeddings (plmcore.embed.cached_embeddings)",
                  md_table(["", "first request", "second request"],
                           [["seconds", c["first_s"], c["second_s"]],
                            ["served from cache", fmt(c["first_was_cached"]), fmt(c["second_was_cached"])],
                            ["embedder_factory calls", c["factory_calls_after_first"], new_calls]]),
                  [f"{c['n']} windows; identical arrays: {fmt(c['identical'])}; on the second request the "
                   f"factory was {'not ' if new_calls == 0 else ''}called."])
        self.put(cache_first_s=c["first_s"], cache_second_s=c["second_s"], cache_second_factory_calls=new_calls)

    # ------------------------------------------------------------------ 5. bigger models
    def sec_big(self) -> None:
        log("5. bigger models (random weights)")
        esm = [("ESM-2 35M", "random:facebook/esm2_t12_35M_UR50D", 3)]
        if not self.quick:
            esm += [("ESM-2 150M", "random:facebook/esm2_t30_150M_UR50D", 3),
                    ("ESM-2 650M", "random:facebook/esm2_t33_650M_UR50D", 2)]
        if self.quick:
            esm[0] = ("ESM-2 35M", esm[0][1], 2)
        rows, res = [], {}
        for name, src, steps in esm:
            a = {"source": src, "steps": steps, "split_csv": self.split_csv, "lora_r": 4, "batch_size": 1,
                 "grad_accum": 8, "pooling": "mean", "run_dir": str(self.out / "big" / src.split("/")[-1])}
            r = self.worker("bigtrain", a, f"big-{src.split('/')[-1]}", timeout=3600)
            epoch = r["s_per_window"] * r["n_train"] + r["eval_s"] + r["checkpoint_s"]
            r["epoch_s_extrapolated"] = epoch
            res[name] = r
            self.trainer_point(src, r)
            rows.append([name, f"{r['total_params'] / 1e6:.0f}M / {r['trainable'] / 1e3:.0f}k", r["steps"],
                         r["median_step_s"], r["s_per_window"], r["achieved_gflops"],
                         f"{r['eval_s']:.1f} ({r['n_val']} windows)", f"{epoch:.0f} (extrapolated)",
                         r["peak_rss_mb"], r["_other_load_cores"]])
            key = name.split()[-1].lower()
            self.achieved.append((f"esm{key}_mfu", f"training {name} (batch 1, tutorial recipe)",
                                  r["achieved_gflops"], "train"))
            self.put(**{f"esm{key}_epoch_s_extrapolated": epoch, f"esm{key}_s_per_window": r["s_per_window"],
                        f"esm{key}_peak_rss_mb": r["peak_rss_mb"]})
        if self.quick:
            rows.append(["ESM-2 150M, ESM-2 650M, ProtT5-XL", "skipped in --quick", "", "", "", "", "", "", "", ""])
        self.emit("5a. Bigger ESM-2 models: tutorial recipe (batch 1, grad_accum 8, LoRA r=4, mean pooling, "
                  f"{self.n_train} training windows), plmcore Trainer",
                  md_table(["model", "params / trainable", "optimiser steps measured", "s per step (median, "
                            "first excluded)", "s per window", "achieved GFLOP/s", "end-of-epoch eval s",
                            "s per epoch", "peak RSS MB", "other load"], rows),
                  ["s per epoch = s per window x training windows + the measured end-of-epoch evaluation and "
                   "checkpoint (extrapolated from the steps measured, not a full epoch).",
                   "achieved GFLOP/s = analytic training FLOPs per window (bench/flops.py) / s per window."])
        self.results["big"] = res
        if self.quick:
            self.emit("5b. ProtT5-XL encoder", "skipped in --quick")
            return
        a = {"source": PROTT5, "steps": 4, "split_csv": self.split_csv, "lora_r": 4, "batch_size": 1,
             "grad_accum": 1, "pooling": "mean", "run_dir": str(self.out / "big" / "prot_t5")}
        r = self.worker("bigtrain", a, "big-prot_t5", timeout=3600)
        total = r["s_per_window"] * 161 * 20
        r["tutorial_20x161_s_extrapolated"] = total
        self.results["prott5"] = r
        build = self.results["prepare"]["built"].get(PROTT5, {})
        self.emit("5b. ProtT5-XL encoder (random weights), LoRA r=4 on q,k,v,o, batch 1, plmcore Trainer",
                  md_table(["", "value"], [
                      ["parameters / trainable", f"{r['total_params'] / 1e9:.2f}B / {r['trainable'] / 1e3:.0f}k"],
                      ["one-off build of the random model (s) / size on disk (MB)",
                       f"{fmt(build.get('seconds'))} / {fmt(build.get('size_mb'))}"],
                      ["Trainer.setup() incl. loading (s)", r["setup_s"]],
                      ["optimiser steps measured (1 window each)", r["steps"]],
                      ["s per window (median, first step excluded)", r["s_per_window"]],
                      ["achieved GFLOP/s", r["achieved_gflops"]],
                      [f"evaluation of {r['n_val']} windows (s)", r["eval_s"]],
                      ["peak RSS MB", r["peak_rss_mb"]],
                      ["tutorial 20 epochs x 161 windows, training only (h)", f"{total / 3600:.1f} (extrapolated)"],
                      ["other processes' load (cores)", r["_other_load_cores"]]]))
        self.trainer_point(PROTT5, r)
        self.achieved.append(("prott5_mfu", "training ProtT5-XL encoder (batch 1)", r["achieved_gflops"], "train"))
        self.put(prott5_s_per_window=r["s_per_window"], prott5_peak_rss_mb=r["peak_rss_mb"],
                 prott5_20x161_h_extrapolated=total / 3600)

    def trainer_point(self, source: str, r: dict) -> None:
        self.trainer_points.append({"model": source, "tokens_per_step": r["batch_size"] * r["tokens_per_window"],
                                    "d_model": arch_for(source).d_model, "gflops": r["achieved_gflops"],
                                    "total_params": r["total_params"], "peak_rss_mb": r["peak_rss_mb"]})

    def write_profile(self) -> None:
        """plmcore/perf_profile.json: what the Train page's estimate reads (plmcore.estimate).

        Time: the trainer's achieved GFLOP/s as a fraction of this run's 1024^3 matmul rate, per
        (tokens per step, model width) measured. Memory: a least-squares line through the peak RSS
        of the training runs against their parameter counts.
        """
        import numpy as np

        from plmcore.estimate import PROFILE_PATH

        pts = self.trainer_points
        if not pts:
            log("--write-profile: no training section ran; profile not written")
            return
        g1024 = self.summary["gflops_1024"]
        prof = json.loads(PROFILE_PATH.read_text()) if PROFILE_PATH.exists() else {}
        m = self.machine
        entry = {
            "machine": f"{m['cpu_model']}, {self.threads} threads",
            "measured": self.results["started"][:10],
            "command": f"python bench/run.py{' --quick' if self.quick else ''} --write-profile",
            "gflops_1024": g1024,
            "train_efficiency_vs_1024": [[p["tokens_per_step"], p["d_model"], round(p["gflops"] / g1024, 4)]
                                         for p in pts],
            "points": pts,
        }
        if len(pts) >= 2:
            slope, icpt = np.polyfit([p["total_params"] for p in pts], [p["peak_rss_mb"] * 2**20 for p in pts], 1)
            entry["memory"] = {"runtime_bytes": float(max(icpt, 0.0)), "bytes_per_parameter": float(slope)}
        prof["cpu"] = entry
        engine_rule = self._engine_rule()
        if engine_rule:
            prof["engine"] = {**prof.get("engine", {}), **engine_rule}
        PROFILE_PATH.write_text(json.dumps(prof, indent=1) + "\n")
        log(f"wrote {PROFILE_PATH}")

    # ------------------------------------------------------------------ 7. memory for big models
    MEMORY_MODELS = {  # key -> (name, source, LoRA targets of the tutorial recipe, summary key prefix)
        "35m": ("ESM-2 35M", "random:facebook/esm2_t12_35M_UR50D", None, "memory_esm35m"),
        "650m": ("ESM-2 650M", "random:facebook/esm2_t33_650M_UR50D", None, "memory_esm650m"),
        "t5": ("ProtT5-XL encoder", PROTT5, ("q", "k", "v", "o"), "memory_prott5"),
        "3b": ("ESM-2 3B", ESM3B, None, "esm3b"),
    }

    def sec_memory(self) -> None:
        """Peak RSS and s per window with and without gradient checkpointing, one fresh process each."""
        log("7. memory for big models: gradient checkpointing off / on")
        keys = self.args.memory_models or (["35m"] if self.quick else ["650m", "t5", "3b"])
        modes = self.args.memory_modes or ["off", "on"]
        built = self.worker("prepare", {"build": [self.MEMORY_MODELS[k][1] for k in keys]}, "memory-build",
                            timeout=3600, retry=False)["built"]  # untimed: a random model is built once
        res, rows = [], []
        for key in keys:
            name, src, targets, prefix = self.MEMORY_MODELS[key]
            for mode in modes:
                r = self.memory_point(src, targets, mode)
                r.update(name=name, key=key, prefix=prefix, build=built.get(src))
                res.append(r)
                rows.append([name, mode, f"{r['total_params'] / 1e9:.2f}B", r["peak_rss_mb"], r["s_per_window"],
                             r["setup_s"], r["_other_load_cores"]])
                suffix = "" if mode == "off" else "_checkpointing"
                self.put(**{f"{prefix}{suffix}_peak_rss_mb": r["peak_rss_mb"],
                            f"{prefix}{suffix}_s_per_window": r["s_per_window"]})
        factors = checkpointing_factors(res)
        if factors:
            self.put(checkpointing_time_factor=median(list(factors.values())))
        g1024 = self.summary.get("gflops_1024")
        self.results["memory"] = {"runs": res, "gflops_1024": g1024, "checkpointing_factors": factors,
                                  "steps": 2, "batch": "1 x 8"}
        notes = ["Tutorial recipe: batch 1, gradient accumulation 8, LoRA r=4 (ProtT5: q,k,v,o), mean pooling, "
                 f"random weights, the tutorial's windows ({self.n_train} training windows); 2 optimiser steps "
                 "(16 windows), s per window = the second step / 8. One fresh process per row: peak RSS is its "
                 "VmHWM, loading included.",
                 "Time factor of checkpointing (s per window on / off): "
                 + (", ".join(f"{k} {v:.2f}" for k, v in factors.items()) or "not measured") + "."
                 + self.warn([r["_other_load_cores"] for r in res])]
        self.emit("7. Memory for big models: gradient checkpointing off / on (plmcore Trainer, CPU)",
                  md_table(["model", "checkpointing", "parameters", "peak RSS MB", "s per window",
                            "setup s (load)", "other load"], rows), notes)

    def memory_point(self, source: str, targets, mode: str) -> dict:
        a = {"source": source, "steps": 2, "split_csv": self.split_csv, "lora_r": 4, "lora_alpha": 8,
             "batch_size": 1, "grad_accum": 8, "pooling": "mean", "gradient_checkpointing": mode,
             "lora_targets": list(targets) if targets else None, "skip_eval": True,
             "run_dir": str(self.out / "memory" / f"{source.split('/')[-1]}-{mode}")}
        return self.worker("bigtrain", a, f"memory-{source.split('/')[-1]}-{mode}", timeout=3600, retry=False)

    def write_memory_profile(self) -> None:
        """Add the memory section's measurements to plmcore/perf_profile.json (merged into what is there).

        The off runs become the trainer's efficiency points for their (tokens per step, width) and
        points of the peak-RSS fit; the median on/off time ratio becomes the checkpointing time factor.
        """
        import numpy as np

        from plmcore.estimate import PROFILE_PATH

        mem = self.results.get("memory")
        if not mem or not mem["runs"]:
            return
        prof = json.loads(PROFILE_PATH.read_text()) if PROFILE_PATH.exists() else {}
        entry = prof.setdefault("cpu", {})
        g1024 = mem["gflops_1024"]
        runs = mem["runs"]
        fresh = [{"model": r["source"], "gradient_checkpointing": bool(r["gradient_checkpointing"]),
                  "batch_size": r["batch_size"], "windows_per_step": r["windows_per_step"],
                  "tokens_per_window": r["tokens_per_window"], "s_per_window": r["s_per_window"],
                  "peak_rss_mb": r["peak_rss_mb"], "total_params": r["total_params"], "trainable": r["trainable"],
                  "threads": r["threads"], "gflops_1024": g1024, "measured": self.results["started"][:10],
                  "other_load_cores": r["_other_load_cores"]} for r in runs]
        # merged with earlier runs of the section: a model measured again replaces its old figure
        kept = {(p["model"], p["gradient_checkpointing"]): p for p in entry.get("big_models", {}).get("points", [])}
        kept.update({(p["model"], p["gradient_checkpointing"]): p for p in fresh})
        entry["big_models"] = {"command": "python bench/run.py --only memory --write-profile",
                               "points": list(kept.values())}
        # times measured while other processes held the CPUs are kept as a record, but they calibrate
        # nothing: on 2 cores one busy core elsewhere slows torch several-fold (and the peak with it)
        quiet = {k: p for k, p in kept.items() if p["other_load_cores"] <= QUIET_CORES}
        ratios = {}
        for (model, on), p in quiet.items():
            if on and (model, False) in quiet:
                ratios[model] = p["s_per_window"] / quiet[(model, False)]["s_per_window"]
        if ratios:
            entry["checkpointing_time_factor"] = round(median(list(ratios.values())), 4)
        eff = {(p[0], p[1]): p for p in entry.get("train_efficiency_vs_1024", [])}
        points = {p["model"]: p for p in entry.get("points", [])}
        for r in runs:
            if r["gradient_checkpointing"]:
                continue
            d = arch_for(r["source"]).d_model
            tokens = r["batch_size"] * r["tokens_per_window"]
            if r["_other_load_cores"] <= QUIET_CORES:
                eff[(tokens, d)] = [tokens, d, round(r["achieved_gflops"] / g1024, 4)]
            points[r["source"]] = {"model": r["source"], "tokens_per_step": tokens, "d_model": d,
                                   "gflops": r["achieved_gflops"], "total_params": r["total_params"],
                                   "peak_rss_mb": r["peak_rss_mb"]}
        entry["train_efficiency_vs_1024"] = list(eff.values())
        entry["points"] = list(points.values())
        pts = entry["points"]
        if len(pts) >= 2:
            slope, icpt = np.polyfit([p["total_params"] for p in pts], [p["peak_rss_mb"] * 2**20 for p in pts], 1)
            entry["memory"] = {"runtime_bytes": float(max(icpt, 0.0)), "bytes_per_parameter": float(slope)}
        PROFILE_PATH.write_text(json.dumps(prof, indent=1) + "\n")
        log(f"wrote the memory section to {PROFILE_PATH}")

    # ------------------------------------------------------------------ time to result
    def sec_time_to_result(self) -> None:
        """Wall time of a whole `plmcore train` run vs the Trainer + peft script, same epochs (README)."""
        import subprocess

        from bench.common import ROOT
        from plmcore import engine
        from plmcore.models import data_home
        from plmcore.recipes import tutorial_config

        epochs = 2 if self.quick else 20
        # one repetition: a 20-epoch repetition of both models costs about 17 minutes on 2 cores
        reps = self.args.reps or 1
        log(f"time to result: tutorial recipe at batch 8, {epochs} epochs, {reps} rep(s) per side")
        d = self.out / "ttr"
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        res: dict = {"epochs": epochs, "reps": reps, "models": {}}
        for source, key in ((ESM8M, "esm8m"), ("random:facebook/esm2_t12_35M_UR50D", "esm35m")):
            folder = data_home() / "random-models" / source.split(":", 1)[1].replace("/", "_")
            # ours as a user gets it (auto), the reference, and ours with the other engine than auto's
            auto = engine.plan(tutorial_config(str(TRAIN_FASTA), str(TEST_FASTA), model=source, batch_size=8,
                                               grad_accum=1, epochs=epochs), 161).engine  # 80% of 201
            other = "multi" if auto == "single" else "single"
            sides = {"ours": {}, "ref": None, f"ours_{other}": {"engine": other, "compile": "off"}}
            runs = {side: [] for side in sides}
            for rep in range(reps):
                for side, over in sides.items():
                    tag = f"{key}-{side}-{rep}"
                    if over is None:
                        cmd = [sys.executable, "-m", "bench.reference", str(folder), str(TRAIN_FASTA), str(TEST_FASTA),
                               str(epochs), str(d / tag), str(d / f"{tag}.json")]
                    else:
                        cfg = tutorial_config(str(TRAIN_FASTA), str(TEST_FASTA), model=source, batch_size=8,
                                              grad_accum=1, epochs=epochs, **over)
                        cfg.save(d / f"{tag}.config.json")
                        cmd = [sys.executable, "-m", "plmcore", "train", "--config", str(d / f"{tag}.config.json"),
                               "--run-dir", str(d / tag)]
                    self.wait_quiet()
                    load_before = os.getloadavg()[0]
                    log(f"  {tag} ...")
                    t = time.perf_counter()
                    with open(d / f"{tag}.log", "w") as fh, OtherLoad() as load:
                        proc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, cwd=ROOT, env=env)
                    wall = time.perf_counter() - t
                    if proc.returncode != 0:
                        raise RuntimeError(f"{tag} failed (exit {proc.returncode}); log {d / (tag + '.log')}")
                    r = {"wall_s": wall, "other_load_cores": load.cores, "loadavg_before": load_before,
                         **self._ttr_details(d, tag, over is None)}
                    log(f"  {tag}: {wall:.1f} s (other load {load.cores:.2f} cores, loadavg {load_before:.1f})")
                    runs[side].append(r)
            med = {side: median([r["wall_s"] for r in runs[side]]) for side in runs}
            res["models"][key] = {"runs": runs, "median_wall_s": med}
            ratio = med["ref"] / med["ours"]
            self.put(**{f"time_to_result_ratio_{key}": ratio, f"time_to_result_s_{key}": med["ours"],
                        f"time_to_result_reference_s_{key}": med["ref"],
                        f"time_to_result_{other}_s_{key}": med[f"ours_{other}"]})
            o = runs["ours"][0]
            rows = [[label, med[side], med["ref"] / med[side], spread([r["wall_s"] for r in runs[side]]),
                     median([r["other_load_cores"] for r in runs[side]]), runs[side][0].get("engine", "")]
                    for side, label in (("ours", f"plmcore train (auto: {auto})"),
                                        (f"ours_{other}", f"plmcore train (engine={other}, compile=off)"),
                                        ("ref", "Trainer + peft script"))]
            self.emit(f"Time to result, {source} ({epochs} epochs of the tutorial recipe at batch 8, whole process)",
                      md_table(["", "wall s (median)", "reference / this", "all runs", "other load (cores)",
                                "engine"], rows),
                      [f"val loss per epoch, ours (auto): {_r4(o.get('val_losses'))}; engine={other}: "
                       f"{_r4(runs[f'ours_{other}'][0].get('val_losses'))}; reference: "
                       f"{_r4(runs['ref'][0].get('val_losses'))}",
                       f"loadavg before each run: {[round(r['loadavg_before'], 1) for s in runs.values() for r in s]}"
                       + self.warn([r["other_load_cores"] for s in runs.values() for r in s])])
        self.results["time_to_result"] = res
        self.put(time_to_result_epochs=epochs)

    @staticmethod
    def _ttr_details(d: Path, tag: str, reference: bool) -> dict:
        if reference:
            r = json.loads((d / f"{tag}.json").read_text())
            return {"val_losses": r["val_losses"], "engine": "HF Trainer, 1 process"}
        lines = [json.loads(x) for x in (d / tag / "metrics.jsonl").read_text().splitlines()]
        evals = [x for x in lines if x["kind"] == "eval"]
        log_text = (d / tag / "train.log").read_text()
        engine = next((ln.split("Engine: ", 1)[1] for ln in log_text.splitlines() if "Engine: " in ln), "")
        status = json.loads((d / tag / "status.json").read_text())
        import pandas as pd

        n_train = int((pd.read_csv(d / tag / "split.csv")["split"] == "train").sum())
        return {"n_train": n_train, "val_losses": [e["val_loss"] for e in evals], "engine": engine, "duration_s": status.get("duration_s"),
                "epoch_elapsed_s": [e["elapsed_s"] for e in evals]}

    def _engine_rule(self) -> dict | None:
        """perf_profile.json "engine" from the time-to-result runs: where two processes start to pay.

        Each whole run is split into a fixed part and a per-epoch part (the slope of the epoch ends in
        its metrics.jsonl); the break-even is fixed-part difference / per-window-pass saving.
        """
        ttr = self.results.get("time_to_result")
        if not ttr:
            return None
        ms, ss = [], []
        for m in ttr["models"].values():
            for side, rs in m["runs"].items():
                for r in rs if side != "ref" else []:
                    e = r.get("epoch_elapsed_s") or []
                    acc = ms if "processes" in r.get("engine", "") else ss
                    if len(e) >= 2:
                        per_epoch = (e[-1] - e[0]) / (len(e) - 1)
                        acc.append((r["wall_s"] - per_epoch * len(e), per_epoch / r["n_train"]))
        if not ms or not ss:
            log("--write-profile: no time-to-result pair of multi and single runs; engine rule kept")
            return None
        fixed_m, pass_m = median([a for a, _ in ms]), median([b for _, b in ms])
        fixed_s, pass_s = median([a for a, _ in ss]), median([b for _, b in ss])
        if pass_m >= pass_s:
            return {"multi_min_window_passes": None, "basis": f"{self.results['started'][:10]}: two processes were "
                    f"not faster per window pass ({pass_m * 1e3:.1f} vs {pass_s * 1e3:.1f} ms)"}
        passes = max(0, math.ceil((fixed_m - fixed_s) / (pass_s - pass_m)))
        return {"multi_min_window_passes": passes, "basis": (
            f"bench/run.py time_to_result, {self.results['started'][:10]}, loadavg {os.getloadavg()[0]:.1f}: "
            f"per window pass {pass_s * 1e3:.1f} ms in one process, {pass_m * 1e3:.1f} ms in two; fixed part "
            f"(start-up, evaluation, baselines) {fixed_s:.1f} s vs {fixed_m:.1f} s")}

    # ------------------------------------------------------------------ 6. GPU
    def sec_gpu(self) -> None:
        import torch

        if not torch.cuda.is_available():
            self.emit("6. GPU", "no GPU on this machine: skipped")
            self.results["gpu"] = None
            return
        log("6. GPU: training comparison with autocast, ProtT5-XL memory")
        mixed = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        N = math.ceil(self.n_train / 8) * 3
        reps = self.args.reps or 3
        per = {"ours": [], "ref": []}
        for rep in range(reps):
            for side in ("ours", "ref"):
                a = {"source": ESM8M, "steps": N, "split_csv": self.split_csv, "device": "cuda",
                     "precision": mixed, "mixed": mixed, "run_dir": str(self.out / "gpu" / f"{side}-{rep}")}
                per[side].append(self.worker("train_" + side, a, f"gpu-train-{side}-{rep}"))
        med = {s: median([r["windows"] / r["seconds"] for r in per[s]]) for s in per}
        rows = [["windows/s, median", med["ours"], med["ref"]],
                ["peak GPU memory MB", median([r.get("gpu_peak_mb") for r in per["ours"]]),
                 median([r.get("gpu_peak_mb") for r in per["ref"]])],
                ["loss on held-out windows", median([r["val_loss"] for r in per["ours"]]),
                 median([r["val_loss"] for r in per["ref"]])]]
        self.emit(f"6a. GPU training ({torch.cuda.get_device_name(0)}, {mixed} autocast, {N} steps)",
                  md_table(["", "plmcore (ours)", "HF reference"], rows))
        self.put(gpu_train_ratio_vs_reference=med["ours"] / med["ref"], gpu_train_windows_per_s=med["ours"])
        res = {"train": per, "prott5": self.gpu_prott5(mixed)}
        self.results["gpu"] = res

    def gpu_prott5(self, mixed: str) -> dict:
        """ProtT5-XL LoRA at the tutorial's batch (1 x 8, r=4 on q,k,v,o): peak GPU memory per way of holding
        the base weights (fp32 with autocast; bf16; 8-bit and 4-bit where bitsandbytes imports)."""
        import importlib.util

        ways = ["fp32", "bf16"] + (["int8", "int4"] if importlib.util.find_spec("bitsandbytes") else [])
        rows, res = [], {}
        for way in ways:
            a = {"source": PROTT5, "steps": 4, "split_csv": self.split_csv, "lora_r": 4, "lora_alpha": 8,
                 "lora_targets": ["q", "k", "v", "o"], "batch_size": 1, "grad_accum": 8, "pooling": "mean",
                 "device": "cuda", "precision": mixed, "base_weights": way, "gradient_checkpointing": "off",
                 "skip_eval": True, "run_dir": str(self.out / "gpu" / f"prot_t5-{way}")}
            try:
                r = self.worker("bigtrain", a, f"gpu-prot_t5-{way}", timeout=900, retry=False)
            except Exception as exc:  # noqa: BLE001 - one way failing must not hide the others
                rows.append([way, f"failed: {str(exc).splitlines()[0]}", "", ""])
                continue
            res[way] = r
            fits = r["gpu_peak_mb"] < 15 * 1000
            rows.append([way, r["gpu_peak_mb"], 1 / r["s_per_window"], "yes" if fits else "NO"])
            tag = "" if way == "fp32" else f"_{way}"
            self.put(**{f"gpu_prott5{tag}_peak_mb": r["gpu_peak_mb"],
                        f"gpu_prott5{tag}_windows_per_s": 1 / r["s_per_window"],
                        f"gpu_prott5{tag}_under_15gb": fits})
        if "int8" not in ways:
            rows.append(["int8, int4", "skipped: bitsandbytes is not installed", "", ""])
        self.emit(f"6b. ProtT5-XL encoder LoRA on the GPU, tutorial batch (1 x 8, r=4 on q,k,v,o; {mixed} autocast)",
                  md_table(["base weights", "peak GPU memory MB (max_memory_allocated)", "windows/s",
                            "under the seed's 15 GB"], rows),
                  ["The seed says LoRA makes ProtT5-XL trainable on a GPU with 15 GB (full fine-tuning needs about "
                   "26 GB); 15 GB is read as 15,000 MB. LoRA adapters and head stay fp32 in every row."])
        return res

    # ------------------------------------------------------------------ profile (optional)
    def sec_profile(self) -> None:
        log("profile: torch.profiler over one epoch of each training loop")
        d = self.out / "profile"
        d.mkdir(parents=True, exist_ok=True)
        N = math.ceil(self.n_train / 8)
        out = {}
        for side in ("ours", "ref"):
            a = {"source": ESM8M, "steps": N, "split_csv": self.split_csv, "run_dir": str(d / f"run-{side}"),
                 "profile": str(d / f"train-{side}.txt")}
            self.worker("train_" + side, a, f"profile-{side}")
            out[side] = {k: (s, c) for k, s, c in json.loads((d / f"train-{side}.json").read_text())}
        keys = sorted(set(out["ours"]) | set(out["ref"]),
                      key=lambda k: -max(out["ours"].get(k, (0, 0))[0], out["ref"].get(k, (0, 0))[0]))[:25]
        rows = [[k, out["ours"].get(k, (0, 0))[0], out["ours"].get(k, (0, 0))[1], out["ref"].get(k, (0, 0))[0],
                 out["ref"].get(k, (0, 0))[1]] for k in keys]
        self.emit(f"Profile: self CPU seconds per op over {N} steps (torch.profiler; full tables in {d})",
                  md_table(["op", "ours s", "ours calls", "reference s", "reference calls"], rows))

    # ------------------------------------------------------------------ finish
    def finish(self) -> None:
        self.results["summary"] = self.summary
        self.results["finished"] = datetime.now().isoformat(timespec="seconds")
        self.results["wall_s"] = time.time() - self.t0
        self.summary["wall_s"] = self.results["wall_s"]
        (self.out / "results.json").write_text(json.dumps(self.results, indent=1, default=_jsonable))
        head = [f"## Performance ({self.mode} mode, {self.results['started']}, `python bench/run.py"
                f"{' --quick' if self.quick else ''}`)", "", f"Machine: {self.machine_desc}", "",
                self.headline(), ""]
        (self.out / "report.md").write_text("\n".join(head) + "\n" + "\n".join(self.report))
        log(f"wrote {self.out / 'results.json'} and {self.out / 'report.md'} ({self.results['wall_s']:.0f} s)")
        required = [] if self.args.gpu else ["train_ratio_vs_reference", "train_mfu", "embed_mfu", "embed_padding_waste"]
        if not self.quick and not self.args.gpu:
            required += ["embed_100k_peak_rss_mb", "umap_20k_s"]
        for k in required:
            self.summary.setdefault(k, NAN)
        if self.args.write_profile:
            self.write_profile()
            self.write_memory_profile()
        line = " ".join(f"{k}={_kv(v)}" for k, v in self.summary.items())
        print(line, flush=True)

    def headline(self) -> str:
        """The main figures in one table (top of report.md)."""
        S = self.summary
        pct = lambda k: f"{S[k]:.1%}" if isinstance(S.get(k), float) and S[k] == S[k] else "n/a"  # noqa: E731
        rows = []

        def add(label, *keys, f=fmt):
            vals = [S.get(k) for k in keys]
            if any(v is not None for v in vals):
                rows.append([label, " / ".join(f(v) if f is fmt else f(k) for k, v in zip(keys, vals))])

        add("training windows/s, plmcore / HF reference (ESM-2 8M, batch 8)", "train_windows_per_s",
            "reference_windows_per_s")
        add("train_ratio_vs_reference", "train_ratio_vs_reference")
        add("training MFU, plmcore / reference", "train_mfu", "reference_mfu", f=pct)
        add("embedding tokens/s, windows: plmcore / naive", "embed_tokens_per_s", "naive_embed_tokens_per_s")
        add("embedding tokens/s, 50-1000-residue proteins: plmcore / naive", "embed_tokens_per_s_proteins",
            "naive_embed_tokens_per_s_proteins")
        add("embedding MFU (windows), plmcore / naive", "embed_mfu", "naive_embed_mfu", f=pct)
        add("padding waste on mixed lengths, plmcore / naive", "embed_padding_waste", "naive_padding_waste", f=pct)
        for k in [k for k in S if k.startswith("embed_") and k.endswith("_peak_rss_mb") and k[6].isdigit()]:
            lab = k[len("embed_"):-len("_peak_rss_mb")]
            add(f"embed {lab} windows to HDF5: seconds / peak RSS MB", f"embed_{lab}_s", k)
        for k in [k for k in S if k.startswith("umap_") and k != "umap_warmup_s"]:
            lab = k[len("umap_"):-len("_s")]
            add(f"UMAP / t-SNE / PCA, {lab} points (s)", k, f"tsne_{lab}_s", f"pca_{lab}_s")
        add("cached second request (s)", "cache_second_s")
        for key, name in (("35m", "ESM-2 35M"), ("150m", "ESM-2 150M"), ("650m", "ESM-2 650M")):
            add(f"{name} tutorial recipe: s per epoch (extrapolated) / peak RSS MB",
                f"esm{key}_epoch_s_extrapolated", f"esm{key}_peak_rss_mb")
        add("ProtT5-XL LoRA: s per window / peak RSS MB / 20x161 windows h (extrapolated)",
            "prott5_s_per_window", "prott5_peak_rss_mb", "prott5_20x161_h_extrapolated")
        add("ESM-2 3B LoRA, tutorial batch 1 x 8: peak RSS MB / s per window, checkpointing off",
            "esm3b_peak_rss_mb", "esm3b_s_per_window")
        add("... checkpointing on", "esm3b_checkpointing_peak_rss_mb", "esm3b_checkpointing_s_per_window")
        add("gradient checkpointing time factor (median over the models measured)", "checkpointing_time_factor")
        add("peak fp32 GFLOP/s (training shapes / embedding shapes)", "peak_gflops", "peak_gflops_embed")
        return md_table(["headline", "value"], rows)

    def run(self) -> int:
        self.t0 = time.time()
        self.setup()
        sections = [("peak", self.sec_peak), ("prepare", self.sec_prepare), ("train", self.sec_train),
                    ("embed", self.sec_embed), ("scale", self.sec_scale), ("big", self.sec_big),
                    ("memory", self.sec_memory), ("gpu", self.sec_gpu), ("proteome", lambda: proteome_section(self))]
        sections.insert(-1, ("time_to_result", self.sec_time_to_result))
        if self.args.profile:
            sections.append(("profile", self.sec_profile))
        sections.append(("peak_end", self.sec_peak_end))
        skip = set(self.args.skip or [])
        if self.args.only:
            skip |= {n for n, _ in sections if n not in (*self.args.only, "peak", "prepare", "peak_end")}
        failed = []
        for name, fn in sections:
            if name in skip:
                self.emit(f"{name}", "skipped (--skip)")
                continue
            t = time.time()
            try:
                fn()
            except Exception as exc:  # noqa: BLE001 - report and go on to the next section
                failed.append(name)
                traceback.print_exc(file=sys.stderr)
                self.emit(f"{name}: FAILED", f"`{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}`")
                self.results.setdefault("errors", {})[name] = f"{type(exc).__name__}: {exc}"
            log(f"section {name} took {time.time() - t:.0f} s")
        self.finish()
        return 1 if failed else 0


def checkpointing_factors(runs: list[dict]) -> dict[str, float]:
    """s per window with checkpointing / without, per model measured both ways."""
    by = {}
    for r in runs:
        by.setdefault(r["name"], {})[bool(r["gradient_checkpointing"])] = r["s_per_window"]
    return {name: v[True] / v[False] for name, v in by.items() if True in v and False in v}


def _r4(xs) -> list:
    return [round(float(x), 4) for x in xs or []]


def _jsonable(o):
    if hasattr(o, "item"):
        return o.item()
    return str(o)


def _kv(v) -> str:
    if isinstance(v, bool):
        return str(int(v))
    if isinstance(v, float):
        return "nan" if v != v else f"{v:.6g}"
    return str(v).replace(" ", "_")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="smaller sizes, fewer repetitions (< 5 minutes)")
    p.add_argument("--out", default=str(Path(__file__).resolve().parent / "out"),
                   help="output folder (results.json, report.md, logs/, plmcore_home/ with the random models)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads (default: plmcore.models.set_cpu_threads(), i.e. $PLMCORE_THREADS or all CPUs)")
    p.add_argument("--reps", type=int, default=None, help="repetitions per side of each comparison")
    p.add_argument("--skip", nargs="*", choices=["train", "embed", "scale", "big", "memory", "gpu", "proteome",
                                                 "time_to_result"],
                   help="sections to leave out")
    p.add_argument("--only", nargs="*", choices=["train", "embed", "scale", "big", "memory", "gpu", "profile",
                                                 "proteome", "time_to_result"],
                   help="run only these sections (the peak and the preparation always run)")
    p.add_argument("--memory-models", nargs="*", choices=list(Bench.MEMORY_MODELS),
                   help="models of the memory section (default: 650m t5 3b; --quick: 35m)")
    p.add_argument("--memory-modes", nargs="*", choices=["off", "on"],
                   help="gradient checkpointing settings measured in the memory section (default: off on)")
    p.add_argument("--retry-noisy", type=float, default=None,
                   help="measure again (once) when other processes kept more than this many cores busy during a "
                        "measurement; the discarded run stays in results.json (default: 0.5, off with --quick)")
    p.add_argument("--wait-quiet", type=float, default=None,
                   help="before each measurement wait up to this many seconds for other processes to leave the "
                        "CPUs alone (default: 0 with --quick, 30 otherwise)")
    p.add_argument("--gpu", action="store_true",
                   help="the GPU section alone (under 10 minutes on one GPU): training comparison with bf16 autocast "
                        "and ProtT5-XL LoRA peak GPU memory; skips cleanly without CUDA")
    p.add_argument("--profile", action="store_true",
                   help="also run torch.profiler over one epoch of each training loop (tables under <out>/profile)")
    p.add_argument("--write-profile", action="store_true",
                   help="write the trainer's measured efficiency and memory to plmcore/perf_profile.json, "
                        "which the Train page's time and memory estimate reads")
    args = p.parse_args(argv)
    if args.gpu:
        import torch

        if not torch.cuda.is_available():
            print("no CUDA GPU on this machine: the GPU section is skipped\nmode=gpu gpu_available=0", flush=True)
            return 0
        args.only = ["gpu"]
    if args.only and "profile" in args.only:
        args.profile = True
    if args.retry_noisy is None:
        args.retry_noisy = 0.0 if args.quick else 0.5
    if args.wait_quiet is None:
        args.wait_quiet = 0.0 if args.quick else 30.0
    return Bench(args).run()


if __name__ == "__main__":
    sys.exit(main())
