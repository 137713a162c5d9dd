"""Decoding a dataset's clips once: into one int16 array per split, cached on disk between runs,
so that no epoch (and no resumed run) decodes a file again."""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import numpy as np

from ..atomic_files import STALE_TEMP_SECONDS, OutputError, atomic_write, remove_stale_temporaries
from ..audio import SAMPLE_RATE, AudioDecodeError, decode_files, fit_to_window, seconds_to_samples, speech_seconds
from ..cache import cache_folder
from .dataset import Example
from .noise import NoiseBank

INT16_SCALE = 32767.0
WINDOW_STEP_SECONDS = 0.25  # a window chosen from the data is a whole number of these
WINDOW_MARGIN_SECONDS = 0.2  # room around the spoken part for the time shift
MIN_WINDOW_SECONDS = 1.0
MAX_WINDOW_SECONDS = 4.0
# temporary files of interrupted runs: `<key>.<hex>.tmp.npy` (older versions) and `.<key>.npy.<random>.tmp`
ORPHAN_PATTERNS = ("*.tmp.npy", ".*.npy.*.tmp")
FOLDER_SEED = -1  # in the key of a folder's entry: its clips do not depend on the silence seed


def cache_dir() -> Path:
    return cache_folder("clips")


def choose_window_seconds(audio: list[np.ndarray], percentile: float = 95.0) -> float:
    """A window that holds the spoken part of nearly every take: a phrase needs more than a second.

    Never longer than the longest take, rounded up to a whole step (one-second clips get one second).
    """
    lengths = [speech_seconds(a) for a in audio if len(a)]
    if not lengths:
        return MIN_WINDOW_SECONDS
    needed = float(np.percentile(lengths, percentile)) + WINDOW_MARGIN_SECONDS
    longest_take = max(len(a) for a in audio) / SAMPLE_RATE
    steps = np.ceil(min(needed, longest_take) / WINDOW_STEP_SECONDS - 1e-6) * WINDOW_STEP_SECONDS
    return float(np.clip(steps, MIN_WINDOW_SECONDS, MAX_WINDOW_SECONDS))


def _cache_key(examples: list[Example], window_samples: int, seed: int) -> str:
    digest = hashlib.sha1(f"{window_samples}:{seed}".encode())
    for e in examples:
        stat = os.stat(e.path) if e.path else None
        digest.update(f"{e.path}|{stat.st_size if stat else 0}|{stat.st_mtime_ns if stat else 0}\n".encode())
    return digest.hexdigest()[:20]


def load_split_clips(examples: list[Example], window_seconds: float, noise: NoiseBank, *, seed: int = 0,
                     progress: bool = True, use_cache: bool = True,
                     by_folder: bool = False) -> tuple[np.ndarray, list[str]]:
    """(clips as int16 (N, window_samples), errors) for the examples, in their order.

    `_silence_` examples become noise windows drawn with a fixed seed, so validation is repeatable.
    A file that cannot be decoded becomes a silent row and an error line naming the file (see
    `failed_rows`: training leaves such rows out rather than teach silence as the word).
    by_folder: cache each folder's clips on their own (the same clips either way), so that a change
    in one folder (new takes) decodes only that folder, not the negatives and synthetic speech too.
    """
    window_samples = seconds_to_samples(window_seconds)
    if by_folder and use_cache:
        return _load_by_folder(examples, window_samples, noise, seed, progress)
    cache_file = cache_dir() / f"{_cache_key(examples, window_samples, seed)}.npy"
    if use_cache:
        remove_stale_temporaries(cache_file.parent, ORPHAN_PATTERNS, STALE_TEMP_SECONDS)
        cached = read_cached_clips(cache_file, (len(examples), window_samples))
        if cached is not None:
            return cached, []
    clips = np.zeros((len(examples), window_samples), dtype=np.int16)
    decoded = decode_files([e.path for e in examples if e.path], progress)
    errors, rng, files = [], np.random.default_rng(seed), iter(decoded)
    for row, example in enumerate(examples):
        audio = next(files) if example.path else noise.silence_clip(rng, window_samples)
        if isinstance(audio, AudioDecodeError):
            errors.append(str(audio))
            continue
        clips[row] = np.round(np.clip(fit_to_window(audio, window_samples, SAMPLE_RATE), -1, 1) * INT16_SCALE)
    if use_cache and not errors:
        write_cached_clips(cache_file, clips)
    return clips, errors


