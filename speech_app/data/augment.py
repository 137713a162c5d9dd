"""Training-time waveform augmentation: speed, room reverberation, time shift, gain, and background noise
at random volume."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import soxr
import torch

from ..audio import SAMPLE_RATE
from ..synth.effects import add_reverb
from .noise import SILENCE_MAX_VOLUME, NoiseBank

# soxr's medium quality: flat to 7.2 kHz (the MFCCs reach 7.6 kHz) at half the time of "HQ"; "LQ"
# already loses a tenth of the level at 6 kHz
SPEED_RESAMPLER = "MQ"


@dataclass(frozen=True)
class AugmentConfig:
    time_shift_ms: float = 100.0  # the word moves up to this much either way inside its window
    noise_probability: float = 0.8  # share of speech clips that get background noise
    noise_max_volume: float = 0.1  # noise volume under speech, drawn from [0, this]
    gain_db: float = 6.0  # speech level drawn from [-this, +this/2] dB: quiet speakers are common
    # speaking rate (and with it pitch) scaled by [1 - this, 1 + this]: a new voice from a real one, which
    # matters for words with few speakers; 0 leaves clips (and the random stream) as they were
    speed: float = field(default=0.0, metadata={
        "help": "play each training clip at a random speed in [1-R, 1+R] (pitch follows)"})
    # a share of the clips played through a synthetic room (decaying noise, synth.effects): the users'
    # rooms echo more than the close-talking recordings of the data; 0 leaves the random stream as it was
    reverb: float = field(default=0.0, metadata={
        "help": "share of training clips played through a synthetic room (reverberation time 0.1-0.6 s)"})
    # the whole window, noise included, at a level drawn from [-this, +this / 4] dB: a microphone's level
    # differs from the recordings' by more than a speaker's does (a stream 20 dB quieter lost 5 points of
    # recall, training/studies/LIVE_PATH_STUDY.md); 0 leaves the random stream as it was
    level_db: float = field(default=0.0, metadata={
        "help": "play each training window, noise included, at a level in [-D, +D/4] dB"})
    rt60_seconds: tuple[float, float] = (0.1, 0.6)  # time for the reverb tail to decay by 60 dB
    direct_to_reverb_db: tuple[float, float] = (0.0, 12.0)  # 0 dB: across a room; 12 dB: close to the mic


class WaveformAugmenter:
    def __init__(self, config: AugmentConfig, noise: NoiseBank, seed: int = 0):
        self.config = config
        self.noise = noise
        self.rng = np.random.default_rng(seed)

    def __call__(self, waves: np.ndarray, is_silence: np.ndarray) -> torch.Tensor:
        """waves (B, S) float32 -> augmented copy; `_silence_` rows get fresh noise at any volume."""
        cfg, rng = self.config, self.rng
        batch, n_samples = waves.shape
        out = np.empty_like(waves)
        max_shift = int(SAMPLE_RATE * cfg.time_shift_ms / 1000.0)
        for i in range(batch):
            if is_silence[i]:
                out[i] = self.noise.window(rng, n_samples) * rng.uniform(0.0, SILENCE_MAX_VOLUME)
                continue
            wave = _change_speed(waves[i], rng.uniform(1.0 - cfg.speed, 1.0 + cfg.speed)) if cfg.speed else waves[i]
            if cfg.reverb and rng.random() < cfg.reverb:
                wave = add_reverb(wave, rng, rng.uniform(*cfg.rt60_seconds), rng.uniform(*cfg.direct_to_reverb_db))
            out[i] = _shift(wave, int(rng.integers(-max_shift, max_shift + 1)))
            out[i] *= 10.0 ** (rng.uniform(-cfg.gain_db, cfg.gain_db / 2) / 20.0)
            if rng.random() < cfg.noise_probability:
                out[i] += self.noise.window(rng, n_samples) * rng.uniform(0.0, cfg.noise_max_volume)
            if cfg.level_db:
                out[i] *= 10.0 ** (rng.uniform(-cfg.level_db, cfg.level_db / 4) / 20.0)
        return torch.from_numpy(np.clip(out, -1.0, 1.0))


def _shift(wave: np.ndarray, offset: int) -> np.ndarray:
    """Move the signal by `offset` samples (positive: later), filling with silence."""
    if offset == 0:
        return wave.copy()
    shifted = np.zeros_like(wave)
    if offset > 0:
        shifted[offset:] = wave[:-offset]
    else:
        shifted[:offset] = wave[-offset:]
    return shifted


def _change_speed(wave: np.ndarray, factor: float) -> np.ndarray:
    """Play `wave` `factor` times faster (pitch moves with it, as with a tape), centred in the same
    number of samples: cut at both ends when slower, padded with silence when faster.

    soxr's filter removes what would rise past 8 kHz when speeding up (plain interpolation folded it
    back into the band as false tones). torchaudio's resampler would need the factor rounded to a
    ratio of whole numbers, and its default filter lets about 2 % of that energy through."""
    # read the clip as if recorded at `factor` times the rate and bring it back to the rate
    faster = soxr.resample(wave, SAMPLE_RATE * factor, SAMPLE_RATE, quality=SPEED_RESAMPLER).astype(wave.dtype)
    n = len(wave)
    out = np.zeros_like(wave)
    if len(faster) >= n:
        start = (len(faster) - n) // 2
        out[:] = faster[start : start + n]
    else:
        start = (n - len(faster)) // 2
        out[start : start + len(faster)] = faster
    return out
