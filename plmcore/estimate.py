"""Before a run starts: parameter counts, FLOPs, memory and time per epoch for a model and settings.

FLOPs are counted analytically from the architecture. Time per epoch is those FLOPs divided by
this machine's matrix-multiply speed (measured here, in a fraction of a second) times the
fraction of that speed the trainer achieves (measured by `bench/run.py` and stored in
`plmcore/perf_profile.json`). Memory comes from the same kind of count, scaled by the
benchmark's measured peak.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from plmcore.models import FAMILIES, RANDOM_PREFIX, find_preset

PROFILE_PATH = Path(__file__).with_name("perf_profile.json")


@dataclass(frozen=True)
class Arch:
    """The numbers that set the cost of an encoder."""

    family: str
    layers: int
    d_model: int
    d_attn: int  # heads × head size (differs from d_model in T5)
    d_ff: int
    heads: int
    gated: bool
    vocab: int
    n_special: int
    positions: int = 0  # learned absolute position embeddings (BERT)

    @property
    def parameters(self) -> int:
        """Weights of the matrices (biases and norms, under 1%, are left out)."""
        attn = 4 * self.d_model * self.d_attn
        ffn = (3 if self.gated else 2) * self.d_model * self.d_ff
        return self.layers * (attn + ffn) + (self.vocab + self.positions) * self.d_model

    def target_shapes(self, targets: tuple[str, ...]) -> list[tuple[int, int]]:
        """(in, out) of every linear layer a LoRA target name matches, for the whole encoder."""
        d, a, f = self.d_model, self.d_attn, self.d_ff
        per_layer = {
            "esm": {"query": [(d, a)], "key": [(d, a)], "value": [(d, a)], "dense": [(a, d), (d, f), (f, d)]},
            "bert": {"query": [(d, a)], "key": [(d, a)], "value": [(d, a)], "dense": [(a, d), (d, f), (f, d)]},
            "t5": {"q": [(d, a)], "k": [(d, a)], "v": [(d, a)], "o": [(a, d)], "wi": [(d, f)], "wo": [(f, d)],
                   "wi_0": [(d, f)], "wi_1": [(d, f)]},
        }[self.family if self.family in ("esm", "bert") else "t5"]
        shapes = []
        for t in targets:
            shapes += per_layer.get(t, [])
        return shapes * self.layers


def arch_from_config(cfg: dict, family: str) -> Arch:
    """Read the cost-relevant sizes from a transformers config dict."""
    if family in ("t5", "ankh") or cfg.get("model_type") in ("t5", "mt5"):
        heads = cfg.get("num_heads", 8)
        return Arch("t5" if family != "ankh" else "ankh", cfg.get("num_layers", 6), cfg["d_model"],
                    heads * cfg.get("d_kv", 64), cfg.get("d_ff", 2048), heads,
                    "gated" in cfg.get("feed_forward_proj", "relu"), cfg.get("vocab_size", 128), 1)
    absolute = cfg.get("position_embedding_type", "absolute") == "absolute"
    return Arch(family if family in ("esm", "bert") else "bert", cfg["num_hidden_layers"], cfg["hidden_size"],
                cfg["hidden_size"], cfg.get("intermediate_size", 4 * cfg["hidden_size"]),
                cfg.get("num_attention_heads", 12), False, cfg.get("vocab_size", 33), 2,
                cfg.get("max_position_embeddings", 0) if absolute else 0)


def arch_for(source: str) -> Arch | None:
    """Architecture of a preset, a random:<preset>, or a local/cached model's config.json."""
    key = source[len(RANDOM_PREFIX):] if source.startswith(RANDOM_PREFIX) else source
    preset = find_preset(key)
    if preset:
        return arch_from_config(preset.architecture, preset.family)
    cfg_path = Path(source).expanduser() / "config.json"
    if not cfg_path.exists():
        try:
            from huggingface_hub import try_to_load_from_cache

            hit = try_to_load_from_cache(source, "config.json")
            cfg_path = Path(hit) if isinstance(hit, str) else None
        except Exception:
            cfg_path = None
    if not cfg_path or not cfg_path.exists():
        return None
    cfg = json.loads(cfg_path.read_text())
    family = cfg.get("plmcore_family") or {"esm": "esm", "bert": "bert", "t5": "t5"}.get(cfg.get("model_type"), "bert")
    if family == "t5" and "ankh" in source.lower():
        family = "ankh"
    try:
        return arch_from_config(cfg, family)
    except KeyError:
        return None


