"""Faults found by probing the installed app (issue 25): a named pipe given as an audio file, Ctrl-C while
workers are blocked in I/O and in the GUI, `export` onto a full disk or a folder, and word names that
cannot be folder names or labels. docs/FAULTS.md lists them with what the user sees."""

from __future__ import annotations

import errno
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import SAMPLE_RATE, word_sound
from test_faults import leftovers, one_line, run_cli, small_disk  # noqa: F401  (small_disk: a fixture)
from speech_app.audio import AudioDecodeError, load_audio
from speech_app.cli import main
from speech_app.cli.exit_status import EXIT_INTERRUPTED, EXIT_SOME_FAILED, EXIT_USAGE

REPO = Path(__file__).resolve().parent.parent
HANG_S = 120  # a child that has not ended this long after Ctrl-C hangs (it ends in about a second)
UNBLOCK_POLL_S = 0.05


def child_env(**extra) -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO), **extra}


@pytest.fixture
def clip(tmp_path) -> Path:
    path = tmp_path / "yes.wav"
    sf.write(str(path), word_sound("yes", np.random.default_rng(1)), SAMPLE_RATE, subtype="PCM_16")
    return path


@pytest.fixture
def fifo(tmp_path):
    """A named pipe `fifo.wav`. Whenever a reader opens it, a writer comes and goes at once, so a reader
    (the old code) sees an empty file instead of waiting forever and the test fails instead of hanging."""
    path = tmp_path / "fifo.wav"
    os.mkfifo(path)
    stop = threading.Event()

    def unblock():
        while not stop.wait(UNBLOCK_POLL_S):
            try:
                os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))  # ENXIO while nobody reads
            except OSError as err:
                if err.errno != errno.ENXIO:
                    return

    writer = threading.Thread(target=unblock, daemon=True)
    writer.start()
    yield path
    stop.set()
    writer.join()


# -- 1. a named pipe, and Ctrl-C while a worker is blocked in I/O ----------------------------------------

def test_a_named_pipe_is_refused_before_it_is_opened(fifo):
    with pytest.raises(AudioDecodeError) as caught:
        load_audio(fifo)  # the same for classify, the Batch tab, training's takes, listen --file
    assert str(caught.value) == f"{fifo}: is a named pipe, not an audio file"


def test_classify_gives_a_named_pipe_a_row_with_its_error(capsys, fifo, clip):
    status, out, err = run_cli(capsys, "classify", fifo, clip)
    rows = out.splitlines()
    assert status == EXIT_SOME_FAILED and rows[0] == "path,label,confidence,error"
    assert rows[1] == f'{fifo},,,"{fifo}: is a named pipe, not an audio file"' and rows[2].startswith(f"{clip},")
    assert "1 of 2 files could not be classified" in err


def test_a_named_pipe_given_as_the_model_is_refused_before_it_is_opened(fifo, clip):
    """`--model fifo`: opening it would wait for a writer forever; refused in one line instead."""
    done = subprocess.run([sys.executable, "-m", "speech_app", "classify", "--model", str(fifo), str(clip)],
                          capture_output=True, text=True, timeout=HANG_S)  # the old code hung here
    assert done.returncode == EXIT_USAGE and done.stdout == ""
    assert done.stderr.strip() == f"speech-app classify: {fifo}: is a named pipe, not a model file"