def _load_by_folder(examples: list[Example], window_samples: int, noise: NoiseBank, seed: int,
                    progress: bool) -> tuple[np.ndarray, list[str]]:
    """load_split_clips with one cache entry per folder of files; the silence rows, cheap, are drawn anew."""
    folders: dict[str, list[int]] = {}
    for row, example in enumerate(examples):
        if example.path:
            folders.setdefault(os.path.dirname(os.path.abspath(example.path)), []).append(row)
    remove_stale_temporaries(cache_dir(), ORPHAN_PATTERNS, STALE_TEMP_SECONDS)
    clips = np.zeros((len(examples), window_samples), dtype=np.int16)
    missing: list[tuple[Path, list[int]]] = []
    for rows in folders.values():
        cache_file = cache_dir() / f"{_cache_key([examples[r] for r in rows], window_samples, FOLDER_SEED)}.npy"
        cached = read_cached_clips(cache_file, (len(rows), window_samples))
        if cached is None:
            missing.append((cache_file, rows))
        else:
            clips[rows] = cached
    to_decode = sorted(r for _, rows in missing for r in rows)  # one parallel decode for every folder
    decoded = dict(zip(to_decode, decode_files([examples[r].path for r in to_decode], progress) if to_decode else []))
    errors = [str(audio) for _, audio in sorted(decoded.items()) if isinstance(audio, AudioDecodeError)]
    for cache_file, rows in missing:
        audio = [decoded[r] for r in rows]
        for row, one in zip(rows, audio):
            if not isinstance(one, AudioDecodeError):
                clips[row] = np.round(np.clip(fit_to_window(one, window_samples, SAMPLE_RATE), -1, 1) * INT16_SCALE)
        if not any(isinstance(one, AudioDecodeError) for one in audio):
            write_cached_clips(cache_file, clips[rows])
    rng = np.random.default_rng(seed)  # in row order, as load_split_clips draws them
    for row, example in enumerate(examples):
        if not example.path:
            clips[row] = np.round(np.clip(fit_to_window(noise.silence_clip(rng, window_samples), window_samples,
                                                        SAMPLE_RATE), -1, 1) * INT16_SCALE)
    return clips, errors


def failed_rows(examples: list[Example], errors: list[str]) -> list[int]:
    """Rows of `examples` whose file is named by one of `errors` (the files that could not be decoded)."""
    return [row for row, e in enumerate(examples) if e.path and any(error.startswith(f"{e.path}:") for error in errors)]


def read_cached_clips(cache_file: Path, shape: tuple[int, int]) -> np.ndarray | None:
    """The cached clips, or None when there are none. A damaged entry (truncated, empty, another
    shape or type: a crash or a full disk) is deleted with a notice naming it, and rebuilt."""
    if not cache_file.is_file():
        return None
    try:
        clips = np.load(cache_file, allow_pickle=False)
        problem = None if clips.shape == shape and clips.dtype == np.int16 else (
            f"holds {clips.dtype} {clips.shape}, expected int16 {shape}")
    except (OSError, ValueError, EOFError) as err:
        problem = " ".join(str(err).split()) or type(err).__name__
    if problem is None:
        return clips
    print(f"speech-app: the clip cache {cache_file} is damaged ({problem}); decoding the clips again",
          file=sys.stderr, flush=True)
    cache_file.unlink(missing_ok=True)
    return None


def write_cached_clips(cache_file: Path, clips: np.ndarray) -> None:
    """Save through a unique temporary name (DDP ranks and parallel runs write at once); a cache
    that cannot be written (full disk) costs only speed, so it is a notice, not a failure."""
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(cache_file, "wb") as handle:
            np.save(handle, clips, allow_pickle=False)
    except (OutputError, OSError) as err:
        print(f"speech-app: not caching decoded clips: {err}", file=sys.stderr, flush=True)


def to_float(clips: np.ndarray) -> np.ndarray:
    return clips.astype(np.float32) / INT16_SCALE
