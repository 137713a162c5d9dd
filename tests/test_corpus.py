"""Odd and malformed audio files (issue 12, item 6): a corpus generated here, classified through the CLI
and the GUI's Batch tab, and a fuzzer over decoding and classification with a fixed budget.

Whatever the file, the user gets one row per file: a label with a probability for audio that can be
decoded, or a one-line error naming the file; never a traceback, never a NaN, and the batch goes on."""

from __future__ import annotations

import csv
import io
import os
import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import SAMPLE_RATE, word_sound
from speech_app.audio import AudioDecodeError, load_audio
from speech_app.cli import main

FUZZ_EXAMPLES = 150  # fixed budget: the same inputs (derandomized) in every CI run, a few seconds each
FUZZ = settings(max_examples=FUZZ_EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
GOOD, BAD, EITHER = "decodes", "fails", "either"  # EITHER: libsndfile may read what is there, or refuse


def wav_bytes(samples: np.ndarray, rate: int = SAMPLE_RATE, subtype: str = "PCM_16", fmt: str = "WAV") -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, samples, rate, subtype=subtype, format=fmt)
    return buffer.getvalue()


def with_chunk_size(data: bytes, chunk: bytes, size: int) -> bytes:
    """The WAV with the size field of its first `chunk` chunk replaced."""
    at = data.index(chunk) + 4
    return data[:at] + struct.pack("<I", size) + data[at + 4 :]


