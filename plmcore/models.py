"""Model presets, loading a backbone and its tokenizer, and per-family quirks.

A *model source* is one of:
- a HuggingFace hub id (``facebook/esm2_t6_8M_UR50D``), loaded from the local cache or the hub;
- a local folder holding ``config.json``, the weights and the tokenizer files;
- ``random:<preset id>``: the preset's real architecture with random weights, built on the fly
  and saved to a local folder. It has the real compute cost but has learned nothing; it exists
  for trying the interface and for speed measurements.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import torch
from torch import nn

from plmcore.errors import ConfigError, ModelLoadError

RANDOM_PREFIX = "random:"

# Residues the tokenizers know; U/Z/O/B are mapped to X for families whose vocabularies lack them.
_RARE_TO_X = str.maketrans({"U": "X", "Z": "X", "O": "X", "B": "X"})


@dataclass(frozen=True)
class Family:
    """How one model family wants its input, and where LoRA goes."""

    name: str
    lora_targets: tuple[str, ...]
    residue_format: str  # "plain": "ACD"; "spaced": "A C D"; "split": ["A", "C", "D"]
    map_rare_to_x: bool
    encoder_only_class: str  # "auto" or "t5-encoder"
    default_max_residues: int

    def format(self, sequence: str) -> str | list[str]:
        """Turn a validated residue string into what this family's tokenizer expects."""
        if self.map_rare_to_x:
            sequence = sequence.translate(_RARE_TO_X)
        if self.residue_format == "spaced":
            return " ".join(sequence)
        if self.residue_format == "split":
            return list(sequence)
        return sequence


FAMILIES: dict[str, Family] = {
    "esm": Family("esm", ("query", "key", "value", "dense"), "plain", False, "auto", 1022),
    "bert": Family("bert", ("query", "key", "value"), "spaced", True, "auto", 4094),
    "t5": Family("t5", ("q", "k", "v", "o"), "spaced", True, "t5-encoder", 4000),
    "ankh": Family("ankh", ("q", "k", "v", "o"), "split", False, "t5-encoder", 4000),
    "other": Family("other", ("query", "key", "value"), "plain", False, "auto", 1022),
}

# Architectures of the presets, so that "random:" models have the real shapes and cost.
_ESM_COMMON = dict(
    model_type="esm", vocab_size=33, max_position_embeddings=1026, position_embedding_type="rotary",
    token_dropout=True, mask_token_id=32, pad_token_id=1, layer_norm_eps=1e-5,
    emb_layer_norm_before=False, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
    hidden_act="gelu",
)
_ESM_VOCAB = (
    "<cls> <pad> <eos> <unk> L A G V S E R T I D P K Q N F Y M H W C X B U Z O . - "
    "<null_1> <mask>"
).split()
_PROTBERT_VOCAB = (
    "[PAD] [UNK] [CLS] [SEP] [MASK] L A G V E S I K R D T P N Q F Y M H C W X U B Z O"
).split()
_T5_RESIDUES = list("ALGVSREDTIPKFQNYMHWCXBZUO")


@dataclass(frozen=True)
class Preset:
    """A model the app offers by name."""

    id: str
    display: str
    family: str
    architecture: dict = field(hash=False, compare=False)

    @cached_property
    def parameters(self) -> int:
        """Backbone parameter count, computed from the architecture (no weights needed)."""
        with torch.device("meta"):
            model = _model_from_config(_config_from_dict(self.architecture), self.family)
        return count_parameters(model)[1]

    @property
    def size_label(self) -> str:
        return human_count(self.parameters)


def _esm(layers: int, hidden: int, heads: int = 20) -> dict:
    return dict(_ESM_COMMON, num_hidden_layers=layers, hidden_size=hidden,
                num_attention_heads=heads, intermediate_size=4 * hidden)


