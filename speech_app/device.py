"""Which device runs the model (CUDA, Apple MPS, the CPU), and the precision it runs in there."""

from __future__ import annotations

import torch

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")  # what `--device` accepts; auto: the first available


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


def autocast_for(device: torch.device):
    """Mixed precision where it pays: float16 on CUDA; float32 elsewhere (on the CPU, bfloat16 LSTMs are
    slower than float32 on most machines, and Apple MPS autocast does not cover LSTMs)."""
    return torch.autocast("cuda", dtype=torch.float16, enabled=device.type == "cuda")
