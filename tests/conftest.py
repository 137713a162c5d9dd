"""Shared fixtures: a tiny synthetic Speech-Commands-style dataset and a tiny model trained on it once,
untrained and stand-in models, the shipped model and the sample clips it is sure of, main windows
with stand-in audio, and the PulseAudio virtual microphone.

Everything is generated under pytest's temporary folders; nothing depends on downloaded data.
Plain helpers (the tone model, FakeAudio) are in stand_ins.py; the microphone in virtual_mic.py.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # GUI tests never need a display

from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import soundfile as sf  # noqa: E402
import torch  # noqa: E402
from stand_ins import SAMPLES_DIR, WAIT_MS, FakeAudio, ToneClassifier, destroy_windows  # noqa: E402

# tiny tensors on a small, busy machine: one intra-op thread is faster than contending for cores
torch.set_num_threads(1)

SAMPLE_RATE = 16_000
WANTED_WORDS = ("yes", "no", "up")
OTHER_WORDS = ("cat", "dog")
ALL_WORDS = WANTED_WORDS + OTHER_WORDS
N_SPEAKERS = 6


def word_sound(word: str, rng: np.random.Generator, seconds: float = 1.0, sound_seconds: float = 0.5) -> np.ndarray:
    """A clip of `seconds` holding a `sound_seconds` sound whose spectrum is typical of `word`
    (chirps up or down, steady tones, noise bands), at a random place, pitch and level, over faint noise."""
    n = int(seconds * SAMPLE_RATE)
    m = int(sound_seconds * SAMPLE_RATE)
    t = np.arange(m) / SAMPLE_RATE
    pitch = rng.uniform(0.9, 1.1)
    if word == "yes":  # rising chirp 300 -> 1500 Hz
        f0, f1 = 300 * pitch, 1500 * pitch
        sound = np.sin(2 * np.pi * (f0 * t + (f1 - f0) * t**2 / (2 * sound_seconds)))
    elif word == "no":  # falling chirp 2500 -> 600 Hz
        f0, f1 = 2500 * pitch, 600 * pitch
        sound = np.sin(2 * np.pi * (f0 * t + (f1 - f0) * t**2 / (2 * sound_seconds)))
    elif word == "up":  # steady 800 Hz with a 3rd harmonic, amplitude-modulated at 6 Hz
        sound = (np.sin(2 * np.pi * 800 * pitch * t) + 0.5 * np.sin(2 * np.pi * 2400 * pitch * t)) * (
            0.6 + 0.4 * np.sin(2 * np.pi * 6 * t))
    elif word == "cat":  # high noise band (white noise, crudely high-passed)
        white = rng.standard_normal(m + 1)
        sound = np.diff(white) * 0.5
    elif word == "dog":  # two low tones
        sound = np.sin(2 * np.pi * 200 * pitch * t) + np.sin(2 * np.pi * 450 * pitch * t)
    else:  # any other word: a tone whose frequency depends on the word
        freq = 300 + (sum(map(ord, word)) * 37) % 3000
        sound = np.sin(2 * np.pi * freq * pitch * t)
    envelope = np.hanning(m)
    sound = sound * envelope
    sound = sound / (np.max(np.abs(sound)) + 1e-9) * rng.uniform(0.3, 0.8)
    clip = 0.003 * rng.standard_normal(n)
    start = int(rng.integers(0, max(1, n - m)))
    clip[start : start + m] += sound[: n - start]
    return np.clip(clip, -1, 1).astype(np.float32)


def speaker_names(n: int, splits: tuple[str, ...] | None = None) -> list[str]:
    """`n` 8-hex-digit speaker names; with `splits`, the i-th name hashes into splits[i]."""
    from speech_app.data.dataset import which_set

    if splits is None:
        return [f"{(i * 2654435761) % 2**32:08x}" for i in range(n)]
    names, i = [], 0
    for wanted in splits:
        while True:
            name = f"{(i * 2654435761) % 2**32:08x}"
            i += 1
            if which_set(f"{name}_nohash_0.wav") == wanted:
                names.append(name)
                break
    return names


# 4 training speakers, 1 validation, 1 testing: every split has every word
SPEAKER_SPLITS = ("training", "training", "training", "training", "validation", "testing")


@dataclass
class TinyDataset:
    root: Path
    words: tuple[str, ...]
    speakers: list[str]


def make_dataset(root: Path, words=ALL_WORDS, n_speakers: int = N_SPEAKERS, clips_per_speaker: int = 1,
                 noise: bool = True, seed: int = 0, fmt: str = "wav") -> TinyDataset:
    """A Speech Commands layout: `<word>/<8 hex>_nohash_<n>.wav` and `_background_noise_/`."""
    rng = np.random.default_rng(seed)
    splits = SPEAKER_SPLITS if n_speakers == len(SPEAKER_SPLITS) else None
    speakers = speaker_names(n_speakers, splits)
    for word in words:
        folder = root / word
        folder.mkdir(parents=True, exist_ok=True)
        for speaker in speakers:
            for n in range(clips_per_speaker):
                sf.write(str(folder / f"{speaker}_nohash_{n}.{fmt}"), word_sound(word, rng), SAMPLE_RATE,
                         subtype="PCM_16")
    if noise:
        noise_dir = root / "_background_noise_"
        noise_dir.mkdir(parents=True, exist_ok=True)
        sf.write(str(noise_dir / "white_noise.wav"), (0.3 * rng.standard_normal(3 * SAMPLE_RATE)).astype(np.float32),
                 SAMPLE_RATE, subtype="PCM_16")
    return TinyDataset(root, tuple(words), speakers)


@pytest.fixture(scope="session", autouse=True)
def _session_cache_home(tmp_path_factory):
    """Decoded-clip caches go to a temporary folder, never to the user's ~/.cache."""
    old = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg_cache"))
    yield
    if old is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = old


