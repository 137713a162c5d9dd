"""Batch classification with decoding overlapped: order, errors and results as one file at a time."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import torch

from speech_app.audio import fit_to_window, load_audio
from speech_app.inference import CommandClassifier

SAMPLES_DIR = Path(__file__).resolve().parent.parent / "datasets" / "samples"


def test_batches_keep_order_and_errors_and_match_one_file_at_a_time(tmp_path):
    sources = sorted(p for p in SAMPLES_DIR.iterdir() if p.suffix in (".wav", ".flac", ".ogg"))[:7]
    paths = []
    for i, source in enumerate(sources):
        paths.append(tmp_path / f"{i:02d}{source.suffix}")
        shutil.copy(source, paths[-1])
        if i == 4:  # a broken file in the middle of the third batch
            paths.append(tmp_path / "broken.wav")
            paths[-1].write_bytes(b"RIFF not really a wave file")
    classifier = CommandClassifier.from_file()
    threads = torch.get_num_threads()
    results = list(classifier.classify_files(paths, top_k=2, batch_size=2))
    assert torch.get_num_threads() == threads
    assert [r.path for r in results] == paths
    for path, result in zip(paths, results):
        if path.name == "broken.wav":
            assert result.error and str(path) in result.error and result.label == ""
            continue
        alone = classifier.classify(load_audio(path), k=2)
        assert result.error is None and result.labels == alone.labels
        assert np.allclose(result.confidences, alone.confidences, atol=1e-5)


def test_workers_with_own_threads_give_the_same_results_in_order():
    paths = sorted(p for p in SAMPLES_DIR.iterdir() if p.suffix in (".wav", ".flac", ".ogg"))
    classifier = CommandClassifier.from_file()
    serial = list(classifier.classify_files(paths, batch_size=3))
    parallel = list(classifier.classify_files(paths, batch_size=3, threads=2))
    assert [(r.path, r.label) for r in parallel] == [(r.path, r.label) for r in serial]
    assert np.allclose([r.confidence for r in parallel], [r.confidence for r in serial], atol=1e-5)


def test_bfloat16_and_int8_keep_the_float32_labels_on_real_clips():
    """The reduced precisions classify the bundled real clips as float32 does; probabilities move by
    rounding only (on 2,400 Speech Commands clips bfloat16 moved none by more than 0.013)."""
    paths = sorted(p for p in SAMPLES_DIR.iterdir() if p.suffix in (".wav", ".flac", ".ogg"))
    float32 = CommandClassifier.from_file(precision="float32")
    waves = np.stack([fit_to_window(load_audio(p), float32.window_samples) for p in paths])
    reference = float32.probabilities(waves)
    for precision in ("bfloat16", "int8"):
        reduced = CommandClassifier.from_file(precision=precision)
        assert reduced.precision == precision
        probabilities = reduced.probabilities(waves)
        assert (probabilities.argmax(1) == reference.argmax(1)).all()
        assert np.abs(probabilities - reference).max() < 0.1


def test_top_k_below_one_still_gives_the_best_label():
    # the CLI refuses --top-k 0; library callers (the GUI) get the best label rather than none
    paths = sorted(p for p in SAMPLES_DIR.iterdir() if p.suffix == ".wav")[:2]
    classifier = CommandClassifier.from_file()
    best = [r.labels for r in classifier.classify_files(paths, top_k=1)]
    for k in (0, -1):
        assert [r.labels for r in classifier.classify_files(paths, top_k=k)] == best
