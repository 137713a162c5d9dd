"""What a sensitivity setting means for the model in use, from the model file's conversation check. No Qt.

A custom model file records how many false alarms it gave while listening to conversation it never
trained on, at a range of thresholds (`conversation.curve` in its metadata: rows of [threshold, false
alarms per hour], and where the file has it, a third value: the share of the user's words heard at
that threshold). The Live tab turns the slider's threshold into words by interpolating between the
stored thresholds; outside them it says "more than" or "fewer than" the nearest stored figure.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

# the text when the file has no curve: the shipped model was trained before the check existed, and so
# were custom models made by earlier versions
NO_CURVE_SHIPPED = "The shipped model has no record of its false alarms in conversation (custom models trained now do)"
NO_CURVE = "This model has no record of its false alarms in conversation (trained before that check)"


@dataclass(frozen=True)
class ConversationCurve:
    """A model file's false alarms per hour of conversation (and share of words heard) by threshold."""

    thresholds: np.ndarray  # ascending
    per_hour: np.ndarray
    heard: np.ndarray | None  # share of the user's words heard; None where the file does not record it
    minutes: float  # of conversation listened to: one false alarm in it is 60 / minutes per hour
    held_out_recognized: float | None = None  # the estimate's held-out takes recognized (no threshold)
    # the averaging and hold the curve was measured with (its threshold varies); None: a file from before they
    # were recorded, measured at the streaming defaults of its day
    settings: dict | None = None

    @classmethod
    def from_metadata(cls, meta: dict) -> ConversationCurve | None:
        """The curve of a model file's metadata, or None when it has none (or a damaged one)."""
        recorded = meta.get("conversation") or {}
        try:
            rows = sorted(tuple(map(float, row)) for row in recorded.get("curve") or [])
            minutes = float(recorded.get("minutes") or 0.0)
        except (TypeError, ValueError):
            return None
        if not rows or min(map(len, rows)) < 2:
            return None
        column = lambda k: np.array([row[k] for row in rows])  # noqa: E731
        heard = column(2) if min(map(len, rows)) >= 3 else None
        estimate = meta.get("estimate") or {}
        recognized = estimate.get("word_accuracy")
        settings = recorded.get("settings") if isinstance(recorded.get("settings"), dict) else None
        return cls(column(0), column(1), heard, minutes, float(recognized) if recognized is not None else None,
                   settings)

    def at(self, threshold: float) -> tuple[float, float | None, str]:
        """(false alarms per hour, share heard or None, where): `where` is "inside" the stored thresholds,
        "below" the lowest (more false alarms than the figure) or "above" the highest (fewer)."""
        where = "below" if threshold < self.thresholds[0] else "above" if threshold > self.thresholds[-1] else "inside"
        per_hour = float(np.interp(threshold, self.thresholds, self.per_hour))
        heard = float(np.interp(threshold, self.thresholds, self.heard)) if self.heard is not None else None
        return per_hour, heard, where


def model_curve(path: Path | None) -> ConversationCurve | None:
    """The conversation curve of a model file (None: the shipped model), or None without one."""
    from ..modelfile import ModelFileError, read_metadata, shipped_model_path

    try:
        return ConversationCurve.from_metadata(read_metadata(path if path is not None else shipped_model_path()))
    except (ModelFileError, OSError):  # the Live tab reports an unreadable model when it loads it
        return None


def rate_text(per_hour: float) -> str:
    return f"{per_hour:.1f}" if per_hour < 1 else f"{per_hour:.0f}"


def sensitivity_text(curve: ConversationCurve | None, threshold: float, shipped: bool = False) -> str:
    """What `threshold` means for the model: "about N false alarms an hour of conversation, M% of your
    words heard", or why that cannot be said."""
    if curve is None:
        return NO_CURVE_SHIPPED if shipped else NO_CURVE
    per_hour, heard, where = curve.at(threshold)
    amount = {"inside": "about", "below": "more than", "above": "fewer than"}[where]
    text = f"{amount} {rate_text(per_hour)} false alarms an hour of conversation"
    if heard is not None:
        share = {"inside": "", "below": "at least ", "above": "at most "}[where]
        return f"{text[0].upper()}{text[1:]}, {share}{heard:.0%} of your words heard"
    text = f"{text[0].upper()}{text[1:]}"
    if curve.held_out_recognized is not None:
        return (f"{text}; the share of your words heard at this setting is not recorded "
                f"({curve.held_out_recognized:.0%} of held-out takes recognized)")
    return f"{text}; the share of your words heard is not recorded"


def sensitivity_tip(curve: ConversationCurve | None, settings=None) -> str:
    """How the figure was measured, for the label's tooltip; `settings` (RecognizerSettings): those the model
    is listened with, whose average and hold the figure should have been measured with."""
    if curve is None:
        return "Train a custom model to get this figure: training listens to conversation the model never heard."
    one = 60.0 / curve.minutes if curve.minutes else float("nan")
    tip = (f"From the model file: measured while it listened to {curve.minutes:.1f} min of conversation it never "
           f"trained on, at thresholds {curve.thresholds[0]:.2f}-{curve.thresholds[-1]:.2f} (between them the "
           f"figure is interpolated). At that length one false alarm counts as {one:.0f} an hour.")
    return tip + (" " + settings_note(curve, settings) if settings is not None else "")


def settings_note(curve: ConversationCurve, settings) -> str:
    """Whether the curve's averaging and hold are those the model is listened with."""
    in_use = f"a {settings.averaging_ms:.0f} ms average, held {settings.hold_ms:.0f} ms"
    measured = curve.settings
    if measured is None:
        return f"Listened to with {in_use}; the file does not say which average and hold the figure was measured with."
    # a curve recorded before the pause rule existed was measured without it (pause 0)
    if all(abs(float(measured.get(k, 0.0 if k == "pause_ms" else -1)) - getattr(settings, k)) < 1e-6
           for k in ("averaging_ms", "hold_ms", "pause_ms")):
        return f"Measured as the model is listened to: {in_use}."
    return (f"Measured with a {float(measured.get('averaging_ms', 0)):.0f} ms average, held "
            f"{float(measured.get('hold_ms', 0)):.0f} ms, but listened to with {in_use}: only a guide.")
