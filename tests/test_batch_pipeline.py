"""Batch classification with decoding overlapped: order, errors and results as one file at a time."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import torch

from speech_app.audio import load_audio
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
