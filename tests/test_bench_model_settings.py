"""The streaming and continuous-speech benchmarks measure a model as `speech-app listen` hears it: with the
decision settings its file names (`streaming` metadata, decision.settings_of_file), RecognizerSettings'
defaults when it names none. Run on the tiny dataset and the session's tiny model."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from test_decision_settings import with_settings

from speech_app.streaming import RecognizerSettings

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import bench_conversation_commands  # noqa: E402
import bench_streaming  # noqa: E402

OWN = {"threshold": 0.41, "averaging_ms": 500.0, "hold_ms": 0.0, "pause_ms": 700.0}  # none of them a default


def settings_named(default: dict) -> dict:
    return {k: default[k] for k in OWN}


def test_the_streaming_benchmark_scores_the_models_own_settings(tiny_model, tiny_dataset, tmp_path):
    own = with_settings(tiny_model, tmp_path / "own.safetensors", OWN)
    result = bench_streaming.run(own, tiny_dataset.root)
    assert settings_named(result["default"]) == OWN
    # the card's row: the curve at the model's threshold, average and hold (the pause is the model's throughout)
    row = next(r for r in result["curve"] if (r["threshold"], r["averaging_ms"], r["hold_ms"]) == (0.41, 500.0, 0.0))
    default = result["defaults_vs_previous"]["default"]
    assert (row["detections"], row["right"]) == (default["detections"], default["right"])
    plain = bench_streaming.run(tiny_model, tiny_dataset.root)
    defaults = RecognizerSettings()
    assert settings_named(plain["default"]) == {k: getattr(defaults, k) for k in OWN}


def test_the_conversation_benchmark_counts_with_the_models_own_settings(tiny_model, tiny_dataset, tmp_path,
                                                                           monkeypatch):
    from speech_app.audio import load_audio

    files = sorted(tiny_dataset.root.glob("*/*_nohash_0.wav"))
    clips = [load_audio(p).astype(np.float32) for p in files]
    ends = np.cumsum([len(c) for c in clips])
    spans = [(int(end - len(c)), int(end), "tiny") for c, end in zip(clips, ends)]
    monkeypatch.setattr(bench_conversation_commands, "measuring_speech", lambda: (np.concatenate(clips), spans))
    own_settings = {**OWN, "threshold": 0.5, "averaging_ms": 250.0, "hold_ms": 125.0, "pause_ms": 800.0}
    own = with_settings(tiny_model, tmp_path / "own.safetensors", own_settings)
    result = bench_conversation_commands.run(own, tmp_path / "cache")
    assert settings_named(result["default"]) == own_settings
    row = next(r for r in result["curve"] if (r["threshold"], r["averaging_ms"], r["hold_ms"], r["pause_ms"])
               == (0.5, 250.0, 125.0, 800.0))
    assert row["detections"] == result["default"]["detections"]
    plain = bench_conversation_commands.run(tiny_model, tmp_path / "cache")
    defaults = RecognizerSettings()
    assert settings_named(plain["default"]) == {k: getattr(defaults, k) for k in OWN}
