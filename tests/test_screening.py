"""Screening a file's windows (screening.py, `listen --file`): the windows left unscored are those whose scores
cannot change a detection, so a screened scan finds the live path's detections, at the same times, with the
same confidences, under every decision setting; and on speech that holds no command it leaves windows out."""

from __future__ import annotations

import argparse
import io
import json

import numpy as np
import pytest
import soundfile as sf
from stand_ins import SAMPLES_DIR, ToneClassifier, tone_word
from test_streaming_prefix import ToneModel, spoken

from speech_app.audio import SAMPLE_RATE, load_audio
from speech_app.cli import listen
from speech_app.screening import CUT_MARGIN, needed_rows, row_cuts, run_span
from speech_app.streaming import RecognizerSettings, StreamingRecognizer, recognize_samples

MIC_BLOCK_SAMPLES = 320  # 20 ms: the live path's blocks
FILE_BLOCK_SAMPLES = 3 * SAMPLE_RATE + 123  # a file's blocks: many hops each, cut anywhere
CONFIDENCE_TOLERANCE = 1e-4  # ONNX Runtime's scores of one window alone and in a batch differ in rounding


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    listen.add_arguments(parser)
    return parser.parse_args(list(argv))


def live_and_scanned(make_classifier, signal: np.ndarray, settings: RecognizerSettings, batch_windows: int = 40):
    """The detections of the live path (20 ms blocks, every window scored) and of a screened file scan."""
    live = recognize_samples(StreamingRecognizer(make_classifier(), settings), signal, MIC_BLOCK_SAMPLES)
    scanner = StreamingRecognizer(make_classifier(), settings, batch_windows=batch_windows, screen=True)
    scanned = recognize_samples(scanner, signal, FILE_BLOCK_SAMPLES)
    return live, scanned, scanner


def tone_talk(seed: int = 0, words: int = 24) -> np.ndarray:
    """Tone words of random loudness (faint ones near the thresholds), some back to back (the same word again
    before it is re-armed), with stretches of low hum between them: words and 'speech' that is no word."""
    rng = np.random.default_rng(seed)
    hum = 0.02 * np.sin(2 * np.pi * 130.0 * np.arange(SAMPLE_RATE * 3) / SAMPLE_RATE).astype(np.float32)
    parts = [hum]
    for _ in range(words):
        word = str(rng.choice(["low", "mid", "high"]))
        parts.append(tone_word(word, amplitude=float(rng.uniform(0.05, 0.4))))
        if rng.random() < 0.3:
            parts.append(tone_word(word, amplitude=0.3))  # said twice in a row
        parts.append(hum[: int(rng.uniform(0.1, 3.0) * SAMPLE_RATE)])
    return np.concatenate(parts)


SETTINGS = {
    "defaults": RecognizerSettings(),
    "a plain mean": RecognizerSettings(recent_weighting=0.0),
    # weights 1, 2, 3: the oldest alone must hold the average down, so only a high threshold leaves a cut
    "three evaluations, the newer weighing more": RecognizerSettings(averaging_ms=375, recent_weighting=1.0,
                                                                     threshold=0.9, pause_ms=0),
    "no pause rule, no suppression (the same word again at once)": RecognizerSettings(pause_ms=0, suppression_ms=0),
    "low threshold, long hold": RecognizerSettings(threshold=0.6, hold_ms=500, pause_ms=0, recent_weighting=0.0),
    "no hold": RecognizerSettings(hold_ms=0, pause_ms=0),
    "a sure score waives the hold": RecognizerSettings(sure_score=0.9, hold_ms=375, pause_ms=0),
    "three evaluations averaged": RecognizerSettings(averaging_ms=375, threshold=0.8, pause_ms=0, recent_weighting=0.0),
    "a word's own threshold": RecognizerSettings(word_thresholds={"mid": 0.9}, pause_ms=0),
}


@pytest.mark.parametrize("name", list(SETTINGS))
def test_a_screened_scan_finds_the_live_paths_detections(name):
    settings = SETTINGS[name]
    signal = tone_talk()
    live, scanned, scanner = live_and_scanned(ToneClassifier, signal, settings)
    assert len(live) >= 5, "the stream must hold detections to compare"
    assert scanned == live  # labels, times and confidences
    assert scanner.unscored > 0  # the hum between words needs no model


