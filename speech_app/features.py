"""The MFCC front end, shared by training, batch inference and streaming.

Waveform tensors in, MFCC tensors out; no file I/O. The settings travel inside every model file,
so a model trained with other settings still gets the features it was trained on.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torchaudio

from .audio import CLIP_SECONDS, SAMPLE_RATE
from .numpy_frontend import SharedFrames

AMPLITUDE_FLOOR = 1e-10  # mel power floor before decibels (-100 dB), as torchaudio and librosa
CPU_CHUNK_CLIPS = 16  # clips per pass on a CPU, so one pass's frames and spectra stay in a core's cache:
# one thread, 256 real clips, medians of 5 alternations: 0.25 ms a clip at 16, 0.29 at 8 and 32, 0.56 at 64

# The settings a usable front end falls in, checked when a model file is loaded (`FeatureConfig.check`):
# outside them a damaged or hand-edited file would fail, exhaust memory or quietly give wrong labels.
WINDOW_MS_RANGE = (5.0, 100.0)  # speech front ends use 20-40 ms; under 5 ms a window holds less than one
# pitch period, over 100 ms it spans several phonemes (and its FFT, which grows with it, 2048 points at most)
MIN_HOP_MS = 1.0  # frames a millisecond apart at the finest; at most a window apart, or samples go unseen
MAX_MEL_BANDS = 128  # the most that common front ends use (librosa's default); each must cover an FFT bin
TOP_DB_RANGE = (10.0, 200.0)  # dB: under 10 the floor flattens all but each clip's loudest bands; over 200 it
# never acts (the power floor is -100 dB, and no band of full-scale audio reaches +100 dB)
MAX_CLIP_SECONDS = 60.0  # the model's input window; the recipes choose 1-4 s (data/clips.py)
MAX_FRAMES_PER_CLIP = 6_001  # 60 s of 10 ms frames: the LSTM takes its steps one after another, and finer
# frames of a long window would make every window take minutes on a CPU


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

    def check(self) -> None:
        """Raise ValueError, naming the setting first, unless every setting is in its usable range (the
        constants above). Cheap: nothing sized by the settings is allocated before they pass."""
        if self.sample_rate != SAMPLE_RATE:  # every clip is decoded at this rate, whatever the model says
            raise ValueError(f"sample_rate must be {SAMPLE_RATE} Hz, not {self.sample_rate}")
        _check_range("window_ms", self.window_ms, *WINDOW_MS_RANGE, "ms")
        _check_range("hop_ms", self.hop_ms, MIN_HOP_MS, self.window_ms, "ms (up to window_ms)")
        _check_range("n_mels", self.n_mels, 1, MAX_MEL_BANDS, "bands")
        _check_range("n_mfcc", self.n_mfcc, 1, self.n_mels, "coefficients (up to n_mels)")
        _check_range("f_max_hz", self.f_max_hz, 0.0, self.sample_rate / 2, "Hz (up to half the sample rate)")
        if not 0.0 <= self.f_min_hz < self.f_max_hz:
            raise ValueError(f"f_min_hz must be at least 0 and below f_max_hz {self.f_max_hz:g}, not {self.f_min_hz:g}")
        _check_range("top_db", self.top_db, *TOP_DB_RANGE, "dB")
        _check_range("clip_seconds", self.clip_seconds, self.n_fft / self.sample_rate, MAX_CLIP_SECONDS,
                     "s (at least one FFT frame)")
        if self.n_frames > MAX_FRAMES_PER_CLIP:
            raise ValueError(f"hop_ms {self.hop_ms:g} gives {self.n_frames} frames per {self.clip_seconds:g} s "
                             f"window, more than {MAX_FRAMES_PER_CLIP}")
        with warnings.catch_warnings():  # torchaudio warns of empty bands; said here in our own words
            warnings.simplefilter("ignore", UserWarning)
            empty = int((mel_filterbank(self).amax(dim=0) == 0).sum())
        if empty:  # a band between two FFT bins: a feature that is always the floor
            raise ValueError(f"n_mels {self.n_mels} bands over {self.f_min_hz:g}-{self.f_max_hz:g} Hz leave {empty} "
                             f"without an FFT bin ({self.n_fft}-point FFT)")


def _check_range(name: str, value: float, low: float, high: float, unit: str) -> None:
    if not low <= value <= high:
        raise ValueError(f"{name} must be {low:g}-{high:g} {unit}, not {value:g}")


def mel_filterbank(config: FeatureConfig) -> torch.Tensor:
    """(n_freqs, n_mels) weights of the slaney mel bands over the FFT bins."""
    return torchaudio.functional.melscale_fbanks(config.n_fft // 2 + 1, config.f_min_hz, config.f_max_hz,
                                                 config.n_mels, config.sample_rate, norm="slaney", mel_scale="slaney")


def mirror_pad(waveforms: torch.Tensor, half: int) -> torch.Tensor:
    """(batch, samples) -> (batch, half + samples + half), each end mirrored without repeating the edge
    sample: torch's "reflect" padding, written as flips and one concatenation, which took a third of
    reflection_pad1d's time (benchmarks/bench.py, forward section)."""
    if waveforms.shape[-1] <= half:  # too short to mirror: torch's padding raises its own clear error
        return torch.nn.functional.pad(waveforms.unsqueeze(1), (half, half), mode="reflect").squeeze(1)
    return torch.cat([waveforms[:, 1 : half + 1].flip(-1), waveforms, waveforms[:, -half - 1 : -1].flip(-1)], dim=-1)


