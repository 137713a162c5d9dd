"""The Live tab: transcript, confidence bars, sensitivity, export and copy, status bar, no microphone,
and end to end through the PulseAudio virtual microphone."""

from __future__ import annotations

import csv
import time

import numpy as np
import pytest
from stand_ins import WAIT_MS, FakeAudio, ToneClassifier, played_tone_word, sample_clip

from speech_app.audio import SAMPLE_RATE, write_wav
from speech_app.capture import InputDevice
from speech_app.gui.live_tab import preferred_device, sensitivity_to_threshold
from speech_app.gui.services import AppServices

CLIP_GAP_S = 1.0  # silence between clips played into the virtual microphone: a pause before each word (pause_ms)
SETTLE_S = 1.5


def listen_until(window, qtbot, count: int) -> list[str]:
    window.live.start_listening()
    qtbot.waitUntil(lambda: window.live.listening, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: len(window.live.detected_words()) >= count, timeout=WAIT_MS)
    return window.live.detected_words()


def test_each_spoken_word_appears_once_with_time_and_confidence(window, qtbot):
    assert listen_until(window, qtbot, 3) == ["low", "mid", "high"]
    qtbot.wait(500)  # nothing more comes
    rows = window.live.transcript_rows()
    assert len(rows) == 3
    seconds = [float(r[1]) for r in rows]
    assert seconds == sorted(seconds) and all(0 < int(r[3].rstrip("%")) <= 100 for r in rows)


def test_confidence_bars_for_every_class_and_live_views(window, qtbot):
    listen_until(window, qtbot, 1)
    bars = window.live.confidence_bars.values()
    assert list(bars) == ["_silence_", "_unknown_", "low", "mid", "high"]
    assert sum(bars.values()) == pytest.approx(1.0, abs=0.02)
    qtbot.waitUntil(lambda: np.abs(window.live.waveform.samples).max() > 0.1, timeout=WAIT_MS)
    assert window.live.spectrogram.power_db.max() > -60.0


def test_status_bar_shows_device_rate_latency_and_dropped_audio(window, qtbot):
    listen_until(window, qtbot, 1)
    qtbot.waitUntil(lambda: "dropped" in window.live_status.text(), timeout=WAIT_MS)
    text = window.live_status.text()
    assert "16000 Hz" in text and "latency" in text and "dropped 0.00 s" in text


def test_sensitivity_sets_the_threshold(window, qtbot):
    window.live.sensitivity_slider.setValue(80)
    qtbot.waitUntil(lambda: window.live.worker.settings.threshold == pytest.approx(0.2), timeout=WAIT_MS)
    assert sensitivity_to_threshold(40) == pytest.approx(0.6)


def test_the_input_device_asked_for_is_chosen():
    devices = [InputDevice(0, "pulse", "ALSA", 32, 44_100.0, False), InputDevice(3, "USB Mic", "ALSA", 1, 48_000.0, False),
               InputDevice(5, "default", "ALSA", 32, 44_100.0, True)]
    assert [preferred_device(devices, w) for w in ("USB Mic", "3", "usb", "", "nothing")] == [1, 1, 1, 2, 2]
    assert preferred_device([], "") == -1


