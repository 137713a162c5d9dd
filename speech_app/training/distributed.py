"""Training on several processes under `torchrun` (PyTorch DDP: NCCL on CUDA, gloo on the CPU), and
the run's log lines, which only the main process writes."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

import torch
import torch.distributed as dist

if TYPE_CHECKING:
    from .trainer import TrainHooks


class Distributed:
    """Rank and world size under torchrun; a single process otherwise."""

    def __init__(self, device: torch.device):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if self.world > 1 and not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()

    def all_sum(self, values: list[float]) -> list[float]:
        if self.world == 1:
            return values
        tensor = torch.tensor(values, dtype=torch.float64)
        dist.all_reduce(tensor)
        return tensor.tolist()

    def close(self) -> None:
        if self.world > 1 and dist.is_initialized():
            dist.destroy_process_group()


def log(message: str, dist_info: Distributed | None = None, hooks: TrainHooks | None = None) -> None:
    """A line of the run's log: to the caller's on_log hook (the GUI), else to stderr; from the main
    process only."""
    if dist_info is not None and not dist_info.is_main:
        return
    if hooks is not None and hooks.on_log is not None:
        hooks.on_log(message)
    else:
        print(message, file=sys.stderr, flush=True)