@pytest.fixture(scope="session")
def dataset_factory(tmp_path_factory):
    """make(name, **kwargs) -> TinyDataset, generated once per distinct call in this session."""
    made: dict = {}

    def make(name: str = "speech_commands", **kwargs) -> TinyDataset:
        key = (name, tuple(sorted(kwargs.items())))
        if key not in made:
            made[key] = make_dataset(tmp_path_factory.mktemp(name), **kwargs)
        return made[key]

    return make


@pytest.fixture(scope="session")
def tiny_dataset(dataset_factory) -> TinyDataset:
    """yes/no/up plus the "other" words cat/dog, 6 speakers, background noise."""
    return dataset_factory()


TINY_TRAIN = dict(epochs=1, steps_per_epoch=3, batch_size=8, device="cpu")
TINY_MODEL = dict(hidden_size=16, num_layers=1)


@pytest.fixture(scope="session")
def tiny_training(tiny_dataset, tmp_path_factory):
    """One tiny training run for the whole session: (TrainResult, model path)."""
    from speech_app.model import ModelConfig
    from speech_app.training.trainer import TrainConfig, train

    out = tmp_path_factory.mktemp("tiny_model") / "tiny.safetensors"
    result = train([tiny_dataset.root], out, list(WANTED_WORDS), TrainConfig(**TINY_TRAIN),
                   ModelConfig(**TINY_MODEL), progress=False)
    return result


@pytest.fixture(scope="session")
def tiny_model(tiny_training) -> Path:
    """Path of the session's tiny trained model file (do not modify it)."""
    return Path(tiny_training.model_path)


@pytest.fixture
def random_model(tmp_path) -> Path:
    """A real (untrained) model file, to exercise loading and start-up without the shipped model."""
    from speech_app.features import FeatureConfig
    from speech_app.model import BiLstmClassifier, ModelConfig
    from speech_app.modelfile import ModelBundle, save_model

    labels = ["_silence_", "_unknown_", "yes", "no"]
    model = BiLstmClassifier(ModelConfig(n_classes=len(labels), hidden_size=16, num_layers=1))
    return save_model(tmp_path / "random.safetensors", ModelBundle(model, labels, FeatureConfig()))


