"""`speech-app listen`: options, output formats, errors, Ctrl-C, and the live path end to end through
the PulseAudio virtual microphone (with a stand-in model, and with the real shipped model)."""

from __future__ import annotations

import argparse
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from stand_ins import sample_clip, tone_sentence, tone_word

from speech_app import capture
from speech_app.cli import listen
from speech_app.audio import SAMPLE_RATE, write_wav

REPO = Path(__file__).resolve().parent.parent
READY_TIMEOUT_S = 600.0  # only a bound for a hang: a cold start imports torch and may export a new
# model to ONNX first, which takes minutes on a busy machine
SETTLE_S = 1.5  # silence after the last clip, so its detection has time to come out
PLAYER_START_MARGIN_S = 8.0  # audio the stream hears beyond the clip: the player may start late on a busy machine


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    listen.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_defaults():
    args = parse()
    assert (args.model, args.device, args.format, args.file) == (None, None, "text", None)


def test_jsonl_has_one_flushed_object_per_detection(tone_model, tmp_path, capsys):
    signal_, _ = tone_sentence(["low", "high", "mid"])
    write_wav(tmp_path / "tones.wav", signal_)
    assert listen.run(parse("--file", str(tmp_path / "tones.wav"), "--format", "jsonl")) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["label"] for r in records] == ["low", "high", "mid"]
    assert all({"time", "label", "confidence"} <= r.keys() for r in records)
    assert records[0]["time"] < records[1]["time"] < records[2]["time"]


def test_text_format_is_time_label_confidence(tone_model, tmp_path, capsys):
    write_wav(tmp_path / "tone.wav", np.concatenate([np.zeros(SAMPLE_RATE // 2, np.float32), tone_word("low")]))
    assert listen.run(parse("--file", str(tmp_path / "tone.wav"))) == 0
    time_s, label, confidence = capsys.readouterr().out.split()
    assert label == "low" and 0.5 < float(time_s) < 2.0 and 0.0 < float(confidence) <= 1.0


def test_no_input_device_is_one_plain_line(monkeypatch, tone_model, capsys):
    monkeypatch.setattr(capture, "list_input_devices", lambda: [])
    assert listen.run(parse()) == listen.EXIT_NO_AUDIO
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no audio input device" in err
    assert listen.run(parse("--list-devices")) == listen.EXIT_NO_AUDIO


def test_an_unknown_device_name_lists_the_real_ones(monkeypatch, tone_model, capsys):
    device = capture.InputDevice(3, "USB mic", "ALSA", 1, 48_000.0, True)
    monkeypatch.setattr(capture, "list_input_devices", lambda: [device])
    assert listen.run(parse("--device", "bluetooth")) == listen.EXIT_NO_AUDIO
    assert "3: USB mic" in capsys.readouterr().err


def test_a_bad_model_file_is_a_usage_error(tmp_path, capsys):
    (tmp_path / "bad.safetensors").write_bytes(b"not a model")
    assert listen.run(parse("--model", str(tmp_path / "bad.safetensors"))) == listen.EXIT_USAGE
    assert "bad.safetensors" in capsys.readouterr().err


def test_a_bad_threshold_is_a_usage_error(capsys):
    assert listen.run(parse("--threshold", "0")) == listen.EXIT_USAGE


# -- through the PulseAudio virtual microphone ---------------------------------------------------

class ReadyStderr(io.StringIO):
    """Standard error that notes when `listen` says it is listening (its stream is open)."""

    def __init__(self):
        super().__init__()
        self.listening = threading.Event()

    def write(self, text: str) -> int:
        if "listening on" in text:
            self.listening.set()
        return super().write(text)


@pytest.mark.audio
def test_live_tone_words_through_the_virtual_microphone(quiet_mic, tone_model, tmp_path, monkeypatch):
    """The whole live path (PulseAudio, PortAudio, ring buffer, recognizer, output) with a stand-in model."""
    words = ["low", "mid", "high"]
    sentence, _ = tone_sentence(words)
    write_wav(tmp_path / "words.wav", sentence)  # one clip: no pause between players on a busy machine
    # --duration counts seconds of audio heard, so the stream must outlast the clip and the player's start
    duration_s = len(sentence) / SAMPLE_RATE + PLAYER_START_MARGIN_S
    stderr = ReadyStderr()
    monkeypatch.setattr(sys, "stderr", stderr)
    out = io.StringIO()
    args = parse("--format", "jsonl", "--duration", str(duration_s))
    worker = threading.Thread(target=lambda: listen.run(args, out=out))
    worker.start()
    assert stderr.listening.wait(READY_TIMEOUT_S), stderr.getvalue()  # played before, a word would be lost
    quiet_mic.play(tmp_path / "words.wav")
    worker.join(timeout=READY_TIMEOUT_S + duration_s)
    assert [json.loads(line)["label"] for line in out.getvalue().splitlines()] == words


def start_listen_process(*extra: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "speech_app", "listen", "--format", "jsonl", *extra]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if "listening on" in line or not line:
            if not line:
                pytest.fail(f"listen exited early: {process.communicate()}")
            return process
    process.kill()
    pytest.fail("listen did not start in time")


def read_lines(process: subprocess.Popen, count: int, timeout_s: float) -> list[str]:
    """Up to `count` lines of the process's standard output, or fewer if none come for `timeout_s`."""
    lines: list[str] = []

    def read():
        while len(lines) < count and (line := process.stdout.readline()):
            lines.append(line.rstrip("\n"))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout_s)
    return list(lines)


def stop_listen_process(process: subprocess.Popen) -> tuple[int, str, str]:
    process.send_signal(signal.SIGINT)  # what Ctrl-C sends
    out, err = process.communicate(timeout=30)
    return process.returncode, out, err


@pytest.mark.audio
def test_ctrl_c_ends_listen_cleanly(quiet_mic, random_model):
    process = start_listen_process("--model", str(random_model))
    time.sleep(0.5)
    status, _, err = stop_listen_process(process)
    assert status == 0, err
    assert "Traceback" not in err


@pytest.mark.audio
def test_shipped_model_listen_prints_each_spoken_word_once(quiet_mic, reliable_words):
    """Real clips of the words the shipped model is sure of into the virtual microphone, `listen` in
    its own process: each comes out once, in order."""
    process = start_listen_process()
    try:
        for word in reliable_words:
            quiet_mic.play(sample_clip(word))
            time.sleep(1.0)  # a pause before the next word: words said closer are not commands (pause_ms)
        # a busy machine may lag behind the audio: wait for the detections, not for a fixed time
        heard = read_lines(process, len(reliable_words), READY_TIMEOUT_S)
        time.sleep(SETTLE_S)  # a detection too many would come out by now
    finally:
        status, out, err = stop_listen_process(process)
    assert status == 0, err
    records = [json.loads(line) for line in heard + out.splitlines()]
    assert [r["label"] for r in records] == list(reliable_words), records
