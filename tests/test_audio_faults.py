"""Audio faults (issue 12, item 5): an audio server that accepts connections but never answers, the
microphone's server stopping mid-stream and coming back (in `listen` and in the GUI's live tab), and
input overflows. The live path is the real one: PulseAudio's virtual microphone, PortAudio, the ring
buffer (tests/virtual_mic.py)."""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from stand_ins import WAIT_MS, ToneClassifier, tone_word
from test_listen import parse

import virtual_mic as virtual_mic_module
from speech_app import capture
from speech_app.cli import listen
from speech_app.audio import SAMPLE_RATE, write_wav

REPO = Path(__file__).resolve().parent.parent
WAIT_S = 30.0  # generous: the machine may be busy
POLL_S = 0.05
CHILD_WAIT_S = 600  # the Ctrl-C test's wait for a silent server: far longer than any machine needs to react


@pytest.fixture
def silent_server(tmp_path):
    """A unix socket that accepts every connection and never says a word: a hung audio server."""
    path = tmp_path / "hung-pulse"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept_forever() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept_forever, daemon=True)
    thread.start()
    yield path
    stop.set()
    thread.join()
    for connection in accepted:
        connection.close()
    server.close()


def env_with_server(path: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "PULSE_SERVER": f"unix:{path}", "PYTHONUNBUFFERED": "1"}


@pytest.mark.parametrize("extra", [["--list-devices"], ["--model", "TINY"]])
def test_listen_gives_up_on_a_server_that_never_answers(silent_server, tiny_model, extra):
    extra = [str(tiny_model) if arg == "TINY" else arg for arg in extra]
    done = subprocess.run([sys.executable, "-m", "speech_app", "listen", *extra],
                          env=env_with_server(silent_server), capture_output=True, text=True, timeout=300)
    # the last line is the one error (a first listen to a model may say before it that it made the model's
    # PyTorch-free copy)
    ours = [line for line in done.stderr.splitlines() if line.startswith("speech-app")]
    assert done.returncode == listen.EXIT_NO_AUDIO and "Traceback" not in done.stderr, done.stderr
    assert ours and done.stderr.strip().splitlines()[-1] == ours[-1], done.stderr
    assert len([line for line in ours if "does not answer" in line]) == 1, done.stderr
    ours = ours[-1:]
    # our own wait gave up (the message says how long it waited), not PortAudio's ~120 s of its own
    # (which would say that PortAudio did not start): no wall-clock bound, which a busy machine breaks
    waited = f"waited {capture.AUDIO_SERVER_TIMEOUT_S:.0f} s"
    assert "audio server does not answer" in ours[0] and str(silent_server) in ours[0] and waited in ours[0]


def test_asking_again_while_portaudio_still_starts_says_the_same(silent_server):
    """Two threads looking for devices at once (the GUI's workers), then a third look while the start
    still hangs: the same one-line answer each time, not a crash or the half-imported sounddevice
    module (which knows no devices)."""
    script = ("import threading; from speech_app import capture; capture.AUDIO_SERVER_TIMEOUT_S = 1.0\n"
              "def ask():\n"
              "    try: print('devices:', len(capture.list_input_devices()), flush=True)\n"
              "    except capture.NoInputDeviceError as err: print('error:', err, flush=True)\n"
              "    except Exception as err: print('crash:', repr(err), flush=True)\n"
              "both = [threading.Thread(target=ask) for _ in range(2)]\n"
              "for t in both: t.start()\n"
              "for t in both: t.join()\n"
              "ask()\n")
    done = subprocess.run([sys.executable, "-c", script], env=env_with_server(silent_server), capture_output=True,
                          text=True, timeout=60)
    lines = done.stdout.splitlines()
    assert len(lines) == 3 and all("does not answer" in line for line in lines), done.stdout + done.stderr


