"""Turn one synthesized utterance into a varied one-second clip: the steps a room and a microphone add.

Every random choice comes from the caller's generator, so a clip depends only on its seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..audio import CLIP_SECONDS, SAMPLE_RATE, resample, seconds_to_samples
from ..data.noise import NoiseBank

TRIM_TOP_DB = 40.0  # quieter than this below the peak counts as leading/trailing silence
MAX_SPEECH_SECONDS = 0.9  # longer utterances are time-compressed, leaving room for a time shift
SHIFT_ROOM_SECONDS = CLIP_SECONDS - MAX_SPEECH_SECONDS  # kept free in a clip of any length
SPEECH_PEAK = 0.5  # speech is scaled to this peak (-6 dBFS) before the random gain
SILENT_PEAK = 1e-4  # an engine result below this peak holds no speech
CLIP_PEAK_LIMIT = 0.99  # the finished clip is scaled down to this peak if it would clip


@dataclass(frozen=True)
class VoiceEffects:
    """What makes one synthetic utterance sound recorded: pitch/tempo, room, noise and level, each
    drawn per clip. (Training-time augmentation of every clip is augment.AugmentConfig.)"""

    pitch_tempo_probability: float = 0.3  # share of clips given an extra librosa pitch/tempo change
    pitch_shift_semitones: float = 2.0  # drawn from [-this, +this]
    tempo_range: tuple[float, float] = (0.9, 1.1)
    reverb_probability: float = 0.5
    rt60_seconds: tuple[float, float] = (0.1, 0.6)  # time for the reverb tail to decay by 60 dB
    direct_to_reverb_db: tuple[float, float] = (0.0, 12.0)  # 0 dB: across a room; 12 dB: close to the mic
    noise_probability: float = 0.7
    snr_db: tuple[float, float] = (5.0, 30.0)
    gain_db: tuple[float, float] = (-6.0, 3.0)


def pitch_shift(speech: np.ndarray, semitones: float) -> np.ndarray:
    import librosa  # lazily: a second of start-up that only workers pay

    if abs(semitones) < 1e-3:
        return speech
    return librosa.effects.pitch_shift(speech, sr=SAMPLE_RATE, n_steps=semitones).astype(np.float32)


def change_tempo(speech: np.ndarray, rate: float) -> np.ndarray:
    """rate > 1 speeds up (shorter), keeping the pitch."""
    import librosa

    if abs(rate - 1.0) < 1e-3:
        return speech
    return librosa.effects.time_stretch(speech, rate=rate).astype(np.float32)


def trim_silence(speech: np.ndarray) -> np.ndarray:
    import librosa

    if len(speech) == 0 or np.max(np.abs(speech)) < SILENT_PEAK:
        return speech[:0]
    trimmed, _ = librosa.effects.trim(speech, top_db=TRIM_TOP_DB)
    return trimmed


def fit_duration(speech: np.ndarray, max_seconds: float = MAX_SPEECH_SECONDS) -> np.ndarray:
    """Time-compress an utterance longer than `max_seconds` (long phrases) so all of it fits."""
    max_samples = seconds_to_samples(max_seconds)
    if len(speech) <= max_samples:
        return speech
    squeezed = change_tempo(speech, len(speech) / max_samples)
    return squeezed[:max_samples]  # the stretch can overshoot by a frame


def place_in_window(speech: np.ndarray, rng: np.random.Generator, window_samples: int) -> np.ndarray:
    """Put the utterance at a random offset in a silent window: the time shift."""
    window = np.zeros(window_samples, dtype=np.float32)
    speech = speech[:window_samples]
    start = int(rng.integers(0, window_samples - len(speech) + 1))
    window[start : start + len(speech)] = speech
    return window


def room_impulse_response(rng: np.random.Generator, rt60_seconds: float, direct_to_reverb_db: float) -> np.ndarray:
    """A synthetic room: the direct sound, then noise decaying by 60 dB over `rt60_seconds`, with the
    tail's energy `direct_to_reverb_db` below the direct sound's (near the talker: high; far: low)."""
    n = seconds_to_samples(rt60_seconds)
    t_seconds = np.arange(1, n) / SAMPLE_RATE
    tail = rng.standard_normal(n - 1) * 10.0 ** (-3.0 * t_seconds / rt60_seconds)  # -60 dB at rt60
    tail *= np.sqrt(10.0 ** (-direct_to_reverb_db / 10.0) / np.sum(tail**2))
    return np.concatenate([[1.0], tail]).astype(np.float32)


def add_reverb(clip: np.ndarray, rng: np.random.Generator, rt60_seconds: float, direct_to_reverb_db: float) -> np.ndarray:
    response = room_impulse_response(rng, rt60_seconds, direct_to_reverb_db)
    from scipy.signal import fftconvolve  # imported here: scipy.signal costs a second at every CLI start-up

    return fftconvolve(clip, response)[: len(clip)].astype(np.float32)  # the tail past the window is cut


def add_noise(clip: np.ndarray, speech_power: float, noise: NoiseBank, rng: np.random.Generator,
              snr_db: float) -> np.ndarray:
    """Mix a noise window under the clip so that speech power / noise power is `snr_db`."""
    background = noise.window(rng, len(clip)).astype(np.float32)
    noise_power = float(np.mean(background.astype(np.float64) ** 2))
    if noise_power <= 0.0 or speech_power <= 0.0:
        return clip
    scale = np.sqrt(speech_power / (noise_power * 10.0 ** (snr_db / 10.0)))
    return clip + scale * background


def augment_utterance(speech: np.ndarray, rng: np.random.Generator, noise: NoiseBank,
                      settings: VoiceEffects = VoiceEffects(), clip_seconds: float = CLIP_SECONDS) -> np.ndarray:
    """16 kHz utterance (any length) -> float32 clip of `clip_seconds`, trimmed, shifted, reverberant, noisy."""
    s = settings
    if rng.random() < s.pitch_tempo_probability:
        speech = pitch_shift(speech, rng.uniform(-s.pitch_shift_semitones, s.pitch_shift_semitones))
        speech = change_tempo(speech, rng.uniform(*s.tempo_range))
    speech = fit_duration(trim_silence(speech), clip_seconds - SHIFT_ROOM_SECONDS)
    if len(speech) == 0 or np.max(np.abs(speech)) < SILENT_PEAK:
        raise ValueError("the engine produced silence")
    speech = speech * (SPEECH_PEAK / np.max(np.abs(speech)))
    speech = speech * 10.0 ** (rng.uniform(*s.gain_db) / 20.0)
    speech_power = float(np.mean(speech.astype(np.float64) ** 2))  # over the spoken part only
    clip = place_in_window(speech, rng, seconds_to_samples(clip_seconds))
    if rng.random() < s.reverb_probability:
        clip = add_reverb(clip, rng, rng.uniform(*s.rt60_seconds), rng.uniform(*s.direct_to_reverb_db))
    if rng.random() < s.noise_probability:
        clip = add_noise(clip, speech_power, noise, rng, rng.uniform(*s.snr_db))
    peak = float(np.max(np.abs(clip)))
    if peak > CLIP_PEAK_LIMIT:
        clip = clip * (CLIP_PEAK_LIMIT / peak)  # scale down rather than clip, keeping the waveform's shape
    return clip.astype(np.float32)


def warm_up() -> None:
    """Import librosa and load its compiled kernels once, so that forked workers inherit them."""
    tone = (0.3 * np.sin(2 * np.pi * 220.0 * np.arange(SAMPLE_RATE // 2) / SAMPLE_RATE)).astype(np.float32)
    rng = np.random.default_rng(0)
    every_step = VoiceEffects(pitch_tempo_probability=1.0, reverb_probability=1.0, noise_probability=1.0)
    augment_utterance(pitch_shift(tone, 1.0), rng, NoiseBank([tone]), every_step)
    resample(tone, 22_050)
