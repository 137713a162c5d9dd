"""The checkpoint beside a model file, written after each epoch of the dataset recipe (`--resume`
continues from it): plain tensors and numbers, loaded with weights_only=True (no unpickling of code)."""

from __future__ import annotations

from pathlib import Path

import torch

CHECKPOINT_KEYS = ("model", "optimizer", "step", "epoch", "best_accuracy", "best_epoch", "best_state", "history",
                   "labels", "clip_seconds")


def read_checkpoint(path: Path, device: str | torch.device = "cpu") -> dict:
    """A checkpoint's state; a damaged one (truncated, not a checkpoint) is one ValueError naming it."""
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as err:  # RuntimeError, UnpicklingError, EOFError, ...: their text is rarely readable
        raise ValueError(f"{path}: damaged checkpoint (cut short or not a checkpoint: {type(err).__name__}); "
                         f"delete it or drop --resume") from None
    if not isinstance(state, dict) or any(key not in state for key in CHECKPOINT_KEYS):
        raise ValueError(f"{path}: not a speech-app checkpoint; delete it or drop --resume")
    return state


def checkpoint_path(model_path: Path) -> Path:
    return model_path.with_name(model_path.name + ".ckpt")
