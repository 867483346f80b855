"""How a training run is executed: one process, or data-parallel processes started by torchrun.

The choice (TrainConfig.engine, .compile) is "auto" by default and then follows the rule that
`bench/run.py --only time_to_result --write-profile` measured on this machine, stored in
plmcore/perf_profile.json under "engine". Every choice computes the same function: the
data-parallel engine splits each batch across the processes (accelerate's split_batches), so
the global batch, and therefore every optimiser step, is the one the single process takes.

The parent process (the one the app or the command line started) keeps the run's lifecycle:
its pid is in status.json, SIGTERM on it is a stop request, and it records failure. It starts
`python -m torch.distributed.run --standalone --nproc_per_node N -m plmcore train --run-dir RUN`
and passes a stop request on through a file that every worker checks at each step; the workers
agree on it with one all-reduce, so they all stop after the same step.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from plmcore.config import TrainConfig
from plmcore.errors import RunError

log = logging.getLogger("plmcore.engine")

PROFILE_PATH = Path(__file__).with_name("perf_profile.json")
STOP_FILE = "stop.request"
# the rule used when no measurement has been stored: one process, eager
DEFAULT_RULE = {"multi_min_window_passes": None, "processes": 2, "compile": False}


@dataclass(frozen=True)
class Plan:
    engine: str  # "single" or "multi"
    processes: int
    threads: int  # torch threads per process
    compile: bool
    why: str


def rule() -> dict:
    """The measured decision rule of this machine (perf_profile.json "engine"), or the default."""
    try:
        stored = json.loads(PROFILE_PATH.read_text()).get("engine") or {}
    except (OSError, ValueError):
        stored = {}
    return {**DEFAULT_RULE, **stored}


def cpu_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def plan(config: TrainConfig, n_train: int, *, cores: int | None = None, on_gpu: bool | None = None) -> Plan:
    """Decide engine, processes, threads and compilation for a run with `n_train` training examples."""
    import torch

    cores = cores or cpu_cores()
    on_gpu = (config.device != "cpu" and torch.cuda.is_available()) if on_gpu is None else on_gpu
    r = rule()
    n = max(2, min(int(r.get("processes") or 2), cores))
    passes = n_train * (config.epochs if config.max_steps is None else
                        config.max_steps * config.batch_size * config.grad_accum / max(n_train, 1))
    engine, why = "single", "engine=single"
    if world_size() > 1:  # started by a launcher already (e.g. torchrun on several GPUs): never launch again
        return Plan("single", 1, config.threads or 0, config.compile == "on", "one of several launched processes")
    if config.engine == "multi":
        engine, why = "multi", "engine=multi"
    elif config.engine == "auto":
        threshold = r.get("multi_min_window_passes")
        if on_gpu:
            why = "auto: on a GPU one process"
        elif cores < 2:
            why = "auto: one CPU core"
        elif threshold is None:
            why = ("auto: two processes were not faster on this machine (perf_profile.json)" if r.get("basis")
                   else "auto: no measurement of this machine in perf_profile.json")
        elif passes < threshold:
            why = f"auto: {passes:.0f} window passes, below the measured break-even of {threshold}"
        else:
            engine, why = "multi", f"auto: {passes:.0f} window passes, at or above the measured {threshold}"
    if engine == "multi":
        if on_gpu:
            raise RunError("engine=multi is for CPUs here; on GPUs start `accelerate launch` yourself")
        if config.batch_size % n:
            if config.engine == "multi":
                raise RunError(f"engine=multi splits each batch across {n} processes; batch_size="
                               f"{config.batch_size} is not divisible by {n}. Fix: a batch size divisible by {n}")
            engine, why = "single", why + f"; batch_size {config.batch_size} does not split across {n}"
    compiled = config.compile == "on" or (config.compile == "auto" and bool(r.get("compile")) and not on_gpu)
    if engine == "multi":
        return Plan("multi", n, max(1, cores // n), compiled, why)
    return Plan("single", 1, config.threads or 0, compiled, why)


# --------------------------------------------------------------------------- inside a worker


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_worker() -> bool:
    """Whether this process is one of several started by torchrun for a run."""
    return world_size() > 1 and "PLMCORE_ENGINE_PARENT" in os.environ


def parent_alive() -> bool:
    """Whether the plmcore process that started this worker's torchrun still runs (a zombie does not)."""
    import psutil

    try:
        return psutil.Process(int(os.environ["PLMCORE_ENGINE_PARENT"])).status() != psutil.STATUS_ZOMBIE
    except (KeyError, ValueError, psutil.Error):
        return False


