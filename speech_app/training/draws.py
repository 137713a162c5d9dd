"""Which training clips a run draws, and how often: a draw weight per clip (zero: never drawn).

The dataset recipe balances the classes (`sampling_weights`); a recipe of fixed shares (the custom
words) gives each class its share of the draws and splits it among groups of clips (`share_weights`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def sampling_weights(labels: np.ndarray, synthetic: np.ndarray, power: float, synthetic_share: float,
                     apart: np.ndarray | None = None, apart_share: float = 0.0) -> np.ndarray:
    """Draw weight per training clip (the dataset recipe).

    Class c gets a share of the draws proportional to count_c**(1 - power) (power 0: as in the
    data; 1: every class equally). Inside a class with real clips, synthetic ones get their share
    of the clips, but at most `synthetic_share` of the class's draws: real voices stay the majority.
    Clips marked `apart` (windows of continuous speech) are not counted in their class's size; they get
    `apart_share` of its draws, the other clips the rest: adding thousands of windows to `_unknown_`
    leaves every class's share of the draws as it was.
    """
    apart = np.zeros(len(labels), dtype=bool) if apart is None else apart
    weights = np.zeros(len(labels), dtype=np.float64)
    for c in np.unique(labels):
        in_class = (labels == c) & ~apart
        n_synth = int((in_class & synthetic).sum())
        n_real = int(in_class.sum()) - n_synth
        mass = float(in_class.sum()) ** (1.0 - power)
        share = 1.0 if n_real == 0 else min(n_synth / (n_real + n_synth), synthetic_share)
        if n_real:
            weights[in_class & ~synthetic] = mass * (1.0 - share) / n_real
        if n_synth:
            weights[in_class & synthetic] = mass * share / n_synth
        set_apart = (labels == c) & apart
        if set_apart.any():
            if not in_class.any():  # a class of set-apart clips alone: counted like any class
                weights[set_apart] = float(set_apart.sum()) ** (1.0 - power) / set_apart.sum()
                continue
            weights[in_class] *= 1.0 - apart_share
            weights[set_apart] = mass * apart_share / set_apart.sum()
    return weights


@dataclass(frozen=True)
class ClassDraw:
    """One class's share of all draws, split among groups of its clips (a recipe's own group ids:
    takes, synthetic speech, negatives...). A group with no clip passes its share to the others."""

    share: float
    groups: dict[int, float]  # group id -> share of the class's draws


def share_weights(labels: np.ndarray, groups: np.ndarray, draws: dict[int, ClassDraw],
                  held_out: np.ndarray | None = None) -> np.ndarray:
    """Draw weight of each clip: its class's share, split among the class's groups as `draws` says,
    and evenly among a group's clips. Held-out clips get no weight."""
    usable = np.ones(len(labels), bool) if held_out is None else ~held_out
    weights = np.zeros(len(labels))
    for class_id in np.unique(labels):
        if int(class_id) not in draws:  # a class never drawn is said so, with ClassDraw(0.0, {})
            raise ValueError(f"no draw share for class {int(class_id)}")
        draw = draws[int(class_id)]
        in_class = usable & (labels == class_id)
        present = {g: s for g, s in draw.groups.items() if (in_class & (groups == g)).any()}
        for group, share in present.items():
            rows = in_class & (groups == group)
            weights[rows] = draw.share * share / sum(present.values()) / rows.sum()
    return weights


def epoch_order(weights: np.ndarray, epoch: int, seed: int, n_draws: int) -> np.ndarray:
    """Indices for one epoch (or one run), drawn with replacement by weight; the same for every DDP rank."""
    rng = np.random.default_rng([seed, epoch])
    return rng.choice(len(weights), size=n_draws, replace=True, p=weights / weights.sum())
