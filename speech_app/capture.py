"""Audio in from a microphone (sounddevice) or, paced like one, from files.

The PortAudio callback does one thing: copy the block into a thread-safe ring buffer (and count
what was lost). Resampling, inference and drawing happen in whoever calls `read()`.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from .audio import SAMPLE_RATE, load_audio
from .messages import one_line

BLOCK_MS = 20.0  # audio per PortAudio callback
RING_SECONDS = 10.0  # audio kept for a reader that falls behind; older audio is dropped and counted
FILE_BLOCK_MS = 20.0  # block size of a FileCapture
AUDIO_SERVER_TIMEOUT_S = 5.0  # PortAudio starts in well under a second when the audio server answers
RECONNECT_INTERVAL_S = 1.0  # how often a lost input device is looked for again
REINIT_AFTER_TRIES = 10  # reopen attempts before PortAudio itself is restarted (see _reopen)
JOIN_SLICE_S = 0.1  # the wait for PortAudio's start checks for Ctrl-C this often
CLOSE_TIMEOUT_S = 3.0  # longest wait for PortAudio to stop a stream (see MicrophoneCapture._close)
STALL_S = 5.0  # an open stream with no audio for this long is reported (an idle null sink stalls ~2 s)
STALL_LOST_S = 10.0  # ... and for this long treated as lost and reopened: a server can die unnoticed by PortAudio


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

    def read(self, timeout_s: float = 0.0, min_samples: int = 1) -> np.ndarray: ...

    def stats(self) -> CaptureStats: ...


class AudioRingBuffer:
    """A fixed-size float32 ring buffer, written by one thread and read by another."""

    def __init__(self, capacity_samples: int):
        self._data = np.zeros(capacity_samples, dtype=np.float32)
        self._write = 0  # total samples ever written
        self._read = 0  # total samples ever read
        self.dropped_samples = 0
        self._wanted = 1  # samples a waiting reader asked for: fewer do not wake it
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
            if self._write - self._read >= self._wanted:
                self._ready.notify_all()

    def read(self, timeout_s: float = 0.0, min_samples: int = 1) -> np.ndarray:
        """Everything written since the last read, waiting up to `timeout_s` for at least `min_samples`
        (then giving what there is). A reader that needs a hop's audio asks for it, and is woken once per
        hop instead of at every 20 ms block (listen: 8 wake-ups a second instead of 50)."""
        with self._lock:
            if self._write - self._read < min_samples and timeout_s > 0:
                self._wanted = max(1, min(int(min_samples), self.capacity))
                try:
                    self._ready.wait_for(lambda: self._write - self._read >= self._wanted, timeout_s)
                finally:
                    self._wanted = 1
            count = self._write - self._read
            start = self._read % self.capacity
            index = (start + np.arange(count)) % self.capacity
            out = self._data[index]
            self._read += count
            return out

    def available(self) -> int:
        with self._lock:
            return self._write - self._read


def sounddevice_module():
    """sounddevice, imported late: PortAudio reads PULSE_SERVER and friends when it starts.

    Starting PortAudio connects to the audio server, and a server that accepts the connection but
    never answers would block it for minutes, deaf to Ctrl-C. So the import runs in a helper thread
    and is given up after AUDIO_SERVER_TIMEOUT_S (the thread stays blocked, harmlessly, as a daemon)."""
    state = _starting_portaudio
    module = sys.modules.get("sounddevice")
    if module is not None and state["thread"] is None:  # a module still starting in our thread is half made
        return module

    def start_portaudio(outcome: dict) -> None:
        try:
            import sounddevice

            outcome["module"] = sounddevice
        except OSError as err:  # the PortAudio library itself is missing
            outcome["error"] = NoInputDeviceError(f"no audio input: PortAudio is not installed ({err})")
        except Exception as err:  # PortAudio would not start (sounddevice.PortAudioError, ...)
            outcome["error"] = NoInputDeviceError(one_line(f"no audio input: PortAudio did not start ({err})"))

    try:  # Ctrl-C at any point here gets standard error back
        with _start_lock:  # the GUI's workers may look for devices at the same time
            if state["thread"] is None:
                # sounddevice points standard error at /dev/null while PortAudio starts (to hide ALSA's
                # chatter): keep a copy, so that a start that never ends does not silence our messages too
                state["outcome"], state["stderr"] = {}, os.dup(2)
                state["thread"] = threading.Thread(target=start_portaudio, args=(state["outcome"],),
                                                   name="portaudio-start", daemon=True)
                state["thread"].start()
            thread, outcome = state["thread"], state["outcome"]
        # short waits: Ctrl-C lands at once even when the kernel hands SIGINT to another thread (PortAudio's,
        # the audio library's), which leaves one long wait asleep until it times out
        deadline = time.monotonic() + AUDIO_SERVER_TIMEOUT_S
        while thread.is_alive() and time.monotonic() < deadline:
            thread.join(min(JOIN_SLICE_S, max(0.0, deadline - time.monotonic())))
    except BaseException:
        if state["thread"] is None or state["thread"].ident is None:  # interrupted before the start began
            state["thread"] = None
            if "stderr" in state:
                os.close(state.pop("stderr"))
        else:
            os.dup2(state["stderr"], 2)
        raise
    if thread.is_alive():
        os.dup2(state["stderr"], 2)
        raise NoInputDeviceError(f"the audio server does not answer ({_audio_server_name()}; waited "
                                 f"{AUDIO_SERVER_TIMEOUT_S:.0f} s): restart it, or check PULSE_SERVER")
    with _start_lock:
        if state["thread"] is thread:  # the first of the callers that waited on it tidies up
            state["thread"] = None
            os.close(state.pop("stderr"))
            state.pop("outcome")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["module"]


# a start still waiting on a silent server is not repeated: its thread, what it made, standard error's copy
_starting_portaudio: dict = {"thread": None}
_start_lock = threading.Lock()


def _audio_server_name() -> str:
    return f"PULSE_SERVER={os.environ['PULSE_SERVER']}" if os.environ.get("PULSE_SERVER") else "the default audio server"


def _skip_portaudio_exit_handler() -> None:
    """sounddevice terminates PortAudio at interpreter exit, which waits on every stream: with one
    stuck in a dead server the program would never end. The process's exit releases it anyway."""
    import atexit

    atexit.unregister(sounddevice_module()._exit_handler)


