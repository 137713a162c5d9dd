"""The first half of the MFCC front end (waveform -> log-mel frames) in NumPy, for recognition without
PyTorch (`onnx_runtime.py`): the ONNX graph then takes the log-mel frames and does the rest (per-clip
floor, DCT, the model).

It is `features.MfccFrontend.log_mel_frames` and its mirrored padding, step for step, with the window
and the mel filterbank that front end uses (they travel in the ONNX file, so no torchaudio is needed
to rebuild them). `SharedFrames`, the frame sharing between overlapping windows, lives here too, with no
torch, and serves both `SharedLogMelFrames` (NumPy) and `features.SharedFrameMfcc` (PyTorch).
tests/test_listen_runtime.py checks the NumPy half against the PyTorch front end.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

AMPLITUDE_FLOOR = 1e-10  # mel power floor before decibels, as features.AMPLITUDE_FLOOR


def window_frame_layout(n_fft: int, window_offset: int, hop: int, frame_samples: int,
                        window_samples: int) -> tuple[int, int, int, int, int, int]:
    """Where the frames of one window lie, for sharing frames between overlapping windows
    (`SharedFrames`): lead (frame i starts at sample i * hop - lead), frames per window, the
    first and last (inclusive) frames clear of the mirrored padding, the frames right of those, and the
    samples holding one side's edge frames (the longer side's count, so both sides stack)."""
    lead = n_fft // 2 - window_offset
    n_frames = window_samples // hop + 1
    first_inner = -(-lead // hop)
    last_inner = (window_samples - frame_samples + lead) // hop
    n_right = n_frames - last_inner - 1
    edge_samples = (max(first_inner, n_right) - 1) * hop + frame_samples
    return lead, n_frames, first_inner, last_inner, n_right, edge_samples


class NumpyLogMel:
    """Waveforms (batch, samples) -> log-mel power in dB (batch, frames, n_mels), before the floor."""

    def __init__(self, window: np.ndarray, mel_basis: np.ndarray, hop_samples: int, n_fft: int):
        self.window = np.asarray(window, dtype=np.float32)  # (window_samples,) periodic Hann
        self.mel_basis = np.asarray(mel_basis, dtype=np.float32)  # (n_fft // 2 + 1, n_mels)
        self.window_samples, self.hop_samples, self.n_fft = len(self.window), int(hop_samples), int(n_fft)
        self.window_offset = (self.n_fft - self.window_samples) // 2  # torch.stft centres the window

    def frames(self, samples: np.ndarray) -> np.ndarray:
        """(batch, samples) -> (batch, frames, n_mels): frame i is window_samples samples from i * hop."""
        samples = np.ascontiguousarray(samples, dtype=np.float32)
        (batch, length), (row_stride, item) = samples.shape, samples.strides
        count = max(0, (length - self.window_samples) // self.hop_samples + 1)
        framed = as_strided(samples, (batch, count, self.window_samples), (row_stride, self.hop_samples * item, item),
                            writeable=False)  # (B, T, win): a view (sliding_window_view costs 4x the call here)
        # windowed frames written into zeros of the FFT's length: rfft(x, n) pads its own copy, which took half
        # the time of a live hop's FFT (numpy 2.4, 13 frames)
        padded = np.zeros((batch, count, self.n_fft), dtype=np.float32)
        np.multiply(framed, self.window, out=padded[..., : self.window_samples])
        spectrum = np.fft.rfft(padded)  # (B, T, n_freqs) complex64
        power = np.square(spectrum.real) + np.square(spectrum.imag)
        # one 2-D product: NumPy multiplies a stack of matrices in its own loop, 40x slower than BLAS here
        mel = power.reshape(-1, power.shape[-1]) @ self.mel_basis  # (B * T, n_mels)
        mel = np.log10(np.maximum(mel, AMPLITUDE_FLOOR, out=mel), out=mel)
        return np.multiply(mel, 10.0, out=mel).reshape(*power.shape[:-1], -1)

    def windows(self, waveforms: np.ndarray) -> np.ndarray:
        """Whole windows, each with its own mirrored ends: (batch, samples) -> (batch, frames, n_mels)."""
        waveforms = np.asarray(waveforms, dtype=np.float32)
        padded = mirror_pad(waveforms, self.n_fft // 2)
        n_frames = waveforms.shape[-1] // self.hop_samples + 1
        return self.frames(padded[:, self.window_offset :])[:, :n_frames]


def mirror_pad(waveforms: np.ndarray, half: int) -> np.ndarray:
    """(batch, samples) -> (batch, half + samples + half), each end mirrored without repeating the
    edge sample (torch's "reflect" padding, as features.mirror_pad)."""
    return np.concatenate([waveforms[:, 1 : half + 1][:, ::-1], waveforms, waveforms[:, -half - 1 : -1][:, ::-1]],
                          axis=-1)


class SharedFrames:
    """Log-mel frames of overlapping windows of one stream, computing each frame once: the cache of
    `SharedLogMelFrames` (NumPy) and `features.SharedFrameMfcc` (PyTorch), written once.

    Frames inside a window are sliced from a cache of the stream's frames; the few at each edge, whose
    mirrored padding differs per window, are computed per window (all edges in one call). A subclass
    gives the array operations of its library (`_as_signal`, `_log_mel`, `_mirror_pad`, `_concat`,
    `_stack`, `_empty`) and the front end's settings; `frames` gives (windows, frames, n_mels), what the
    front end gives each window alone.
    """

    def __init__(self, n_fft: int, window_offset: int, hop: int, frame_samples: int, window_samples: int,
                 n_mels: int):
        self.n_fft, self.window_offset, self.frame_samples = n_fft, window_offset, frame_samples
        self.window_samples, self.hop, self.n_mels = window_samples, hop, n_mels
        (self.lead, self.n_frames, self.first_inner, self.last_inner, self.n_right,
         self.edge_samples) = window_frame_layout(n_fft, window_offset, hop, frame_samples, window_samples)
        self.reset()

    def reset(self) -> None:
        self._first_frame = 0  # absolute index of the cache's first row (of the phase in use)
        self._frames = self._empty((0, self.n_mels))  # (frames, n_mels) dB
        # one cache per phase (window start modulo the frame hop): a 125 ms hop is 12.5 frames of 10 ms, so
        # every other window lies half a frame off the first one's grid, and shares frames with the windows
        # of its own phase only
        self._caches: dict[int, tuple] = {}

    def can_share(self, window_starts: np.ndarray) -> bool:
        return self.window_samples % self.hop == 0 and self.first_inner <= self.last_inner

    def frames(self, stream: np.ndarray, stream_start: int, window_starts: np.ndarray):
        """stream: samples from absolute sample `stream_start` on; window_starts: absolute starts
        (ascending) of windows inside it. -> (windows, frames, n_mels)"""
        window_starts = np.asarray(window_starts, dtype=np.int64)
        signal = self._as_signal(stream)
        phases = window_starts % self.hop
        if np.all(phases == phases[0]):
            return self._frames_of_phase(signal, stream_start, window_starts, int(phases[0]))
        out = self._empty((len(window_starts), self.n_frames, self.n_mels))
        for phase in np.unique(phases):
            which = np.flatnonzero(phases == phase)
            out[which] = self._frames_of_phase(signal, stream_start, window_starts[which], int(phase))
        return out

    def _frames_of_phase(self, signal, stream_start: int, window_starts: np.ndarray, phase: int):
        """The windows of one phase, on that phase's frame grid (absolute samples shifted by `phase`)."""
        self._first_frame, self._frames = self._caches.get(phase, (0, self._frames[:0]))
        stream_start, window_starts = stream_start - phase, window_starts - phase  # on the grid now
        first = int(window_starts[0]) // self.hop + self.first_inner
        self._update_cache(signal, stream_start, first, int(window_starts[-1]) // self.hop + self.last_inner)
        edges = self._edge_frames(signal, stream_start, window_starts)  # (windows, 2, edge frames, n_mels)
        inner_count = self.last_inner - self.first_inner + 1
        out = self._empty((len(window_starts), self.n_frames, self.n_mels))
        for i, start in enumerate(window_starts):
            lo = int(start) // self.hop + self.first_inner - self._first_frame
            out[i, : self.first_inner] = edges[i, 0, : self.first_inner]
            out[i, self.first_inner : self.last_inner + 1] = self._frames[lo : lo + inner_count]
            out[i, self.last_inner + 1 :] = edges[i, 1, : self.n_right]
        self._caches[phase] = (self._first_frame, self._frames)
        return out

    def _edge_frames(self, signal, stream_start: int, window_starts: np.ndarray):
        """Log-mel of the frames at both ends of each window, with the window's own mirrored padding.
        Only each end's samples are padded (not the whole window): the part of the padded window an
        edge's frames cover depends on the samples near that end alone."""
        half, offset, edge = self.n_fft // 2, self.window_offset, self.edge_samples
        right_from = offset + (self.last_inner + 1) * self.hop  # in the padded window
        head = max(offset + edge - half, half + 1)  # samples of the window's start that the left edge needs
        tail = max(self.window_samples - (right_from - half), half + 1)  # and of its end, for the right edge
        at = [int(start) - stream_start for start in window_starts]
        heads = self._mirror_pad(self._stack([signal[a : a + head] for a in at]), half)  # (N, half + head + half)
        tails = self._mirror_pad(self._stack([signal[a + self.window_samples - tail : a + self.window_samples]
                                              for a in at]), half)
        tail_from = right_from - (self.window_samples - tail)  # right_from in the padded tail's coordinates
        sides = self._stack([heads[:, offset : offset + edge], tails[:, tail_from : tail_from + edge]], axis=1)
        frames = self._log_mel(sides.reshape(-1, edge))  # (2N, edge frames, n_mels)
        return frames.reshape(len(window_starts), 2, -1, frames.shape[-1])

    def _update_cache(self, signal, stream_start: int, first: int, last: int) -> None:
        """Keep frames first..last (absolute, inclusive): drop older rows, compute the new ones in one call."""
        cached_end = self._first_frame + len(self._frames)
        if not (self._first_frame <= first <= cached_end):  # a gap (or a reset stream): start over
            self._first_frame, self._frames = first, self._frames[:0]
            cached_end = first
        if last >= cached_end:
            begin = cached_end * self.hop - self.lead - stream_start
            end = last * self.hop - self.lead - stream_start + self.frame_samples
            self._frames = self._concat([self._frames, self._log_mel(signal[None, begin:end])[0]])
        self._frames = self._frames[first - self._first_frame :]
        self._first_frame = first


class SharedLogMelFrames(SharedFrames):
    """`SharedFrames` on `NumpyLogMel`: what the ONNX graph takes, (windows, frames, n_mels)."""

    def __init__(self, log_mel: NumpyLogMel, window_samples: int):
        self.log_mel = log_mel
        super().__init__(log_mel.n_fft, log_mel.window_offset, log_mel.hop_samples, log_mel.window_samples,
                         window_samples, log_mel.mel_basis.shape[1])

    def __call__(self, stream: np.ndarray, stream_start: int, window_starts: np.ndarray) -> np.ndarray:
        return self.frames(stream, stream_start, window_starts)

    def _as_signal(self, stream):
        return np.asarray(stream, dtype=np.float32)

    def _log_mel(self, samples):
        return self.log_mel.frames(samples)

    def _mirror_pad(self, windows, half: int):
        return mirror_pad(windows, half)

    def _concat(self, parts):
        return np.concatenate(parts)

    def _stack(self, parts, axis: int = 0):
        return np.stack(parts, axis=axis)

    def _empty(self, shape):
        return np.empty(shape, dtype=np.float32)