def test_export_csv_and_copy(window, qtbot, tmp_path):
    listen_until(window, qtbot, 3)
    window.live.export_transcript(tmp_path / "transcript.csv")
    with open(tmp_path / "transcript.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["label"] for r in rows] == ["low", "mid", "high"]
    assert set(rows[0]) == {"time", "seconds", "label", "confidence"}
    window.live.copy_transcript()
    from PySide6.QtWidgets import QApplication

    copied = QApplication.clipboard().text().splitlines()
    assert copied[0].split("\t") == ["Time", "Seconds", "Word", "Score when heard"]
    assert all(0.0 < float(r["confidence"]) <= 1.0 for r in rows)  # the CSV keeps the number
    assert [line.split("\t")[2] for line in copied[1:]] == ["low", "mid", "high"]


def test_stop_and_start_again(window, qtbot):
    listen_until(window, qtbot, 1)
    window.live.stop_listening()
    qtbot.waitUntil(lambda: not window.live.listening, timeout=WAIT_MS)
    assert window.live.start_button.text() == "Start listening"
    window.live.clear_transcript()
    assert listen_until(window, qtbot, 3) == ["low", "mid", "high"]


def test_status_bar_says_the_model_is_ready_before_the_first_start(window, qtbot):
    qtbot.waitUntil(lambda: window.live.start_button.isEnabled(), timeout=WAIT_MS)
    qtbot.waitUntil(lambda: "Ready" in window.live_status.text(), timeout=WAIT_MS)
    assert "shipped model is loaded" in window.live_status.text() and "Start listening" in window.live_status.text()
    listen_until(window, qtbot, 1)
    window.live.stop_listening()
    qtbot.waitUntil(lambda: "Stopped" in window.live_status.text(), timeout=WAIT_MS)
    assert "Ready" in window.live_status.text()


def test_one_clock_across_starts_until_the_transcript_is_cleared(window, qtbot):
    first = listen_until(window, qtbot, 3)
    window.live.stop_listening()
    qtbot.waitUntil(lambda: not window.live.listening, timeout=WAIT_MS)
    first_seconds = [float(r[1]) for r in window.live.transcript_rows()]
    listen_until(window, qtbot, len(first) + 3)
    seconds = [float(r[1]) for r in window.live.transcript_rows()]
    assert seconds == sorted(seconds) and seconds[len(first)] > first_seconds[-1]  # no restart at zero
    window.live.stop_listening()
    qtbot.waitUntil(lambda: not window.live.listening, timeout=WAIT_MS)
    window.live.clear_transcript()
    listen_until(window, qtbot, 1)
    assert float(window.live.transcript_rows()[0][1]) == pytest.approx(first_seconds[0], abs=0.2)  # from zero again


def test_the_bars_and_the_transcript_say_which_score_each_shows(window, qtbot):
    """The bars show the averaged score now, the transcript the averaged score when the word crossed
    the threshold: both in percent, each labelled, and the transcript's is the detection's own."""
    detections = []
    window.live.worker.detection_made.connect(detections.append)
    listen_until(window, qtbot, 3)
    header = window.live.transcript.horizontalHeaderItem(3)
    assert header.text() == "Score when heard" and "crossed the detection threshold" in header.toolTip()
    bars_box = window.live.confidence_bars.parentWidget()
    assert bars_box.title().startswith("Confidence now (averaged over")
    assert "keeps rising" in bars_box.toolTip()
    shown = [r[3] for r in window.live.transcript_rows()]
    assert shown == [f"{d.confidence:.0%}" for d in detections[: len(shown)]]
    assert all(bar.format() == "%p%" for bar in window.live.confidence_bars.bars.values())


def test_without_a_microphone_the_app_says_so_and_the_other_tabs_work(make_window, qtbot):
    audio = FakeAudio()
    audio.devices = []
    window = make_window(audio.services())
    qtbot.waitUntil(lambda: window.live.no_device_label.isVisible(), timeout=WAIT_MS)
    assert "No microphone found" in window.live.no_device_label.text()
    assert not window.live.start_button.isEnabled()
    assert "No input device" in window.live_status.text()
    assert window.batch.isEnabled() and window.batch.add_files_button.isEnabled()
    window.show_tab("custom")
    window.custom.set_words("hello")
    assert not window.custom.record_button.isEnabled()
    assert window.custom.training.train_button.isEnabled()


def test_a_model_that_cannot_load_is_reported(make_window, fake_audio, qtbot):
    def broken(path):
        raise ValueError("not a model")

    window = make_window(fake_audio.services(load_classifier=broken))
    qtbot.waitUntil(lambda: "Could not load the model" in window.live_status.text(), timeout=WAIT_MS)
    assert not window.live.start_button.isEnabled()


def test_a_damaged_model_file_is_reported_by_name_once(make_window, fake_audio, qtbot, tmp_path):
    from speech_app.gui.services import load_command_classifier

    damaged = tmp_path / "damaged.safetensors"
    damaged.write_bytes(b"not a model file at all")
    window = make_window(fake_audio.services(load_classifier=load_command_classifier))
    window.use_model(damaged)
    qtbot.waitUntil(lambda: "Could not load the model" in window.live_status.text(), timeout=WAIT_MS)
    assert window.live_status.text().count(str(damaged)) == 1, window.live_status.text()


# -- through the PulseAudio virtual microphone ---------------------------------------------------

def play_and_wait(window, qtbot, mic, clips, count: int) -> list[str]:
    captured = []
    window.live.worker.audio_captured.connect(captured.append)
    window.live.start_listening()
    # audio flowing, not a fixed wait: on a busy machine the stream's first block may come late
    qtbot.waitUntil(lambda: window.live.listening and len(captured) > 0, timeout=WAIT_MS)
    for clip in clips:
        player = mic.play(clip, wait=False)
        qtbot.waitUntil(lambda: player.poll() is not None, timeout=WAIT_MS)
        qtbot.wait(int(CLIP_GAP_S * 1000))
    deadline = time.monotonic() + SETTLE_S
    try:
        qtbot.waitUntil(lambda: time.monotonic() > deadline and len(window.live.detected_words()) >= count,
                        timeout=WAIT_MS)
    except Exception:  # say what was heard, and whether audio was lost on the way
        pytest.fail(f"heard {window.live.detected_words()} of {count} words; status: {window.live_status.text()}")
    qtbot.wait(300)
    return window.live.detected_words()


@pytest.mark.audio
def test_live_tab_hears_the_virtual_microphone(quiet_mic, make_window, qtbot, tmp_path):
    """Real capture (PulseAudio, PortAudio), stand-in tone model: the plumbing of the live tab."""
    clips = []
    for word in ("high", "low", "mid"):
        clips.append(tmp_path / f"{word}.wav")
        write_wav(clips[-1], played_tone_word(word, tail_s=0.5))
    window = make_window(AppServices(load_classifier=lambda path: ToneClassifier(), play=lambda s, r: None))
    qtbot.waitUntil(lambda: window.live.start_button.isEnabled(), timeout=WAIT_MS)
    assert play_and_wait(window, qtbot, quiet_mic, clips, 3) == ["high", "low", "mid"]


@pytest.mark.audio
def test_shipped_model_live_tab_transcribes_real_clips(quiet_mic, make_window, qtbot, reliable_words):
    """Real clips of the words the shipped model is sure of, through the virtual microphone into the
    real model: each is transcribed once, in order."""
    window = make_window(AppServices(play=lambda s, r: None))
    qtbot.waitUntil(lambda: window.live.start_button.isEnabled(), timeout=WAIT_MS)
    words = play_and_wait(window, qtbot, quiet_mic, [sample_clip(w) for w in reliable_words], len(reliable_words))
    assert words == list(reliable_words)
