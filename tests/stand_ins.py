"""Stand-ins the test modules share: a tone model, tone "words", the sample clips, and the audio
services the app gets in place of a microphone, speakers and a trained model.

Fixtures built on them live in conftest.py.
"""

from __future__ import annotations

import gc
from pathlib import Path

import numpy as np

from speech_app.audio import SAMPLE_RATE, write_wav
from speech_app.capture import FileCapture, InputDevice

SAMPLES_DIR = Path(__file__).resolve().parent.parent / "datasets" / "samples"
TONE_HZ = {"low": 400.0, "mid": 800.0, "high": 1600.0}  # the stand-in model's words
WORD_SECONDS = 0.4
WORD_AMPLITUDE = 0.3
AMPLITUDE_PER_LOGIT = 0.02  # tone amplitude (averaged over the window) worth one logit
SILENCE_LOGIT = 3.0
TONE_FRAME_SAMPLES = 400  # 25 ms: a whole number of periods of every tone, so the tones stay apart
TAKES_PER_WORD = 5  # generated takes of a custom word (write_takes)
WAIT_MS = 20_000  # how long a GUI test waits for the window: generous, the test machine may be busy
FAKE_MIC = InputDevice(7, "Test microphone", "test", 1, 16_000.0, True)


class ToneClassifier:
    """Word k is a tone at TONE_HZ[k]; its logit grows with the tone's amplitude in the window,
    so a word half inside the window scores lower than a whole one, as with a real model.

    The amplitude is measured per TONE_FRAME_SAMPLES frame and averaged, like a spectrogram: a player
    that stutters on a busy machine shifts the tone's phase inside a word, which would cancel out of
    one correlation over the whole window (a real front end does not care either)."""

    def __init__(self, window_seconds: float = 1.0):
        self.labels = ["_silence_", "_unknown_", *TONE_HZ]
        self.window_samples = int(window_seconds * SAMPLE_RATE)
        self._frames = self.window_samples // TONE_FRAME_SAMPLES
        t = np.arange(TONE_FRAME_SAMPLES) / SAMPLE_RATE
        self._basis = np.stack([np.exp(-2j * np.pi * hz * t) for hz in TONE_HZ.values()])  # (words, frame)
        self.windows_seen = 0

    def probabilities(self, waves: np.ndarray) -> np.ndarray:
        waves = np.asarray(waves, dtype=np.float64)  # (N, window)
        self.windows_seen += len(waves)
        frames = waves[:, : self._frames * TONE_FRAME_SAMPLES].reshape(len(waves), self._frames, -1)
        # (N, frames, words) -> mean over the window's frames: a tone filling the window scores its amplitude
        amplitude = (2 * np.abs(frames @ self._basis.T) / TONE_FRAME_SAMPLES).mean(axis=1)  # (N, words)
        logits = np.concatenate([np.full((len(waves), 1), SILENCE_LOGIT), np.zeros((len(waves), 1)),
                                 amplitude / AMPLITUDE_PER_LOGIT], axis=1)  # (N, C)
        exp = np.exp(logits - logits.max(axis=1, keepdims=True))
        return (exp / exp.sum(axis=1, keepdims=True)).astype(np.float32)


def tone_word(word: str, seconds: float = WORD_SECONDS, amplitude: float = WORD_AMPLITUDE) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    fade = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.02)  # 20 ms ramps, no clicks
    return (amplitude * fade * np.sin(2 * np.pi * TONE_HZ[word] * t)).astype(np.float32)


PLAYER_LEAD_S = 0.3  # silence before a word played into the virtual microphone: a player that starts on a
# busy machine may lose its first moments, which must not be the word's


def played_tone_word(word: str, tail_s: float) -> np.ndarray:
    """A tone word to play into the virtual microphone: a lead of silence, the word, `tail_s` of silence."""
    return np.concatenate([np.zeros(int(PLAYER_LEAD_S * SAMPLE_RATE), np.float32), tone_word(word),
                           np.zeros(int(tail_s * SAMPLE_RATE), np.float32)])


def tone_sentence(words: list[str], gap_s: float = 1.2, lead_s: float = 0.5) -> tuple[np.ndarray, list[float]]:
    """Words separated by silence; returns the signal and the time each word ends."""
    parts, ends, position = [np.zeros(int(lead_s * SAMPLE_RATE), np.float32)], [], lead_s
    for word in words:
        parts += [tone_word(word), np.zeros(int(gap_s * SAMPLE_RATE), np.float32)]
        ends.append(position + WORD_SECONDS)
        position += WORD_SECONDS + gap_s
    return np.concatenate(parts), ends


def sample_clip(word: str) -> Path:
    return next(SAMPLES_DIR.glob(f"{word}_*"))


class FakeAudio:
    """Microphone, speakers and model for the window: recordings in, nothing out, a tone model."""

    def __init__(self, signal: np.ndarray | None = None, speed: float = 4.0, loop: bool = False):
        self.signal = signal if signal is not None else tone_sentence(["low", "mid", "high"])[0]
        self.speed, self.loop = speed, loop
        self.devices = [FAKE_MIC]
        self.played: list[np.ndarray] = []
        self.opened: list[object] = []

    def open_source(self, device):
        self.opened.append(device)
        return FileCapture([self.signal], gap_s=0.0, speed=self.speed, loop=self.loop)

    def services(self, load_classifier=None):
        from speech_app.gui.services import AppServices

        return AppServices(load_classifier=load_classifier or (lambda path: ToneClassifier()),
                           list_devices=lambda: list(self.devices), open_source=self.open_source,
                           play=lambda samples, rate: self.played.append(samples))


def destroy_windows(windows: list) -> None:
    from PySide6.QtCore import QCoreApplication, QEvent

    for window in windows:
        window.close()
        window.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    windows.clear()
    gc.collect()  # here, not in some worker thread of the next test


def write_takes(window, words: list[str]) -> None:
    """Generated takes: each word its own noise colour and pitch, with a little variation per take."""
    rng = np.random.default_rng(0)
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    for index, word in enumerate(words):
        for take in range(TAKES_PER_WORD):
            hz = 300.0 * (index + 1) * (1.0 + 0.03 * take)
            clip = 0.3 * np.sin(2 * np.pi * hz * t) + 0.02 * rng.standard_normal(len(t))
            write_wav(window.data.recordings_dir / word / f"take-gen{take}_nohash_0.wav", clip.astype(np.float32))