def pcm_header(channels: int, rate: int, bits: int, data_size: int, format_code: int = 1) -> bytes:
    block = max(1, channels * bits // 8)
    fmt = struct.pack("<HHIIHH", format_code, channels, rate, (rate * block) & 0xFFFFFFFF, block, bits)
    return (b"RIFF" + struct.pack("<I", 36 + data_size) + b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt
            + b"data" + struct.pack("<I", data_size))


def build_corpus(root: Path) -> dict[Path, str]:
    """At least 40 odd files and what must happen to each."""
    rng = np.random.default_rng(12)
    word = word_sound("yes", rng)
    good = wav_bytes(word)
    files: dict[str, tuple[bytes, str]] = {
        "truncated_header.wav": (good[:20], BAD),
        "truncated_in_fmt.wav": (good[:30], BAD),
        "truncated_half_data.wav": (good[: len(good) // 2], EITHER),
        "truncated_one_byte_of_data.wav": (good[:45], EITHER),
        "riff_size_huge.wav": (with_chunk_size(good, b"RIFF", 0xFFFFFFFF), EITHER),
        "riff_size_zero.wav": (with_chunk_size(good, b"RIFF", 0), EITHER),
        "data_size_huge.wav": (with_chunk_size(good, b"data", 0x7FFFFFF0), EITHER),
        "data_size_zero.wav": (with_chunk_size(good, b"data", 0), EITHER),
        "data_size_odd.wav": (with_chunk_size(good, b"data", 12345), EITHER),
        "fmt_size_wrong.wav": (with_chunk_size(good, b"fmt ", 100), EITHER),
        "fmt_size_tiny.wav": (with_chunk_size(good, b"fmt ", 2), BAD),
        "rate_zero.wav": (pcm_header(1, 0, 16, 3200) + bytes(3200), BAD),
        "rate_4ghz.wav": (pcm_header(1, 0xFFFFFFF0, 16, 3200) + bytes(3200), BAD),
        "channels_zero.wav": (pcm_header(0, 16000, 16, 3200) + bytes(3200), BAD),
        "bits_zero.wav": (pcm_header(1, 16000, 0, 3200) + bytes(3200), BAD),
        "unknown_codec.wav": (pcm_header(1, 16000, 16, 3200, format_code=0x1234) + bytes(3200), BAD),
        "text.wav": (b"this is a text file, not audio\n" * 20, BAD),
        "image.wav": (b"\x89PNG\r\n\x1a\n" + bytes(rng.integers(0, 256, 2000, dtype=np.uint8)), BAD),
        "empty.wav": (b"", BAD),
        "zero_bytes.wav": (bytes(4096), BAD),
        "random_bytes.wav": (bytes(rng.integers(0, 256, 5000, dtype=np.uint8)), BAD),
        "header_only.wav": (pcm_header(1, 16000, 16, 0), BAD),
        "flac_named.wav": (wav_bytes(word, fmt="FLAC"), GOOD),
        "a.wav.wav": (good, GOOD),
        "UPPER.WAV": (good, GOOD),
        "silence.wav": (wav_bytes(np.zeros(SAMPLE_RATE, np.float32)), GOOD),
        "clipping.wav": (wav_bytes(np.sign(np.sin(np.arange(SAMPLE_RATE) * 0.05)).astype(np.float32)), GOOD),
        "float_far_beyond_one.wav": (wav_bytes(word * 40.0, subtype="FLOAT"), GOOD),
        "float_nan.wav": (wav_bytes(np.where(np.arange(SAMPLE_RATE) == 500, np.nan, word), subtype="FLOAT"), BAD),
        "float_inf.wav": (wav_bytes(np.where(np.arange(SAMPLE_RATE) == 9, np.inf, word), subtype="DOUBLE"), BAD),
        "20ms.wav": (wav_bytes(word[: SAMPLE_RATE // 50]), GOOD),
        "one_sample.wav": (wav_bytes(word[:1]), GOOD),
        "ten_minutes_8k_u8.wav": (wav_bytes(np.tile(word[::2], 600), 8000, "PCM_U8"), GOOD),
        "eight_channels.wav": (wav_bytes(np.tile(word[:, None], (1, 8))), GOOD),
        "flac_24bit.flac": (wav_bytes(word, fmt="FLAC", subtype="PCM_24"), GOOD),
        "vorbis.ogg": (wav_bytes(word, fmt="OGG", subtype="VORBIS"), GOOD),
        "truncated.flac": (wav_bytes(word, fmt="FLAC")[:300], EITHER),
        "truncated.ogg": (wav_bytes(word, fmt="OGG", subtype="VORBIS")[:200], EITHER),
    }
    for subtype in ("PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE", "ULAW", "ALAW", "IMA_ADPCM",
                    "MS_ADPCM", "GSM610"):
        rate = 8000 if subtype == "GSM610" else SAMPLE_RATE
        files[f"format_{subtype.lower()}.wav"] = (wav_bytes(word[:: SAMPLE_RATE // rate], rate, subtype), GOOD)
    for rate in (8000, 11025, 22050, 32000, 44100, 48000):
        stereo = np.stack([word, -word], axis=1)
        resampled = np.interp(np.arange(int(len(word) * rate / SAMPLE_RATE)) * SAMPLE_RATE / rate,
                              np.arange(len(word)), word)
        files[f"stereo_{rate}.wav"] = (wav_bytes(np.stack([resampled, resampled * 0.5], axis=1), rate), GOOD)
        del stereo
    paths = {}
    for name, (data, expected) in files.items():
        (root / name).write_bytes(data)
        paths[root / name] = expected
    odd_name = Path(os.fsdecode(bytes(root) + b"/not_utf8_\xff\xfe.wav"))
    odd_name.write_bytes(good)
    paths[odd_name] = GOOD
    (root / "folder.wav").mkdir()
    paths[root / "folder.wav"] = BAD
    os.symlink(root / "loop_b.wav", root / "loop_a.wav")
    os.symlink(root / "loop_a.wav", root / "loop_b.wav")
    paths[root / "loop_a.wav"] = BAD
    os.symlink(root / "nowhere.wav", root / "dangling.wav")
    paths[root / "dangling.wav"] = BAD
    os.symlink(root / "a.wav.wav", root / "link_to_good.wav")
    paths[root / "link_to_good.wav"] = GOOD
    if os.geteuid() != 0:  # root reads every file: permissions cannot make one unreadable
        (root / "unreadable.wav").write_bytes(good)
        (root / "unreadable.wav").chmod(0)
        paths[root / "unreadable.wav"] = BAD
    return paths


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[Path, str]:
    return build_corpus(tmp_path_factory.mktemp("corpus"))


def test_the_corpus_is_large_and_varied(corpus):
    assert len(corpus) >= 40
    assert {GOOD, BAD, EITHER} <= set(corpus.values())


def check_row(path: Path, label: str, confidence: str, error: str, expected: str, gui: bool = False) -> None:
    assert "\n" not in error and "Traceback" not in error
    if label:
        assert error == "" and 0.0 <= float(confidence) <= 1.0, (path, confidence)
    elif gui:  # the table's File column names the file; its Error column holds the reason alone
        assert error and len(error) < 300, (path, error)
    else:
        assert error.startswith(str(path).encode("utf-8", "surrogateescape").decode("utf-8", "replace") + ": ") or \
            error.startswith(str(path) + ": "), (path, error)
        assert len(error) < 300
    if expected != EITHER:
        assert bool(label) == (expected == GOOD), (path, label, error)


def test_every_corpus_file_gets_a_row_through_the_cli(corpus, tiny_model, capsysbinary):
    paths = sorted(p for p in corpus if not p.is_dir())  # a folder named explicitly expands to its files
    status = main(["classify", "--model", str(tiny_model), *map(str, paths)])
    captured = capsysbinary.readouterr()
    assert b"Traceback" not in captured.err
    rows = list(csv.DictReader(io.StringIO(captured.out.decode("utf-8", "surrogateescape"))))
    assert [row["path"] for row in rows] == [str(p) for p in paths]  # one row each, in order
    for path, row in zip(paths, rows):
        check_row(path, row["label"], row["confidence"], row["error"], corpus[path])
    failed = sum(1 for row in rows if row["error"])
    assert status == (1 if failed else 0)
    assert captured.err.decode().strip().splitlines()[-1] == f"{failed} of {len(paths)} files could not be classified"


def test_a_folder_of_the_corpus_skips_what_is_no_audio_file(corpus, tiny_model, capsysbinary):
    """A folder expands to its audio files: the folder named x.wav and the links that lead nowhere
    are no files, so they are left out rather than failing the batch."""
    root = next(iter(corpus)).parent
    status = main(["classify", "--model", str(tiny_model), str(root)])
    out = capsysbinary.readouterr().out.decode("utf-8", "surrogateescape")
    listed = {row["path"] for row in csv.DictReader(io.StringIO(out))}
    assert str(root / "folder.wav") not in listed and str(root / "loop_a.wav") not in listed
    assert str(root / "a.wav.wav") in listed and status in (0, 1)


def test_every_corpus_file_gets_a_row_in_the_batch_tab(corpus, make_window, qtbot, tiny_model, tmp_path):
    from test_gui_batch import batch_window, classify

    window, _ = batch_window(make_window, tiny_model)
    paths = sorted(p for p in corpus if not p.is_dir())
    rows = classify(window, qtbot, paths)
    assert len(rows) == len(paths)
    by_name = {row[0]: row for row in rows}
    for path in paths:  # Qt shows a name that is not UTF-8 with replacement characters
        name, label, confidence, error = by_name[os.fsencode(path.name).decode("utf-8", "replace")]
        check_row(path, label, confidence, error, corpus[path], gui=True)
    exported = tmp_path / "batch.csv"
    window.batch.export_csv(exported)
    listed = [row[0] for row in csv.reader(io.StringIO(exported.read_bytes().decode("utf-8", "surrogateescape")))]
    assert listed[1:] == [str(p) for p in paths]  # every path as it is on disk, the non-UTF-8 one too


# -- the fuzzer ---------------------------------------------------------------------------------------

def decode_or_refuse(path: Path) -> None:
    """The only two outcomes allowed: finite mono audio, or an AudioDecodeError naming the file."""
    try:
        audio = load_audio(path)
    except AudioDecodeError as err:
        assert str(err).startswith(f"{path}: ") and "\n" not in str(err)
        return
    assert audio.dtype == np.float32 and audio.ndim == 1 and len(audio) > 0 and np.isfinite(audio).all()


SEED_WAV = wav_bytes(word_sound("no", np.random.default_rng(2), seconds=0.1, sound_seconds=0.05))


@FUZZ
@given(cut=st.integers(0, len(SEED_WAV)), flips=st.lists(st.tuples(st.integers(0, len(SEED_WAV) - 1),
                                                                    st.integers(0, 255)), max_size=8))
def test_fuzzed_wav_bytes_decode_or_are_refused(tmp_path, cut, flips):
    data = bytearray(SEED_WAV[:cut] if cut < 60 else SEED_WAV)
    for position, value in flips:
        if position < len(data):
            data[position] = value
    path = tmp_path / "fuzz.wav"
    path.write_bytes(bytes(data))
    decode_or_refuse(path)


@FUZZ
@given(channels=st.integers(0, 70_000), rate=st.integers(0, 2**32 - 1), bits=st.sampled_from([0, 1, 8, 12, 16, 24, 32, 64]),
       code=st.sampled_from([0, 1, 2, 3, 6, 7, 0x11, 0xFFFE, 0xFFFF]), data_size=st.integers(0, 2**32 - 1),
       payload=st.binary(max_size=512))
def test_fuzzed_wav_headers_decode_or_are_refused(tmp_path, channels, rate, bits, code, data_size, payload):
    path = tmp_path / "header.wav"
    block = max(1, channels * bits // 8) & 0xFFFF
    fmt = struct.pack("<HHIIHH", code, channels & 0xFFFF, rate, (rate * block) & 0xFFFFFFFF, block, bits)
    path.write_bytes(b"RIFF" + struct.pack("<I", (36 + data_size) & 0xFFFFFFFF) + b"WAVEfmt " + struct.pack("<I", 16)
                     + fmt + b"data" + struct.pack("<I", data_size) + payload)
    decode_or_refuse(path)


@pytest.fixture(scope="module")
def tiny_classifier(tiny_model):
    from speech_app.inference import CommandClassifier

    return CommandClassifier.from_file(tiny_model)


@FUZZ
@given(samples=st.lists(st.floats(-1e4, 1e4, allow_nan=False, width=32), max_size=3 * SAMPLE_RATE // 100),
       repeat=st.integers(1, 100))
def test_fuzzed_audio_always_gets_a_proper_probability(tiny_classifier, samples, repeat):
    """Any finite audio of any length (empty, one sample, seconds; up to 10 000x full scale)."""
    audio = np.repeat(np.asarray(samples, dtype=np.float32), repeat)
    prediction = tiny_classifier.classify(audio, k=len(tiny_classifier.labels))
    assert sorted(prediction.labels) == sorted(tiny_classifier.labels)
    assert all(np.isfinite(prediction.confidences)) and abs(sum(prediction.confidences) - 1.0) < 1e-4