@pytest.mark.parametrize("workers", [1, 2])
def test_words_waiting_for_their_rivals_are_decided_as_live(workers):
    """A word with prefix rivals reads every score while it waits: windows left out are scored on demand."""
    quiet = np.zeros(6 * SAMPLE_RATE, np.float32)
    signal = np.concatenate([quiet, spoken("lights", "off"), quiet, spoken("music"), spoken("lights", "on"), quiet])
    settings = RecognizerSettings(threshold=0.6, pause_ms=0, recent_weighting=0.0)  # as custom models listen
    live = recognize_samples(StreamingRecognizer(ToneModel(), settings), signal, MIC_BLOCK_SAMPLES)
    scanner = StreamingRecognizer(ToneModel(), settings, batch_windows=40, model_workers=workers, screen=True)
    scanned = recognize_samples(scanner, signal, FILE_BLOCK_SAMPLES)
    scanner.close()
    assert [d.label for d in live] == ["lights off", "music", "lights on"]
    assert scanned == live
    assert scanner.unscored > 0


def test_the_shipped_model_on_onnx_runtime_scans_as_it_listens():
    from speech_app.onnx_runtime import choose_runtime

    paths = sorted(p for p in SAMPLES_DIR.iterdir() if p.suffix in (".wav", ".flac", ".ogg"))
    gap = np.zeros(int(0.75 * SAMPLE_RATE), np.float32)
    signal = np.concatenate([part for p in paths for part in (load_audio(p), gap)] * 2)

    def classifier():
        return choose_runtime(None, make_missing=False).classifier

    for settings in (RecognizerSettings(), RecognizerSettings(pause_ms=0, suppression_ms=250)):
        live, scanned, scanner = live_and_scanned(classifier, signal, settings)
        assert len(live) >= 10
        assert [(d.label, d.time_s) for d in scanned] == [(d.label, d.time_s) for d in live]
        np.testing.assert_allclose([d.confidence for d in scanned], [d.confidence for d in live],
                                   atol=CONFIDENCE_TOLERANCE)
        assert scanner.unscored > 0


def test_without_a_cut_every_window_is_scored():
    """A single-evaluation average (or a threshold no single row can hold down) leaves nothing out."""
    assert row_cuts(np.array([0.72]), np.ones(1)) is None
    assert row_cuts(np.array([0.5, 0.4]), np.ones(2)) is None
    np.testing.assert_allclose(row_cuts(np.array([0.65, 0.72]), np.ones(2)), [0.3 - CUT_MARGIN, 0.44 - CUT_MARGIN])
    # the newer of two evaluations weighing 2 (the streaming default): the older alone must keep the average down
    np.testing.assert_allclose(row_cuts(np.array([0.72]), RecognizerSettings(recent_weighting=1.0).averaging_weights),
                               [0.16 - CUT_MARGIN])
    scanner = StreamingRecognizer(ToneClassifier(), RecognizerSettings(averaging_ms=125), screen=True)
    recognize_samples(scanner, tone_talk(words=4), FILE_BLOCK_SAMPLES)
    assert scanner.unscored == 0 and scanner.evaluations > 0


class ScriptedScores:
    """One word whose probability in a window is the level of the window's last sample: a stream of constant
    steps, one per hop, scripts the evaluations exactly."""

    labels = ["_silence_", "_unknown_", "word"]
    window_samples = SAMPLE_RATE

    def probabilities(self, waves: np.ndarray) -> np.ndarray:
        word = np.clip(np.asarray(waves)[:, -1], 0.0, 1.0)
        return np.stack([np.zeros_like(word), 1.0 - word, word], axis=1).astype(np.float32)


