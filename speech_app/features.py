"""The MFCC front end, shared by training, batch inference and streaming.

Waveform tensors in, MFCC tensors out; no file I/O. The settings travel inside every model file,
so a model trained with other settings still gets the features it was trained on.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torchaudio

from .audio import CLIP_SECONDS, SAMPLE_RATE


@dataclass(frozen=True)
class FeatureConfig:
    sample_rate: int = SAMPLE_RATE  # Hz
    window_ms: float = 30.0  # analysis window per frame
    hop_ms: float = 10.0  # frame step
    n_mels: int = 40  # mel filterbank bands
    n_mfcc: int = 40  # cepstral coefficients kept
    f_min_hz: float = 20.0  # below this there is only hum and DC
    f_max_hz: float = 7_600.0  # just under the 8 kHz Nyquist limit, where resamplers roll off
    top_db: float = 80.0  # dynamic range kept in the log-mel spectrum
    clip_seconds: float = CLIP_SECONDS  # the model's input window; longer for phrases

    @property
    def window_samples(self) -> int:
        return int(round(self.sample_rate * self.window_ms / 1000.0))

    @property
    def hop_samples(self) -> int:
        return int(round(self.sample_rate * self.hop_ms / 1000.0))

    @property
    def n_fft(self) -> int:
        """FFT size: the next power of two that holds one analysis window (480 samples -> 512)."""
        return 1 << (self.window_samples - 1).bit_length()

    @property
    def clip_samples(self) -> int:
        return int(round(self.sample_rate * self.clip_seconds))

    @property
    def n_frames(self) -> int:
        """Frames per clip; frames are centred, so a clip of N samples gives N // hop + 1 of them."""
        return self.clip_samples // self.hop_samples + 1

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> FeatureConfig:
        known = {name: values[name] for name in cls.__dataclass_fields__ if name in values}
        return cls(**known)


class MfccFrontend(torch.nn.Module):
    """Waveforms (batch, samples) -> MFCC (batch, n_mfcc, frames), computed with torchaudio."""

    def __init__(self, config: FeatureConfig = FeatureConfig()):
        super().__init__()
        self.config = config
        self.mfcc = torchaudio.transforms.MFCC(
            sample_rate=config.sample_rate,
            n_mfcc=config.n_mfcc,
            dct_type=2,
            norm="ortho",
            log_mels=False,  # power_to_dB in decibels, as librosa.feature.mfcc does
            melkwargs={
                "n_fft": config.n_fft,
                "win_length": config.window_samples,
                "hop_length": config.hop_samples,
                "n_mels": config.n_mels,
                "f_min": config.f_min_hz,
                "f_max": config.f_max_hz,
                "mel_scale": "slaney",
                "norm": "slaney",
                "center": True,
                "pad_mode": "reflect",
                "power": 2.0,
            },
        )
        self.mfcc.amplitude_to_DB.top_db = config.top_db

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        if waveforms.dim() == 1:
            waveforms = waveforms.unsqueeze(0)
        # (batch, 1, samples): torchaudio floors decibels at top_db below the peak of each item of the
        # first dimension, so a 2-D batch would share one floor, and a clip's features would depend on
        # the loudest clip batched with it
        return self.mfcc(waveforms.unsqueeze(1)).squeeze(1)  # (batch, n_mfcc, frames)


class SpecAugment(torch.nn.Module):
    """Training-time masking of random coefficient bands and time spans (torchaudio's masks)."""

    def __init__(self, coefficient_mask: int = 6, time_mask_frames: int = 15, n_masks: int = 2):
        super().__init__()
        self.n_masks = n_masks
        self.coefficient_mask = torchaudio.transforms.FrequencyMasking(coefficient_mask, iid_masks=True)
        self.time_mask = torchaudio.transforms.TimeMasking(time_mask_frames, iid_masks=True)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        # masks operate on (batch, channel, freq, time); fill with each clip's mean, not with zero,
        # because zero is a loud value for a cepstral coefficient
        x = features.unsqueeze(1)
        fill = x.mean(dim=(2, 3), keepdim=True)
        for _ in range(self.n_masks):
            x = fill + self.coefficient_mask(x - fill)
            x = fill + self.time_mask(x - fill)
        return x.squeeze(1)
