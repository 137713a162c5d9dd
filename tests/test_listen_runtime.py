"""`listen` without PyTorch (onnx_runtime.py, numpy_frontend.py) and `listen --file` a block at a time
(audio_blocks.py): the same scores and detections as the PyTorch path, which runtime is chosen when,
no torch in the process, and memory that does not grow with the recording."""

from __future__ import annotations

import argparse
import io
import json
import shutil
import struct
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from stand_ins import SAMPLES_DIR, ToneClassifier, sample_clip, tone_sentence

from speech_app import onnx_runtime
from speech_app.audio import SAMPLE_RATE, load_audio
from speech_app.audio_blocks import AudioBlockReader
from speech_app.cli import listen
from speech_app.streaming import StreamingRecognizer, iter_blocks, recognize_file, recognize_samples

ort = pytest.importorskip("onnxruntime")

REPO = Path(__file__).resolve().parent.parent
LOG_MEL_TOLERANCE_DB = 1e-2  # log-mel values span about -100..+60 dB; float32 FFTs differ in rounding
PROBABILITY_TOLERANCE = 1e-4
CONFIDENCE_TOLERANCE = 1e-4
MIC_BLOCK_SAMPLES = 1_600  # 100 ms: how a microphone hands the stream over


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    listen.add_arguments(parser)
    return parser.parse_args(list(argv))


def sample_stream(words: tuple[str, ...] | None = None, gap_s: float = 0.75) -> np.ndarray:
    """Sample clips (all, or those of `words`) one after another with gaps between them."""
    paths = ([sample_clip(w) for w in words] if words else
             sorted(p for p in SAMPLES_DIR.iterdir() if p.suffix in (".wav", ".flac", ".ogg")))
    gap = np.zeros(int(gap_s * SAMPLE_RATE), np.float32)
    return np.concatenate([part for p in paths for part in (load_audio(p), gap)])


def as_tuples(detections) -> list[tuple[str, float]]:
    return [(d.label, round(d.time_s, 4)) for d in detections]


@pytest.fixture(scope="module")
def onnx_classifier() -> onnx_runtime.OnnxClassifier:
    choice = onnx_runtime.choose_runtime(None, make_missing=False)
    assert choice.runtime == "onnx", choice.note  # the shipped model comes with its export
    return choice.classifier


# -- the same scores and detections as PyTorch -----------------------------------------------------

def test_numpy_log_mel_is_the_torch_front_ends(onnx_classifier, shipped_classifier):
    import torch

    from speech_app.features import mirror_pad

    waves = np.stack([w for w in iter_blocks(sample_stream(("yes", "no")), 16_000) if len(w) == 16_000])
    frontend = shipped_classifier.frontend
    half, offset = frontend.config.n_fft // 2, frontend.window_offset
    padded = mirror_pad(torch.from_numpy(waves), half)[:, offset:]
    expected = frontend.log_mel_frames(padded)[:, : onnx_classifier.log_mel.windows(waves).shape[1]].numpy()
    np.testing.assert_allclose(onnx_classifier.log_mel.windows(waves), expected, atol=LOG_MEL_TOLERANCE_DB)


def test_onnx_scores_windows_as_pytorch_does(onnx_classifier, shipped_classifier):
    stream = sample_stream()
    starts = np.arange(0, len(stream) - 16_000, 1_000)  # on and off the frame grid
    waves = np.stack([stream[s : s + 16_000] for s in starts])
    np.testing.assert_allclose(onnx_classifier.probabilities(waves), shipped_classifier.probabilities(waves),
                               atol=PROBABILITY_TOLERANCE)


