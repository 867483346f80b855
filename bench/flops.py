"""Analytic FLOP counts of the matrix products: the same count the Train page's estimate uses
(`plmcore.estimate`), so the benchmark measures what the app predicts with.

A matmul of an (m x k) by a (k x n) matrix costs 2*m*k*n FLOPs. Per window of T tokens:

forward, per layer:
    base linears      2*T*in*out for each of q, k, v, attention-output dense, intermediate, output dense
    LoRA (per target) 2*T*in*r (A) + 2*T*r*out (B)
    attention         2*T*T*inner (scores Q.K^T) + 2*T*T*inner (weights.V)
forward, head (one pooled vector per window):
    2*d*d (dense) + 2*d*C (out_proj)
backward:
    input gradients   every matmul again (same FLOPs as its forward); the two attention matmuls
                      have two activation operands each, so they are counted twice
    weight gradients  only trainable weights: LoRA A and B and the head (same FLOPs as their forward);
                      frozen base weights get none
training FLOPs per window = forward + backward

Not counted: embeddings (a lookup), layer norms, softmax, activations, rotary, pooling (no matmuls).
Autograd skips the input gradient of the first layer's q/k/v (their input, the embedding output,
needs no gradient), so the count is a hair high (~1.5% for ESM-2 8M): MFU is slightly flattering.
"""

from __future__ import annotations

from plmcore import estimate
from plmcore.estimate import Arch


def arch_for(source: str) -> Arch:
    arch = estimate.arch_for(source)
    if arch is None:
        raise KeyError(f"no architecture known for {source}")
    return arch


def train_flops(arch: Arch, T: int, *, lora_r: int, n_classes: int = 2) -> dict:
    """Training (forward + backward) matmul FLOPs of one window of T tokens, by part, for the
    family's default LoRA targets."""
    return estimate.train_flops_parts(arch, T, lora_r, None, n_classes)


def embed_flops(arch: Arch, token_lengths) -> int:
    """Forward FLOPs (no LoRA, no head) of sequences of the given token lengths, each at its own length."""
    return int(sum(estimate.forward_flops(arch, int(T)) for T in token_lengths))


FORMULA = """\
FLOPs per window of T tokens (a matmul (m x k).(k x n) = 2*m*k*n FLOPs; L layers, width d,
attention width a, feed-forward f, LoRA rank r, C classes):
  forward  = L*[ 2T*(3*d*a + a*d + 2*d*f)                       q,k,v,o-dense, intermediate, output
               + sum over LoRA targets (in->out) of 2T*r*(in+out)  LoRA A and B
               + 2*(2*T^2*a) ]                                  scores Q.K^T and weights.V
             + 2*d*d + 2*d*C                                    head (one pooled vector)
  backward = input gradients of every matmul (= forward; attention matmuls twice: both operands
             are activations) + weight gradients of the trainable weights only (LoRA A/B, head:
             = their forward). Frozen base weights: no weight gradient.
  train    = forward + backward;  embedding = forward without LoRA and head, at each sequence's
             real length (padding is not useful work).
  MFU      = FLOPs per second achieved / peak_gflops (measured fp32 F.linear rate on the same shapes)."""