PRESETS: dict[str, Preset] = {
    p.id: p
    for p in [
        Preset("facebook/esm2_t6_8M_UR50D", "ESM-2 8M", "esm", _esm(6, 320)),
        Preset("facebook/esm2_t12_35M_UR50D", "ESM-2 35M", "esm", _esm(12, 480)),
        Preset("facebook/esm2_t30_150M_UR50D", "ESM-2 150M", "esm", _esm(30, 640)),
        Preset("facebook/esm2_t33_650M_UR50D", "ESM-2 650M", "esm", _esm(33, 1280)),
        Preset("facebook/esm2_t36_3B_UR50D", "ESM-2 3B", "esm", _esm(36, 2560, heads=40)),
        Preset(
            "Rostlab/prot_bert", "ProtBERT", "bert",
            dict(model_type="bert", vocab_size=30, hidden_size=1024, num_hidden_layers=30,
                 num_attention_heads=16, intermediate_size=4096, max_position_embeddings=40000,
                 hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, pad_token_id=0),
        ),
        Preset(
            "Rostlab/prot_t5_xl_uniref50", "ProtT5-XL-UniRef50 (encoder)", "t5",
            dict(model_type="t5", vocab_size=128, d_model=1024, d_ff=16384, num_layers=24,
                 num_heads=32, d_kv=128, feed_forward_proj="relu", dropout_rate=0.1,
                 relative_attention_num_buckets=32, pad_token_id=0, eos_token_id=1),
        ),
        Preset(
            "ElnaggarLab/ankh-base", "Ankh base (encoder)", "ankh",
            dict(model_type="t5", vocab_size=144, d_model=768, d_ff=3072, num_layers=48,
                 num_heads=12, d_kv=64, feed_forward_proj="gated-gelu", dropout_rate=0.0,
                 relative_attention_num_buckets=64, relative_attention_max_distance=128,
                 pad_token_id=0, eos_token_id=1),
        ),
    ]
}
DEFAULT_MODEL = "facebook/esm2_t6_8M_UR50D"

# Tiny architectures for trying the interface and for tests: seconds to train, nothing learned
# beyond the data at hand. Only reachable as random:<id>.
TINY_PRESETS: dict[str, Preset] = {
    p.id: p
    for p in [
        Preset("tiny-esm", "Tiny ESM", "esm", _esm(2, 32, heads=4)),
        Preset("tiny-bert", "Tiny BERT", "bert",
               dict(PRESETS["Rostlab/prot_bert"].architecture, hidden_size=32, num_hidden_layers=2,
                    num_attention_heads=4, intermediate_size=64, max_position_embeddings=1024)),
        Preset("tiny-t5", "Tiny T5 encoder", "t5",
               dict(PRESETS["Rostlab/prot_t5_xl_uniref50"].architecture, d_model=32, d_ff=64,
                    num_layers=2, num_heads=4, d_kv=8, dropout_rate=0.0)),
    ]
}


def find_preset(key: str) -> Preset | None:
    """A preset (or tiny test architecture) by id."""
    return PRESETS.get(key) or TINY_PRESETS.get(key)


def human_count(n: int) -> str:
    """12_345_678 -> '12.3M'."""
    for unit, scale in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= scale:
            return f"{n / scale:.3g}{unit}"
    return str(n)


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """Return (trainable, total) parameter counts."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total


def pick_device(preference: str = "auto") -> torch.device:
    """CUDA, then MPS, then CPU; or the device named by `preference`."""
    if preference != "auto":
        try:
            device = torch.device(preference)
        except RuntimeError as exc:
            raise ConfigError(f"device={preference!r} is not a device; use auto, cpu, cuda or mps") from exc
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ConfigError("device='cuda' was asked for but no CUDA GPU is visible; use auto or cpu")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def set_cpu_threads(threads: int | None = None) -> int:
    """Use one torch thread per physical core unless told otherwise; return the number used.

    More threads than cores (the default when numba, BLAS and torch each start their own pool)
    slows every matrix product down, so this is set once, deliberately, at process start.
    """
    n = threads or int(os.environ.get("PLMCORE_THREADS") or 0) or (os.cpu_count() or 1)
    torch.set_num_threads(n)
    return n


# ----------------------------------------------------------------------------- sources


def data_home() -> Path:
    """Folder for plmcore's own files (random-weight models, caches); $PLMCORE_HOME overrides."""
    return Path(os.environ.get("PLMCORE_HOME", Path.home() / ".cache" / "plmcore"))


def is_random(source: str) -> bool:
    return source.startswith(RANDOM_PREFIX)