@dataclass(frozen=True)
class Estimate:
    total_parameters: int
    trainable_parameters: int
    train_flops_per_window: float
    seconds_per_epoch: float | None  # with gradient checkpointing when `checkpointing` is True
    memory_gb: float  # with gradient checkpointing when `checkpointing` is True
    basis: str
    memory_gb_without_checkpointing: float = 0.0
    checkpointing: bool = False
    checkpointing_note: str = ""


def lora_parameters(arch: Arch, r: int, targets: tuple[str, ...] | None, n_classes: int = 2) -> int:
    targets = tuple(targets or FAMILIES[arch.family if arch.family in FAMILIES else "t5"].lora_targets)
    lora = sum(r * (i + o) for i, o in arch.target_shapes(targets))
    head = arch.d_model * arch.d_model + arch.d_model + arch.d_model * n_classes + n_classes
    return lora + head


def forward_flops(arch: Arch, tokens: int, r: int = 0, targets: tuple[str, ...] | None = None) -> float:
    """Matmul FLOPs of one forward pass over a sequence of `tokens` tokens (no head)."""
    return sum(_forward_parts(arch, tokens, r, targets).values())


def _forward_parts(arch: Arch, tokens: int, r: int, targets) -> dict[str, float]:
    d, a, f = arch.d_model, arch.d_attn, arch.d_ff
    linear = tokens * arch.layers * 2 * (4 * d * a + (3 if arch.gated else 2) * d * f)
    attention = tokens * arch.layers * 2 * 2 * tokens * a  # scores Q.K^T and weights.V
    lora = 0
    if r:
        targets = tuple(targets or FAMILIES[arch.family if arch.family in FAMILIES else "t5"].lora_targets)
        lora = tokens * sum(2 * r * (i + o) for i, o in arch.target_shapes(targets))
    return {"linear": linear, "attention": attention, "lora": lora}


def train_flops_parts(arch: Arch, tokens: int, r: int, targets=None, n_classes: int = 2) -> dict[str, float]:
    """Matmul FLOPs of one training window, by part.

    Backward: input gradients of every matmul (as many FLOPs as its forward; the two attention
    matmuls twice, since both their operands are activations) and weight gradients of the
    trainable weights only (LoRA and the head). Frozen base weights get no weight gradient.
    """
    p = _forward_parts(arch, tokens, r, targets)
    head = 2 * arch.d_model * arch.d_model + 2 * arch.d_model * n_classes
    forward = p["linear"] + p["attention"] + p["lora"] + head
    backward_input = p["linear"] + 2 * p["attention"] + p["lora"] + head
    backward_weight = p["lora"] + head
    return {"forward": forward, "backward_input": backward_input, "backward_weight": backward_weight,
            "total": forward + backward_input + backward_weight}


def train_flops(arch: Arch, tokens: int, r: int, targets=None, n_classes: int = 2) -> float:
    """Forward + backward matmul FLOPs of one training window (see `train_flops_parts`)."""
    return train_flops_parts(arch, tokens, r, targets, n_classes)["total"]


@lru_cache(maxsize=1)
def measured_matmul_gflops() -> float:
    """fp32 GFLOP/s of this machine's CPU on a mid-sized product (about 0.2 s to measure)."""
    import torch

    from plmcore.models import pick_device

    dev = pick_device()
    n = 1024 if dev.type == "cpu" else 4096
    a = torch.randn(n, n, device=dev)
    b = torch.randn(n, n, device=dev)
    a @ b
    reps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < 0.2:
        a @ b
        reps += 1
    if dev.type == "cuda":
        torch.cuda.synchronize()
    return 2 * n**3 * reps / (time.perf_counter() - t0) / 1e9


def profile() -> dict:
    """Measured trainer efficiency and memory from the last benchmark run (bench/run.py --write-profile)."""
    if PROFILE_PATH.exists():
        return json.loads(PROFILE_PATH.read_text())
    return {}


def _efficiency(points, tokens_per_step: int, d_model: int) -> float | None:
    """The benchmark's efficiency measured nearest to this batch size in tokens and model width.

    Small batches and narrow models keep the matrix units less busy, so a point is picked by the
    log-distance in both. Points are [tokens_per_step, d_model, efficiency]."""
    if not points:
        return None
    if isinstance(points, (int, float)):
        return float(points)

    def distance(p):
        return abs(math.log(p[0] / max(tokens_per_step, 1))) + abs(math.log(p[1] / d_model))

    return float(min(points, key=distance)[2])


