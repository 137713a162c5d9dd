"""What a recipe asks the Trainer to do: a TrainingPlan of runs of a fixed budget of steps.

Every run starts over from the weights the Trainer began with (the starting model, with its new
output layer) and trains on the clips it decoded once, so a recipe can train several models for
the price of one decoding. A recipe says, and the Trainer (`Trainer.execute`) does:
- what each run draws: a draw weight per training clip, zero for clips held out (`draws.py`
  builds them from class and group shares);
- how long and how fast: the steps, batch size and learning-rate schedule shared by the runs;
- each run's seed: its batches, augmentation, dropout and masking;
- what to measure: the held-out clips of a run, whose confusion matrix the run returns, and what
  else to look at in the run's model (`inspect`);
- what the model keeps: the last run's weights, or the average of every run's.

The custom-word recipe (custom_words.py) is two plans: its estimate (one run per held-out fold,
measured on the fold) and its final model (one run, or from text alone several averaged).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .schedule import FINAL_LR_FRACTION, lr_factor


@dataclass(frozen=True)
class StepSchedule:
    """The budget of each run: `steps` batches of `batch_size` clips; the learning rate warms up
    linearly for `warmup_steps`, then decays (cosine) to `final_lr_fraction` of the peak."""

    steps: int
    batch_size: int
    learning_rate: float
    warmup_steps: int
    final_lr_fraction: float = FINAL_LR_FRACTION

    def learning_rate_at(self, step: int, total_steps: int) -> float:
        """The rate of `step` of a run of `total_steps` (per process: the steps divide among DDP ranks)."""
        return self.learning_rate * lr_factor(step, total_steps, self.warmup_steps, self.final_lr_fraction)


@dataclass(frozen=True, eq=False)
class RunSpec:
    """One run: which clips it draws how often, with which seed, and which it is measured on."""

    weights: np.ndarray  # draw weight per training clip (zero: never drawn)
    seed: int
    measure: np.ndarray | None = None  # bool per training clip: measured after the run (held out)
    stage: str | None = None  # what the caller's on_stage hears as the run starts
    # called with the Trainer after the run (its model trained, before the next run starts over): what
    # else the recipe measures on it (the custom recipe: its held-out takes, streamed); kept in the outcome
    inspect: Callable[[object], object] | None = None


@dataclass(frozen=True)
class TrainingPlan:
    """Runs from the same start with one schedule; the model ends with the last run's weights, or
    with `average` the mean of every run's (batch-norm statistics included: the runs start together
    and stay close)."""

    schedule: StepSchedule
    runs: tuple[RunSpec, ...]
    average: bool = False

    def __post_init__(self):
        if not self.runs:
            raise ValueError("a training plan needs at least one run")


@dataclass
class RunOutcome:
    """What one run of a plan gave: its training loss and accuracy, and the confusion matrix of its
    measured clips (true label by row, given label by column; None when it measured none)."""

    loss: float
    accuracy: float
    confusion: np.ndarray | None = None
    inspected: object = None  # what the run's `inspect` gave