def cache_status(source: str) -> str:
    """Where the model would come from: 'local folder', 'random weights', 'cached' or 'download'."""
    if is_random(source):
        return "random weights"
    if Path(source).expanduser().is_dir():
        return "local folder"
    try:
        from huggingface_hub import try_to_load_from_cache

        hit = try_to_load_from_cache(source, "config.json")
    except Exception:  # a malformed id is simply not cached
        hit = None
    return "cached" if isinstance(hit, str) else "download"


def _config_from_dict(arch: dict):
    from transformers import AutoConfig

    arch = dict(arch)
    return AutoConfig.for_model(arch.pop("model_type"), **arch)


def _model_from_config(config, family: str) -> nn.Module:
    from transformers import AutoModel, T5EncoderModel

    if FAMILIES[family].encoder_only_class == "t5-encoder":
        return T5EncoderModel(config)
    if config.model_type in ("esm", "bert"):
        return AutoModel.from_config(config, add_pooling_layer=False)
    return AutoModel.from_config(config)


def _write_tokenizer(folder: Path, family: str) -> None:
    """Save a tokenizer with the preset's vocabulary, so a random model loads like a real one."""
    if family == "esm":
        from transformers import EsmTokenizer

        (folder / "vocab.txt").write_text("\n".join(_ESM_VOCAB) + "\n")
        EsmTokenizer(str(folder / "vocab.txt")).save_pretrained(folder)
    elif family == "bert":
        from transformers import BertTokenizer

        (folder / "vocab.txt").write_text("\n".join(_PROTBERT_VOCAB) + "\n")
        BertTokenizer(str(folder / "vocab.txt"), do_lower_case=False).save_pretrained(folder)
    else:
        build_t5_tokenizer(folder)


def build_t5_tokenizer(folder: Path | str):
    """Save a word-level tokenizer with ProtT5's residue vocabulary (used for random T5 models)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2}
    for residue in _T5_RESIDUES:
        vocab[residue] = len(vocab)
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", 1)]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>"
    )
    fast.save_pretrained(folder)
    return fast


def materialize_random(source: str) -> Path:
    """Build `random:<preset>` once (seeded) and save it; return its folder."""
    key = source[len(RANDOM_PREFIX):]
    preset = find_preset(key)
    if preset is None:
        raise ModelLoadError(
            f"{source!r} names no preset. Random-weight models exist for: "
            + ", ".join(RANDOM_PREFIX + k for k in (*PRESETS, *TINY_PRESETS))
        )
    folder = data_home() / "random-models" / re.sub(r"[^A-Za-z0-9_.-]", "_", key)
    if (folder / "config.json").exists():
        return folder
    tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
    tmp.mkdir(parents=True, exist_ok=True)
    quiet_transformers()
    with torch.random.fork_rng(devices=[]):  # seeded, without touching the caller's random state
        torch.manual_seed(0)
        model = _model_from_config(_config_from_dict(preset.architecture), preset.family)
    model.config.plmcore_family = preset.family
    model.config.plmcore_random_weights = True
    model.save_pretrained(tmp)
    _write_tokenizer(tmp, preset.family)
    try:
        tmp.rename(folder)
    except OSError:  # another process finished first; theirs is identical
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def _load_error(source: str, exc: Exception) -> ModelLoadError:
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes")
    where = "offline mode is on (HF_HUB_OFFLINE=1)" if offline else "the hub could not be reached"
    return ModelLoadError(
        f"Cannot load model {source!r}: it is not a local folder, it is not in the HuggingFace "
        f"cache ({os.environ.get('HF_HOME', '~/.cache/huggingface')}), and {where}. "
        "Fix: give the path of a local folder holding config.json, the weights and the tokenizer "
        f"files; or, on a machine with internet, run `hf download {source}` (older versions: "
        f"`huggingface-cli download {source}`) and copy its cache folder here (or point HF_HOME "
        f"at it). Detail: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    )


def detect_family(config, source: str = "") -> str:
    """Family from a transformers config: esm, bert, t5 (ProtT5), ankh, or other."""
    explicit = getattr(config, "plmcore_family", None)
    if explicit in FAMILIES:
        return explicit
    model_type = getattr(config, "model_type", "")
    if model_type == "esm":
        return "esm"
    if model_type == "bert":
        return "bert"
    if model_type in ("t5", "mt5", "umt5"):
        return "ankh" if "ankh" in source.lower() else "t5"
    return "other"


@dataclass
class Backbone:
    """A loaded encoder, its tokenizer and family, ready for pooling and a head."""

    source: str
    model: nn.Module
    tokenizer: object
    family: Family
    random_weights: bool = False

    @property
    def hidden_size(self) -> int:
        cfg = self.model.config
        return int(getattr(cfg, "hidden_size", None) or cfg.d_model)

    @cached_property
    def encoder(self) -> ResidueEncoder:
        return ResidueEncoder(self.tokenizer, self.family)

    @property
    def max_residues(self) -> int:
        """Longest sequence (in residues) this model takes."""
        cfg = self.model.config
        limit = self.family.default_max_residues
        positions = getattr(cfg, "max_position_embeddings", None)
        if positions and getattr(cfg, "position_embedding_type", "absolute") == "absolute":
            limit = min(limit, int(positions) - self.encoder.n_special)
        tok_max = getattr(self.tokenizer, "model_max_length", None)
        if tok_max and tok_max < 1_000_000:
            limit = min(limit, int(tok_max) - self.encoder.n_special)
        return limit


def quiet_transformers() -> None:
    """Keep transformers' own progress bars and notices out of logs and the terminal."""
    import warnings

    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    warnings.filterwarnings("ignore", category=FutureWarning, module="transformers")


