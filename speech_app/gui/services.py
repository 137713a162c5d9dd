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


RUNTIME_NAMES = {"onnx": "ONNX Runtime", "torch": "PyTorch"}


def load_command_classifier(path: Path | None) -> Classifier:
    from ..inference import CommandClassifier

    return CommandClassifier.from_file(path, "cpu")


@dataclass(frozen=True)
class LiveClassifier:
    """The Live tab's model on the runtime it runs on."""

    classifier: Classifier
    runtime: str  # "onnx", "torch", or a stand-in's class name
    note: str = ""  # why it is not on ONNX Runtime, or that an export was made


def load_live_classifier(path: Path | None, runtime: str = "auto") -> LiveClassifier:
    """The model on ONNX Runtime where that pays (onnx_runtime.choose_runtime), else on PyTorch.

    The app imports torch anyway (batches and training need it), so ONNX Runtime saves CPU, not memory:
    half the CPU per hop of PyTorch with NumPy's BLAS on one thread, 1.6x PyTorch's without that cap
    (benchmarks/bench_gui_live.py, shipped model, 2 busy cores: 2.49 / 4.64 / 7.62 ms per 125 ms hop).
    "auto" uses an export that exists (the shipped model has one; `listen` makes one per model) and
    never waits for one to be made: PyTorch listens at once; "onnx" makes one (in a child process), and
    where it cannot, PyTorch runs the model and the note says why."""
    from ..onnx_runtime import RuntimeChoice, RuntimeUnavailableError, choose_runtime, limit_numpy_threads
    from ..streaming import LIVE_PRECISION

    try:
        choice = choose_runtime(path, runtime, LIVE_PRECISION, make_missing=runtime == "onnx")
    except RuntimeUnavailableError as err:
        choice = RuntimeChoice("torch", None, str(err))
    if choice.runtime == "onnx":
        # NumPy's BLAS threads made the front end's small mel products cost 3x the CPU (the bench above);
        # the app's other numpy work gains nothing from them either (its batches and training run on torch)
        limit_numpy_threads()
        return LiveClassifier(choice.classifier, "onnx", choice.note)
    return LiveClassifier(load_command_classifier(path), "torch", choice.note)


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
    # the Live tab's model on a runtime ("auto", "onnx", "torch"); left out: ONNX Runtime or PyTorch with the
    # real loader, and a stand-in `load_classifier` (tests) used as it is, whatever the runtime asked for
    load_live_classifier: Callable[[Path | None, str], LiveClassifier] | None = None

    def __post_init__(self):
        if self.load_live_classifier is None:
            if self.load_classifier is load_command_classifier:
                self.load_live_classifier = load_live_classifier
            else:
                self.load_live_classifier = lambda path, runtime: as_given(self.load_classifier(path))


def as_given(classifier: Classifier) -> LiveClassifier:
    kind = type(classifier).__name__
    runtime = "onnx" if kind == "OnnxClassifier" else "torch" if kind == "CommandClassifier" else kind
    return LiveClassifier(classifier, runtime)