def test_a_weighted_average_is_screened_by_its_lightest_evaluation():
    """Weights 1 and 2 at 0.72: an older evaluation of 0.3 (under the plain mean's cut, 0.44) still lets
    (0.3 + 2 * 1.0) / 3 and (1.0 + 2 * 0.6) / 3 both reach the threshold: a detection the scan must not miss."""
    settings = RecognizerSettings(recent_weighting=1.0, pause_ms=0)
    hop = settings.hop_samples
    span = run_span(settings.averaged_evaluations, settings.held_evaluations)
    levels = np.zeros(12 * span, np.float32)
    first = 6 * span  # an anchor (scored first), followed by the two high evaluations and a low anchor
    levels[first : first + 3] = [0.3, 1.0, 0.6]
    signal = np.repeat(levels, hop)
    live = recognize_samples(StreamingRecognizer(ScriptedScores(), settings, quiet_gate=False), signal,
                             MIC_BLOCK_SAMPLES)
    scanner = StreamingRecognizer(ScriptedScores(), settings, batch_windows=40, quiet_gate=False, screen=True)
    scanned = recognize_samples(scanner, signal, FILE_BLOCK_SAMPLES)
    assert [d.label for d in live] == ["word"]
    assert scanned == live
    assert scanner.unscored > 0


def test_a_window_is_needed_where_a_run_it_is_part_of_could_reach_the_threshold():
    cuts = np.array([0.3])
    nan = np.nan
    # anchors (even rows) known: low, low, high, low; the rows between them unknown
    rows = np.array([[0.1], [nan], [0.1], [nan], [0.9], [nan], [0.1], [nan]], dtype=np.float32)
    # averages of 2, no hold (span 2): row 1 averages with rows 0 and 2 (both low): never needed; rows 3 and 5
    # average with the high row 4; row 7's second average takes the next block's first row, unknown yet
    needed = needed_rows(rows, np.array([[0.1]]), cuts, span=run_span(2, 1))
    assert needed.tolist() == [False, False, False, True, False, True, False, True]
    # held 3 (span 4): the averages around row 4 are two in a row at most, not 3; the block's end may start a run
    needed = needed_rows(rows, np.array([[0.1]]), cuts, span=run_span(2, 3))
    assert needed.tolist() == [False, False, False, False, False, False, False, True]
    # at a stream's start a run may be shorter (fewer rows before): the first row may hold one alone
    start = needed_rows(np.array([[nan], [0.1]], dtype=np.float32), np.zeros((0, 1)), cuts, span=2)
    assert start.tolist() == [True, False]


def test_a_run_needs_one_word_above_its_cut_throughout():
    """Two words each above their cut in half of a span: neither can hold a run through it."""
    cuts = np.array([0.3, 0.3])
    nan = np.nan
    rows = np.array([[0.9, 0.0], [nan, nan], [0.0, 0.9], [0.0, 0.0], [0.0, 0.0], [0.0, 0.0]], dtype=np.float32)
    needed = needed_rows(rows, np.zeros((2, 2)), cuts, span=3)
    assert not needed[1]
    rows[2] = [0.9, 0.0]  # now the first word may run through rows 0-2
    assert needed_rows(rows, np.zeros((2, 2)), cuts, span=3)[1]


def test_listen_file_screens_and_prints_the_live_paths_detections(tmp_path):
    """`speech-app listen --file` (shipped model, its recognizer for files) against the recognizer `listen`
    builds for a microphone, fed the same audio in 20 ms blocks."""
    paths = sorted(p for p in SAMPLES_DIR.iterdir() if p.suffix in (".wav", ".flac", ".ogg"))
    gap = np.zeros(int(0.75 * SAMPLE_RATE), np.float32)
    signal = np.concatenate([part for p in paths for part in (load_audio(p), gap)])
    path = tmp_path / "samples.wav"
    sf.write(path, signal, SAMPLE_RATE, subtype="FLOAT")
    out = io.StringIO()
    assert listen.run(parse("--file", str(path), "--format", "jsonl", "--pause-ms", "0"), out=out) == 0
    scanned = [json.loads(line) for line in out.getvalue().splitlines()]
    microphone = listen._make_recognizer(parse("--pause-ms", "0"))
    assert not microphone.screen and listen._make_recognizer(parse("--file", str(path))).screen
    live = [d.to_dict() for d in recognize_samples(microphone, signal, MIC_BLOCK_SAMPLES)]
    assert len(live) >= 5
    assert [(d["label"], d["time"]) for d in scanned] == [(d["label"], d["time"]) for d in live]
    np.testing.assert_allclose([d["confidence"] for d in scanned], [d["confidence"] for d in live],
                               atol=CONFIDENCE_TOLERANCE)