def base_weight_kwargs(base_weights: str, device: torch.device | str | None) -> dict:
    """`from_pretrained` arguments that hold the frozen base weights as `base_weights` asks.

    fp32 everywhere; bf16, int8 and int4 (QLoRA: NF4 with double quantisation, computing in bf16)
    only on a CUDA GPU. On a CPU half-precision weights would be slow and bitsandbytes' 8/4-bit
    kernels are built for CUDA, so those are refused rather than silently degraded.

    Raises:
        ConfigError: a GPU-only choice on a CPU or MPS device, or bitsandbytes missing.
    """
    if base_weights == "fp32":
        return {}
    device = torch.device(device) if device is not None else pick_device()
    if device.type != "cuda":
        raise ConfigError(
            f"base_weights={base_weights!r} is GPU-only, and this run is on {device.type}: half-precision weights "
            "are slow on a CPU and bitsandbytes' 8-bit/4-bit kernels need CUDA. Fix: use base_weights=fp32 "
            "(CLI: --base-weights fp32), or run on a machine with a CUDA GPU."
        )
    if base_weights == "bf16":
        return {"dtype": torch.bfloat16}
    try:
        import bitsandbytes  # noqa: F401
    except ImportError as exc:
        raise ConfigError(f"base_weights={base_weights!r} needs the bitsandbytes package on this GPU machine: "
                          "pip install bitsandbytes") from exc
    from transformers import BitsAndBytesConfig

    compute = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if base_weights == "int8":
        quant = BitsAndBytesConfig(load_in_8bit=True)
    else:
        quant = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                   bnb_4bit_compute_dtype=compute)
    return {"quantization_config": quant, "device_map": {"": device.index or 0}, "dtype": compute}


