"""Faults a demanding user meets (issue 12): concurrent runs, full disks, damaged caches, checkpoints and
model files, odd options. Each must end in one line naming the file and the problem, with the README's
exit status (0 ok, 1 some files failed, 2 usage or output problems), and must never lose or corrupt
what the user already has. docs/FAULTS.md lists them with what the user sees."""

from __future__ import annotations

import csv
import errno
import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from safetensors.torch import save_file

from conftest import SAMPLE_RATE, TINY_MODEL, WANTED_WORDS, speaker_names, word_sound
from speech_app import atomic_files
from speech_app.atomic_files import OutputBusyError, OutputError, atomic_write, output_lock
from speech_app.cli import main
from speech_app.cli.exit_status import EXIT_BROKEN_PIPE
from speech_app.modelfile import METADATA_KEY, ModelFileError, load_model, read_metadata

REPO = Path(__file__).resolve().parent.parent
TINY_TRAIN_ARGS = ["--words", ",".join(WANTED_WORDS), "--epochs", "1", "--steps-per-epoch", "2", "--batch-size", "8",
                   "--hidden-size", str(TINY_MODEL["hidden_size"]), "--layers", str(TINY_MODEL["num_layers"]),
                   "--device", "cpu", "--quiet"]


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    status = main([str(a) if isinstance(a, Path) else a for a in argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def one_line(err: str) -> str:
    """The stderr of a failed command: exactly one line, no traceback."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def leftovers(folder: Path) -> list[str]:
    """Temporary and lock files a failed or finished run must not leave behind."""
    return sorted(p.name for p in folder.iterdir() if p.name.endswith((".tmp", ".lock", ".old")))


@pytest.fixture
def clip(tmp_path) -> Path:
    path = tmp_path / "yes.wav"
    sf.write(str(path), word_sound("yes", np.random.default_rng(1)), SAMPLE_RATE, subtype="PCM_16")
    return path


def fail_fsync_for(monkeypatch, name_pattern: str) -> list[str]:
    """A full disk, met when a file whose name matches `name_pattern` is flushed; returns the names hit."""
    hits, real_fsync = [], os.fsync

    def fsync(fd):
        target = os.readlink(f"/proc/self/fd/{fd}")
        if re.search(name_pattern, os.path.basename(target)):
            hits.append(target)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_fsync(fd)

    monkeypatch.setattr(atomic_files.os, "fsync", fsync)
    return hits


@pytest.fixture
def small_disk(tmp_path):
    """mount(tmp_path / "disk", read_only=False, size_kb=16): a real tiny file system (tmpfs), for
    the faults only a real disk shows. Needs root (CI runs as root); skipped elsewhere."""
    mounted = []

    def mount(read_only: bool = False, size_kb: int = 16) -> Path:
        point = tmp_path / f"disk{len(mounted)}"
        point.mkdir()
        options = f"size={size_kb}k" + (",ro" if read_only else "")
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)], capture_output=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
        mounted.append(point)
        return point

    yield mount
    for point in mounted:
        subprocess.run(["umount", str(point)], check=False)


# -- 1. concurrent runs -------------------------------------------------------------------------------

def test_temporary_names_are_unique_and_beside_the_target(tmp_path):
    target = tmp_path / "out.csv"
    with atomic_write(target) as first, atomic_write(target) as second:
        assert first.name != second.name
        assert Path(first.name).parent == tmp_path and Path(first.name).name.startswith(".out.csv.")
        first.write("first\n")
        second.write("second\n")
    assert target.read_text() in ("first\n", "second\n")
    assert leftovers(tmp_path) == []


def test_a_failed_write_keeps_the_previous_file(tmp_path):
    target = tmp_path / "model.bin"
    target.write_bytes(b"old and good")
    with pytest.raises(RuntimeError):
        with atomic_write(target, "wb") as handle:
            handle.write(b"half")
            raise RuntimeError("killed midway")
    assert target.read_bytes() == b"old and good" and leftovers(tmp_path) == []


def test_a_second_lock_on_the_same_output_is_refused_then_free_again(tmp_path):
    target = tmp_path / "labels.csv"
    with output_lock(target):
        with pytest.raises(OutputBusyError, match="another speech-app run"):
            with output_lock(target):
                pass
    with output_lock(target):  # released, and its file removed
        pass
    assert leftovers(tmp_path) == []


def test_classify_refuses_an_output_another_run_is_writing(capsys, tiny_model, clip, tmp_path):
    out = tmp_path / "labels.csv"
    with output_lock(out):
        status, _, err = run_cli(capsys, "classify", "--model", tiny_model, clip, "-o", out)
    assert status == 2 and "another speech-app run" in one_line(err) and str(out) in err
    assert not out.exists()


def test_two_classify_runs_on_one_output_never_interleave(tiny_model, tmp_path):
    """Real processes at once: each either writes the whole file or is refused; the file is whole."""
    rng = np.random.default_rng(3)
    for i in range(40):
        sf.write(str(tmp_path / f"c{i:02d}.wav"), word_sound(WANTED_WORDS[i % 3], rng), SAMPLE_RATE)
    out = tmp_path / "out" / "labels.csv"
    out.parent.mkdir()
    command = [sys.executable, "-m", "speech_app", "classify", "--model", str(tiny_model), str(tmp_path), "-o", str(out)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    runs = [subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(run.wait(timeout=180), run.stderr.read()) for run in runs]
    assert all(status == 0 or (status == 2 and "another speech-app run" in err) for status, err in results), results
    rows = list(csv.reader(out.read_text().splitlines()))
    assert len(rows) == 41 and all(len(row) == 4 for row in rows)
    assert leftovers(out.parent) == []


def test_training_refuses_an_output_another_run_is_writing(capsys, tiny_dataset, tmp_path):
    out = tmp_path / "m.safetensors"
    with output_lock(out):
        status, _, err = run_cli(capsys, "train", tiny_dataset.root, "--out", out, *TINY_TRAIN_ARGS)
    assert status == 2 and "another speech-app run" in one_line(err)
    assert "epoch" not in err and not out.exists()


def test_models_get_the_umask_permissions(tmp_path):
    from speech_app.features import FeatureConfig
    from speech_app.model import BiLstmClassifier, ModelConfig
    from speech_app.modelfile import ModelBundle, save_model

    old = os.umask(0o022)
    try:
        path = save_model(tmp_path / "m.safetensors", ModelBundle(
            BiLstmClassifier(ModelConfig(n_classes=3, hidden_size=8, num_layers=1)), ["a", "b", "c"], FeatureConfig()))
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


# -- 2. the decoded-clip cache ------------------------------------------------------------------------

@pytest.fixture
def cache_examples(tiny_dataset, tmp_path, monkeypatch):
    """(examples, noise) of the tiny dataset's validation split, with a private cache folder."""
    from speech_app.data.dataset import build_index
    from speech_app.data.noise import NoiseBank

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    index = build_index([tiny_dataset.root], list(WANTED_WORDS))
    return index.split("validation"), NoiseBank.from_files(index.noise_files)


@pytest.mark.parametrize("damage", ["truncate", "empty", "text"])
def test_a_damaged_cache_entry_is_named_and_rebuilt(cache_examples, capsys, damage):
    from speech_app.data.clips import cache_dir, load_split_clips

    examples, noise = cache_examples
    fresh, _ = load_split_clips(examples, 1.0, noise, progress=False)
    (entry,) = cache_dir().glob("*.npy")
    data = entry.read_bytes()
    entry.write_bytes({"truncate": data[: len(data) // 2], "empty": b"", "text": b"not numpy"}[damage])
    capsys.readouterr()
    again, errors = load_split_clips(examples, 1.0, noise, progress=False)
    assert errors == [] and np.array_equal(again, fresh)
    notice = one_line(capsys.readouterr().err)
    assert str(entry) in notice and "damaged" in notice
    assert np.array_equal(np.load(entry), fresh)  # rebuilt in place: the next run reads it silently


def test_orphaned_temporaries_are_removed_but_a_live_one_is_kept(cache_examples):
    from speech_app.data.clips import cache_dir, load_split_clips

    examples, noise = cache_examples
    folder = cache_dir()
    folder.mkdir(parents=True)
    old_style = folder / "0123456789abcdef0123.5f3a.tmp.npy"
    new_style = folder / ".0123456789abcdef0123.npy.x8k2.tmp"
    live = folder / ".fedcba9876543210fedc.npy.a1b2.tmp"
    for path in (old_style, new_style, live):
        path.write_bytes(b"\0" * 1000)
    two_hours_ago = time.time() - 7200
    for path in (old_style, new_style):
        os.utime(path, (two_hours_ago, two_hours_ago))
    load_split_clips(examples, 1.0, noise, progress=False)
    assert not old_style.exists() and not new_style.exists() and live.exists()


# -- 3. output problems before compute ----------------------------------------------------------------

@pytest.mark.parametrize("case", ["missing folder", "a folder", "read-only folder"])
def test_train_checks_its_output_before_training(capsys, tiny_dataset, tmp_path, case):
    out = {"missing folder": tmp_path / "nope" / "m.safetensors", "a folder": tmp_path,
           "read-only folder": tmp_path / "ro" / "m.safetensors"}[case]
    if case == "read-only folder":
        out.parent.mkdir()
        if os.geteuid() == 0:
            pytest.skip("root may write into any folder; the read-only case is covered by a read-only mount")
        out.parent.chmod(0o500)
    status, _, err = run_cli(capsys, "train", tiny_dataset.root, "--out", out, *TINY_TRAIN_ARGS)
    assert status == 2 and str(out) in one_line(err)
    assert "epoch" not in err  # refused before the first epoch, not after it


def test_a_full_disk_at_the_final_save_keeps_the_previous_model_and_report(capsys, tiny_dataset, tiny_model,
                                                                           tmp_path, monkeypatch):
    out = tmp_path / "m.safetensors"
    shutil.copy(tiny_model, out)
    report = tmp_path / "m_report"
    report.mkdir()
    (report / "report.md").write_text("the previous model's report")
    before = out.read_bytes()
    hits = fail_fsync_for(monkeypatch, r"^\.+m\.safetensors\.(?!ckpt)")
    status, _, err = run_cli(capsys, "train", tiny_dataset.root, "--out", out, *TINY_TRAIN_ARGS)
    assert hits and status == 2
    assert err.strip().splitlines()[-1] == f"speech-app train: {out}: cannot write (no space left on the disk)"
    assert "Traceback" not in err
    assert out.read_bytes() == before and (report / "report.md").read_text() == "the previous model's report"
    assert sorted(p.name for p in report.iterdir()) == ["report.md"]
    assert leftovers(tmp_path) == []


def test_a_full_disk_at_a_checkpoint_leaves_no_partial_file(capsys, tiny_dataset, tmp_path, monkeypatch):
    out = tmp_path / "m.safetensors"
    fail_fsync_for(monkeypatch, r"\.ckpt\.")
    status, _, err = run_cli(capsys, "train", tiny_dataset.root, "--out", out, *TINY_TRAIN_ARGS)
    assert status == 2 and err.strip().splitlines()[-1].endswith("m.safetensors.ckpt: cannot write (no space left on the disk)")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_train_refuses_a_read_only_disk_before_training(capsys, tiny_dataset, small_disk):
    out = small_disk(read_only=True) / "m.safetensors"
    status, _, err = run_cli(capsys, "train", tiny_dataset.root, "--out", out, *TINY_TRAIN_ARGS)
    assert status == 2 and one_line(err) == f"speech-app train: {out}: cannot write (read-only file system)"


def test_classify_onto_a_really_full_disk_keeps_the_previous_file(capsys, tiny_model, clip, small_disk):
    disk = small_disk(size_kb=4)  # one page: 49 rows of about 100 bytes do not fit
    out = disk / "labels.csv"
    out.write_text("the previous results\n")
    status, _, err = run_cli(capsys, "classify", "--model", tiny_model, *[clip] * 49, "-o", out)  # no progress bar below 50
    assert status == 2 and one_line(err) == f"speech-app classify: {out}: cannot write (no space left on the disk)"
    assert out.read_text() == "the previous results\n" and leftovers(disk) == []


# -- 4. one line instead of a traceback ---------------------------------------------------------------

@pytest.mark.parametrize("target", ["missing folder", "a folder", "full device"])
def test_classify_output_problems_are_one_line_with_status_2(capsys, tiny_model, clip, tmp_path, target):
    out = {"missing folder": tmp_path / "nope" / "x.csv", "a folder": tmp_path, "full device": Path("/dev/full")}[target]
    status, _, err = run_cli(capsys, "classify", "--model", tiny_model, clip, "-o", out)
    assert status == 2 and one_line(err).startswith(f"speech-app classify: {out}: ")
    assert Path("/dev/full").is_char_device()  # written in place, never replaced by a rename


def test_classify_into_a_full_standard_output_is_one_line(tiny_model, clip):
    with open("/dev/full", "w") as full:
        done = subprocess.run([sys.executable, "-m", "speech_app", "classify", "--model", str(tiny_model), str(clip)],
                              stdout=full, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 2 and "no space left" in one_line(done.stderr)


@pytest.mark.parametrize("command", ["classify", "listen"])
def test_a_reader_that_leaves_ends_the_command_quietly(tiny_model, clip, command):
    """`speech-app classify ... | head -1`: the pipe closes; no BrokenPipeError traceback."""
    args = [str(clip), str(clip)] if command == "classify" else ["--file", str(clip), "--threshold", "0.01"]
    if command == "listen":  # its one-time notice of making the model's ONNX copy is not what this is about
        from speech_app.onnx_runtime import choose_runtime
        choose_runtime(tiny_model, "auto", "float32")
    process = subprocess.Popen([sys.executable, "-m", "speech_app", command, "--model", str(tiny_model), *args],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(REPO)})
    process.stdout.close()  # the reader is gone before the first line
    err = process.stderr.read().decode()
    status = process.wait(timeout=120)
    assert status == EXIT_BROKEN_PIPE and err == "", err


def test_a_file_name_that_is_not_utf8_classifies(capsys, tiny_model, clip, tmp_path):
    odd = Path(os.fsdecode(bytes(tmp_path) + b"/caf\xe9 \xff.wav"))
    shutil.copy(clip, odd)
    out = tmp_path / "labels.csv"
    status, _, err = run_cli(capsys, "classify", "--model", tiny_model, odd, "-o", out)
    assert status == 0 and err == ""
    rows = list(csv.reader(io.StringIO(out.read_bytes().decode("utf-8", "surrogateescape"))))
    assert rows[1][0] == str(odd) and rows[1][1] in {"_silence_", "_unknown_", *WANTED_WORDS} and rows[1][3] == ""
    assert os.fsencode(odd) in out.read_bytes()  # the name's own bytes: the file can be found from the CSV


def test_resume_on_a_damaged_checkpoint_is_one_line(capsys, tiny_dataset, tmp_path):
    out = tmp_path / "m.safetensors"
    checkpoint = tmp_path / "m.safetensors.ckpt"
    checkpoint.write_bytes(b"PK\x03\x04 not really a checkpoint")
    status, _, err = run_cli(capsys, "train", tiny_dataset.root, "--out", out, "--resume", *TINY_TRAIN_ARGS)
    line = one_line(err)
    assert status == 2 and str(checkpoint) in line and "damaged checkpoint" in line


def test_resume_without_a_checkpoint_says_it_starts_over(capsys, tiny_dataset, tmp_path):
    out = tmp_path / "m.safetensors"
    status, _, err = run_cli(capsys, "train", tiny_dataset.root, "--out", out, "--resume", *TINY_TRAIN_ARGS)
    assert status == 0 and f"no checkpoint at {out}.ckpt; starting from the beginning" in err
    assert out.is_file() and leftovers(tmp_path) == []


def _model_with(tmp_path: Path, tiny_model: Path, edit) -> Path:
    """A copy of the tiny model whose metadata or tensors `edit(metadata, tensors)` has changed."""
    from safetensors import safe_open

    with safe_open(str(tiny_model), framework="pt") as handle:
        tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    metadata = read_metadata(tiny_model)
    replaced = edit(metadata, tensors)
    metadata = replaced if isinstance(replaced, list) else metadata
    path = tmp_path / "edited.safetensors"
    save_file(tensors, str(path), metadata={METADATA_KEY: json.dumps(metadata)})
    return path


def _set(section, key, value):
    def edit(metadata, tensors):
        if section is None:
            metadata[key] = value
        else:
            metadata[section][key] = value
    return edit


METADATA_DAMAGE = {
    "labels a string": (_set(None, "labels", "yes,no"), "labels"),
    "labels numbers": (_set(None, "labels", [1, 2, 3, 4, 5]), "labels"),
    "labels repeated": (lambda m, t: m.__setitem__("labels", ["a"] * len(m["labels"])), "twice"),
    "features a list": (_set(None, "features", [40, 40]), "features"),
    "model null": (_set(None, "model", None), "model"),
    "hidden size text": (_set("model", "hidden_size", "big"), "hidden_size"),
    "negative layers": (_set("model", "num_layers", -2), "num_layers"),
    "zero hop": (_set("features", "hop_ms", 0), "hop_ms"),
    "format version text": (_set(None, "format_version", "1"), "format_version"),
    "metadata a list": (lambda m, t: ["not", "an", "object"], "not an object"),
    "missing tensor": (lambda m, t: t.pop("head.weight", None) if "head.weight" in t else t.popitem(), "lacks the tensor"),
    "NaN weights": (lambda m, t: t[next(n for n in t if n.startswith("lstm."))].fill_(float("nan")), "NaN"),
}


@pytest.mark.parametrize("case", sorted(METADATA_DAMAGE))
def test_a_damaged_model_file_is_one_line_with_status_2(capsys, tmp_path, tiny_model, clip, case):
    edit, expected = METADATA_DAMAGE[case]
    path = _model_with(tmp_path, tiny_model, edit)
    with pytest.raises(ModelFileError, match=expected):
        load_model(path)
    status, out, err = run_cli(capsys, "classify", "--model", path, clip)
    line = one_line(err)
    assert status == 2 and out == "" and str(path) in line and expected in line and len(line) < 300


@pytest.mark.parametrize("case", ["folder", "unreadable"])
def test_a_model_path_that_is_no_readable_file_says_why(capsys, tmp_path, tiny_model, clip, case):
    path = tmp_path / "m.safetensors"
    if case == "folder":
        path.mkdir()
        expected = "is a folder"
    else:
        if os.geteuid() == 0:
            pytest.skip("root reads every file whatever its permissions")
        shutil.copy(tiny_model, path)
        path.chmod(0)
        expected = "permission denied"
    status, _, err = run_cli(capsys, "classify", "--model", path, clip)
    assert status == 2 and expected in one_line(err) and "no such" not in err


@pytest.mark.parametrize("option,value", [("--batch-size", "0"), ("--window-seconds", "0"), ("--epochs", "0"),
                                          ("--patience", "-1"), ("--learning-rate", "0"), ("--layers", "0"),
                                          ("--level-db", "-3"), ("--level-db", "50")])
def test_train_numbers_out_of_range_are_usage_errors(capsys, tiny_dataset, tmp_path, option, value):
    args = [a for a in TINY_TRAIN_ARGS]
    if option in args:
        args[args.index(option) + 1] = value
    else:
        args += [option, value]
    status, _, err = run_cli(capsys, "train", tiny_dataset.root, "--out", tmp_path / "m.safetensors", *args)
    assert status == 2 and option in one_line(err) and value in err


def test_an_empty_training_folder_is_one_line(capsys, tmp_path):
    (tmp_path / "data").mkdir()
    status, _, err = run_cli(capsys, "train", tmp_path / "data", "--out", tmp_path / "m.safetensors", "--quiet")
    assert status == 2 and str(tmp_path / "data") in one_line(err)


def test_one_clip_per_word_is_refused_instead_of_a_nan_model(capsys, tmp_path):
    rng = np.random.default_rng(5)
    (speaker,) = speaker_names(1, ("training",))
    for word in WANTED_WORDS:
        (tmp_path / "data" / word).mkdir(parents=True)
        sf.write(str(tmp_path / "data" / word / f"{speaker}_nohash_0.wav"), word_sound(word, rng), SAMPLE_RATE)
    out = tmp_path / "m.safetensors"
    # the dataset recipe: the one that validates on held-out speakers and had trained to a NaN loss
    status, _, err = run_cli(capsys, "train", tmp_path / "data", "--recipe", "dataset", "--out", out, *TINY_TRAIN_ARGS)
    assert status == 2 and "too few recordings" in one_line(err) and not out.exists()


def test_a_diverging_loss_stops_training_and_writes_no_model(capsys, tiny_dataset, tmp_path):
    out = tmp_path / "m.safetensors"
    status, _, err = run_cli(capsys, "train", tiny_dataset.root, "--out", out, *TINY_TRAIN_ARGS,
                             "--learning-rate", "1e308")
    assert status == 2 and "training diverged" in err.strip().splitlines()[-1] and "Traceback" not in err
    assert not out.exists() and not (tmp_path / "m_report").exists()


def test_the_clip_cache_full_disk_is_a_notice_not_a_failure(cache_examples, capsys, monkeypatch):
    from speech_app.data.clips import cache_dir, load_split_clips

    examples, noise = cache_examples
    fail_fsync_for(monkeypatch, r"\.npy\.")
    clips, errors = load_split_clips(examples, 1.0, noise, progress=False)
    assert errors == [] and len(clips) == len(examples)
    assert "not caching decoded clips" in one_line(capsys.readouterr().err)
    assert list(cache_dir().iterdir()) == []


def test_output_error_messages_name_the_file(tmp_path):
    with pytest.raises(OutputError, match=str(tmp_path / "no" / "x")):
        atomic_files.check_writable(tmp_path / "no" / "x")


def test_a_report_folder_that_holds_other_files_keeps_them(capsys, tiny_model, tiny_dataset, tmp_path):
    """`--report-dir .` or a folder of the user's: only the report's own files are replaced."""
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("the user's notes")
    (folder / "confusion_matrix_old.png").write_bytes(b"an earlier report's plot")
    status, _, err = run_cli(capsys, "evaluate", "--model", tiny_model, "--report-dir", folder, tiny_dataset.root)
    assert status == 0, err
    assert (folder / "notes.txt").read_text() == "the user's notes"
    assert not (folder / "confusion_matrix_old.png").exists()  # the report's own, from an earlier run
    assert {"report.md", "metrics.json"} <= {p.name for p in folder.iterdir()}
    assert leftovers(tmp_path) == [] and leftovers(folder) == []


def test_evaluate_checks_its_report_folder_first(capsys, tiny_model, tiny_dataset, tmp_path):
    (tmp_path / "a_file").write_text("in the way")
    status, _, err = run_cli(capsys, "evaluate", "--model", tiny_model, "--report-dir", tmp_path / "a_file",
                             tiny_dataset.root)
    assert status == 2 and "is a file" in one_line(err)
