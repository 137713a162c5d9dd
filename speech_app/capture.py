"""Audio in from a microphone (sounddevice) or, paced like one, from files.

The PortAudio callback does one thing: copy the block into a thread-safe ring buffer (and count
what was lost). Resampling, inference and drawing happen in whoever calls `read()`.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from .audio import SAMPLE_RATE, load_audio

BLOCK_MS = 20.0  # audio per PortAudio callback
RING_SECONDS = 10.0  # audio kept for a reader that falls behind; older audio is dropped and counted
FILE_BLOCK_MS = 20.0  # block size of a FileCapture


class NoInputDeviceError(Exception):
    """No microphone, or not the one asked for; the message is one line for the user."""


@dataclass(frozen=True)
class InputDevice:
    index: int
    name: str
    host_api: str
    channels: int
    default_rate_hz: float
    is_default: bool

    def describe(self) -> str:
        return f"{self.index}: {self.name} ({self.host_api}, {self.default_rate_hz:.0f} Hz)"


@dataclass(frozen=True)
class CaptureStats:
    device_name: str
    device_rate_hz: int  # the rate the device runs at; audio is delivered at 16 kHz
    latency_s: float  # input latency reported by the audio system
    dropped_s: float  # seconds of audio lost so far because the reader fell behind the ring buffer
    overflows: int  # callbacks in which the audio system reported lost input (input overflow)


class AudioSource(Protocol):
    """What the live recognizer reads from: a microphone, or a file paced like one."""

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def read(self, timeout_s: float = 0.0) -> np.ndarray: ...

    def stats(self) -> CaptureStats: ...


class AudioRingBuffer:
    """A fixed-size float32 ring buffer, written by one thread and read by another."""

    def __init__(self, capacity_samples: int):
        self._data = np.zeros(capacity_samples, dtype=np.float32)
        self._write = 0  # total samples ever written
        self._read = 0  # total samples ever read
        self.dropped_samples = 0
        self._lock = threading.Lock()
        self._ready = threading.Condition(self._lock)

    @property
    def capacity(self) -> int:
        return len(self._data)

    def write(self, samples: np.ndarray) -> None:
        samples = samples[-self.capacity :]
        with self._lock:
            start = self._write % self.capacity
            first = min(len(samples), self.capacity - start)
            self._data[start : start + first] = samples[:first]
            self._data[: len(samples) - first] = samples[first:]
            self._write += len(samples)
            overrun = self._write - self._read - self.capacity
            if overrun > 0:  # the reader fell behind: the oldest audio is gone
                self.dropped_samples += overrun
                self._read += overrun
            self._ready.notify_all()

    def read(self, timeout_s: float = 0.0) -> np.ndarray:
        """Everything written since the last read (waiting up to `timeout_s` for something)."""
        with self._lock:
            if self._write == self._read and timeout_s > 0:
                self._ready.wait(timeout_s)
            count = self._write - self._read
            start = self._read % self.capacity
            index = (start + np.arange(count)) % self.capacity
            out = self._data[index]
            self._read += count
            return out

    def available(self) -> int:
        with self._lock:
            return self._write - self._read


def _sounddevice():
    """sounddevice, imported late: PortAudio reads PULSE_SERVER and friends when it starts."""
    try:
        import sounddevice
    except OSError as err:  # the PortAudio library itself is missing
        raise NoInputDeviceError(f"no audio input: PortAudio is not installed ({err})") from None
    return sounddevice


def reinitialize_audio() -> None:
    """Restart PortAudio so that it sees devices (or audio servers) that appeared since it started."""
    sd = _sounddevice()
    sd._terminate()
    sd._initialize()


def list_input_devices() -> list[InputDevice]:
    import importlib.util

    # every way to a microphone (listen, the Live tab, MicrophoneCapture) lists the devices first
    if importlib.util.find_spec("sounddevice") is None:
        raise NoInputDeviceError("no audio input: the sounddevice package is not installed "
                                 "(pip install 'speech-app[mic]')")
    sd = _sounddevice()
    try:
        devices = sd.query_devices()
        default_input = sd.default.device[0]
        apis = [api["name"] for api in sd.query_hostapis()]
    except sd.PortAudioError:
        return []
    return [InputDevice(d["index"], d["name"], apis[d["hostapi"]], d["max_input_channels"],
                        float(d["default_samplerate"]), d["index"] == default_input)
            for d in devices if d["max_input_channels"] > 0]


def find_input_device(spec: str | int | None) -> InputDevice:
    """The device for `--device`: None for the default, an index, or part of a name."""
    devices = list_input_devices()
    if not devices:
        raise NoInputDeviceError("no audio input device found: connect a microphone (or start PulseAudio)")
    if spec is None or spec == "":
        return next((d for d in devices if d.is_default), devices[0])
    if isinstance(spec, int) or str(spec).isdigit():
        match = [d for d in devices if d.index == int(spec)]
    else:
        match = [d for d in devices if str(spec).lower() in d.name.lower()]
    if not match:
        names = "; ".join(d.describe() for d in devices)
        raise NoInputDeviceError(f"no input device matches {spec!r} (inputs: {names})")
    return match[0]


class MicrophoneCapture:
    """A sounddevice input stream delivering 16 kHz mono float32 through a ring buffer."""

    def __init__(self, device: str | int | None = None, block_ms: float = BLOCK_MS,
                 ring_seconds: float = RING_SECONDS):
        self.device = find_input_device(device)
        self.device_rate = self._pick_rate(self.device)
        self.block_ms = block_ms
        self.ring = AudioRingBuffer(int(ring_seconds * self.device_rate))
        self.overflows = 0
        self._stream = None
        self._resampler = None
        if self.device_rate != SAMPLE_RATE:
            import soxr  # streaming resampler; comes with librosa

            self._resampler = soxr.ResampleStream(self.device_rate, SAMPLE_RATE, 1, dtype="float32")

    @staticmethod
    def _pick_rate(device: InputDevice) -> int:
        """16 kHz when the device takes it, else its own rate (resampled on reading)."""
        sd = _sounddevice()
        try:
            sd.check_input_settings(device=device.index, samplerate=SAMPLE_RATE, channels=1, dtype="float32")
            return SAMPLE_RATE
        except (sd.PortAudioError, ValueError):
            return int(device.default_rate_hz)

    def _callback(self, indata, frames, time_info, status) -> None:  # PortAudio's thread: copy only
        if status.input_overflow:
            self.overflows += 1
        self.ring.write(indata[:, 0])

    def start(self) -> None:
        sd = _sounddevice()
        try:
            self._stream = sd.InputStream(device=self.device.index, samplerate=self.device_rate, channels=1,
                                          dtype="float32", blocksize=int(self.device_rate * self.block_ms / 1000),
                                          latency="low", callback=self._callback)
            self._stream.start()
        except sd.PortAudioError as err:
            self._stream = None
            raise NoInputDeviceError(f"cannot open {self.device.name}: {' '.join(str(err).split())}") from None

    def stop(self) -> None:
        if self._stream is not None:
            self._stream.stop()
            self._stream.close()
            self._stream = None

    def read(self, timeout_s: float = 0.0) -> np.ndarray:
        """The audio captured since the last read, at 16 kHz."""
        samples = self.ring.read(timeout_s)
        if self._resampler is not None and samples.size:
            samples = self._resampler.resample_chunk(samples)
        return samples

    def stats(self) -> CaptureStats:
        latency = float(self._stream.latency) if self._stream is not None else 0.0
        dropped = self.ring.dropped_samples / self.device_rate
        return CaptureStats(self.device.name, self.device_rate, latency, dropped, self.overflows)

    def __enter__(self) -> MicrophoneCapture:
        self.start()
        return self

    def __exit__(self, *_) -> None:
        self.stop()


class FileCapture:
    """Recordings played as if into a microphone: blocks written into the ring buffer in real time.

    For demos, screenshots and tests of the live path without a sound card; `speed` > 1 plays faster.
    """

    def __init__(self, paths_or_samples: list, gap_s: float = 0.5, speed: float = 1.0, loop: bool = False,
                 block_ms: float = FILE_BLOCK_MS):
        parts = []
        for item in paths_or_samples:
            samples = load_audio(item) if isinstance(item, (str, os.PathLike)) else np.asarray(item, np.float32)
            parts += [samples, np.zeros(int(gap_s * SAMPLE_RATE), dtype=np.float32)]
        self.samples = np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)
        self.speed, self.loop = speed, loop
        self.block_samples = max(1, int(SAMPLE_RATE * block_ms / 1000))
        self.ring = AudioRingBuffer(int(RING_SECONDS * SAMPLE_RATE))
        self.finished = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _play(self) -> None:
        started, position = time.monotonic(), 0
        while not self._stop.is_set():
            if position >= len(self.samples):
                if not self.loop or not len(self.samples):
                    break
                started, position = time.monotonic(), 0
            block = self.samples[position : position + self.block_samples]
            due = started + (position + len(block)) / SAMPLE_RATE / self.speed
            self._stop.wait(max(0.0, due - time.monotonic()))
            self.ring.write(block)
            position += len(block)
        self.finished.set()

    def start(self) -> None:
        self._stop.clear()
        self.finished.clear()
        self._thread = threading.Thread(target=self._play, name="file-capture", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def read(self, timeout_s: float = 0.0) -> np.ndarray:
        return self.ring.read(timeout_s)

    def stats(self) -> CaptureStats:
        return CaptureStats("recordings", SAMPLE_RATE, self.block_samples / SAMPLE_RATE,
                            self.ring.dropped_samples / SAMPLE_RATE, 0)