def load_backbone(
    source: str = DEFAULT_MODEL,
    *,
    trust_remote_code: bool = False,
    family: str | None = None,
    base_weights: str = "fp32",
    device: torch.device | str | None = None,
) -> Backbone:
    """Load the encoder and tokenizer from a hub id, a local folder or `random:<preset>`.

    `base_weights` (plmcore.config.BASE_WEIGHTS): fp32, or on a CUDA `device` only bf16, int8, int4.

    Raises:
        ModelLoadError: the model is neither a folder, cached nor reachable (message says how to fix).
        ConfigError: a GPU-only `base_weights` without a CUDA device (see `base_weight_kwargs`).
    """
    weight_kwargs = base_weight_kwargs(base_weights, device)
    from transformers import AutoConfig, AutoModel, AutoTokenizer, T5EncoderModel

    quiet_transformers()
    path: str | Path = source
    random_weights = False
    if is_random(source):
        path = materialize_random(source)
        random_weights = True
    elif Path(source).expanduser().exists():
        path = Path(source).expanduser()
        if not (path / "config.json").exists():
            raise ModelLoadError(
                f"Folder {str(path)!r} has no config.json, so it is not a saved model. Fix: point at "
                "the folder written by save_pretrained / `hf download` (it holds config.json, "
                "model.safetensors and the tokenizer files)."
            )
    try:
        config = AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code)
    except ValueError as exc:
        if "trust_remote_code" in str(exc):
            raise ModelLoadError(
                f"Model {source!r} needs its own code from the hub. Only enable trust_remote_code "
                "for repositories you trust (CLI: --trust-remote-code)."
            ) from exc
        raise _load_error(source, exc) from exc
    except OSError as exc:
        raise _load_error(source, exc) from exc
    random_weights = random_weights or bool(getattr(config, "plmcore_random_weights", False))
    fam = FAMILIES[family or detect_family(config, str(source))]
    kwargs = dict(trust_remote_code=trust_remote_code)
    model_kwargs = dict(kwargs, **weight_kwargs)
    try:
        if fam.encoder_only_class == "t5-encoder":
            model = T5EncoderModel.from_pretrained(path, **model_kwargs)
        elif config.model_type in ("esm", "bert"):
            model = AutoModel.from_pretrained(path, add_pooling_layer=False, **model_kwargs)
        else:
            model = AutoModel.from_pretrained(path, **model_kwargs)
        tokenizer = AutoTokenizer.from_pretrained(path, **kwargs)
    except OSError as exc:
        raise _load_error(source, exc) from exc
    model.eval()
    return Backbone(str(source), model, tokenizer, fam, random_weights)


class ResidueEncoder:
    """Turn residue strings into token ids exactly as the family's tokenizer would, but fast.

    Every supported family gives one token per residue plus fixed special tokens before and
    after, so the tokenizer is asked once per residue letter and the ids are then looked up
    with numpy. Tokenizers that do not behave like that fall back to calling the tokenizer.
    """

    def __init__(self, tokenizer, family: Family):
        from plmcore.data import VALID_RESIDUES

        self.tokenizer = tokenizer
        self.family = family
        self.pad_id = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0)
        self.prefix: list[int] = []
        self.suffix: list[int] = []
        self.table: np.ndarray | None = None
        try:
            lut = np.full(128, -1, dtype=np.int64)
            for letter in VALID_RESIDUES:
                ids = self._call([letter], special=False)[0]
                if len(ids) != 1:
                    raise ValueError(letter)
                lut[ord(letter)] = ids[0]
            probe = VALID_RESIDUES[:3]
            full = self._call([probe], special=True)[0]
            body = [int(lut[ord(c)]) for c in probe]
            start = _find(full, body)
            if start < 0:
                raise ValueError("layout")
            self.prefix, self.suffix = full[:start], full[start + len(body):]
            self.table = lut
        except Exception:  # unusual tokenizer: stay exact, go slow
            self.table = None
            ids = self._call(["A"], special=True)[0]
            self.prefix, self.suffix = ids[:1] if len(ids) > 2 else [], ids[-1:] if len(ids) > 1 else []

    def _call(self, sequences: list[str], special: bool) -> list[list[int]]:
        texts = [self.family.format(s) for s in sequences]
        split = self.family.residue_format == "split"
        out = self.tokenizer(texts, add_special_tokens=special, is_split_into_words=split)
        return [list(map(int, ids)) for ids in out["input_ids"]]

    @property
    def n_special(self) -> int:
        return len(self.prefix) + len(self.suffix)

    @property
    def offset(self) -> int:
        """Index of the first residue's token."""
        return len(self.prefix)

    def encode(self, sequences: list[str]) -> list[np.ndarray]:
        """Token ids (with special tokens) for each sequence."""
        if self.table is None:
            return [np.asarray(ids, dtype=np.int64) for ids in self._call(list(sequences), True)]
        pre = np.asarray(self.prefix, dtype=np.int64)
        suf = np.asarray(self.suffix, dtype=np.int64)
        out = []
        for seq in sequences:
            body = self.table[np.frombuffer(seq.encode("ascii"), dtype=np.uint8)]
            out.append(np.concatenate([pre, body, suf]))
        return out


def _find(haystack: list[int], needle: list[int]) -> int:
    for i in range(len(haystack) - len(needle) + 1):
        if haystack[i:i + len(needle)] == needle:
            return i
    return -1