class MfccFrontend(torch.nn.Module):
    """Waveforms (batch, samples) -> MFCC (batch, n_mfcc, frames).

    The MFCC of torchaudio.transforms.MFCC with the settings below (slaney mel scale and norm, power
    spectrum, decibels floored `top_db` under each clip's peak, orthonormal DCT-II), written as plain
    tensor operations so that
    - it exports to ONNX as it is, and is a little faster (the power spectrum is real**2 + imag**2,
      not |X| squared; benchmarks/bench.py, forward section);
    - the streaming recognizer can reuse the log-mel frames that overlapping windows share
      (`log_mel_frames` and `cepstra` are the two halves of `forward`).
    tests/test_features.py checks it against torchaudio's transform and librosa.
    """

    def __init__(self, config: FeatureConfig = FeatureConfig(), cpu_chunk_clips: int = CPU_CHUNK_CLIPS):
        super().__init__()
        self.config = config
        self.cpu_chunk_clips = cpu_chunk_clips  # 0: one pass (ONNX export, whose batch size is symbolic)
        self.window_offset = (config.n_fft - config.window_samples) // 2  # torch.stft centres the window
        self.register_buffer("window", torch.hann_window(config.window_samples), persistent=False)
        mel_basis = mel_filterbank(config)
        self.register_buffer("mel_basis", mel_basis, persistent=False)  # (n_freqs, n_mels)
        self.register_buffer("mel_basis_pairs", mel_basis.repeat_interleave(2, dim=0), persistent=False)
        dct = torchaudio.functional.create_dct(config.n_mfcc, config.n_mels, norm="ortho")
        self.register_buffer("dct", dct, persistent=False)  # (n_mels, n_mfcc)

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        if waveforms.dim() == 1:
            waveforms = waveforms.unsqueeze(0)
        if self.cpu_chunk_clips and waveforms.device.type == "cpu" and len(waveforms) > self.cpu_chunk_clips:
            return torch.cat([self._mfcc(part) for part in waveforms.split(self.cpu_chunk_clips)])
        return self._mfcc(waveforms)

    def _mfcc(self, waveforms: torch.Tensor) -> torch.Tensor:
        padded = mirror_pad(waveforms, self.config.n_fft // 2)  # frames are centred: mirrored ends
        n_frames = waveforms.shape[-1] // self.config.hop_samples + 1
        log_mel = self.log_mel_frames(padded[:, self.window_offset :])[:, :n_frames]
        return self.cepstra(log_mel)  # (batch, n_mfcc, frames)

    def log_mel_frames(self, samples: torch.Tensor) -> torch.Tensor:
        """(batch, samples) -> (batch, frames, n_mels) log-mel power in dB, before the per-clip floor.
        Frame i is the window_samples samples from i * hop: it depends on those samples only."""
        cfg = self.config
        frames = samples.unfold(-1, cfg.window_samples, cfg.hop_samples)  # (B, T, win)
        spectrum = torch.fft.rfft(frames * self.window, n=cfg.n_fft)  # (B, T, n_freqs)
        # power as (real, imag) pairs squared in one pass over contiguous memory, summed by the mel
        # product (each band weight stored twice): 3 strided passes were a third of the front end.
        # In place, on temporaries nothing else holds: a new spectrum-sized tensor cost a fifth of the
        # front end (one thread, 256 real clips, alternated) for the same values
        squares = torch.view_as_real(spectrum).square_().flatten(-2)  # (B, T, 2 * n_freqs)
        return torch.clamp_(squares @ self.mel_basis_pairs, min=AMPLITUDE_FLOOR).log10_().mul_(10.0)

    def cepstra(self, log_mel: torch.Tensor) -> torch.Tensor:
        """(batch, frames, n_mels) dB -> (batch, n_mfcc, frames): floor each clip at top_db under its own
        peak (a clip's features never depend on the clips batched with it), then the DCT."""
        floor = log_mel.amax(dim=(1, 2), keepdim=True) - self.config.top_db
        return (torch.maximum(log_mel, floor) @ self.dct).transpose(1, 2)


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


class SharedFrameMfcc(SharedFrames):
    """MFCC of overlapping windows of one stream, computing each log-mel frame once (`SharedFrames`,
    on this front end's `log_mel_frames`). The per-clip floor and the DCT run per window on the
    assembled frames, so the result is what `MfccFrontend` gives on each window alone, to float
    rounding (tests/test_streaming_features.py).
    """

    def __init__(self, frontend: MfccFrontend, window_samples: int):
        cfg = frontend.config
        self.frontend = frontend
        super().__init__(cfg.n_fft, frontend.window_offset, cfg.hop_samples, cfg.window_samples, window_samples,
                         cfg.n_mels)

    @torch.no_grad()
    def __call__(self, stream: np.ndarray, stream_start: int, window_starts: np.ndarray) -> torch.Tensor:
        """-> (windows, n_mfcc, frames): see `SharedFrames.frames`."""
        return self.frontend.cepstra(self.frames(stream, stream_start, window_starts))

    def _as_signal(self, stream):
        return torch.from_numpy(np.ascontiguousarray(stream, dtype=np.float32))

    def _log_mel(self, samples):
        return self.frontend.log_mel_frames(samples)

    def _mirror_pad(self, windows, half: int):
        return mirror_pad(windows, half)

    def _concat(self, parts):
        return torch.cat(parts)

    def _stack(self, parts, axis: int = 0):
        return torch.stack(parts, dim=axis)

    def _empty(self, shape):
        return torch.empty(shape)
