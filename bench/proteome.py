"""Proteome scan benchmark (`python bench/run.py --only proteome`): the section and its worker tasks.

A synthetic proteome (deterministic seed) with UniProt-like lengths and composition is scanned for
every Y site by `plmcore.scan.scan_file` (what `python -m plmcore predict RUN --input FASTA --output
CSV` runs), with a window run of ESM-2 8M (random weights, trained one step on the tutorial windows).
The scan's tokens/s is compared with the same model's pure throughput on the same windows, cut and
tokenised beforehand and fed to the same inference loop (plmcore.inference.run), alternating
scan, model, scan, model in one process; the ratio says what FASTA parsing, validation, window
cutting, tokenisation and CSV writing cost.
"""

from __future__ import annotations

import time
from pathlib import Path

from bench.common import ESM8M, TRAIN_FASTA, fmt, log, md_table, median, peak_rss_mb

now = time.perf_counter

# UniProtKB/Swiss-Prot amino-acid composition (release 2024_01 statistics, %), for the synthetic proteome.
COMPOSITION = {"A": 8.25, "R": 5.53, "N": 4.06, "D": 5.45, "C": 1.37, "Q": 3.93, "E": 6.75, "G": 7.07, "H": 2.27,
               "I": 5.96, "L": 9.66, "K": 5.84, "M": 2.42, "F": 3.86, "P": 4.70, "S": 6.56, "T": 5.34, "W": 1.08,
               "Y": 2.92, "V": 6.87}
LENGTH_MEDIAN, LENGTH_SIGMA, LENGTH_MIN, LENGTH_MAX = 375, 0.75, 30, 5000
PROTEOME = 20_000


def synthetic_proteome(path: Path, n: int, seed: int = 15) -> dict:
    """Write `n` proteins to a FASTA file: lognormal lengths (median 375, sigma 0.75, 30..5000), residues
    drawn with UniProt's composition. The first k proteins of a larger set are the set of size k."""
    import numpy as np

    rng = np.random.default_rng(seed)
    letters = np.array(list(COMPOSITION))
    p = np.array(list(COMPOSITION.values()))
    p = p / p.sum()
    lengths = np.clip(rng.lognormal(np.log(LENGTH_MEDIAN), LENGTH_SIGMA, size=n).astype(int), LENGTH_MIN, LENGTH_MAX)
    residues = tyrosines = 0
    with open(path, "w") as fh:
        for i, length in enumerate(lengths):
            seq = "".join(rng.choice(letters, size=int(length), p=p))
            residues += len(seq)
            tyrosines += seq.count("Y")
            lines = "\n".join(seq[j:j + 60] for j in range(0, len(seq), 60))
            fh.write(f">sp|S{i:05d}|SYN{i}_HUMAN synthetic protein {i}\n{lines}\n")
    return {"proteins": n, "residues": residues, "y_sites": tyrosines, "median_length": float(np.median(lengths)),
            "mean_length": float(lengths.mean()), "max_length": int(lengths.max())}


def _load(a: dict):
    from bench.workers import _threads
    from plmcore.predict import load_run

    threads = _threads()
    return load_run(a["run_dir"], device="cpu"), threads


def task_proteome_run(a: dict) -> dict:
    """A window run to scan with: ESM-2 8M (random weights) trained one step on the tutorial windows."""
    from bench.workers import _threads
    from plmcore.config import DataSpec, TrainConfig
    from plmcore.train import train

    _threads()
    cfg = TrainConfig(model=a.get("model", ESM8M), max_steps=1, patience=None, baselines=False,
                      data=DataSpec(train=(str(TRAIN_FASTA),), val_fraction=0.1, test_fraction=0.1))
    run = train(cfg, run_dir=a["run_dir"])
    return {"state": run.status()["state"], "window": run.labels().get("window_length")}


def task_proteome_scan(a: dict) -> dict:
    """One scan of a FASTA file, timed, in its own process (so its peak RSS is the scan's)."""
    from plmcore.scan import scan_file

    loaded, threads = _load(a)
    rss_loaded = peak_rss_mb()
    t = now()
    state = scan_file(loaded, a["fasta"], a["output"], restart=True)
    return {"seconds": now() - t, "rows": state["rows"], "records": state["records_done"], "threads": threads,
            "peak_rss_after_load_mb": rss_loaded}


