"""Linear-layer kernels for ``numerics="fast"``: ``y = x W^T + b`` with the weight prepared once.

Registered in the kernel registry as kind ``"linear"``; every entry is a ``LinearKernel`` with

    pack(weight [out, in] fp32) -> prepared weight (any object)
    apply(x [..., in] fp32, prepared, bias [out] fp32 or None) -> y [..., out] fp32

and ``kernel(x, weight, bias)`` = ``apply(x, pack(weight), bias)``. ``"fp32"`` (``F.linear``)
is the reference every other entry is tested against. Which one a model uses is decided by
``kernels.fast.choose_fast_plan`` from what the CPU has and measures.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class LinearKernel:
    name: str
    pack: Callable[[torch.Tensor], object]
    apply: Callable[[torch.Tensor, object, torch.Tensor | None], torch.Tensor]

    def __call__(self, x, weight, bias=None):
        return self.apply(x, self.pack(weight), bias)


def _add_bias(y: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    return y if bias is None else y + bias


# fp32: MKL's sgemm; exact up to summation order.
FP32 = LinearKernel("fp32", pack=lambda w: w.float().contiguous(), apply=F.linear)


def _apply_bf16(x, weight_bf16, bias):
    # [..., in] -> bf16 operands, fp32 accumulation inside the GEMM, fp32 result.
    return _add_bias(F.linear(x.to(torch.bfloat16), weight_bf16).float(), bias)


# bf16 operands: the fast path on CPUs with bf16 dot products (avx512_bf16, AMX), where oneDNN
# runs it at 2x (AVX-512 BF16) to ~10x (AMX) the fp32 rate; elsewhere it runs, slowly.
BF16 = LinearKernel("bf16", pack=lambda w: w.to(torch.bfloat16).contiguous(), apply=_apply_bf16)


def quantize_int8_per_row(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric per-output-row int8: weight [out, in] -> (int8 [out, in], scale [out] fp32),
    weight ~= int8 * scale[:, None]. A zero row gets scale 1 (its int8 row is 0)."""
    w = weight.float()
    scale = w.abs().amax(dim=1) / 127.0
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    q = torch.round(w / scale[:, None]).clamp(-127, 127).to(torch.int8)
    return q.contiguous(), scale


def _pack_int8(weight):
    q, scale = quantize_int8_per_row(weight)
    return q, scale.to(torch.bfloat16)


def _apply_int8(x, packed, bias):
    q, scale_bf16 = packed
    lead, k = x.shape[:-1], x.shape[-1]
    # ATen's weight-only int8 matmul: bf16 activations [M, in], int8 weight [out, in], bf16
    # per-row scales; it streams 1 byte per weight instead of 4, which is what a GEMV with a
    # few rows is limited by (memory bandwidth). fp32 activations take a scalar path there.
    y = torch.ops.aten._weight_int8pack_mm(x.reshape(-1, k).to(torch.bfloat16), q, scale_bf16)
    return _add_bias(y.float().reshape(*lead, q.shape[0]), bias)


INT8_WEIGHT = LinearKernel("int8_weight", pack=_pack_int8, apply=_apply_int8)


def _pack_int8x2(weight):
    # Two int8 levels: weight ~= q1 * s1 + q2 * s2, q2 quantising what q1 leaves over. Half
    # the bytes of fp32 (like bf16 storage) at ~1/100 of one level's error (measured on a
    # 512 -> 1408 layer: 0.04% relative instead of 0.75%; one level moved WQL by up to ~0.8%).
    q1, s1 = quantize_int8_per_row(weight)
    q2, s2 = quantize_int8_per_row(weight.float() - q1.float() * s1[:, None])
    return q1, s1.half(), q2, s2.half()


def _apply_int8x2(x, packed, bias):
    q1, s1, q2, s2 = packed
    lead, k = x.shape[:-1], x.shape[-1]
    rows = x.reshape(-1, k)
    # fp16 activations (11 significant bits; bf16's 8 would dominate the error: bf16 inputs
    # and outputs alone cost ~0.25% per layer), each row scaled to max |x| = 1 first so that
    # no value can leave fp16's range. ATen (2.13) vectorises this op for bf16 activations
    # only; with fp16 it runs ~10x slower than an fp32 GEMV on AVX2 (measured), so the fast
    # plan, which times it, picks it only where it pays.
    row_max = rows.abs().amax(dim=1, keepdim=True).clamp_min(1e-30)  # [M, 1]
    x16 = (rows / row_max).half()
    y = torch.ops.aten._weight_int8pack_mm(x16, q1, s1).float()
    y += torch.ops.aten._weight_int8pack_mm(x16, q2, s2).float()
    return _add_bias((y * row_max).reshape(*lead, q1.shape[0]), bias)


INT8X2_WEIGHT = LinearKernel("int8x2_weight", pack=_pack_int8x2, apply=_apply_int8x2)


def _int8_unavailable() -> str | None:
    if not hasattr(torch.ops.aten, "_weight_int8pack_mm"):
        return "this torch build has no aten::_weight_int8pack_mm"
    return None


def _register() -> None:
    from rexforge.kernels.registry import register_kernel

    register_kernel(
        "fp32", FP32, priority=0, kind="linear", description="F.linear in fp32; the reference"
    )
    register_kernel(
        "bf16", BF16, priority=-1, kind="linear",
        description="bf16 operands, fp32 accumulation (fast with avx512_bf16 / AMX)",
    )  # fmt: skip
    register_kernel(
        "int8_weight", INT8_WEIGHT, priority=-2, kind="linear",
        unavailable_reason=_int8_unavailable,
        description="weight-only int8 per output row, bf16 activations (memory-bound GEMV)",
    )  # fmt: skip
    register_kernel(
        "int8x2_weight", INT8X2_WEIGHT, priority=-3, kind="linear",
        unavailable_reason=_int8_unavailable,
        description="weight-only two-level int8 (2 bytes/weight, ~fp16 accuracy), fp16 activations",
    )  # fmt: skip


_register()