@pytest.mark.parametrize("to", ["process", "start thread"])
def test_ctrl_c_ends_the_wait_for_a_silent_server(silent_server, to):
    """Ctrl-C during the wait for a silent server ends it at once, also when the kernel hands SIGINT to
    another thread than the waiting one (any thread that does not block it may get it)."""
    # "waiting" once PortAudio's start thread runs (on a loaded machine a signal sent earlier could land
    # before the wait begins); "start thread": the child signals that thread itself after a second
    # Ctrl-C as in a terminal: a test run started in the background (`make test &`) hands its children
    # SIGINT ignored, and Python then installs no KeyboardInterrupt for it
    script = ("import signal, threading; signal.signal(signal.SIGINT, signal.default_int_handler)\n"
              f"from speech_app import capture; capture.AUDIO_SERVER_TIMEOUT_S = {CHILD_WAIT_S}\n"
              "start = threading.Thread.start\n"
              "def announced(self):\n"
              "    start(self)\n"
              "    if self.name == 'portaudio-start':\n"
              f"        if {to == 'start thread'}:\n"
              "            threading.Timer(1.0, signal.pthread_kill, (self.ident, signal.SIGINT)).start()\n"
              "        print('waiting', flush=True)\n"
              "threading.Thread.start = announced\n"
              "capture.list_input_devices()")
    process = subprocess.Popen([sys.executable, "-c", script], env=env_with_server(silent_server),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "waiting"
    time.sleep(1.0)  # the start thread is inside its connection attempt by now
    if to == "process":
        process.send_signal(signal.SIGINT)
    try:  # ending long before the child's wait would, with KeyboardInterrupt, is the Ctrl-C's doing
        _, err = process.communicate(timeout=CHILD_WAIT_S / 2)
    finally:
        process.kill()
    assert "KeyboardInterrupt" in err and "does not answer" not in err, err


def wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(POLL_S)


def stop_server(mic) -> None:
    """The PulseAudio server goes away (crash, logout, `pulseaudio -k`) while a stream reads from it."""
    for process in (mic.keep_busy, mic.server):
        process.terminate()
        process.wait(timeout=10)


def restart_server(mic, monkeypatch) -> None:
    """The same server comes back on the same socket. The test's own PortAudio is left alone: the
    code under test must find the server again by itself."""
    saved_env = mic._saved_env
    monkeypatch.setattr(virtual_mic_module, "_restart_portaudio", lambda: None)
    # PR_SET_PDEATHSIG fires when the *thread* that started the server ends: a helper thread's
    # restart would die with it. The session's teardown stops this server as usual.
    monkeypatch.setattr(virtual_mic_module, "_die_with_parent", lambda: None)
    mic.start()
    mic._saved_env = saved_env


@pytest.fixture
def word_clips(tmp_path) -> dict[str, Path]:
    clips = {}
    for word in ("low", "high"):
        clips[word] = tmp_path / f"{word}.wav"
        write_wav(clips[word], np.concatenate([tone_word(word), np.zeros(SAMPLE_RATE, np.float32)]))
    return clips


class StderrLines(io.StringIO):
    def lines(self) -> list[str]:
        return self.getvalue().splitlines()


@pytest.mark.audio
def test_listen_reports_a_lost_server_keeps_running_and_recovers(quiet_mic, tone_model, word_clips, monkeypatch):
    """`listen` runs in the main thread, as for a user; a helper thread plays words, stops and restarts
    the audio server, and ends listen with SIGINT (Ctrl-C) once the word after the recovery is heard."""
    out, err = io.StringIO(), StderrLines()
    monkeypatch.setattr(sys, "stderr", err)
    failures: list[BaseException] = []

    def direct() -> None:
        try:
            wait_for(lambda: any("listening on" in line for line in err.lines()), "listen to start")
            time.sleep(0.5)
            quiet_mic.play(word_clips["low"])
            wait_for(lambda: "low" in out.getvalue(), "the first word")
            stop_server(quiet_mic)
            try:
                wait_for(lambda: any("audio input lost" in line for line in err.lines()), "the loss to be reported")
            finally:
                restart_server(quiet_mic, monkeypatch)
            wait_for(lambda: any("audio input back" in line for line in err.lines()), "the input to come back")
            time.sleep(0.5)
            quiet_mic.play(word_clips["high"])
            wait_for(lambda: "high" in out.getvalue(), "the word after the recovery")
        except BaseException as failure:  # reported after listen has ended
            failures.append(failure)
        finally:
            os.kill(os.getpid(), signal.SIGINT)

    director = threading.Thread(target=direct, daemon=True)
    director.start()
    status = listen.run(parse("--format", "text", "--duration", "120"), out=out)
    director.join(timeout=WAIT_S)
    if failures:
        raise failures[0]
    assert status == listen.EXIT_OK  # it kept running through the loss, and ended on Ctrl-C
    assert [line.split()[1] for line in out.getvalue().splitlines()] == ["low", "high"]
    notices = [line for line in err.lines() if line.startswith("speech-app listen: ")]
    assert len([n for n in notices if "audio input lost" in n]) == 1
    assert len([n for n in notices if "audio input back" in n]) == 1


@pytest.mark.audio
def test_live_tab_reports_a_lost_server_and_hears_again_when_it_returns(quiet_mic, make_window, qtbot,
                                                                        word_clips, monkeypatch):
    from speech_app.gui.services import AppServices

    window = make_window(AppServices(load_classifier=lambda path: ToneClassifier(), play=lambda s, r: None))
    statuses: list[str] = []
    window.live.status_text_changed.connect(statuses.append)
    qtbot.waitUntil(lambda: window.live.start_button.isEnabled(), timeout=WAIT_MS)
    window.live.start_listening()
    qtbot.waitUntil(lambda: window.live.listening, timeout=WAIT_MS)
    try:
        stop_server(quiet_mic)
        qtbot.waitUntil(lambda: any("audio input lost" in s for s in statuses), timeout=WAIT_MS)
        assert window.live.listening  # still listening, waiting for the device
    finally:
        restart_server(quiet_mic, monkeypatch)
    qtbot.waitUntil(lambda: any("audio input back" in s for s in statuses), timeout=WAIT_MS)
    qtbot.wait(500)
    player = quiet_mic.play(word_clips["high"], wait=False)
    qtbot.waitUntil(lambda: player.poll() is not None, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: "high" in window.live.detected_words(), timeout=WAIT_MS)


def test_input_overflows_are_reported_once_per_burst(monkeypatch):
    """PortAudio flags lost input in the callback's status; the user hears of it, without a flood."""
    reporter = listen.OverflowReporter()
    now = [100.0]
    monkeypatch.setattr(listen.time, "monotonic", lambda: now[0])
    assert reporter.check(0) == []
    first = reporter.check(3)
    assert len(first) == 1 and "overflowed 3 time(s)" in first[0]
    assert reporter.check(5) == []  # the same burst
    now[0] += listen.OVERFLOW_REPORT_S + 0.1
    assert "overflowed 2 time(s) (5 in all)" in reporter.check(5)[0]


def test_the_capture_callback_counts_overflows():
    microphone = capture.MicrophoneCapture.__new__(capture.MicrophoneCapture)
    microphone.overflows, microphone.ring = 0, capture.AudioRingBuffer(1000)
    block = np.zeros((160, 1), np.float32)
    microphone._callback(block, 160, None, SimpleNamespace(input_overflow=True))
    microphone._callback(block, 160, None, SimpleNamespace(input_overflow=False))
    assert microphone.overflows == 1 and microphone.ring.available() == 320


def silent_microphone(seconds_without_audio: float) -> capture.MicrophoneCapture:
    """A capture whose stream PortAudio still calls active but that has delivered nothing for a while:
    what a hung or killed audio server can look like when PortAudio does not notice."""
    microphone = capture.MicrophoneCapture.__new__(capture.MicrophoneCapture)
    microphone._stream = SimpleNamespace(active=True, abort=lambda: None, stop=lambda: None, close=lambda: None)
    microphone.device, microphone._notices = SimpleNamespace(name="test mic"), []
    microphone.lost_since, microphone._stall_reported, microphone._next_retry = None, False, float("inf")
    microphone._last_audio = time.monotonic() - seconds_without_audio
    return microphone


def test_a_silent_stream_is_reported_then_treated_as_lost():
    stalled = silent_microphone(capture.STALL_S + 1)
    stalled._watch_device()
    assert stalled.lost_since is None and stalled._stream is not None
    assert [n for n in stalled.pop_notices() if n.startswith("no audio from test mic")]
    lost = silent_microphone(capture.STALL_LOST_S + 1)
    lost._watch_device()  # closed, to be reopened every RECONNECT_INTERVAL_S until the server answers
    assert lost.lost_since is not None and lost._stream is None
    assert [n for n in lost.pop_notices() if n.startswith("audio input lost: test mic")]