def test_shared_frames_give_what_each_window_gives_alone(onnx_classifier):
    stream = sample_stream(("left", "go"))
    shared = onnx_classifier.shared_features(16_000)
    starts = np.sort(np.concatenate([np.arange(0, len(stream) - 16_000, 3_200),  # on the 10 ms frame grid
                                     np.arange(1_000, len(stream) - 16_000, 3_200)]))  # and 40 samples off it
    assert shared.can_share(starts)
    together = np.concatenate([shared(stream, 0, part) for part in np.array_split(starts, 3)])
    alone = onnx_classifier.log_mel.windows(np.stack([stream[s : s + 16_000] for s in starts]))
    np.testing.assert_allclose(together, alone, atol=LOG_MEL_TOLERANCE_DB)


@pytest.mark.parametrize("block_samples", [MIC_BLOCK_SAMPLES, None])
def test_onnx_and_pytorch_detect_the_same_words_at_the_same_times(onnx_classifier, shipped_classifier, block_samples):
    """Every sample clip in one stream (words the model is sure of and words it is not): the same
    detections, hop for hop, with the same confidences."""
    stream = sample_stream()
    from_onnx = recognize_samples(StreamingRecognizer(onnx_classifier), stream, block_samples)
    from_torch = recognize_samples(StreamingRecognizer(shipped_classifier), stream, block_samples)
    assert from_torch, "the shipped model detects nothing in its own sample clips"
    assert as_tuples(from_onnx) == as_tuples(from_torch)
    np.testing.assert_allclose([d.confidence for d in from_onnx], [d.confidence for d in from_torch],
                               atol=CONFIDENCE_TOLERANCE)


def test_the_shipped_export_is_of_the_shipped_model():
    """Retraining the shipped model makes its export stale: `python -m speech_app.export
    model/speech_commands_12.safetensors model/speech_commands_12.streaming.onnx` makes it again."""
    from speech_app.modelfile import shipped_model_path

    model = shipped_model_path()
    assert onnx_runtime.shipped_model_file() == model
    assert onnx_runtime.find_export(model, onnx_runtime.model_digest(model)) is not None


# -- which runtime -----------------------------------------------------------------------------------

def test_auto_runs_onnx_for_the_shipped_model_and_torch_when_asked():
    assert onnx_runtime.choose_runtime(None, "auto", make_missing=False).runtime == "onnx"
    assert onnx_runtime.choose_runtime(None, "torch").runtime == "torch"


def test_a_torch_only_precision_runs_on_torch_and_onnx_refuses_it():
    choice = onnx_runtime.choose_runtime(None, "auto", "bfloat16")
    assert choice.runtime == "torch" and "bfloat16" in choice.note
    with pytest.raises(onnx_runtime.RuntimeUnavailableError, match="bfloat16"):
        onnx_runtime.choose_runtime(None, "onnx", "bfloat16")


def test_without_onnxruntime_auto_falls_back_to_torch(monkeypatch):
    monkeypatch.setattr(onnx_runtime, "onnxruntime_installed", lambda: False)
    choice = onnx_runtime.choose_runtime(None, "auto")
    assert choice.runtime == "torch" and "onnxruntime" in choice.note
    with pytest.raises(onnx_runtime.RuntimeUnavailableError, match="onnxruntime"):
        onnx_runtime.choose_runtime(None, "onnx")


def test_an_export_of_another_model_is_never_used(random_model, monkeypatch):
    """The shipped model's export beside another model file under that file's name: stale, ignored."""
    beside = onnx_runtime.export_candidates(random_model, "x")[0]
    shutil.copy(onnx_runtime.export_candidates(onnx_runtime.shipped_model_file(), "x")[0], beside)
    monkeypatch.setattr(onnx_runtime, "exporter_installed", lambda: False)
    assert onnx_runtime.find_export(random_model, onnx_runtime.model_digest(random_model)) is None
    choice = onnx_runtime.choose_runtime(random_model, "auto")
    assert choice.runtime == "torch" and random_model.name in choice.note