# Bytes a frozen base weight takes in memory, by plmcore.config.BASE_WEIGHTS (storage arithmetic;
# bitsandbytes adds per-block scales, a few percent, not counted).
BASE_WEIGHT_BYTES = {"fp32": 4.0, "bf16": 2.0, "int8": 1.0, "int4": 0.5}


def memory_bytes(arch: Arch, tokens: int, *, trainable: int, batch_size: int, checkpointing: bool,
                 device_type: str = "cpu", base_weights: str = "fp32") -> float:
    """Peak memory of LoRA training: runtime + base weights + adapter/optimiser state + activations.

    The runtime and bytes per parameter come from the benchmark's least-squares fit of peak RSS
    against parameter count (perf_profile.json "memory"). Activations are counted per layer; with
    gradient checkpointing only each layer's input is kept, plus one layer's activations while it
    is recomputed.
    """
    total = arch.parameters + trainable
    act_per_token_layer = 4 * (16 * arch.d_model + 2 * arch.d_ff + 2 * arch.heads * tokens)
    if checkpointing:
        activations = batch_size * tokens * (arch.layers * 4 * arch.d_model + act_per_token_layer)
    else:
        activations = batch_size * tokens * arch.layers * act_per_token_layer
    mem = profile().get(device_type, {}).get("memory", {})
    overhead = mem.get("runtime_bytes", 450e6 if device_type == "cpu" else 600e6)
    per_param = mem.get("bytes_per_parameter", 4.0) * BASE_WEIGHT_BYTES.get(base_weights, 4.0) / 4.0
    return overhead + per_param * total + 12 * trainable + activations


def checkpointing_time_factor(arch: Arch, tokens: int, r: int, targets=None, device_type: str = "cpu") -> tuple[
        float, str]:
    """How much longer a training step takes with gradient checkpointing, and where that figure comes from.

    Measured (bench/run.py --only memory --write-profile: the median ratio of seconds per window with
    and without, over the models measured) where the profile has it; otherwise the FLOP count: one
    more forward pass of the encoder per step."""
    measured = profile().get(device_type, {}).get("checkpointing_time_factor")
    if measured:
        return float(measured), "measured"
    parts = train_flops_parts(arch, tokens, r, targets)
    return (parts["total"] + parts["forward"]) / parts["total"], "counted (one more forward pass)"


def checkpointing_note(setting: str, on: bool, memory_off_gb: float, memory_on_gb: float,
                       available_gb: float | None, time_factor: float) -> str:
    """The one sentence the Train page and the training log give about gradient checkpointing."""
    slower = f"about {time_factor:.1f}x the time per step"
    room = f"{available_gb:.1f} GB available" if available_gb is not None else "the memory available is unknown"
    if setting == "on":
        return (f"Gradient checkpointing is on (your setting): memory {memory_on_gb:.1f} GB instead of "
                f"{memory_off_gb:.1f} GB, at {slower}.")
    if setting == "off":
        return f"Gradient checkpointing is off (your setting); {memory_off_gb:.1f} GB needed, {room}."
    if on:
        return (f"Gradient checkpointing turns on automatically: without it this run needs about "
                f"{memory_off_gb:.1f} GB and {room}; with it {memory_on_gb:.1f} GB, at {slower}.")
    return f"Gradient checkpointing stays off (auto): the run needs about {memory_off_gb:.1f} GB, {room}."


def available_memory_gb(device_type: str = "cpu") -> float | None:
    """Memory a new run can use now: free GPU memory, or the RAM the OS reports as available."""
    try:
        if device_type == "cuda":
            import torch

            return torch.cuda.mem_get_info()[0] / 1e9
        import psutil

        return psutil.virtual_memory().available / 1e9
    except Exception:  # noqa: BLE001 - unknown is a valid answer; auto then keeps checkpointing off
        return None


def decide_checkpointing(setting: str, memory_off_gb: float, available_gb: float | None) -> bool:
    """on/off as set; auto: on when the run without checkpointing would not fit in the memory available."""
    if setting in ("on", "off"):
        return setting == "on"
    return available_gb is not None and memory_off_gb > available_gb


