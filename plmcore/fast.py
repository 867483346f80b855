"""Faster forms of the same computation, for the small batches of short windows this tool trains on.

Each replaces a step of the stock transformers/peft code with one that computes the same
function with fewer passes over memory (on a 2-core CPU, the element-wise passes, not the
matrix products, take most of a training step):

- ESM's GELU is written as five element-wise operations; `F.gelu` is the same exact (erf)
  GELU in one fused kernel, forward and backward.
- peft's LoRA layer computes `result + lora_B(lora_A(x)) * scaling`: three extra passes over
  the output. An in-place `addmm_` adds the low-rank product into the base output in one pass.
- For short sequences, attention as `baddbmm -> softmax -> bmm` is about twice as fast on a
  CPU as the fused SDPA kernel, which is built for long sequences. Long sequences keep SDPA
  (it never materialises the T x T matrix).

`tests/test_fast.py` checks outputs and gradients against the stock code.
"""

from __future__ import annotations

import types

import torch
import torch.nn.functional as F
from torch import nn

ATTENTION_NAME = "plmcore"
SHORT_ATTENTION = 128 * 128  # query x key lengths up to which the bmm form is used on CPU


def bmm_attention(module, query, key, value, attention_mask, dropout: float = 0.0, scaling: float | None = None,
                  is_causal: bool | None = None, position_bias=None, **kwargs):
    """transformers attention interface: batched matmuls for short sequences on CPU, else SDPA."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    B, H, T, D = query.shape
    S = key.shape[2]
    if query.device.type != "cpu" or T * S > SHORT_ATTENTION or is_causal or kwargs.get("output_attentions"):
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      is_causal=is_causal, position_bias=position_bias, **kwargs)
    scale = D**-0.5 if scaling is None else scaling
    bias = None
    if attention_mask is not None:
        mask = attention_mask
        if mask.dtype == torch.bool:
            mask = torch.zeros(mask.shape, dtype=query.dtype, device=query.device).masked_fill_(
                ~mask, torch.finfo(query.dtype).min)
        bias = mask[..., :S].to(query.dtype)
    if position_bias is not None:
        bias = position_bias if bias is None else bias + position_bias
    q = query.reshape(B * H, T, D)
    k = key.reshape(B * H, S, D).transpose(1, 2)
    if bias is None:
        scores = torch.bmm(q, k)
        if scale != 1.0:
            scores = scores * scale
    else:
        scores = torch.baddbmm(bias.expand(B, H, T, S).reshape(B * H, T, S), q, k, alpha=scale)
    probs = torch.softmax(scores, dim=-1)
    if dropout and module.training:
        probs = F.dropout(probs, p=dropout)
    out = torch.bmm(probs, value.reshape(B * H, S, D)).view(B, H, T, D)
    return out.transpose(1, 2).contiguous(), None


def register_attention() -> None:
    """Make "plmcore" a transformers attention implementation, with SDPA's mask format."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(ATTENTION_NAME, bmm_attention)
    AttentionMaskInterface.register(ATTENTION_NAME, sdpa_mask)


def _esm_intermediate_forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
    return F.gelu(self.dense(hidden_states))


def _lora_forward(self, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
    # the common case only: one active vanilla adapter, not merged, no dropout; else peft's own code
    names = self.active_adapters
    if (args or kwargs or self.disable_adapters or self.merged or len(names) != 1 or names[0] in self.lora_variant
            or not isinstance(self.lora_dropout[names[0]], nn.Identity) or self.lora_B[names[0]].bias is not None):
        return type(self).forward(self, x, *args, **kwargs)
    name = names[0]
    base = self.base_layer
    flat = x.reshape(-1, x.shape[-1])
    out = F.linear(flat, base.weight, base.bias)
    low = F.linear(flat.to(self.lora_A[name].weight.dtype), self.lora_A[name].weight)
    # in place: the base product's output is not saved for its backward, so this is safe for autograd
    out.addmm_(low.to(out.dtype), self.lora_B[name].weight.t().to(out.dtype), alpha=self.scaling[name])
    return out.view(*x.shape[:-1], out.shape[-1])


def speed_up(model: nn.Module) -> nn.Module:
    """Swap in the faster, equivalent forms above, in place, on one model; return it."""
    from peft.tuners.lora import Linear as LoraLinear
    from transformers.models.esm.modeling_esm import EsmIntermediate

    register_attention()
    for module in model.modules():
        config = getattr(module, "config", None)
        if config is not None and getattr(config, "_attn_implementation", None) == "sdpa":
            config._attn_implementation = ATTENTION_NAME
        if isinstance(module, EsmIntermediate):
            module.forward = types.MethodType(_esm_intermediate_forward, module)
        # exactly nn.Linear: bitsandbytes' 8/4-bit layers subclass it but their weights are not plain matrices
        elif isinstance(module, LoraLinear) and type(module.base_layer) is nn.Linear:
            module.forward = types.MethodType(_lora_forward, module)
    return model


def compile_model(model: nn.Module) -> nn.Module:
    """Compile the model's training forward with torch.compile, caching the compiled code on disk.

    Only training steps run compiled: evaluation, embeddings and baselines see other batch shapes,
    and compiling each of them would cost more than the few forward passes it speeds up. Shapes
    become dynamic after the second one (the last, partial batch; proteins of many lengths), so a
    run compiles at most a few graphs. Inductor's FX graph cache keeps the compiled code under
    PLMCORE_HOME/inductor, so the compile is paid once per machine, model and batch shape.
    """
    import os

    from torch._inductor.runtime.cache_dir_utils import default_cache_dir

    from plmcore.models import data_home

    # torch fills TORCHINDUCTOR_CACHE_DIR with its /tmp default on first use; only a user's own choice stays
    if os.environ.get("TORCHINDUCTOR_CACHE_DIR") in (None, os.path.abspath(default_cache_dir())):
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(data_home() / "inductor")
    backbone = getattr(model, "backbone", model)
    # kept out of the module tree (no second copy of the weights in state_dict or parameters())
    object.__setattr__(model, "compiled_backbone", torch.compile(backbone, dynamic=None))
    return model
