"""A real microphone for tests on machines with no sound card: a private PulseAudio server.

Its null sink `vmic` is what we "speak" into (paplay) and its monitor is the default source, so
whatever `sounddevice` opens by default hears the clips we play (the recipe: docs/VIRTUAL_MIC.md).
Tests use the `virtual_mic` and `quiet_mic` fixtures of conftest.py:

    def test_something(virtual_mic):
        virtual_mic.play("datasets/samples/yes_....wav")   # returns when the clip has played

The server starts once per test session. If it cannot start, tests fail loudly, unless
SPEECH_APP_AUDIO_OPTIONAL=1 says audio is optional (then they are skipped). The benchmark uses
`VirtualMicrophone` directly.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

SINK = "vmic"
RATE_HZ = 16_000
START_TIMEOUT_S = 10.0
POLL_S = 0.1
PLAY_LATENCY_MS = 20  # paplay's buffer: small, so a clip starts almost at once
KEEP_BUSY_LATENCY_MS = 20
PLAY_TIMEOUT_S = 30.0
ENV_KEYS = ("XDG_RUNTIME_DIR", "PULSE_RUNTIME_PATH", "PULSE_STATE_PATH", "PULSE_SERVER")
OPTIONAL_ENV = "SPEECH_APP_AUDIO_OPTIONAL"


class VirtualMicError(RuntimeError):
    pass


def _die_with_parent() -> None:
    """In the child, before exec: be sent SIGTERM when the test process dies, even by a crash, so
    no server is left behind (Linux; elsewhere the normal teardown has to do)."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


class VirtualMicrophone:
    """Start with `start()`, stop with `stop()`; `play(path)` speaks a clip into the microphone."""

    def __init__(self, root: Path | None = None):
        self.root = Path(root or tempfile.mkdtemp(prefix="speech-app-vmic-"))
        self.server: subprocess.Popen | None = None
        self.keep_busy: subprocess.Popen | None = None
        self.players: list[subprocess.Popen] = []
        self._saved_env: dict[str, str | None] = {}

    @property
    def log_path(self) -> Path:
        return self.root / "pulse.log"

    def _environment(self) -> dict[str, str]:
        runtime = self.root / "run"
        pulse = runtime / "pulse"
        pulse.mkdir(parents=True, exist_ok=True, mode=0o700)
        runtime.chmod(0o700)
        return {"XDG_RUNTIME_DIR": str(runtime), "PULSE_RUNTIME_PATH": str(pulse),
                "PULSE_STATE_PATH": str(runtime / "state"), "PULSE_SERVER": f"unix:{pulse}/native"}

    def start(self) -> VirtualMicrophone:
        for tool in ("pulseaudio", "pactl", "pacat", "paplay"):
            if shutil.which(tool) is None:
                raise VirtualMicError(f"{tool} is not installed (apt-get install pulseaudio pulseaudio-utils)")
        env = self._environment()
        self._saved_env = {key: os.environ.get(key) for key in ENV_KEYS}
        os.environ.update(env)  # this process and every child see the private server
        socket = f"{env['PULSE_RUNTIME_PATH']}/native"
        self.server = subprocess.Popen(
            ["pulseaudio", "--daemonize=no", "-n", "--exit-idle-time=-1", f"--log-target=file:{self.log_path}",
             f"--load=module-native-protocol-unix socket={socket} auth-anonymous=1",
             f"--load=module-null-sink sink_name={SINK} rate={RATE_HZ} channels=1 format=s16le"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=_die_with_parent)
        self._wait_until_ready()
        self._pactl("set-default-sink", SINK)
        self._pactl("set-default-source", f"{SINK}.monitor")
        # keep the sink busy, or capture from an idle null sink stalls for 1.5-2 s before the first block
        self.keep_busy = subprocess.Popen(
            ["pacat", "--raw", "--format=s16le", f"--rate={RATE_HZ}", "--channels=1",
             f"--latency-msec={KEEP_BUSY_LATENCY_MS}", "-d", SINK, "/dev/zero"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=_die_with_parent)
        _restart_portaudio()
        return self

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.server.poll() is not None:
                break
            if subprocess.run(["pactl", "info"], capture_output=True).returncode == 0:
                return
            time.sleep(POLL_S)
        log = self.log_path.read_text(errors="replace")[-2000:] if self.log_path.exists() else "(no log)"
        self.stop()
        raise VirtualMicError(f"PulseAudio did not start within {START_TIMEOUT_S:.0f} s; its log:\n{log}")

    def _pactl(self, *args: str) -> None:
        result = subprocess.run(["pactl", *args], capture_output=True, text=True)
        if result.returncode != 0:
            raise VirtualMicError(f"pactl {' '.join(args)}: {result.stderr.strip()}")

    def play(self, path: str | os.PathLike, wait: bool = True) -> subprocess.Popen:
        """Speak a clip into the microphone; by default return once it has been played."""
        player = subprocess.Popen(["paplay", f"--latency-msec={PLAY_LATENCY_MS}", "-d", SINK, str(path)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.players.append(player)
        if wait:
            self.wait(player)
        return player

    def wait(self, player: subprocess.Popen) -> None:
        _, err = player.communicate(timeout=PLAY_TIMEOUT_S)
        if player.returncode != 0:
            raise VirtualMicError(f"paplay failed: {err.decode(errors='replace').strip()}")

    def silence_players(self) -> None:
        """Stop any clip still playing, so its sound does not bleed into the next test."""
        for player in self.players:
            if player.poll() is None:
                player.kill()
            player.wait()
        self.players.clear()

    def stop(self) -> None:
        self.silence_players()
        for process in (self.keep_busy, self.server):
            if process is not None and process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        self.keep_busy = self.server = None
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env = {}
        shutil.rmtree(self.root, ignore_errors=True)


def _restart_portaudio() -> None:
    """PortAudio reads PULSE_SERVER when it starts: restart it if it started before the server."""
    if "sounddevice" in sys.modules:
        from speech_app.capture import reinitialize_audio

        reinitialize_audio()


def start_for_tests() -> VirtualMicrophone:
    """A started microphone, or a test failure that says why (a skip where audio is optional)."""
    try:
        return VirtualMicrophone().start()
    except (VirtualMicError, OSError) as err:
        if os.environ.get(OPTIONAL_ENV) == "1":
            pytest.skip(f"no virtual microphone ({OPTIONAL_ENV}=1): {err}")
        pytest.fail(f"the PulseAudio virtual microphone is needed and could not start: {err}\n"
                    f"(set {OPTIONAL_ENV}=1 to skip the audio tests instead)", pytrace=False)
