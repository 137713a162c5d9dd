"""A model's own decision settings: the streaming threshold, average and hold it is listened with.

A model file may carry them in its metadata (`streaming`: {"threshold", "averaging_ms", "hold_ms", "pause_ms", "why"}):
custom wake-word models get them from their recipe (training/custom_words.py), because a wake word said
now and then among hours of talk needs a longer average and hold than the 12 commands, whose defaults
(`streaming.RecognizerSettings`) were chosen for a quick answer. `settings_for` is the one place that
turns a file's metadata into the settings `speech-app listen`, the Live tab and the model file's own
false-alarm figures use: RecognizerSettings' defaults, then the file's own settings, then whatever the
user gave explicitly (a command-line option, the Live tab's sensitivity once moved), which wins.

No PyTorch here: `speech-app listen` on ONNX Runtime reads the file's settings without importing it.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import fields, replace
from pathlib import Path

from .streaming import RecognizerSettings

STREAMING_KEY = "streaming"  # the model file's metadata key
# the RecognizerSettings a model file may choose
MODEL_FIELDS = ("threshold", "averaging_ms", "hold_ms", "pause_ms", "recent_weighting")
# what a file that names its own settings gets where it does not name these: the value its settings were chosen with
# (files from before `recent_weighting` existed were calibrated on a plain mean of the evaluations)
UNNAMED_IN_OWN_SETTINGS = {"recent_weighting": 0.0}
METADATA_KEY = "speech_app"  # modelfile.METADATA_KEY (importing modelfile imports torch)


def recorded_settings(metadata: dict | None) -> dict[str, float]:
    """The decision settings a model file's metadata names, those that are usable numbers only (a damaged
    value falls back to the default rather than stopping the model from being used)."""
    recorded = (metadata or {}).get(STREAMING_KEY)
    if not isinstance(recorded, dict):
        return {}
    usable = {}
    for name in MODEL_FIELDS:
        value = recorded.get(name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            continue
        if (name == "threshold" and 0.0 < value <= 1.0) or (name != "threshold" and value >= 0.0):
            usable[name] = float(value)
    return usable


def settings_for(metadata: dict | None, overrides: dict | None = None,
                 base: RecognizerSettings | None = None) -> RecognizerSettings:
    """The settings a model is listened with: `base` (default: RecognizerSettings' defaults), then the model
    file's own (`metadata`, None: none), then `overrides` (the user's explicit choices; None: not given)."""
    known = {f.name for f in fields(RecognizerSettings)}
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    unknown = set(given) - known
    if unknown:
        raise ValueError(f"no such streaming setting: {', '.join(sorted(unknown))}")
    own = recorded_settings(metadata)
    if isinstance((metadata or {}).get(STREAMING_KEY), dict):
        own = {**UNNAMED_IN_OWN_SETTINGS, **own}
    return replace(base or RecognizerSettings(), **{**own, **given})


def file_metadata(path: str | os.PathLike | None) -> dict:
    """A model file's metadata (None: the shipped model), read without PyTorch; {} when it cannot be read
    (loading the model then says why)."""
    from safetensors import safe_open

    from .onnx_runtime import shipped_model_file

    try:
        with safe_open(str(path if path is not None else shipped_model_file()), framework="numpy") as handle:
            metadata = json.loads((handle.metadata() or {}).get(METADATA_KEY, "{}"))
    except Exception:  # noqa: BLE001 -- any unreadable file: the model loader names the problem
        return {}
    return metadata if isinstance(metadata, dict) else {}


def settings_of_file(path: str | os.PathLike | None, overrides: dict | None = None) -> RecognizerSettings:
    """`settings_for` of a model file (None: the shipped model)."""
    return settings_for(file_metadata(Path(path) if path is not None else None), overrides)


def describe(settings: RecognizerSettings) -> str:
    """The decision settings in words: "threshold 0.72, 250 ms average, held 125 ms, after a 600 ms pause"."""
    pause = f"after a {settings.pause_ms:.0f} ms pause" if settings.pause_ms > 0 else "no pause needed"
    weighted = " (the newer evaluations weigh more)" if settings.recent_weighting > 0 else ""
    return (f"threshold {settings.threshold:.2f}, {settings.averaging_ms:.0f} ms average{weighted}, "
            f"held {settings.hold_ms:.0f} ms, {pause}")


def settings_record(settings: RecognizerSettings, why: str) -> dict:
    """What a model file stores under STREAMING_KEY: the settings it is to be listened with, and why."""
    return {**{name: getattr(settings, name) for name in MODEL_FIELDS}, "why": why}
