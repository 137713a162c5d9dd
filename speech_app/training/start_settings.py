"""The model and MFCC settings a run starts with: a fine-tune's come from the model it starts from,
a resumed run's from its checkpoint; a setting the user asked for that differs stops the run."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from ..features import FeatureConfig
from ..model import ModelConfig
from ..modelfile import ModelBundle

MODEL_SETTING_FLAGS = {"hidden_size": "--hidden-size", "num_layers": "--layers"}  # the `train` options of
# ModelConfig fields: built from them (cli/train.py), and named when one does not match


def starting_settings(init_from: ModelBundle, wanted: ModelConfig | dict | None = None) -> ModelConfig:
    """The model settings of a fine-tuning run: those of the model it starts from.

    `wanted` holds settings the user asked for (a dict of explicit ones, or a whole ModelConfig);
    one that differs from the starting model's raises ValueError, since loading the weights into
    another shape would silently train most of the model from scratch.
    """
    source = init_from.path.name if init_from.path else "the starting model"
    return matching_settings(init_from.model.config, wanted, source, "when fine-tuning, model settings come from "
                             "the model it starts from; leave {flag} out or use --init-from none")


def resumed_settings(state: dict, checkpoint: Path,
                     wanted: ModelConfig | dict | None) -> tuple[ModelConfig | dict | None, FeatureConfig | None]:
    """The model and MFCC settings of a resumed run: those it started with, from its checkpoint
    (one written before they were saved there: the caller's, as before). A different model setting
    in `wanted` raises ValueError rather than failing to load the weights."""
    if "model_config" not in state:
        return wanted, None
    theirs = matching_settings(ModelConfig.from_dict(state["model_config"]), wanted, checkpoint.name,
                               "a resumed run keeps the model settings it started with; leave {flag} out, "
                               "or delete the checkpoint to start over")
    return theirs, FeatureConfig.from_dict(state["features"])


def matching_settings(theirs: ModelConfig, wanted: ModelConfig | dict | None, source: str, advice: str) -> ModelConfig:
    """`theirs`, after checking that every setting in `wanted` (a dict of explicit ones, or a whole
    ModelConfig) agrees with it; the first that does not raises ValueError naming its option."""
    if isinstance(wanted, ModelConfig):
        wanted = {k: v for k, v in asdict(wanted).items() if k not in ("n_features", "n_classes", "dropout")}
    for name, value in (wanted or {}).items():
        if value is not None and getattr(theirs, name) != value:
            flag = MODEL_SETTING_FLAGS.get(name, name)
            raise ValueError(f"{flag} {value} does not match {source} ({getattr(theirs, name)}): "
                             + advice.format(flag=flag))
    return theirs
