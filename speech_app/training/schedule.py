"""The learning rate of each training step: linear warm-up, then a cosine decay over the whole run."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .trainer import TrainConfig

WARMUP_FRACTION = 0.05  # share of the run's steps spent warming up: a fine-tune of a few epochs still decays
FINAL_LR_FRACTION = 0.02  # the cosine decay ends at this share of the peak learning rate, not at zero


def lr_factor(step: int, total_steps: int, warmup_steps: int, final_fraction: float = 0.0) -> float:
    """Linear warm-up, then cosine decay to `final_fraction` of the peak at the run's last step."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - 1 - warmup_steps)
    return final_fraction + (1.0 - final_fraction) * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def warmup_steps_for(config: TrainConfig, total_steps: int) -> int:
    """The configured warm-up, or WARMUP_FRACTION of the run (at least one step)."""
    if config.warmup_steps is not None:
        return config.warmup_steps
    return max(1, round(WARMUP_FRACTION * total_steps))


def learning_rate_at(config: TrainConfig, step: int, steps_per_epoch: int) -> float:
    """The learning rate of one step of a run of `config.epochs` epochs: the schedule spans the whole
    budget, so it depends on --epochs (a resumed run must keep the same --epochs to continue it)."""
    total_steps = config.epochs * steps_per_epoch
    warmup = warmup_steps_for(config, total_steps)
    return config.learning_rate * lr_factor(step, total_steps, warmup, config.final_lr_fraction)
