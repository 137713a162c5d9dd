"""Which device runs the model (CUDA, Apple MPS, the CPU), and the precision it runs in there."""

from __future__ import annotations

import contextlib
import functools

import torch

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")  # what `--device` accepts; auto: the first available
TRAINING_PRECISIONS = ("auto", "float32", "bfloat16")  # what `train --precision` accepts
AUTOCAST_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16}  # float32: no autocast


def pick_device(name: str = "auto") -> torch.device:
    """auto: CUDA, then Apple MPS, then the CPU."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA GPU is available")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError("--device mps: Apple MPS is not available")
    return torch.device(name)


@functools.cache
def native_bfloat16() -> bool:
    """Whether this CPU multiplies bfloat16 in hardware (AMX or AVX-512 BF16): there a bfloat16 copy of the
    model ran 2.2x faster than float32 at the same accuracy; without it bfloat16 is emulated and slower."""
    cpu = torch.cpu
    return bool(getattr(cpu, "_is_amx_tile_supported", lambda: False)()
                or getattr(cpu, "_is_avx512_bf16_supported", lambda: False)())


def training_precision(precision: str, device: torch.device) -> str:
    """The arithmetic of a training run's forward and backward passes (the weights and the optimizer stay
    float32: autocast). auto: float16 on CUDA (its loss is scaled), bfloat16 on a CPU that has it in
    hardware (one training step reached 86% of the float32 matmul rate against 38% in float32, and the
    custom-word and development-test comparisons in training/studies/PRECISION.md found no loss of accuracy),
    float32 elsewhere (Apple MPS autocast does not cover LSTMs)."""
    if precision not in TRAINING_PRECISIONS:
        raise ValueError(f"--precision {precision}: choose one of {', '.join(TRAINING_PRECISIONS)}")
    if precision == "bfloat16" and device.type == "mps":
        raise ValueError("--precision bfloat16: Apple MPS autocast does not cover LSTMs; use float32")
    if precision == "bfloat16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ValueError(f"--precision bfloat16: {torch.cuda.get_device_name(device)} has no bfloat16; use auto")
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "float16"
    return "bfloat16" if device.type == "cpu" and native_bfloat16() else "float32"


def autocast_for(device: torch.device, precision: str | None = None):
    """Mixed precision for the model's forward pass. None (batch inference): float16 on CUDA, float32
    elsewhere (on the CPU a bfloat16 copy of the model runs instead, see inference.model_for_precision).
    Else a precision from `training_precision`: autocast to it, none for float32."""
    if precision is None:
        precision = "float16" if device.type == "cuda" else "float32"
    dtype = AUTOCAST_DTYPES.get(precision)
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()