def estimate(source: str, *, n_train: int, window_tokens: int, r: int, targets=None, batch_size: int = 8,
             n_classes: int = 2, device_type: str = "cpu", gradient_checkpointing: str = "off",
             available_gb: float | None = None, base_weights: str = "fp32", timing: bool = True) -> Estimate | None:
    """Parameters, memory and seconds per epoch of LoRA training `source` on `n_train` sequences.

    Time: this model's training FLOPs divided by this machine's 1024^3 matmul rate (measured now)
    times the fraction of that rate the trainer reached in the benchmark, times the measured
    slowdown of gradient checkpointing when it is on. Memory: the benchmark's measured
    peak-memory fit (runtime + bytes per parameter + activations). `gradient_checkpointing` is the
    setting (auto/on/off); auto compares the memory needed with `available_gb` (default: measured
    now, `available_memory_gb`). `timing=False` skips the time (and the 0.2 s matmul measurement).
    """
    arch = arch_for(source)
    if arch is None:
        return None
    tokens = window_tokens + arch.n_special
    trainable = lora_parameters(arch, r, targets, n_classes)
    total = arch.parameters + trainable
    flops = train_flops(arch, tokens, r, targets, n_classes)
    prof = profile().get(device_type, {})
    seconds = None
    basis = f"no benchmark profile for {device_type} yet (run bench/run.py --write-profile)"
    efficiency = _efficiency(prof.get("train_efficiency_vs_1024"), batch_size * tokens, arch.d_model)
    if efficiency and timing:
        rate = measured_matmul_gflops() * 1e9 * efficiency
        seconds = flops * n_train / rate
        basis = (f"the trainer reached {efficiency:.0%} of the 1024x1024 matmul rate in bench/run.py "
                 f"({prof.get('machine', 'reference machine')}, {prof.get('measured', '')}); this machine's "
                 f"rate was measured just now")
    kw = dict(trainable=trainable, batch_size=batch_size, device_type=device_type, base_weights=base_weights)
    off = memory_bytes(arch, tokens, checkpointing=False, **kw) / 1e9
    on_mem = memory_bytes(arch, tokens, checkpointing=True, **kw) / 1e9
    if gradient_checkpointing == "auto" and available_gb is None:
        available_gb = available_memory_gb(device_type)
    on = decide_checkpointing(gradient_checkpointing, off, available_gb)
    factor, _ = checkpointing_time_factor(arch, tokens, r, targets, device_type)
    note = checkpointing_note(gradient_checkpointing, on, off, on_mem, available_gb, factor)
    if on and seconds is not None:
        seconds *= factor
    return Estimate(total, trainable, flops, seconds, on_mem if on else off, basis, off, on, note)


# --------------------------------------------------------------------------- in words


def duration_words(seconds: float | None) -> str:
    """A duration as a person says it: 'under a second', 'about 40 seconds', 'about 3 minutes',
    'about 1 h 20 min' (an estimate never reads '0 s')."""
    if seconds is None:
        return "an unknown time"
    if seconds < 1:
        return "under a second"
    if seconds < 60:
        return f"about {max(1, round(seconds))} second{'s' if round(seconds) != 1 else ''}"
    if seconds < 3600:
        minutes = max(1, round(seconds / 60))
        return f"about {minutes} minute{'s' if minutes != 1 else ''}"
    hours, minutes = divmod(round(seconds / 60), 60)
    return f"about {hours} h {minutes:02d} min"


def run_seconds(est: Estimate, *, epochs: int, n_train: int, n_val: int) -> float | None:
    """Seconds to train `epochs` epochs and score validation after each (a forward pass costs about a
    third of a training step's FLOPs). Loading the model and the final evaluation are not counted."""
    if est.seconds_per_epoch is None:
        return None
    evaluation = est.seconds_per_epoch * n_val / max(n_train, 1) / 3
    return epochs * (est.seconds_per_epoch + evaluation)


def estimate_line(est: Estimate | None, *, epochs: int, n_train: int, n_val: int, early_stopping: bool) -> str:
    """The Train page's one-line estimate in plain words: total time and memory."""
    if est is None:
        return "The time and memory estimate appears once the model's description (config.json) is on this computer."
    total = run_seconds(est, epochs=epochs, n_train=n_train, n_val=n_val)
    time_part = ("time not estimated yet on this kind of computer" if total is None else
                 f"{'at most ' if early_stopping else ''}{duration_words(total)} in total "
                 f"({epochs} epoch{'s' if epochs != 1 else ''} of {duration_words(est.seconds_per_epoch)})")
    return f"Estimate: {time_part}, about {est.memory_gb:.1f} GB of memory."
