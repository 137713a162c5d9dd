"""Which device runs the model (CUDA, Apple MPS, the CPU), and the precision it runs in there."""

from __future__ import annotations

import contextlib
import functools
import json
import platform
import time
from pathlib import Path

import torch

from .atomic_files import write_text
from .cache import cache_folder

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
    """Whether this CPU has bfloat16 instructions (AMX or AVX-512 BF16). Having them is not enough for them to
    pay: see bfloat16_pays."""
    cpu = torch.cpu
    return bool(getattr(cpu, "_is_amx_tile_supported", lambda: False)()
                or getattr(cpu, "_is_avx512_bf16_supported", lambda: False)())


BFLOAT16_GAIN = 0.85  # bfloat16 is chosen when its LSTM pass takes under this share of float32's CPU time
PROBE_REPEATS = 3  # each precision's best of this many passes
PROBE_SHAPE = (64, 51, 96, 128)  # batch, frames, inputs, units: one batch of the shipped model's first LSTM


@functools.cache
def bfloat16_pays() -> bool:
    """Whether the CPU runs the model faster in bfloat16. With AMX it does (2.2x at the same accuracy). With
    AVX-512 BF16 alone it depends on the chip: 1.8x on an AMD EPYC, 0.54x on an Intel Xeon (batch inference
    1,390 clips/s in bfloat16 against 2,583 in float32), so there a short probe decides, once per machine
    and torch version (kept in the cache folder). Without either it is emulated and slower."""
    cpu = torch.cpu
    if getattr(cpu, "_is_amx_tile_supported", lambda: False)():
        return True
    if not native_bfloat16():
        return False
    record = cache_folder("cpu") / "bfloat16.json"
    key = f"{cpu_name()} | torch {torch.__version__}"
    with contextlib.suppress(OSError, ValueError):
        known = json.loads(record.read_text())
        if known.get("key") == key:
            return bool(known["pays"])
    ratio = _bfloat16_time_ratio()
    pays = ratio < BFLOAT16_GAIN
    with contextlib.suppress(OSError):  # a read-only cache only means probing again next time
        record.parent.mkdir(parents=True, exist_ok=True)
        write_text(record, json.dumps({"key": key, "bfloat16_over_float32": round(ratio, 3), "pays": pays}))
    return pays


def cpu_name() -> str:
    """The CPU's model name (Linux), else what platform says."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _bfloat16_time_ratio() -> float:
    """CPU time of one bidirectional LSTM pass in bfloat16 over float32, each the best of a few, on one thread
    (about 0.1 s of CPU in all). Thread time, so other processes on the machine do not move it much."""
    batch, frames, inputs, units = PROBE_SHAPE
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        generator = torch.Generator().manual_seed(0)
        x = torch.randn(batch, frames, inputs, generator=generator)
        layers = {dtype: torch.nn.LSTM(inputs, units, batch_first=True, bidirectional=True).to(dtype)
                  for dtype in (torch.float32, torch.bfloat16)}
        best = dict.fromkeys(layers, float("inf"))
        with torch.no_grad():
            for repeat in range(PROBE_REPEATS + 1):  # the first pass of each warms up, untimed
                for dtype, layer in layers.items():
                    start = time.thread_time()
                    layer(x.to(dtype))
                    if repeat:
                        best[dtype] = min(best[dtype], time.thread_time() - start)
    finally:
        torch.set_num_threads(threads)
    return best[torch.bfloat16] / max(best[torch.float32], 1e-9)


def training_precision(precision: str, device: torch.device) -> str:
    """The arithmetic of a training run's forward and backward passes (the weights and the optimizer stay
    float32: autocast). auto: float16 on CUDA (its loss is scaled), bfloat16 on a CPU where it is faster
    (bfloat16_pays; with AMX one training step reached 86% of the float32 matmul rate against 38% in
    float32, and the custom-word and development-test comparisons in training/studies/PRECISION.md found no
    loss of accuracy), float32 elsewhere (Apple MPS autocast does not cover LSTMs)."""
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
    return "bfloat16" if device.type == "cpu" and bfloat16_pays() else "float32"


def autocast_for(device: torch.device, precision: str | None = None):
    """Mixed precision for the model's forward pass. None (batch inference): float16 on CUDA, float32
    elsewhere (on the CPU a bfloat16 copy of the model runs instead, see inference.model_for_precision).
    Else a precision from `training_precision`: autocast to it, none for float32."""
    if precision is None:
        precision = "float16" if device.type == "cuda" else "float32"
    dtype = AUTOCAST_DTYPES.get(precision)
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()
