"""Training precision: ``fp32``, ``bf16`` (matrix products under ``torch.autocast``) or
``auto`` — bf16 where the device multiplies bfloat16 in hardware, else fp32. Shared by the
HGNN and the generative model."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

PRECISIONS = ("auto", "fp32", "bf16")
"""The choices of a ``precision`` setting."""


def fast_bf16(device: str | torch.device) -> bool:
    """Whether ``device`` multiplies bfloat16 matrices in hardware: a CUDA GPU with bf16
    support, or an x86 CPU with AVX512-BF16 or AMX-BF16 (elsewhere torch emulates bf16,
    slower than float32)."""
    import torch

    device = torch.device(device)
    if device.type == "cuda":  # Ampere (compute capability 8) and later
        return torch.cuda.is_available() and torch.cuda.get_device_capability(device)[0] >= 8
    caps = getattr(torch.cpu, "get_capabilities", None)  # torch >= 2.9
    if device.type != "cpu" or caps is None:
        return False
    found = caps()
    return bool(found.get("avx512_bf16") or found.get("amx_bf16"))


def resolve_precision(precision: str, device: str | torch.device) -> str:
    """``fp32`` or ``bf16``: ``auto`` is bf16 where :func:`fast_bf16`, else fp32."""
    if precision != "auto":
        return precision
    return "bf16" if fast_bf16(device) else "fp32"
