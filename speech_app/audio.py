"""Audio in: decode files, mix to mono, resample to 16 kHz, and fit clips to the model's window.

No torch here: everything is NumPy, so the capture thread and file decoding stay light.
"""

from __future__ import annotations

import io
import os
import stat
import wave
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import soundfile

from .messages import one_line

SAMPLE_RATE = 16_000  # Hz: every model and feature in the package runs at this rate
CLIP_SECONDS = 1.0  # Speech Commands clips are one second long
ENERGY_HOP_MS = 10.0  # granularity of the search for the loudest window when cropping
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga")
MIN_FILE_RATE_HZ, MAX_FILE_RATE_HZ = 1_000, 384_000  # outside this a header is damaged, not exotic
PCM16_BYTES, PCM16_FULL_SCALE = 2, 32_768  # 16-bit PCM: bytes per sample, the value that maps to 1.0
DECODE_THREADS = max(2, min(8, os.cpu_count() or 2))  # libsndfile releases the GIL while decoding


class AudioDecodeError(Exception):
    """A file that could not be turned into audio; the message names the file and the reason."""


def load_audio(path: str | os.PathLike, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Decode a WAV/FLAC/OGG file into float32 mono samples in [-1, 1] at `sample_rate`.

    WAV may be 8/16/24/32-bit integer or 32/64-bit float; libsndfile handles all of them.
    """
    path = Path(path)
    _check_regular_file(path)
    try:
        mono, file_rate = _decode_mono(path)
    except AudioDecodeError:
        _check_readable(path)  # a path that is no readable file at all: say that, in the user's terms
        raise
    if mono.size == 0:
        raise AudioDecodeError(f"{path}: the file holds no audio samples")
    if not MIN_FILE_RATE_HZ <= file_rate <= MAX_FILE_RATE_HZ:
        raise AudioDecodeError(f"{path}: unusable sample rate {file_rate} Hz")
    return resample(mono, file_rate, sample_rate)


def _decode_mono(path: Path) -> tuple[np.ndarray, int]:
    """(float32 mono samples, the file's rate): 16-bit PCM WAV through the standard library, the rest
    (and any WAV that the standard library cannot read) through libsndfile."""
    if path.suffix.lower() == ".wav":
        decoded = _read_pcm16_wav(path)
        if decoded is not None:
            return decoded
    return _read_with_libsndfile(path)


def _read_pcm16_wav(path: Path) -> tuple[np.ndarray, int] | None:
    """A 16-bit integer PCM WAV (what recorders and Speech Commands write), or None for any other file.

    The standard library's wave module and NumPy took about a third of libsndfile's CPU time for a one-second
    clip (libsndfile's open and its float conversion cost far more than reading 32 KB), and give the same
    samples: int16 / 32768, the scaling libsndfile uses. Float, 8/24/32-bit, damaged headers and (before
    Python 3.12) WAVE_FORMAT_EXTENSIBLE return None and go to libsndfile, so their results and errors are libsndfile's."""
    try:
        with open(os.fsencode(path), "rb") as handle, wave.open(handle) as reader:
            if reader.getsampwidth() != PCM16_BYTES:
                return None
            channels, rate = reader.getnchannels(), reader.getframerate()
            # a damaged header may claim gigabytes: read no more frames than the file can hold
            frames = min(reader.getnframes(), os.fstat(handle.fileno()).st_size // (channels * PCM16_BYTES))
            data = reader.readframes(frames)
    except MemoryError:
        raise AudioDecodeError(f"{path}: too long to decode in the memory available") from None
    except Exception:  # wave raises Error, EOFError, RuntimeError, ... on a damaged file: libsndfile decides
        return None
    whole = len(data) // (channels * PCM16_BYTES) * channels  # a file cut inside a frame: whole frames only
    try:  # native int16: wave's readframes hands the samples over in the machine's byte order
        pcm = np.frombuffer(data, dtype=np.int16, count=whole).reshape(-1, channels)
        samples = np.multiply(pcm, np.float32(1.0 / PCM16_FULL_SCALE), dtype=np.float32)
        return _mixed_to_mono(samples), rate
    except MemoryError:
        raise AudioDecodeError(f"{path}: too long to decode in the memory available") from None


def _read_with_libsndfile(path: Path) -> tuple[np.ndarray, int]:
    try:  # bytes: a name that is not valid UTF-8 still opens (str would fail to encode)
        samples, file_rate = soundfile.read(os.fsencode(path), dtype="float32", always_2d=True)
    except soundfile.LibsndfileError as err:  # its own text repeats the path (as bytes): keep only the reason
        raise AudioDecodeError(f"{path}: cannot decode audio ({one_line(err.error_string)})") from None
    except (RuntimeError, TypeError, ValueError, OSError) as err:
        raise AudioDecodeError(f"{path}: cannot decode audio ({one_line(err)})") from None
    except MemoryError:
        raise AudioDecodeError(f"{path}: too long to decode in the memory available") from None
    mono = _mixed_to_mono(samples)
    if not np.all(np.isfinite(mono)):  # float WAV can hold them; integer PCM cannot
        raise AudioDecodeError(f"{path}: the audio holds NaN or infinite samples")
    return mono, file_rate


def _mixed_to_mono(samples: np.ndarray) -> np.ndarray:
    """(frames, channels) -> (frames,): a mono file's one channel as it is (averaging one column cost a
    quarter of decoding a 16-bit WAV clip), more channels averaged."""
    return samples[:, 0] if samples.shape[1] == 1 else samples.mean(axis=1)


NOT_REGULAR_KINDS = ((stat.S_ISFIFO, "a named pipe"), (stat.S_ISCHR, "a character device"),
                     (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def special_file_kind(path: str | os.PathLike) -> str | None:
    """What a path that exists but is no regular file is ("a folder", "a named pipe", ...); None for a
    regular file or a path that cannot be looked at (its opening then says what is wrong)."""
    try:
        mode = os.stat(os.fsencode(path)).st_mode
    except (OSError, ValueError):
        return None
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a folder"
    return next((name for test, name in NOT_REGULAR_KINDS if test(mode)), "a special file")


def _check_regular_file(path: Path) -> None:
    """Refuse, before opening it, a path that is no regular file: opening a named pipe with no writer (or a
    terminal, `/dev/zero`) waits or reads forever, and the rest of a batch would wait with it. A path that
    cannot be looked at is left to decoding, whose failure `_check_readable` then explains."""
    if (kind := special_file_kind(path)) is not None:
        raise AudioDecodeError(f"{path}: is {kind}, not an audio file")


def _check_readable(path: Path) -> None:
    """Say what is wrong with a path that is no audio file at all, in the user's terms."""
    if path.is_dir():
        raise AudioDecodeError(f"{path}: is a folder, not an audio file")
    try:
        with open(path, "rb"):
            pass
    except FileNotFoundError:
        link = " (a broken symbolic link)" if path.is_symlink() else ""
        raise AudioDecodeError(f"{path}: no such file{link}") from None
    except OSError as err:  # permission denied, a symbolic link loop, ...
        raise AudioDecodeError(f"{path}: cannot read ({(err.strerror or str(err)).lower()})") from None


def decode_files(paths: list, progress: bool = False) -> list[np.ndarray | AudioDecodeError]:
    """Decoded audio per path, in input order, decoded in parallel threads; a file that cannot be
    decoded gives its AudioDecodeError in its place instead of stopping the others."""
    from tqdm import tqdm

    from .daemon_pool import DaemonThreadPool

    def decode(path):
        try:
            return load_audio(path)
        except AudioDecodeError as err:
            return err

    with DaemonThreadPool(DECODE_THREADS, name="decode") as pool:  # Ctrl-C never waits for a read that hangs
        futures = [pool.submit(decode, path) for path in paths]
        results = (future.result() for future in futures)
        return list(tqdm(results, total=len(paths), desc="decoding", unit="clip", disable=not progress, leave=False))


def resample(samples: np.ndarray, from_rate: int, to_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Resample mono float samples with librosa's high-quality soxr resampler."""
    samples = np.asarray(samples, dtype=np.float32)
    if from_rate == to_rate:
        return samples
    import librosa  # imported lazily: it costs about a second at start-up

    return librosa.resample(samples, orig_sr=from_rate, target_sr=to_rate, res_type="soxr_hq").astype(np.float32)


def seconds_to_samples(seconds: float, sample_rate: int = SAMPLE_RATE) -> int:
    return int(round(seconds * sample_rate))


def loudest_window_start(samples: np.ndarray, window_samples: int, sample_rate: int = SAMPLE_RATE) -> int:
    """Start index of the `window_samples`-long window holding the most energy (the spoken word)."""
    if len(samples) <= window_samples:
        return 0
    hop = max(1, seconds_to_samples(ENERGY_HOP_MS / 1000.0, sample_rate))
    energy = np.concatenate([[0.0], np.cumsum(samples.astype(np.float64) ** 2)])
    starts = np.arange(0, len(samples) - window_samples + 1, hop)
    window_energy = energy[starts + window_samples] - energy[starts]
    return int(starts[int(np.argmax(window_energy))])


def fit_to_window(samples: np.ndarray, window_samples: int, sample_rate: int = SAMPLE_RATE,
                  out: np.ndarray | None = None) -> np.ndarray:
    """Crop a long clip to its loudest window, or pad a short one with silence on both sides.
    `out`: a float32 array of `window_samples` (a row of a batch) to write the window into."""
    samples = np.asarray(samples, dtype=np.float32)
    if out is None:
        out = np.empty(window_samples, dtype=np.float32)
    if len(samples) >= window_samples:
        start = loudest_window_start(samples, window_samples, sample_rate)
        out[:] = samples[start : start + window_samples]
        return out
    left = (window_samples - len(samples)) // 2
    out[:left] = 0.0
    out[left : left + len(samples)] = samples
    out[left + len(samples) :] = 0.0
    return out


def load_clip(path: str | os.PathLike, window_seconds: float = CLIP_SECONDS) -> np.ndarray:
    """Decode a file and fit it to a window of `window_seconds` at 16 kHz."""
    return fit_to_window(load_audio(path), seconds_to_samples(window_seconds))


def speech_seconds(samples: np.ndarray, sample_rate: int = SAMPLE_RATE, top_db: float = 30.0) -> float:
    """Length of the part of a take that is louder than `top_db` below its peak (the spoken part)."""
    import librosa

    if len(samples) == 0:
        return 0.0
    _, (start, end) = librosa.effects.trim(np.asarray(samples, dtype=np.float32), top_db=top_db)
    return (end - start) / sample_rate


def is_audio_file(path: Path) -> bool:
    return path.suffix.lower() in AUDIO_EXTENSIONS and not path.name.startswith(".")


def write_wav(path: str | os.PathLike, samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    """Write 16-bit PCM through a temporary file and a rename, so a crash never leaves half a file;
    OutputError when it cannot be written."""
    from .atomic_files import OutputError, atomic_write, describe_os_error

    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:  # a read-only or full disk: one line naming the file, as atomic_write says it
        raise OutputError(describe_os_error(path, err)) from None
    encoded = io.BytesIO()  # libsndfile writing to the file itself lost a full disk's error (an AssertionError)
    soundfile.write(encoded, np.clip(samples, -1.0, 1.0), sample_rate, subtype="PCM_16", format="WAV")
    with atomic_write(path, "wb") as handle:
        handle.write(encoded.getbuffer())


def expand_paths(inputs: Iterable[str | os.PathLike], recursive: bool = False) -> list[Path]:
    """Folders become the audio files inside them (by extension, hidden files skipped); files named
    explicitly are always kept, whatever their extension, so the user hears why they failed."""
    files: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            pattern = item.rglob("*") if recursive else item.iterdir()
            found = sorted(p for p in pattern if p.is_file() and is_audio_file(p)
                           and not any(part.startswith(".") for part in p.relative_to(item).parts))
            files.extend(found)
        else:
            files.append(item)
    return files
