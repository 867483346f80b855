"""Shared helpers of the benchmark: logging, memory, machine facts, inputs, subprocess workers, tables.

Nothing here imports torch at module level, so the parent process stays light until it needs it.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("PLMCORE_BENCH_DATA", "/work/shared/data/dephos_Y"))
TRAIN_FASTA = DATA / "train_sequences.fasta"
TEST_FASTA = DATA / "test_sequences.fasta"
ESM8M = "random:facebook/esm2_t6_8M_UR50D"
PROTT5 = "random:Rostlab/prot_t5_xl_uniref50"
ESM3B = "random:facebook/esm2_t36_3B_UR50D"

_T0 = time.time()


def log(msg: str) -> None:
    """Progress line on stderr, with the time since the harness started."""
    el = time.time() - _T0
    print(f"[bench {int(el // 60):02d}:{el % 60:04.1f}] {msg}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- memory


def _proc_status_mb(field: str) -> float | None:
    """A memory field of /proc/self/status (VmHWM, VmRSS) in MB, or None where there is none."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far: VmHWM of /proc/self/status.

    Not ru_maxrss: Linux carries the parent's high-water mark into a child across fork/vfork and
    exec (the exec'd child's ru_maxrss is at least the parent's RSS when it forked), so a worker's
    ru_maxrss would be floored at the harness's own size. VmHWM belongs to the new address space.
    """
    hwm = _proc_status_mb("VmHWM")
    return hwm if hwm is not None else ru_maxrss_mb()


def ru_maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def current_rss_mb() -> float:
    rss = _proc_status_mb("VmRSS")
    return rss if rss is not None else float("nan")


# ----------------------------------------------------------------------------- statistics


def median(xs) -> float:
    xs = [x for x in xs if x is not None]
    return float(statistics.median(xs)) if xs else float("nan")


def spread(xs) -> str:
    """'min..max' of the repetitions, for the tables."""
    xs = [x for x in xs if x is not None]
    if not xs:
        return ""
    return f"{fmt(min(xs))}..{fmt(max(xs))}"


def fmt(x, digits: int = 3) -> str:
    """Short human number: 3 significant digits, no exponent for everyday magnitudes."""
    if x is None:
        return "n/a"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float):
        if x != x:
            return "n/a"
        if x == 0:
            return "0"
        a = abs(x)
        if a >= 1e5 or a < 1e-3:
            return f"{x:.{digits}g}"
        if a >= 10 ** (digits - 1):
            return f"{x:.0f}"
        return f"{x:.{digits}g}" if a >= 1 else f"{x:.{digits}f}".rstrip("0").rstrip(".")
    return str(x)


# ----------------------------------------------------------------------------- machine


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def physical_cores() -> int | None:
    """Distinct (physical id, core id) pairs in /proc/cpuinfo; None if it does not say."""
    try:
        pairs, phys, core = set(), None, None
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("physical id"):
                phys = line.split(":")[1].strip()
            elif line.startswith("core id"):
                core = line.split(":")[1].strip()
            elif not line.strip():
                if core is not None:
                    pairs.add((phys, core))
                phys = core = None
        if core is not None:
            pairs.add((phys, core))
        return len(pairs) or None
    except OSError:
        return None


def cpu_flags() -> list[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = line.split(":", 1)[1].split()
                return [f for f in ("avx2", "fma", "avx512f", "avx512_bf16", "amx_tile") if f in flags]
    except OSError:
        pass
    return []


def mem_total_gb() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return float("nan")


def machine_info(threads: int) -> dict:
    import torch

    info = {
        "cpu_model": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "physical_cores": physical_cores(),
        "cpu_flags": " ".join(cpu_flags()),
        "ram_gb": round(mem_total_gb(), 1),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": threads,
        "cuda": torch.cuda.is_available(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    for pkg in ("transformers", "peft", "accelerate", "umap", "sklearn", "numba", "h5py"):
        try:
            mod = __import__(pkg)
            info[pkg] = getattr(mod, "__version__", "?")
        except Exception:  # noqa: BLE001 - missing optional package
            info[pkg] = None
    try:
        info["loadavg_at_start"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        pass
    return info


# ----------------------------------------------------------------------------- inputs


def real_windows() -> list[str]:
    """The 201 training and 50 test windows (33 residues each), in file order."""
    from plmcore.data import read_table

    return [*read_table(TRAIN_FASTA)["sequence"], *read_table(TEST_FASTA)["sequence"]]


def sample_windows(n: int, seed: int, pool: list[str], length: int = 33) -> list[str]:
    """`n` windows of `length` residues cut at random offsets from the concatenated real windows."""
    import numpy as np

    rng = np.random.default_rng(seed)
    concat = "".join(pool)
    starts = rng.integers(0, len(concat) - length + 1, size=n)
    return [concat[s:s + length] for s in starts]


def sample_proteins(n: int, seed: int, pool: list[str], lo: int = 50, hi: int = 1000) -> list[str]:
    """`n` sequences with lengths uniform in [lo, hi], cut from the (repeated) concatenated real windows."""
    import numpy as np

    rng = np.random.default_rng(seed)
    concat = "".join(pool)
    while len(concat) < 2 * hi:
        concat += concat
    lengths = rng.integers(lo, hi + 1, size=n)
    starts = rng.integers(0, len(concat) - hi, size=n)
    return [concat[s:s + L] for s, L in zip(starts, lengths)]


# ----------------------------------------------------------------------------- workers


class WorkerError(RuntimeError):
    pass


def run_worker(task: str, args: dict, out: Path, *, tag: str | None = None, timeout: float | None = None,
               env_extra: dict | None = None) -> dict:
    """Run `python -m bench.workers TASK` in a fresh process; return the dict it wrote.

    A fresh process per measurement, so its ru_maxrss belongs to that measurement alone.
    stdout/stderr go to <out>/logs/<tag>.log.
    """
    logs = out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    tag = tag or task
    args_path = logs / f"{tag}.args.json"
    result_path = logs / f"{tag}.result.json"
    args_path.write_text(json.dumps(args, indent=1, default=str))
    if result_path.exists():
        result_path.unlink()
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.update(env_extra or {})
    cmd = [sys.executable, "-m", "bench.workers", task, str(args_path), str(result_path)]
    t = time.time()
    with open(logs / f"{tag}.log", "w") as fh, OtherLoad() as load:
        try:
            proc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, cwd=ROOT, env=env, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise WorkerError(f"{tag}: timed out after {timeout:.0f} s (log {logs / (tag + '.log')})") from exc
    if proc.returncode != 0 or not result_path.exists():
        tail = "\n".join((logs / f"{tag}.log").read_text(errors="replace").splitlines()[-25:])
        raise WorkerError(f"{tag}: exit code {proc.returncode}; log {logs / (tag + '.log')}:\n{tail}")
    result = json.loads(result_path.read_text())
    result["_process_wall_s"] = round(time.time() - t, 2)
    result["_other_load_cores"] = round(load.cores, 2)
    return result


def write_result(path: str | Path, data: dict) -> None:
    Path(path).write_text(json.dumps(data, indent=1, default=_json_default))


def _json_default(o):
    if hasattr(o, "item"):
        return o.item()
    if hasattr(o, "tolist"):
        return o.tolist()
    return str(o)


# ----------------------------------------------------------------------------- tables


def md_table(headers: list[str], rows: list[list]) -> str:
    cells = [[fmt(c) if not isinstance(c, str) else c for c in row] for row in rows]
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(row) + " |" for row in cells]
    return "\n".join(out)


# ----------------------------------------------------------------------------- noise


def cpu_busy_s() -> float:
    """CPU-seconds all cores have spent busy since boot (/proc/stat)."""
    try:
        vals = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except OSError:
        return float("nan")
    idle = vals[3] + vals[4]
    return (sum(vals) - idle) / os.sysconf("SC_CLK_TCK")


def own_cpu_s() -> float:
    """CPU-seconds of this process and its finished children."""
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


class OtherLoad:
    """Mean number of cores kept busy by *other* processes during a block (a noise indicator)."""

    def __enter__(self):
        self.t, self.busy, self.own = time.time(), cpu_busy_s(), own_cpu_s()
        return self

    def __exit__(self, *exc):
        wall = max(time.time() - self.t, 1e-9)
        self.cores = max(0.0, (cpu_busy_s() - self.busy - (own_cpu_s() - self.own)) / wall)
        return False