def _exit_when_parent_dies() -> None:
    while parent_alive():
        time.sleep(0.5)
    os._exit(1)


def stop_requested(run_path: Path, local: bool, accelerator) -> bool:
    """The stop request every process agrees on (one all-reduce when there are several)."""
    if accelerator.num_processes == 1:
        return local
    import torch

    flag = torch.tensor([1.0 if local or (run_path / STOP_FILE).exists() else 0.0])
    return bool(accelerator.reduce(flag, reduction="sum").item() > 0)


@contextmanager
def worker_lifecycle(run):
    """A worker's share of plmcore.runs.lifecycle: rank 0 logs to train.log and records its end;
    the pid in status.json stays the parent's."""
    from plmcore.runs import Cancelled

    rank = int(os.environ.get("RANK", "0"))
    root = logging.getLogger("plmcore")
    handler = None
    if rank == 0:
        handler = logging.FileHandler(run.log_path)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
        root.addHandler(handler)
    root.setLevel(logging.INFO)
    stop = {"flag": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(flag=True))
    # A parent killed outright (SIGKILL, out of memory) cannot stop its workers, and its reaper then
    # records the run as failed: the workers must neither overwrite that nor train on. They stop
    # writing the run's status at once and exit within a second.
    write_status = run.write_status

    def write_while_parent_lives(*args, **kwargs):
        if not parent_alive():
            os._exit(1)
        return write_status(*args, **kwargs)

    run.write_status = write_while_parent_lives
    threading.Thread(target=_exit_when_parent_dies, daemon=True).start()
    try:
        yield stop
    except Cancelled:
        if rank == 0:
            run.write_status("cancelled", ended_at=time.time())
    except BaseException as exc:
        if rank == 0:
            from plmcore.errors import PlmcoreError

            message = str(exc) if isinstance(exc, PlmcoreError) else f"{type(exc).__name__}: {exc}"
            log.exception("Run failed: %s", message)
            run.write_status("failed", ended_at=time.time(), error=message)
        raise
    finally:
        if handler is not None:
            root.removeHandler(handler)
            handler.close()


# --------------------------------------------------------------------------- the parent


def run_processes(run, p: Plan, stop: dict, *, resume: bool, trust_remote_code: bool) -> None:
    """Train `run` in `p.processes` torchrun workers; return when they end, raise if they failed."""
    from plmcore.models import RANDOM_PREFIX, materialize_random
    from plmcore.runs import Cancelled

    (run.path / STOP_FILE).unlink(missing_ok=True)
    source = run.config().model
    if source.startswith(RANDOM_PREFIX):  # built once here, not by every worker at the same time
        materialize_random(source)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={p.processes}",
           "-m", "plmcore", "train", "--run-dir", str(run.path)]
    if resume:
        cmd.append("--resume")
    if trust_remote_code:
        cmd.append("--trust-remote-code")
    env = dict(os.environ, PLMCORE_ENGINE_PARENT=str(os.getpid()), PLMCORE_THREADS=str(p.threads),
               OMP_NUM_THREADS=str(p.threads), PLMCORE_COMPILE="1" if p.compile else "0")
    package_root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(x for x in (package_root, env.get("PYTHONPATH")) if x)
    log.info("Engine: %d processes x %d threads (%s)", p.processes, p.threads, p.why)
    with open(run.path / "engine.out", "ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        asked = False
        while proc.poll() is None:
            if stop["flag"] and not asked:
                (run.path / STOP_FILE).touch()
                asked = True
            time.sleep(0.2)
    (run.path / STOP_FILE).unlink(missing_ok=True)
    status = run.read_status()
    if proc.returncode != 0:
        raise RunError(status.get("error") or f"the training processes failed (exit code {proc.returncode}); see "
                       f"{run.path / 'engine.out'}")
    if status.get("state") == "cancelled":
        raise Cancelled()