def _windows(loaded, fasta: str) -> list[str]:
    from plmcore import data as D
    from plmcore.predict import candidate_positions

    w = loaded.window_length
    return [D.site_window(seq, pos, w) for _, seq, _ in D.iter_records(fasta)
            for pos in candidate_positions(seq, loaded.center_residues)]


def task_proteome_compare(a: dict) -> dict:
    """Scan vs pure model throughput on the same windows, alternating, after one untimed warm-up of each."""
    import torch

    from plmcore import inference
    from plmcore.scan import scan_file

    loaded, threads = _load(a)
    windows = _windows(loaded, a["fasta"])
    encoder = loaded.backbone.encoder
    tokens = encoder.encode(windows)
    n_tokens = int(sum(len(t) for t in tokens))

    def model() -> tuple[float, float]:
        t, c = now(), time.process_time()
        inference.run(loaded.model, tokens, encoder, loaded.device, max_tokens=loaded.config.eval_batch_tokens)
        return now() - t, time.process_time() - c

    def scan() -> tuple[float, float]:
        t, c = now(), time.process_time()
        state = scan_file(loaded, a["fasta"], a["output"], restart=True)
        assert state["rows"] == len(windows), (state["rows"], len(windows))
        return now() - t, time.process_time() - c

    model(), scan()  # warm-up: first calls pay one-off allocations
    times = {"scan": [], "model": []}
    cpu = {"scan": [], "model": []}  # this process's CPU seconds: much less moved by other processes
    for _ in range(a["reps"]):
        for side, fn in (("scan", scan), ("model", model)):
            wall, used = fn()
            times[side].append(wall)
            cpu[side].append(used)
    return {"windows": len(windows), "tokens": n_tokens, "times": times, "cpu_s": cpu, "threads": threads,
            "torch_threads": torch.get_num_threads()}


