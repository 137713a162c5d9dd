"""How the app reaches models and audio devices, in one replaceable place. No Qt.

The window is built with an `AppServices`; tests give it stand-ins (a file instead of a microphone,
a tone model instead of a trained one) without patching module globals.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..audio import SAMPLE_RATE
from ..capture import AudioSource, InputDevice, MicrophoneCapture, list_input_devices, sounddevice_module
from ..streaming import Classifier


def load_command_classifier(path: Path | None) -> Classifier:
    from ..inference import CommandClassifier

    return CommandClassifier.from_file(path, "cpu")


def play_with_sounddevice(samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    """Start playing and return at once; raises sounddevice.PortAudioError without an output, and
    NoInputDeviceError when the audio server does not answer (PortAudio starts as for the microphone)."""
    sounddevice_module().play(samples, sample_rate)


@dataclass
class AppServices:
    load_classifier: Callable[[Path | None], Classifier] = load_command_classifier
    list_devices: Callable[[], list[InputDevice]] = list_input_devices
    open_source: Callable[[str | int | None], AudioSource] = MicrophoneCapture
    play: Callable[[np.ndarray, int], None] = play_with_sounddevice