def test_a_failed_export_is_not_retried_at_every_start(random_model, monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    runs = []

    def failing_child(command, **kwargs):
        runs.append(command)
        return subprocess.CompletedProcess(command, 1, "", "speech-app export: the exporter broke\n")

    monkeypatch.setattr(onnx_runtime.subprocess, "run", failing_child)
    for _ in range(2):
        choice = onnx_runtime.choose_runtime(random_model, "auto")
        assert choice.runtime == "torch" and "the exporter broke" in choice.note
    assert len(runs) == 1


@pytest.mark.slow
def test_a_model_without_an_export_gets_one_made_once_in_a_child_process(tiny_model, tmp_path, monkeypatch,
                                                                          tiny_dataset):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    model = shutil.copy(tiny_model, tmp_path / "mine.safetensors")  # no export beside it
    made = onnx_runtime.choose_runtime(Path(model), "auto")
    assert made.runtime == "onnx", made.note
    assert made.classifier.path.parent == onnx_runtime.export_cache_dir()
    monkeypatch.setattr(onnx_runtime, "make_export", lambda *a: pytest.fail("exported twice"))
    again = onnx_runtime.choose_runtime(Path(model), "auto")
    assert again.runtime == "onnx" and again.classifier.path == made.classifier.path

    from speech_app.inference import CommandClassifier

    stream = np.concatenate([load_audio(p) for p in sorted((tiny_dataset.root / "yes").iterdir())[:3]])
    waves = np.stack([stream[s : s + 16_000] for s in range(0, len(stream) - 16_000, 4_000)])
    np.testing.assert_allclose(again.classifier.probabilities(waves),
                               CommandClassifier.from_file(model).probabilities(waves), atol=PROBABILITY_TOLERANCE)


# -- the listen command -----------------------------------------------------------------------------

def test_listen_imports_no_torch(tmp_path):
    """The process a user leaves running: `listen` with the shipped model never loads torch."""
    code = ("import sys; from speech_app.cli import main; status = main(sys.argv[1:]); "
            "print(json.dumps([status, sorted(m for m in ('torch', 'torchaudio', 'librosa') if m in sys.modules)]))")
    done = subprocess.run([sys.executable, "-c", "import json; " + code, "listen", "--format", "jsonl",
                           "--file", str(sample_clip("yes"))], capture_output=True, text=True, cwd=REPO, timeout=300)
    status, loaded = json.loads(done.stdout.splitlines()[-1])
    assert (status, loaded) == (0, []), done.stderr
    assert json.loads(done.stdout.splitlines()[0])["label"] == "yes"


def test_listen_file_gives_the_same_lines_on_either_runtime(capsys):
    path = str(sample_clip("go"))
    outputs = []
    for runtime in ("onnx", "torch"):
        out = io.StringIO()
        assert listen.run(parse("--file", path, "--runtime", runtime, "--format", "jsonl"), out=out) == 0
        outputs.append([(r["label"], r["time"]) for r in map(json.loads, out.getvalue().splitlines())])
    assert outputs[0] == outputs[1] == [("go", outputs[0][0][1])]


def test_listen_runtime_onnx_without_onnxruntime_is_a_usage_error(monkeypatch, capsys):
    monkeypatch.setattr(onnx_runtime, "onnxruntime_installed", lambda: False)
    assert listen.run(parse("--file", str(sample_clip("go")), "--runtime", "onnx")) == listen.EXIT_USAGE
    assert "onnxruntime" in capsys.readouterr().err


def test_listen_precisions_are_inferences():
    from speech_app.inference import PRECISIONS

    assert listen.PRECISIONS == PRECISIONS


# -- listen --file a block at a time ---------------------------------------------------------------

def test_blocks_are_the_whole_file_decoded(tmp_path):
    """48 kHz stereo float: mixed and resampled a block at a time, the samples load_audio gives."""
    rng = np.random.default_rng(3)
    stereo = (0.2 * rng.standard_normal((48_000 * 7 + 123, 2))).astype(np.float32)
    path = tmp_path / "stereo.wav"
    sf.write(path, stereo, 48_000, subtype="FLOAT")
    blocks = list(AudioBlockReader(path, block_seconds=0.7))
    assert len(blocks) > 5
    np.testing.assert_array_equal(np.concatenate(blocks), load_audio(path))
    with AudioBlockReader(path, max_seconds=2.0) as reader:
        np.testing.assert_array_equal(np.concatenate(list(reader)), load_audio(path)[: 2 * SAMPLE_RATE])


def test_a_file_read_in_blocks_gives_the_live_paths_detections(tmp_path):
    """listen --file (blocks of the decoder, many hops per model call) = the stream fed as a microphone would."""
    signal, _ = tone_sentence(["low", "high", "mid", "low"])
    path = tmp_path / "tones.wav"
    sf.write(path, signal, SAMPLE_RATE, subtype="FLOAT")
    live = recognize_samples(StreamingRecognizer(ToneClassifier()), signal, MIC_BLOCK_SAMPLES)
    assert [d.label for d in live] == ["low", "high", "mid", "low"]
    assert recognize_file(path, ToneClassifier()) == live
    from speech_app.streaming import recognize_blocks

    for workers in (1, 2):  # the model run on the main thread, and on workers while it makes the next features
        scanner = StreamingRecognizer(ToneClassifier(), batch_windows=listen.FILE_BATCH_WINDOWS, model_workers=workers)
        assert list(recognize_blocks(scanner, AudioBlockReader(path, block_seconds=3.3))) == live
        scanner.close()


def write_silent_wav(path: Path, seconds: float, rate: int = 48_000, channels: int = 2) -> Path:
    """A valid 32-bit float WAV of silence whose data is a hole in a sparse file: hours of audio, no disk."""
    data_bytes = int(seconds * rate) * channels * 4
    fmt = struct.pack("<HHIIHH", 3, channels, rate, rate * channels * 4, channels * 4, 32)  # IEEE float
    header = (b"RIFF" + struct.pack("<I", 4 + 8 + len(fmt) + 8 + data_bytes) + b"WAVE" + b"fmt "
              + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", data_bytes))
    with open(path, "wb") as handle:
        handle.write(header)
        handle.truncate(len(header) + data_bytes)
    return path


def peak_traced_bytes(args: argparse.Namespace) -> int:
    """The most memory NumPy and Python held at once while `listen` ran (tracemalloc sees NumPy's arrays)."""
    tracemalloc.start()
    try:
        assert listen.run(args, out=io.StringIO()) == 0
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.slow
def test_listen_file_memory_does_not_grow_with_the_recording(tmp_path, tone_model, capsys):
    """20 minutes of 48 kHz stereo float (460 MB) scanned, and an hour of it with --duration 5, hold no
    more than 30 s of it does: the old path decoded and copied the whole file (1.4 GB for the hour)."""
    short = peak_traced_bytes(parse("--file", str(write_silent_wav(tmp_path / "short.wav", 30))))
    long_path = write_silent_wav(tmp_path / "long.wav", 20 * 60)
    whole_file_bytes = long_path.stat().st_size
    long = peak_traced_bytes(parse("--file", str(long_path)))
    assert "s of audio" in capsys.readouterr().err  # the progress bar of a long file
    hour = peak_traced_bytes(parse("--file", str(write_silent_wav(tmp_path / "hour.wav", 3600)), "--duration", "5"))
    assert long < short + whole_file_bytes / 50, (short, long)
    assert hour < short + whole_file_bytes / 50, (short, hour)


def test_a_short_file_has_no_progress_bar(tone_model, tmp_path, capsys):
    path = tmp_path / "tones.wav"
    sf.write(path, tone_sentence(["low"])[0], SAMPLE_RATE)
    assert listen.run(parse("--file", str(path))) == 0
    assert capsys.readouterr().err == ""


def test_a_file_that_is_no_audio_is_one_line_naming_it(tone_model, tmp_path, capsys):
    path = tmp_path / "notes.wav"
    path.write_text("not audio")
    assert listen.run(parse("--file", str(path))) == listen.EXIT_USAGE
    err = capsys.readouterr().err
    assert "notes.wav" in err and len(err.strip().splitlines()) == 1