def reinitialize_audio() -> None:
    """Restart PortAudio so that it sees devices (or audio servers) that appeared since it started."""
    sd = sounddevice_module()
    sd._terminate()
    sd._initialize()


def list_input_devices() -> list[InputDevice]:
    import importlib.util

    # every way to a microphone (listen, the Live tab, MicrophoneCapture) lists the devices first
    if importlib.util.find_spec("sounddevice") is None:
        raise NoInputDeviceError("no audio input: the sounddevice package is not installed "
                                 "(pip install 'speech-app[mic]')")
    sd = sounddevice_module()
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
        self.device_spec = device  # asked for again when the device comes back after a loss
        self.device = find_input_device(device)
        self.block_ms, self.ring_seconds = block_ms, ring_seconds
        self.overflows = 0
        self.lost_since: float | None = None  # monotonic time the device stopped delivering audio
        self._notices: list[str] = []
        self._stream = None
        self._running = False
        self._next_retry = 0.0
        self._tries = 0  # attempts to reopen since the device was lost
        self._last_audio = time.monotonic()
        self._stall_reported = False
        self._use_rate(self._pick_rate(self.device))

    def _use_rate(self, rate: int) -> None:
        self.device_rate = rate
        self.ring = AudioRingBuffer(int(self.ring_seconds * rate))
        self._resampler = None
        if rate != SAMPLE_RATE:
            import soxr  # streaming resampler; comes with librosa

            self._resampler = soxr.ResampleStream(rate, SAMPLE_RATE, 1, dtype="float32")

    @staticmethod
    def _pick_rate(device: InputDevice) -> int:
        """16 kHz when the device takes it, else its own rate (resampled on reading)."""
        sd = sounddevice_module()
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
        self._open()
        self._running = True
        self._last_audio = time.monotonic()

    def _open(self) -> None:
        sd = sounddevice_module()
        try:
            self._stream = sd.InputStream(device=self.device.index, samplerate=self.device_rate, channels=1,
                                          dtype="float32", blocksize=int(self.device_rate * self.block_ms / 1000),
                                          latency="low", callback=self._callback)
            self._stream.start()
        except sd.PortAudioError as err:
            self._stream = None
            raise NoInputDeviceError(f"cannot open {self.device.name}: {' '.join(str(err).split())}") from None

    def stop(self) -> None:
        self._running = False
        self._close(abort=False)

    def _close(self, abort: bool) -> None:
        """Stop and close the stream; `abort` for a dead one (no draining of buffers that never come)."""
        if self._stream is None:
            return
        stream, self._stream = self._stream, None

        def release() -> None:
            try:
                stream.abort() if abort else stream.stop()
                stream.close()
            except Exception:  # sounddevice.PortAudioError: the device is gone already, nothing to release
                pass

        # After the audio server went away and came back, PortAudio's stop can block forever (seen with
        # PulseAudio restarted under load): release the stream in a thread and give up waiting after a
        # while, so Stop and Ctrl-C still end the capture.
        closer = threading.Thread(target=release, name="close-audio-stream", daemon=True)
        closer.start()
        closer.join(CLOSE_TIMEOUT_S)
        if closer.is_alive():
            self._notices.append(f"the audio stream of {self.device.name} did not close in {CLOSE_TIMEOUT_S:.0f} s; "
                                 "left to the audio server")
            _skip_portaudio_exit_handler()

    def read(self, timeout_s: float = 0.0, min_samples: int = 1) -> np.ndarray:
        """The audio captured since the last read, at 16 kHz (waiting up to `timeout_s` for `min_samples` of
        it). Also where a lost device is noticed and, once it is back, reopened: reading goes on, with no
        audio in between."""
        if self._running:
            self._watch_device()
        device_samples = -(-int(min_samples) * self.device_rate // SAMPLE_RATE)
        samples = self.ring.read(timeout_s if self.lost_since is None else 0.0, device_samples)
        if self.lost_since is not None and timeout_s > 0:
            time.sleep(timeout_s)  # paced like a working device while waiting for it to return
        if samples.size:
            self._last_audio, self._stall_reported = time.monotonic(), False
        if self._resampler is not None and samples.size:
            samples = self._resampler.resample_chunk(samples)
        return samples

    def pop_notices(self) -> list[str]:
        """One-line messages about the device since the last call: lost, back, stalled."""
        notices, self._notices = self._notices, []
        return notices

    def _watch_device(self) -> None:
        now = time.monotonic()
        stopped = self._stream is not None and not self._stream.active  # PortAudio noticed the loss
        silent_too_long = self._stream is not None and now - self._last_audio > STALL_LOST_S  # it did not
        if self.lost_since is None and (stopped or silent_too_long):
            self.lost_since = now  # the device or the audio server went away
            self._close(abort=True)
            self._notices.append(f"audio input lost: {self.device.name} stopped delivering audio; "
                                 f"waiting for it to come back")
        elif self.lost_since is None and not self._stall_reported and now - self._last_audio > STALL_S:
            self._stall_reported = True
            self._notices.append(f"no audio from {self.device.name} for {now - self._last_audio:.0f} s")
        if self.lost_since is not None and now >= self._next_retry:
            self._next_retry = now + RECONNECT_INTERVAL_S
            self._reopen()

    def _reopen(self) -> None:
        """Open the device again. A plain open is enough when an audio server restarts (ALSA's pulse
        plugin connects anew on each open); PortAudio itself is restarted only after REINIT_AFTER_TRIES
        failed tries, to see a device that came back under a new index: a restart closes every stream
        of the process, and closing one on a dead server can hang, so it is the last resort."""
        self._tries += 1
        try:
            if self._tries % REINIT_AFTER_TRIES == 0:
                reinitialize_audio()
            self.device = find_input_device(self.device_spec)
            rate = self._pick_rate(self.device)
            if rate != self.device_rate:
                self._use_rate(rate)
            self._open()
        except Exception:  # NoInputDeviceError, PortAudioError, ...: not back yet; try again later
            return
        self._notices.append(f"audio input back: {self.device.name} after "
                             f"{time.monotonic() - self.lost_since:.1f} s")
        self.lost_since, self._tries = None, 0
        self._last_audio = time.monotonic()

    def stats(self) -> CaptureStats:
        try:
            latency = float(self._stream.latency) if self._stream is not None else 0.0
        except Exception:  # a stream whose device just vanished
            latency = 0.0
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

    def read(self, timeout_s: float = 0.0, min_samples: int = 1) -> np.ndarray:
        return self.ring.read(timeout_s, min_samples)

    def stats(self) -> CaptureStats:
        return CaptureStats("recordings", SAMPLE_RATE, self.block_samples / SAMPLE_RATE,
                            self.ring.dropped_samples / SAMPLE_RATE, 0)