@pytest.mark.parametrize("output", ["stdout", "file"])
def test_ctrl_c_ends_classify_while_a_worker_is_blocked_in_io(tmp_path, clip, output):
    """Ctrl-C to the whole process group (as a terminal sends it) while a worker waits forever in a read
    (a named pipe opened by code that does not check, standing for a hung network file): 130 at once,
    and nothing left of the output."""
    pipe = tmp_path / "never-written"
    os.mkfifo(pipe)
    out = tmp_path / "labels.csv"
    script = ("import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler)\n"
              "from speech_app import inference; from speech_app.cli import main\n"
              "def blocked(path, *args, **kwargs):\n"
              "    print('blocked', file=sys.stderr, flush=True)\n"
              f"    open({str(pipe)!r}, 'rb').read()\n"
              "inference.load_audio = blocked\n"
              "sys.exit(main(sys.argv[1:]))\n")
    argv = ["classify", str(clip), str(clip)] + (["-o", str(out)] if output == "file" else [])
    child = subprocess.Popen([sys.executable, "-c", script, *argv], env=child_env(), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert child.stderr.readline().strip() == "blocked"
        os.killpg(child.pid, signal.SIGINT)
        _, err = child.communicate(timeout=HANG_S)
    except subprocess.TimeoutExpired:
        pytest.fail("Ctrl-C did not end classify while a worker was blocked")
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
    assert child.returncode == EXIT_INTERRUPTED and err.strip() == "interrupted", err
    assert not out.exists() and leftovers(tmp_path) == [], sorted(p.name for p in tmp_path.iterdir())


# -- 8. export writes as every other output --------------------------------------------------------------

@pytest.fixture
def no_export(monkeypatch):
    """The exporter, failing the test if it runs: an output that cannot be written is refused before it."""
    import torch

    def exported(*args, **kwargs):
        raise AssertionError("the export ran before the output was checked")

    monkeypatch.setattr(torch.onnx, "export", exported)


@pytest.mark.parametrize("target", ["a folder", "missing folder"])
def test_export_refuses_an_output_it_cannot_write_before_exporting(capsys, random_model, tmp_path, no_export, target):
    out = {"a folder": tmp_path, "missing folder": tmp_path / "nope" / "m.onnx"}[target]
    status, _, err = run_cli(capsys, "export", "--model", random_model, out)
    reason = "is a folder; give a file name" if target == "a folder" else \
        f"cannot write (the folder {tmp_path / 'nope'} does not exist)"
    assert status == EXIT_USAGE and one_line(err) == f"speech-app export: {out}: {reason}"
    assert not (tmp_path / "nope").exists() and leftovers(tmp_path) == []


def test_export_onto_a_full_disk_keeps_the_previous_file(capsys, random_model, small_disk):
    pytest.importorskip("onnx")
    disk = small_disk(size_kb=16)  # the model's ONNX file is larger
    out = disk / "m.onnx"
    out.write_bytes(b"the previous export")
    status, _, err = run_cli(capsys, "export", "--model", random_model, out)
    assert status == EXIT_USAGE
    assert one_line(err) == f"speech-app export: {out}: cannot write (no space left on the disk)"
    assert out.read_bytes() == b"the previous export" and leftovers(disk) == []


def test_export_refuses_an_output_another_run_is_writing(capsys, random_model, tmp_path, no_export):
    from speech_app.atomic_files import output_lock

    out = tmp_path / "m.onnx"
    with output_lock(out):
        status, _, err = run_cli(capsys, "export", "--model", random_model, out)
    assert status == EXIT_USAGE and "another speech-app run is writing this output" in one_line(err)


def test_export_writes_a_model_onnx_runtime_loads(capsys, random_model, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    out = tmp_path / "m.onnx"
    status, printed, _ = run_cli(capsys, "export", "--model", random_model, out)
    assert status == 0 and printed.strip() == str(out) and leftovers(tmp_path) == []
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert session.get_modelmeta().custom_metadata_map["labels"]
    assert out.stat().st_mode & 0o777 == 0o666 & ~current_umask()


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# -- 9-11. word names: checked once, before any work, in the CLI and the app ----------------------------

LONG_WORD = "a" * 300
SAME_WORD = "are the same word (case and spacing do not count); give it once"
ALLOWED = "use letters, digits, spaces, apostrophes and hyphens, not starting with '_' or '.'"


@pytest.fixture
def no_training_work(monkeypatch):
    """Synthesis and training, failing the test if they start: a bad word is refused before them."""
    from speech_app.synth import text_training
    from speech_app.training import custom_words, trainer

    def started(*args, **kwargs):
        raise AssertionError("work started before the words were checked")

    for module, name in ((custom_words, "synthesize_for_words"), (custom_words, "train_custom_words"),
                         (text_training, "synthesize_training_set"), (trainer, "train")):
        monkeypatch.setattr(module, name, started)


@pytest.mark.parametrize("words, problem", [
    (f"yes,{LONG_WORD}",
     "'aaaaaaaaaaaaaaaaaaaaaaaaaaa...': a word is at most 50 characters, not 300 (it becomes a folder name)"),
    ("Yes,yes", f"'Yes' and 'yes' {SAME_WORD}"),
    ("lights on,Lights  On", f"'lights on' and 'Lights  On' {SAME_WORD}"),
    ("lights\non",
     "'lights\\non': a word cannot hold a line break or another control character (labels are printed one per line)"),
    ("yes,_unknown_", f"'_unknown_': {ALLOWED}"),
    ("on/off", f"'on/off': {ALLOWED}"),
], ids=["long", "case", "spacing", "line break", "reserved", "slash"])
@pytest.mark.parametrize("recipe", ["custom", "dataset"])
def test_train_refuses_a_bad_word_before_any_work(capsys, tmp_path, no_training_work, words, problem, recipe):
    out = tmp_path / "m.safetensors"
    status, _, err = run_cli(capsys, "train", "--words", words, "--synth", "--recipe", recipe, "--out", out)
    assert status == EXIT_USAGE and one_line(err) == f"speech-app train: --words: {problem}"
    assert list(tmp_path.iterdir()) == []


class StopBeforeTraining(Exception):
    pass


@pytest.fixture
def words_trained_on(monkeypatch) -> list:
    """The words the custom recipe is asked to train on; the training itself stops before it starts."""
    from speech_app.training import custom_words

    given = []

    def record(takes, words, *args, **kwargs):
        given.append(words)
        raise StopBeforeTraining

    monkeypatch.setattr(custom_words, "train_custom_words", record)
    return given


def test_the_same_word_twice_is_one_word(tmp_path, words_trained_on):
    takes = write_word_folders(tmp_path / "takes", ["yes"])
    with pytest.raises(StopBeforeTraining):
        main(["train", str(takes), "--words", "yes, lights on,yes", "--no-synth",
              "--out", str(tmp_path / "m.safetensors")])
    assert words_trained_on == [["yes", "lights on"]]


def write_word_folders(root: Path, names: list[str]) -> Path:
    for name in names:
        (root / name).mkdir(parents=True)
        sf.write(str(root / name / "take_nohash_0.wav"), word_sound("yes", np.random.default_rng(0)), SAMPLE_RATE,
                 subtype="PCM_16")
    return root


@pytest.mark.parametrize("recipe", ["custom", "dataset"])
def test_a_takes_folder_whose_name_is_no_word_is_named(capsys, tmp_path, no_training_work, recipe):
    takes = write_word_folders(tmp_path / "takes", ["lights\non", "music"])
    status, _, err = run_cli(capsys, "train", takes, "--recipe", recipe, "--no-synth" if recipe == "custom" else
                             "--quiet", "--out", tmp_path / "m.safetensors")
    assert status == EXIT_USAGE and one_line(err) == (
        f"speech-app train: {takes}: the folder names are the words: 'lights\\non': a word cannot hold a line break "
        f"or another control character (labels are printed one per line)")


def test_takes_folders_named_with_spaces_and_unicode_are_words(tmp_path, words_trained_on):
    takes = write_word_folders(tmp_path / "takes", ["lights on", "café", "o'clock", "привет"])
    with pytest.raises(StopBeforeTraining):
        main(["train", str(takes), "--no-synth", "--out", str(tmp_path / "m.safetensors")])
    assert words_trained_on == [["café", "lights on", "o'clock", "привет"]]


def test_synth_refuses_a_word_that_is_no_folder_name():
    from speech_app.synth.generator import SynthUsageError, check_words

    for bad in (["lights\non"], [LONG_WORD], ["Yes", "yes"]):
        with pytest.raises(SynthUsageError):
            check_words(bad)


def test_the_custom_words_tab_merges_case_and_spacing_and_refuses_a_long_word(make_window):
    from stand_ins import FakeAudio

    window = make_window(FakeAudio().services())
    window.custom.set_words("Yes, yes ,lights  on, Lights On")
    assert window.custom.words() == ["yes", "lights on"]
    window.custom.set_words(f"yes, {LONG_WORD}")
    assert window.custom.words() == [] and "at most 50 characters" in window.custom.countdown_label.text()


# -- 2. Ctrl-C in the terminal closes the app as its menu does ------------------------------------------

def test_ctrl_c_closes_the_app_as_its_quit_menu_does(tmp_path):
    """Started as from a terminal (Python's own SIGINT handler: a test run in the background hands its
    children SIGINT ignored), Ctrl-C to the process group once the window is shown: the window closes
    as from its menu (its settings saved), no traceback, exit 130."""
    script = ("import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler)\n"
              "from PySide6.QtCore import QTimer\n"
              "from speech_app.gui import app\n"
              "opened = app.open_main_window\n"
              "def announced(*args, **kwargs):\n"
              "    window = opened(*args, **kwargs)\n"
              "    QTimer.singleShot(0, lambda: print('shown', flush=True))  # once the event loop runs\n"
              "    return window\n"
              "app.open_main_window = announced\n"
              "from speech_app.cli import main\n"
              "sys.exit(main(sys.argv[1:]))\n")
    env = child_env(QT_QPA_PLATFORM="offscreen", HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path / "config"))
    child = subprocess.Popen([sys.executable, "-c", script, "gui", "--data-dir", str(tmp_path / "data")], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert child.stdout.readline().strip() == "shown", child.stderr.read()
        os.killpg(child.pid, signal.SIGINT)
        _, err = child.communicate(timeout=HANG_S)
    except subprocess.TimeoutExpired:
        pytest.fail("Ctrl-C did not close the app")
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
    assert child.returncode == EXIT_INTERRUPTED and "Traceback" not in err and err.strip().endswith("interrupted"), err
    settings = (tmp_path / "config" / "speech-app" / "speech-app.conf").read_text()
    assert "geometry=" in settings  # written by the window's close, as after File > Quit


# -- the app's data folder on a read-only or full disk while a take is recorded --------------------------

@pytest.mark.parametrize("disk", ["read-only", "full"])
def test_a_take_that_cannot_be_saved_is_one_clear_message(make_window, small_disk, qtbot, monkeypatch, disk):
    from speech_app.gui import custom_tab
    from stand_ins import WAIT_MS, FakeAudio, tone_word

    data = small_disk(read_only=True) if disk == "read-only" else small_disk(size_kb=16)  # a take is 48 KB
    if disk == "full":
        (data / "recordings" / "hello").mkdir(parents=True)
        earlier = data / "recordings" / "hello" / "take-earlier_nohash_0.wav"
        sf.write(str(earlier), tone_word("mid", 0.1), SAMPLE_RATE, subtype="PCM_16")
        before = earlier.read_bytes()
    monkeypatch.setattr(custom_tab, "COUNTDOWN_S", 1)
    window = make_window(FakeAudio(signal=tone_word("mid", 2.0), speed=1.0, loop=True).services(), data_dir=data)
    window.show_tab("custom")
    window.custom.set_words("hello")
    qtbot.waitUntil(window.custom.record_button.isEnabled, timeout=WAIT_MS)
    window.custom.record_take()
    qtbot.waitUntil(lambda: "Recording failed" in window.custom.countdown_label.text(), timeout=WAIT_MS)
    reason = "read-only file system" if disk == "read-only" else "no space left on the disk"
    takes = re.escape(str(data / "recordings" / "hello"))
    assert re.fullmatch(rf"Recording failed: the take could not be saved: {takes}/take-[\w-]+\.wav: cannot write "
                        rf"\({reason}\)", window.custom.countdown_label.text()), window.custom.countdown_label.text()
    qtbot.waitUntil(window.custom.record_button.isEnabled, timeout=WAIT_MS)  # ready for the next take
    if disk == "full":  # the earlier take is kept, and no half take is left
        assert earlier.read_bytes() == before and sorted(p.name for p in earlier.parent.iterdir()) == [earlier.name]


# -- HOME unset --------------------------------------------------------------------------------------------

def test_without_home_the_app_keeps_its_data_in_the_users_home():
    """Qt alone took `/` for the home (data in /.local/share/speech-app); Python's home is the password
    database's. Only the paths are asked for: nothing is written there."""
    import pwd

    script = ("from PySide6.QtCore import QSettings\n"
              "from speech_app.gui.app import create_application, default_data_dir\n"
              "create_application()\n"
              "print(default_data_dir()); print(QSettings().fileName())\n")
    env = {k: v for k, v in child_env(QT_QPA_PLATFORM="offscreen").items()
           if k not in ("HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME", "SPEECH_APP_DATA_DIR")}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=HANG_S)
    home = pwd.getpwuid(os.getuid()).pw_dir
    expected = [f"{home}/.local/share/speech-app", f"{home}/.config/speech-app/speech-app.conf"]
    assert done.stdout.splitlines() == expected, done.stdout + done.stderr


# -- a takes folder of 10,000 files ------------------------------------------------------------------------

def test_a_word_with_ten_thousand_takes_lists_only_the_newest(make_window, tmp_path, monkeypatch):
    """Every listed take's header is read on the GUI thread: 10,000 froze the window for over a second."""
    import io

    from speech_app.gui import custom_tab
    from stand_ins import FakeAudio, tone_word

    folder = tmp_path / "data" / "recordings" / "hello"
    folder.mkdir(parents=True)
    encoded = io.BytesIO()
    sf.write(encoded, tone_word("mid", 0.1), SAMPLE_RATE, subtype="PCM_16", format="WAV")
    for i in range(10_000):
        (folder / f"take-{i:05d}_nohash_0.wav").write_bytes(encoded.getvalue())
    window = make_window(FakeAudio().services(), data_dir=tmp_path / "data")
    read = []
    monkeypatch.setattr(custom_tab, "_duration_s", lambda path: read.append(path) or 0.1)
    window.custom.set_words("hello")
    word = window.custom.takes_tree.topLevelItem(0)
    assert word.text(0).startswith("hello  (10000 takes")
    assert len(read) == custom_tab.MAX_LISTED_TAKES and read[-1].name == "take-09999_nohash_0.wav"
    assert word.child(0).text(0) == f"{10_000 - custom_tab.MAX_LISTED_TAKES} older takes not listed"
