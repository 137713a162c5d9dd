"""Long recordings a block at a time: decode, mix to mono and resample to 16 kHz in constant memory.

`audio.load_audio` decodes a file whole, right for one-second clips; `listen --file` on a 10-hour
recording would hold gigabytes that way. Here libsndfile reads a block, it is mixed to mono and goes
through soxr's streaming resampler (the one the microphone uses), so the samples are those that
`load_audio` gives (its whole-file soxr_hq resampling is the same filter) and memory does not grow
with the file. No torch here.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile

from .audio import MAX_FILE_RATE_HZ, MIN_FILE_RATE_HZ, SAMPLE_RATE, AudioDecodeError, _check_readable, _mixed_to_mono
from .messages import one_line

BLOCK_SECONDS = 10.0  # audio decoded per read: large enough for few calls, small enough to stay cheap
RESAMPLE_QUALITY = "HQ"  # soxr's quality: librosa's soxr_hq (audio.resample), so samples match load_audio
RESAMPLE_MARGIN_SECONDS = 0.1  # read past `max_seconds` by this much, so the resampler's filter sees what
# it sees resampling the whole file, and the samples before the cut are the whole file's (its filter is ~1 ms)


class AudioBlockReader:
    """A recording opened for reading a block at a time (AudioDecodeError, one line naming the file,
    when it is no audio):

        with AudioBlockReader(path, max_seconds=60) as reader:
            for block in reader:             # float32 mono at 16 kHz
                ...

    Together the blocks are `load_audio(path)` cut to its first `max_seconds`; nothing after those
    is read."""

    def __init__(self, path: str | os.PathLike, max_seconds: float | None = None,
                 block_seconds: float = BLOCK_SECONDS):
        self.path = Path(path)
        self._handle = _open(self.path)
        self.rate_hz, frames = int(self._handle.samplerate), int(self._handle.frames)
        if not MIN_FILE_RATE_HZ <= self.rate_hz <= MAX_FILE_RATE_HZ:
            self.close()
            raise AudioDecodeError(f"{self.path}: unusable sample rate {self.rate_hz} Hz")
        self.frames = frames  # to be read, as the header says
        self.max_samples = None  # at 16 kHz
        if max_seconds is not None:
            self.max_samples = int(round(max_seconds * SAMPLE_RATE))
            margin = 0 if self.rate_hz == SAMPLE_RATE else RESAMPLE_MARGIN_SECONDS
            self.frames = min(frames, int(round((max_seconds + margin) * self.rate_hz)))
        self.block_frames = max(1, int(block_seconds * self.rate_hz))

    @property
    def seconds(self) -> float:
        """The audio to be given (the file's, or `max_seconds` of it), as the header says."""
        seconds = self.frames / self.rate_hz
        return seconds if self.max_samples is None else min(seconds, self.max_samples / SAMPLE_RATE)

    def __enter__(self) -> AudioBlockReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._handle.close()

    def __iter__(self) -> Iterator[np.ndarray]:
        given = 0
        for block in self._resampled():
            if self.max_samples is not None:
                block = block[: self.max_samples - given]
            given += len(block)
            if len(block):
                yield block

    def _resampled(self) -> Iterator[np.ndarray]:
        resampler = None
        if self.rate_hz != SAMPLE_RATE:
            import soxr  # comes with librosa; the microphone's resampler too

            resampler = soxr.ResampleStream(self.rate_hz, SAMPLE_RATE, 1, dtype="float32", quality=RESAMPLE_QUALITY)
        done = 0
        while done < self.frames:
            mono = self._read_mono(min(self.block_frames, self.frames - done))
            if mono.size == 0:  # the header promised more than the file holds
                break
            done += mono.size
            yield mono if resampler is None else resampler.resample_chunk(mono)
        if done == 0:
            raise AudioDecodeError(f"{self.path}: the file holds no audio samples")
        if resampler is not None:
            yield resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True)

    def _read_mono(self, frames: int) -> np.ndarray:
        try:
            samples = self._handle.read(frames, dtype="float32", always_2d=True)
        except soundfile.LibsndfileError as err:
            raise AudioDecodeError(f"{self.path}: cannot decode audio ({one_line(err.error_string)})") from None
        except (RuntimeError, ValueError, OSError) as err:
            raise AudioDecodeError(f"{self.path}: cannot decode audio ({one_line(err)})") from None
        mono = np.ascontiguousarray(_mixed_to_mono(samples), dtype=np.float32)
        if not np.all(np.isfinite(mono)):  # float WAV can hold them; integer PCM cannot
            raise AudioDecodeError(f"{self.path}: the audio holds NaN or infinite samples")
        return mono


def _open(path: Path) -> soundfile.SoundFile:
    try:  # bytes: a name that is not valid UTF-8 still opens
        return soundfile.SoundFile(os.fsencode(path))
    except soundfile.LibsndfileError as err:
        _check_readable(path)
        raise AudioDecodeError(f"{path}: cannot decode audio ({one_line(err.error_string)})") from None
    except (RuntimeError, TypeError, ValueError, OSError) as err:
        _check_readable(path)
        raise AudioDecodeError(f"{path}: cannot decode audio ({one_line(err)})") from None


def read_blocks(path: str | os.PathLike, max_seconds: float | None = None,
                block_seconds: float = BLOCK_SECONDS) -> Iterator[np.ndarray]:
    """float32 mono blocks at 16 kHz: `AudioBlockReader`'s, closing the file at the end."""
    with AudioBlockReader(path, max_seconds, block_seconds) as reader:
        yield from reader
