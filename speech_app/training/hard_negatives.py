"""A second pass on the windows of conversation a trained custom model fires on (hard negatives).

The first pass draws windows of continuous speech at every half window (conversation.py): most of them
are easy, and the few stretches of talk that sound like a word are seen about as often as any other.
Here the trained model listens to the same learn-side speech as `speech-app listen` would, every window
whose word probability reaches a fraction of the detection threshold is kept, and a short extra plan
fine-tunes the trained model with those windows as `_unknown_` (a share of the conversation draws) beside
all of the first pass's draws. Only the speech the recipe trains on is listened to: never the package's
calibration speech, which stays unheard for the check that follows.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np

from ..audio import load_audio
from ..data.clips import INT16_SCALE
from ..data.dataset import UNKNOWN_LABEL, DatasetIndex, Example
from ..streaming import BACKGROUND_LABELS, DETECTION_THRESHOLD

SCORE_FRACTION = 0.5  # of the detection threshold: a window whose word probability reaches this is kept
MAX_WINDOWS = 3000  # the highest-scoring windows kept (a model that fires everywhere needs no more to learn from)
LEARNING_RATE_FRACTION = 0.5  # of the recipe's rate: the second pass adjusts a trained model, it does not retrain it
WARMUP_STEPS = 4
SEED_OFFSET = 104_729  # the second pass draws other batches than the first


@dataclass
class HardWindows:
    """Windows of learn-side speech a model fired on: int16 (N, window_samples), and where each was cut."""

    clips: np.ndarray
    origins: list[tuple[str, int]]  # (file, first sample)
    scores: np.ndarray  # the window's highest word probability


def firing_windows(classifier, files: list[Path], fraction: float = SCORE_FRACTION,
                   limit: int = MAX_WINDOWS) -> HardWindows:
    """Every window of the recordings that `classifier` (evaluated as `listen` evaluates it, each file on its
    own) gives a word probability of at least `fraction` of the detection threshold; the `limit` highest."""
    from .conversation import record_evaluations

    window = classifier.window_samples
    words = [i for i, label in enumerate(classifier.labels) if label not in BACKGROUND_LABELS]
    clips, origins, scores = [], [], []
    for path in files:
        audio = load_audio(path)
        for at, row in record_evaluations(classifier, audio):
            score = float(np.max(row[words]))
            if score >= fraction * DETECTION_THRESHOLD and window <= at <= len(audio):  # whole windows of the file
                clips.append(np.clip(audio[at - window : at] * INT16_SCALE, -32768, 32767).astype(np.int16))
                origins.append((str(path), at - window))
                scores.append(score)
    order = np.argsort(scores)[::-1][:limit]
    return HardWindows(np.stack([clips[i] for i in order]) if len(order) else np.zeros((0, window), np.int16),
                       [origins[i] for i in order], np.array([scores[i] for i in order], dtype=np.float32))


def add_hard_windows(trainer, groups: np.ndarray, found: HardWindows, group: int) -> np.ndarray:
    """Append the windows to the trainer's training clips as `_unknown_` (and to its index, so the model file
    counts them); returns the groups with `group` for each."""
    clips, labels = trainer.splits["training"]
    unknown = trainer.index.labels.index(UNKNOWN_LABEL)
    trainer.splits["training"] = (np.concatenate([clips, found.clips]),
                                  np.concatenate([labels, np.full(len(found.clips), unknown, dtype=labels.dtype)]))
    added = [Example(f"{path}@{start}", UNKNOWN_LABEL, "training", "conversation (hard)", "real")
             for path, start in found.origins]
    trainer.index = DatasetIndex(trainer.index.labels, list(trainer.index.examples) + added, trainer.index.noise_files)
    return np.concatenate([groups, np.full(len(found.clips), group)])


def second_pass_draws(recipe, n_words: int, group: int, conversation_group: int):
    """The recipe's draw with `hard_negative_share` of the conversation draws given to the hard windows."""
    from .custom_words import class_draws

    draws = class_draws(recipe, n_words)
    unknown = dict(draws[1].groups)
    conversation = unknown[conversation_group]
    unknown[conversation_group] = conversation * (1.0 - recipe.hard_negative_share)
    unknown[group] = conversation * recipe.hard_negative_share
    return {**draws, 1: replace(draws[1], groups=unknown)}


def hard_negative_pass(trainer, groups: np.ndarray, recipe, files: list[Path], group: int, conversation_group: int,
                       on_stage: Callable[[str], None] | None = None) -> tuple[np.ndarray, HardWindows]:
    """Listen to `files` with the trained model, add the windows it fires on and fine-tune it for
    `recipe.hard_negative_steps` batches from where it is; returns the new groups and the windows."""
    from .conversation import listening_copy
    from .draws import share_weights
    from .plan import RunSpec, StepSchedule, TrainingPlan

    if on_stage:
        on_stage("listening for hard negatives")
    with listening_copy(trainer) as classifier:
        found = firing_windows(classifier, files)
    if not len(found.clips):
        return groups, found
    groups = add_hard_windows(trainer, groups, found, group)
    n_words = len(trainer.index.labels) - 2
    draws = second_pass_draws(recipe, n_words, group, conversation_group)
    weights = share_weights(trainer.training_labels, groups, draws)
    # the plan's runs start from the Trainer's initial weights: here, the trained model's
    trainer.initial_state = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
    schedule = StepSchedule(min(recipe.hard_negative_steps, recipe.steps), recipe.batch_size,
                            recipe.learning_rate * LEARNING_RATE_FRACTION, WARMUP_STEPS)
    first_pass = trainer.history
    run = RunSpec(weights, recipe.seed + SEED_OFFSET, stage="second pass: conversation the model fired on")
    trainer.execute(TrainingPlan(schedule, (run,)), on_stage)
    # the report shows both passes: the first as epoch 1, this one as epoch 2
    trainer.history = first_pass + [{**row, "epoch": 2} for row in trainer.history]
    trainer.epoch = 2
    return groups, found
