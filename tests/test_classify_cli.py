"""`speech-app classify`: output formats, errors per file, exit statuses, folder expansion, --output."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import SAMPLE_RATE, WANTED_WORDS, word_sound
from speech_app.cli import main

LABELS = {"_silence_", "_unknown_", *WANTED_WORDS}
BASE_HEADER = ["path", "label", "confidence", "error"]


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    """A folder with three good clips (WAV, FLAC, OGG), a hidden clip, a text file and a subfolder."""
    folder = tmp_path_factory.mktemp("clips")
    rng = np.random.default_rng(21)
    sf.write(str(folder / "a_yes.wav"), word_sound("yes", rng), SAMPLE_RATE, subtype="PCM_16")
    sf.write(str(folder / "b_no.flac"), word_sound("no", rng), SAMPLE_RATE, subtype="PCM_16")
    sf.write(str(folder / "c_up.ogg"), word_sound("up", rng), SAMPLE_RATE, format="OGG", subtype="VORBIS")
    sf.write(str(folder / ".hidden.wav"), word_sound("up", rng), SAMPLE_RATE, subtype="PCM_16")
    (folder / "notes.txt").write_text("not audio")
    (folder / "sub").mkdir()
    sf.write(str(folder / "sub" / "d_long.wav"), word_sound("yes", rng, seconds=2.5), 44_100, subtype="PCM_24")
    (folder / ".hidden_dir").mkdir()
    sf.write(str(folder / ".hidden_dir" / "e.wav"), word_sound("no", rng), SAMPLE_RATE, subtype="PCM_16")
    return folder


@pytest.fixture()
def corrupt(tmp_path) -> Path:
    path = tmp_path / "corrupt.wav"
    path.write_bytes(b"RIFF\x00\x00\x00\x00WAVEgarbage" + bytes(range(256)) * 4)
    return path


def _classify(capsys, *args) -> tuple[int, str, str]:
    status = main(["classify", *map(str, args)])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def _csv_rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def _assert_good_row(row: dict) -> None:
    assert row["label"] in LABELS, row
    assert 0.0 <= float(row["confidence"]) <= 1.0
    assert row["error"] == ""


def test_csv_header_and_rows(capsys, tiny_model, clips):
    status, out, _ = _classify(capsys, "--model", tiny_model, clips)
    assert status == 0
    rows = _csv_rows(out)
    assert rows[0] == BASE_HEADER
    assert out.splitlines()[0] == "path,label,confidence,error"
    records = [dict(zip(rows[0], r)) for r in rows[1:]]
    assert [Path(r["path"]).name for r in records] == ["a_yes.wav", "b_no.flac", "c_up.ogg"]  # sorted, not hidden
    for record in records:
        _assert_good_row(record)


def test_top_k_adds_columns_best_first(capsys, tiny_model, clips):
    status, out, _ = _classify(capsys, "--model", tiny_model, "--top-k", "3", clips / "a_yes.wav")
    assert status == 0
    rows = _csv_rows(out)
    assert rows[0] == BASE_HEADER + ["label_2", "confidence_2", "label_3", "confidence_3"]
    record = dict(zip(rows[0], rows[1]))
    labels = [record["label"], record["label_2"], record["label_3"]]
    confidences = [float(record["confidence"]), float(record["confidence_2"]), float(record["confidence_3"])]
    assert len(set(labels)) == 3 and set(labels) <= LABELS
    assert confidences == sorted(confidences, reverse=True)
    assert sum(confidences) <= 1.0 + 1e-3


def test_top_k_larger_than_the_label_count_is_capped(capsys, tiny_model, clips):
    status, out, _ = _classify(capsys, "--model", tiny_model, "--top-k", "50", clips / "a_yes.wav")
    assert status == 0
    rows = _csv_rows(out)
    assert len(rows[0]) == 4 + 2 * (len(LABELS) - 1)
    record = dict(zip(rows[0], rows[1]))
    assert {record["label"]} | {record[f"label_{k}"] for k in range(2, len(LABELS) + 1)} == LABELS
    assert sum(float(record[k]) for k in record if k.startswith("confidence")) == pytest.approx(1.0, abs=5e-3)


def test_a_corrupt_file_is_reported_and_the_others_are_classified(capsys, tiny_model, clips, corrupt):
    status, out, err = _classify(capsys, "--model", tiny_model, clips / "a_yes.wav", corrupt, clips / "b_no.flac")
    assert status == 1
    rows = _csv_rows(out)
    records = [dict(zip(rows[0], r)) for r in rows[1:]]
    assert [Path(r["path"]).name for r in records] == ["a_yes.wav", "corrupt.wav", "b_no.flac"]
    _assert_good_row(records[0])
    _assert_good_row(records[2])
    bad = records[1]
    assert bad["label"] == "" and bad["confidence"] == ""
    assert str(corrupt) in bad["error"] and "\n" not in bad["error"]
    assert len(out.splitlines()) == 4  # the error stayed on one line of the CSV
    assert "1 of 3" in err


def test_all_good_files_exit_zero_and_match_the_library(capsys, tiny_model, clips):
    from speech_app.inference import CommandClassifier

    status, out, _ = _classify(capsys, "--model", tiny_model, "--batch-size", "2", clips)
    assert status == 0
    rows = _csv_rows(out)[1:]
    classifier = CommandClassifier.from_file(tiny_model, precision="auto")  # the CLI's default
    for path_text, label, confidence, _ in rows:
        expected = list(classifier.classify_files([Path(path_text)]))[0]
        assert label == expected.label
        assert float(confidence) == pytest.approx(expected.confidence, abs=1e-4)


def test_precision_float32_matches_the_float32_library(capsys, tiny_model, clips):
    from speech_app.inference import CommandClassifier

    status, out, _ = _classify(capsys, "--model", tiny_model, "--precision", "float32", clips)
    assert status == 0
    classifier = CommandClassifier.from_file(tiny_model, precision="float32")
    for path_text, label, confidence, _ in _csv_rows(out)[1:]:
        expected = list(classifier.classify_files([Path(path_text)]))[0]
        assert (label, float(confidence)) == (expected.label, pytest.approx(expected.confidence, abs=5e-5))  # 4 decimals in the CSV


def test_missing_model_exits_2(capsys, tmp_path, clips):
    status, out, err = _classify(capsys, "--model", tmp_path / "nope.safetensors", clips / "a_yes.wav")
    assert status == 2
    assert out == ""
    assert "nope.safetensors" in err and len(err.strip().splitlines()) == 1


def test_no_audio_files_exits_2(capsys, tmp_path, tiny_model):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("x")
    status, out, err = _classify(capsys, "--model", tiny_model, empty)
    assert status == 2
    assert out == "" and "no audio files" in err


@pytest.mark.parametrize("option", [["--top-k", "0"], ["--batch-size", "0"]])
def test_bad_numbers_exit_2(capsys, tiny_model, clips, option):
    status, _, err = _classify(capsys, "--model", tiny_model, *option, clips / "a_yes.wav")
    assert status == 2 and "at least 1" in err


def test_recursive_descends_but_skips_hidden(capsys, tiny_model, clips):
    status, out, _ = _classify(capsys, "--model", tiny_model, "--recursive", clips)
    assert status == 0
    names = [Path(r[0]).relative_to(clips).as_posix() for r in _csv_rows(out)[1:]]
    assert names == ["a_yes.wav", "b_no.flac", "c_up.ogg", "sub/d_long.wav"]


def test_an_explicitly_named_non_audio_file_is_attempted(capsys, tiny_model, clips):
    status, out, _ = _classify(capsys, "--model", tiny_model, clips / "notes.txt", clips / ".hidden.wav")
    assert status == 1
    records = [dict(zip(BASE_HEADER, r)) for r in _csv_rows(out)[1:]]
    assert [Path(r["path"]).name for r in records] == ["notes.txt", ".hidden.wav"]
    assert records[0]["label"] == "" and "notes.txt" in records[0]["error"]
    _assert_good_row(records[1])  # a hidden file named explicitly is classified


def test_a_missing_file_named_explicitly_fails_alone(capsys, tiny_model, clips, tmp_path):
    status, out, _ = _classify(capsys, "--model", tiny_model, tmp_path / "gone.wav", clips / "a_yes.wav")
    assert status == 1
    records = [dict(zip(BASE_HEADER, r)) for r in _csv_rows(out)[1:]]
    assert "gone.wav" in records[0]["error"] and records[0]["label"] == ""
    _assert_good_row(records[1])


def test_jsonl_format(capsys, tiny_model, clips, corrupt):
    status, out, _ = _classify(capsys, "--model", tiny_model, "--format", "jsonl", "--top-k", "2",
                               clips / "a_yes.wav", corrupt)
    assert status == 1
    records = [json.loads(line) for line in out.splitlines()]
    assert len(records) == 2
    good, bad = records
    assert good["label"] in LABELS and good["error"] is None and 0 <= good["confidence"] <= 1
    assert [t["label"] for t in good["top"]][0] == good["label"] and len(good["top"]) == 2
    assert bad["label"] is None and bad["confidence"] is None and str(corrupt) in bad["error"]


def test_table_format(capsys, tiny_model, clips, corrupt):
    status, out, _ = _classify(capsys, "--model", tiny_model, "--format", "table", clips / "a_yes.wav",
                               clips / "b_no.flac", corrupt)
    assert status == 1
    lines = out.splitlines()
    assert lines[0].split() == BASE_HEADER
    assert len(lines) == 4
    label_column = lines[0].index("label")
    for line in lines[1:3]:
        fields = line.split()
        assert fields[1] in LABELS and 0 <= float(fields[2]) <= 1
        assert line[label_column:].split()[0] == fields[1]  # columns are aligned
    assert lines[3].split()[0] == str(corrupt) and str(corrupt) in lines[3][label_column:]


def test_output_file_is_written_atomically(capsys, tiny_model, clips, tmp_path):
    target = tmp_path / "out" / "results.csv"
    target.parent.mkdir()
    target.write_text("old contents\n")
    status, out, _ = _classify(capsys, "--model", tiny_model, "--output", target, clips)
    assert status == 0
    assert out == ""  # nothing on standard output
    rows = _csv_rows(target.read_text())
    assert rows[0] == BASE_HEADER and len(rows) == 4
    assert [p.name for p in target.parent.iterdir()] == ["results.csv"]


def test_output_file_with_failures_is_still_complete(capsys, tiny_model, clips, corrupt, tmp_path):
    target = tmp_path / "results.jsonl"
    status, _, _ = _classify(capsys, "--model", tiny_model, "--format", "jsonl", "-o", target, corrupt,
                             clips / "a_yes.wav")
    assert status == 1
    assert len(target.read_text().splitlines()) == 2
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_classify_as_a_module_in_a_subprocess(tiny_model, clips, corrupt, tmp_path):
    done = subprocess.run([sys.executable, "-m", "speech_app", "classify", "--model", str(tiny_model),
                           str(clips / "a_yes.wav"), str(corrupt)], capture_output=True, text=True, timeout=120,
                          cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    rows = _csv_rows(done.stdout)
    assert rows[0] == BASE_HEADER
    assert rows[1][1] in LABELS and rows[2][1] == "" and str(corrupt) in rows[2][3]
    assert "1 of 2" in done.stderr


def test_a_files_result_does_not_depend_on_the_other_files(capsys, tiny_model, tmp_path):
    rng = np.random.default_rng(5)
    quiet = tmp_path / "quiet.wav"
    sf.write(str(quiet), 0.01 * word_sound("yes", rng) * np.hanning(SAMPLE_RATE), SAMPLE_RATE, subtype="FLOAT")
    loud = tmp_path / "loud.wav"
    sf.write(str(loud), np.clip(0.9 * rng.standard_normal(SAMPLE_RATE), -1, 1), SAMPLE_RATE, subtype="FLOAT")
    _, alone, _ = _classify(capsys, "--model", tiny_model, "--top-k", "5", quiet)
    _, together, _ = _classify(capsys, "--model", tiny_model, "--top-k", "5", quiet, loud)
    assert _csv_rows(together)[1] == _csv_rows(alone)[1]


def test_no_command_prints_help_and_exits_2(capsys):
    assert main([]) == 2
    assert "classify" in capsys.readouterr().out