@pytest.fixture
def tone_model(monkeypatch):
    """`speech-app listen` with the tone-burst stand-in model instead of a trained one."""
    from speech_app.cli import listen
    from speech_app.streaming import StreamingRecognizer

    monkeypatch.setattr(listen, "_make_recognizer", lambda args: StreamingRecognizer(ToneClassifier()))


# -- the shipped model and the sample clips it is sure of ----------------------------------------

# A sample clip counts as one the model is sure of at this whole-clip probability. Lower would let
# in clips a stream hears differently: today's "down" sample scores 0.89 as a whole clip, while a
# stream hears "go" in its first half.
RELIABLE_CONFIDENCE = 0.9
MIN_RELIABLE_WORDS = 4  # fewer: the shipped model is broken, and tests over its words would prove little


@pytest.fixture(scope="session")
def shipped_classifier():
    from speech_app.inference import CommandClassifier

    return CommandClassifier.from_file()


@pytest.fixture(scope="session")
def reliable_words(shipped_classifier) -> tuple[str, ...]:
    """The words whose sample clip (datasets/samples) the shipped model labels right as a whole clip
    with at least RELIABLE_CONFIDENCE, in the model's label order. Tests of the live path expect
    exactly these back, so a better model adds words to them and breaks nothing."""
    from speech_app.audio import load_audio

    words = []
    for word in shipped_classifier.labels:
        clips = [] if word.startswith("_") else sorted(SAMPLES_DIR.glob(f"{word}_*"))
        if clips:
            prediction = shipped_classifier.classify(load_audio(clips[0]))
            if prediction.labels[0] == word and prediction.confidences[0] >= RELIABLE_CONFIDENCE:
                words.append(word)
    assert len(words) >= MIN_RELIABLE_WORDS, f"the shipped model is sure of only {words} among the sample clips"
    return tuple(words)


# -- the main window with stand-in audio ----------------------------------------------------------

@pytest.fixture
def fake_audio() -> FakeAudio:
    return FakeAudio()


@pytest.fixture
def make_window(qtbot, tmp_path):
    """Build main windows on temporary settings and data folders; all are closed and destroyed, on
    this (the GUI) thread, after the test."""
    from PySide6.QtCore import QSettings

    from speech_app.gui.app import MainWindow, create_application

    create_application()
    windows = []

    def make(services, settings_file: Path | None = None, **kwargs):
        settings = QSettings(str(settings_file or tmp_path / "settings.ini"), QSettings.Format.IniFormat)
        window = MainWindow(services, settings, kwargs.pop("data_dir", tmp_path / "data"), **kwargs)
        window.show()
        qtbot.waitUntil(lambda: bool(window.live.confidence_bars.labels) or "load" in window.live_status.text(),
                        timeout=WAIT_MS)
        windows.append(window)
        return window

    yield make
    destroy_windows(windows)


@pytest.fixture
def window(make_window, fake_audio):
    return make_window(fake_audio.services())


# -- the PulseAudio virtual microphone (docs/VIRTUAL_MIC.md) ----------------------------------------

@pytest.fixture(scope="session")
def virtual_mic():
    """A private PulseAudio server whose default source hears what `virtual_mic.play(path)` plays;
    started once per session. If it cannot start the test fails, or is skipped where
    SPEECH_APP_AUDIO_OPTIONAL=1 says audio is optional."""
    from virtual_mic import start_for_tests

    microphone = start_for_tests()
    try:
        yield microphone
    finally:
        microphone.stop()


@pytest.fixture
def quiet_mic(virtual_mic):
    """The virtual microphone, with nothing left playing after the test."""
    yield virtual_mic
    virtual_mic.silence_players()