def section(bench) -> None:
    """The proteome section of bench/run.py: scan time for 20,000 proteins and the pipeline's overhead."""
    log("7. proteome scan: streamed predict over a synthetic proteome vs pure model throughput")
    out = bench.out / "proteome"
    out.mkdir(parents=True, exist_ok=True)
    quick = bench.quick
    run_dir = out / "run"
    if not (run_dir / "best" / "head.safetensors").exists():
        bench.worker("proteome_run", {"run_dir": str(run_dir)}, "proteome-run", timeout=1800, retry=False)
    full = out / f"proteome_{PROTEOME}.fasta"
    facts = synthetic_proteome(full, PROTEOME)
    subset_n = 40 if quick else 1000
    subset = out / f"proteome_{subset_n}.fasta"
    sub_facts = synthetic_proteome(subset, subset_n)
    reps = bench.args.reps or 3
    cmp_ = bench.worker("proteome_compare", {"run_dir": str(run_dir), "fasta": str(subset), "reps": reps,
                                             "output": str(out / "compare.csv")}, "proteome-compare", timeout=7200)
    scan_s, model_s = median(cmp_["times"]["scan"]), median(cmp_["times"]["model"])
    ratio = model_s / scan_s  # same tokens on both sides: tokens/s of the scan / tokens/s of the model
    cpu_ratio = median(cmp_["cpu_s"]["model"]) / median(cmp_["cpu_s"]["scan"])
    tok_scan, tok_model = cmp_["tokens"] / scan_s, cmp_["tokens"] / model_s
    # the whole proteome is ~y_sites windows: scale the subset's scan time by the windows (= tokens) ratio
    per_window = scan_s / cmp_["windows"]
    extrapolated = per_window * facts["y_sites"]
    rows = [["proteins (synthetic)", f"{PROTEOME:,} (median length {facts['median_length']:.0f}, mean "
             f"{facts['mean_length']:.0f}, max {facts['max_length']}; {facts['residues']:,} residues)"],
            ["Y sites = windows", f"{facts['y_sites']:,}"],
            [f"measured subset: first {subset_n} proteins", f"{cmp_['windows']:,} windows, {cmp_['tokens']:,} tokens"],
            ["scan s (median) / model-only s (median)", f"{fmt(scan_s)} / {fmt(model_s)}"],
            ["all runs: scan / model", f"{[round(x, 2) for x in cmp_['times']['scan']]} / "
                                       f"{[round(x, 2) for x in cmp_['times']['model']]}"],
            ["tokens/s: scan / model only", f"{fmt(tok_scan)} / {fmt(tok_model)}"],
            ["scan tokens/s ratio (target >= 0.9)", fmt(ratio)],
            ["all runs, CPU s of the process: scan / model", f"{[round(x, 2) for x in cmp_['cpu_s']['scan']]} / "
                                                             f"{[round(x, 2) for x in cmp_['cpu_s']['model']]}"],
            ["scan tokens per CPU-second ratio", fmt(cpu_ratio)],
            [f"{PROTEOME:,} proteins, s (extrapolated from the subset)", fmt(extrapolated)]]
    results = {"facts": facts, "subset": sub_facts, "compare": cmp_, "ratio": ratio, "scan_s_20k_extrapolated":
               extrapolated}
    kv = {"proteome_scan_tokens_per_s_ratio": ratio, "proteome_scan_tokens_per_cpu_s_ratio": cpu_ratio, "proteome_scan_tokens_per_s": tok_scan,
          "proteome_model_tokens_per_s": tok_model}
    # memory: the same pipeline with the tiny model (its weights are constant; what could grow is the pipeline's)
    tiny_dir = out / "run-tiny"
    if not (tiny_dir / "best" / "head.safetensors").exists():
        bench.worker("proteome_run", {"run_dir": str(tiny_dir), "model": "random:tiny-esm"}, "proteome-run-tiny",
                     timeout=1800, retry=False)
    sizes = (200, 2000) if quick else (2000, PROTEOME)
    for n in sizes:
        fasta = full if n == PROTEOME else out / f"proteome_{n}.fasta"
        if n != PROTEOME:
            synthetic_proteome(fasta, n)
        res = bench.worker("proteome_scan", {"run_dir": str(tiny_dir), "fasta": str(fasta),
                                             "output": str(out / f"scan_tiny_{n}.csv")}, f"proteome-scan-tiny-{n}",
                           timeout=3600, retry=False)
        results[f"scan_tiny_{n}"] = res
        rows.append([f"memory: scan of {n:,} proteins with tiny-esm: s / peak RSS MB / rows",
                     f"{fmt(res['seconds'])} / {fmt(res['peak_rss_mb'])} / {res['rows']:,}"])
        kv[f"proteome_tiny_{n}_peak_rss_mb"] = res["peak_rss_mb"]
    if not quick:
        res = bench.worker("proteome_scan", {"run_dir": str(run_dir), "fasta": str(full),
                                             "output": str(out / f"scan_{PROTEOME}.csv")}, f"proteome-scan-{PROTEOME}",
                           timeout=4 * 3600, retry=False)
        results[f"scan_{PROTEOME}"] = res
        rows.append([f"scan of {PROTEOME:,} proteins with ESM-2 8M: s / peak RSS MB / rows",
                     f"{fmt(res['seconds'])} / {fmt(res['peak_rss_mb'])} / {res['rows']:,}"])
        kv["proteome_scan_peak_rss_mb"] = res["peak_rss_mb"]
    if quick:
        kv[f"proteome_scan_s_extrapolated_from_{subset_n}"] = extrapolated
    else:
        kv["proteome_scan_s"] = results[f"scan_{PROTEOME}"]["seconds"]
        kv["proteome_scan_s_extrapolated"] = extrapolated
    bench.results["proteome"] = results
    bench.put(**kv)
    notes = ["Same windows on both sides: the model side gets them cut and tokenised in advance and runs "
             "plmcore.inference.run (the loop the scan uses) on them; the scan reads the FASTA and does "
             "everything else too. Alternating scan, model, ... in one process after one warm-up of each.",
             "Random weights: the scores mean nothing; the times are what a trained ESM-2 8M run costs.",
             "The CPU-seconds ratio (this process's CPU time on each side) is the steadier figure when other "
             "processes share the cores: waiting for a core counts in wall time, not in CPU time."]
    if quick:
        notes.append(f"--quick: the {PROTEOME:,}-protein time is extrapolated from the subset "
                     f"(key proteome_scan_s_extrapolated_from_{subset_n}), not measured.")
    bench.emit("Proteome scan (ESM-2 8M, all Y sites)", md_table(["", "value"], rows), notes)
