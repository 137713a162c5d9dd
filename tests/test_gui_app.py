"""The main window: tabs, menus, shortcuts, settings, themes, the about box, clean shutdown, and the
entry points the command line uses.

Runs offscreen (QT_QPA_PLATFORM=offscreen). Models and microphones are stand-ins here: a tone
model and recordings played through `FileCapture` (stand_ins.py; the window fixtures are in conftest.py).
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before any QApplication exists

from stand_ins import WAIT_MS, FakeAudio, destroy_windows  # noqa: E402

from speech_app.cli.gui import add_arguments as add_gui_arguments  # noqa: E402
from speech_app.gui import display_available  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


# -- entry points for the command line -----------------------------------------------------------

def test_display_available_needs_a_screen(monkeypatch):
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    assert display_available() is False
    monkeypatch.setenv("DISPLAY", ":0")
    assert display_available() is True
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    assert display_available() is False


def test_gui_arguments():
    parser = argparse.ArgumentParser()
    add_gui_arguments(parser)
    args = parser.parse_args(["--tab", "batch", "--model", "m.safetensors", "--data-dir", "d"])
    assert (args.tab, args.model, args.data_dir, args.device) == ("batch", Path("m.safetensors"), Path("d"), None)


def test_importing_the_gui_package_does_not_import_qt():
    code = "import sys, speech_app.gui, speech_app.cli.listen; print('PySide6' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True).stdout
    assert out.strip() == "False"


def test_gui_arguments_open_the_window_as_asked(qapp, tmp_path):
    from PySide6.QtCore import QSettings

    from speech_app.gui.app import create_application, open_main_window

    create_application()
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "config"))
    QSettings.setPath(QSettings.Format.NativeFormat, QSettings.Scope.UserScope, str(tmp_path / "config"))
    parser = argparse.ArgumentParser()
    add_gui_arguments(parser)
    args = parser.parse_args(["--tab", "batch", "--data-dir", str(tmp_path / "data"), "--device", "Test"])
    window = open_main_window(args, FakeAudio().services())
    try:
        assert window.isVisible() and window.tabs.currentWidget() is window.batch
        assert window.data.root == tmp_path / "data"
        assert window.settings.value("live/device") == "Test"
    finally:
        destroy_windows([window])


# -- the window ----------------------------------------------------------------------------------

def test_three_tabs_and_the_menus(window):
    assert [window.tabs.tabText(i).replace("&", "") for i in range(3)] == ["Live", "Batch", "Custom words"]
    menus = [a.text().replace("&", "") for a in window.menuBar().actions()]
    assert menus == ["File", "Live", "Words", "View", "Help"]


def test_keyboard_shortcuts_switch_tabs_and_start_listening(window, qtbot):
    from PySide6.QtCore import Qt

    qtbot.keyClick(window, Qt.Key.Key_2, Qt.KeyboardModifier.ControlModifier)
    assert window.tabs.currentWidget() is window.batch
    qtbot.keyClick(window, Qt.Key.Key_3, Qt.KeyboardModifier.ControlModifier)
    assert window.tabs.currentWidget() is window.custom
    qtbot.keyClick(window, Qt.Key.Key_F5)
    assert window.tabs.currentWidget() is window.live
    qtbot.waitUntil(lambda: window.live.listening, timeout=WAIT_MS)
    qtbot.keyClick(window, Qt.Key.Key_F5)
    qtbot.waitUntil(lambda: not window.live.listening, timeout=WAIT_MS)


def test_settings_survive_a_restart(make_window, fake_audio, tmp_path):
    settings_file = tmp_path / "kept.ini"
    first = make_window(fake_audio.services(), settings_file)
    first.show_tab("custom")
    first.live.sensitivity_slider.setValue(77)
    first.set_theme("dark")
    first.custom.set_words("lights on, lights off")
    first.close()
    second = make_window(fake_audio.services(), settings_file)
    assert second.tabs.currentWidget() is second.custom
    assert second.live.sensitivity_slider.value() == 77
    assert second.theme == "dark"
    assert second.custom.words() == ["lights on", "lights off"]


def test_takes_live_in_one_speech_app_folder_and_old_ones_move_there(make_window, fake_audio, tmp_path, monkeypatch):
    """Qt's AppDataLocation doubled the folder (organization and application are both "speech-app");
    what earlier versions recorded there moves up, a file present in both places is left alone, and
    the saved model follows its file."""
    from speech_app.gui.app import DATA_DIR_ENV, default_data_dir

    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "share"))
    new = tmp_path / "share" / "speech-app"
    assert default_data_dir() == new
    old = new / "speech-app"
    files = {"recordings/yes/take-a_nohash_0.wav": b"old take a", "recordings/yes/take-b_nohash_0.wav": b"old take b",
             "models/mine.safetensors": b"weights", "models/mine_report/metrics.json": b"{}"}
    for name, content in files.items():
        (old / name).parent.mkdir(parents=True, exist_ok=True)
        (old / name).write_bytes(content)
    (new / "recordings/yes").mkdir(parents=True)
    (new / "recordings/yes/take-b_nohash_0.wav").write_bytes(b"new take b")  # recorded since: keep both
    settings_file = tmp_path / "old.ini"
    from PySide6.QtCore import QSettings

    QSettings(str(settings_file), QSettings.Format.IniFormat).setValue("model/path", str(old / "models/mine.safetensors"))
    window = make_window(fake_audio.services(), settings_file, data_dir=None)
    assert window.data.root == new
    assert (new / "recordings/yes/take-a_nohash_0.wav").read_bytes() == b"old take a"
    assert (new / "recordings/yes/take-b_nohash_0.wav").read_bytes() == b"new take b"
    assert (old / "recordings/yes/take-b_nohash_0.wav").read_bytes() == b"old take b"  # not lost
    assert not (old / "models").exists() and (new / "models/mine_report/metrics.json").is_file()
    assert window.settings.value("model/path") == str(new / "models/mine.safetensors")
    assert [p.name for p in window.data.takes("yes")] == ["take-a_nohash_0.wav", "take-b_nohash_0.wav"]
    assert "Moved 3 files" in window.statusBar().currentMessage()


def test_light_and_dark_themes(window):
    from PySide6.QtGui import QPalette
    from PySide6.QtWidgets import QApplication

    window.set_theme("dark")
    assert QApplication.palette().color(QPalette.ColorRole.Window).lightness() < 100
    assert window.theme_group.checkedAction().data() == "dark"
    window.set_theme("light")
    assert QApplication.palette().color(QPalette.ColorRole.Window).lightness() > 150
    window.set_theme("system")  # follows the platform: the offscreen one is light
    assert window.theme == "system" and window.dark is False


def test_about_box_opens_without_blocking(window, qtbot):
    box = window.show_about()
    qtbot.waitUntil(box.isVisible)
    assert "speech-app" in box.text() and "Speech Commands" in box.text()
    box.close()


def test_closing_stops_every_worker_thread(make_window, fake_audio, qtbot):
    window = make_window(fake_audio.services())
    window.live.start_listening()
    qtbot.waitUntil(lambda: window.live.listening, timeout=WAIT_MS)
    threads = [window.live.worker_thread, window.batch.worker_thread, window.custom.recorder_thread,
               window.custom.training.worker_thread]
    window.close()
    assert not any(t.thread.isRunning() for t in threads)
    assert fake_audio.opened  # the stream was really opened, and closed by close()


def test_the_qt_binding_keeps_its_reference_counts(qapp):
    """PySide6 6.12.0 on Python 3.11 drops a reference to None or True on every call, and the app
    aborts after a few thousand ("deallocating None"). Pin another PySide6-Essentials if this fails."""
    import PySide6

    from speech_app.gui.collector import binding_leaks_references

    assert not binding_leaks_references(), f"PySide6 {PySide6.__version__} on Python {sys.version.split()[0]}"


def test_garbage_is_collected_on_the_gui_thread_while_a_window_is_open(make_window, fake_audio):
    window = make_window(fake_audio.services())
    assert not gc.isenabled()  # worker threads never run the collector (it could destroy widgets there)
    window.close()
    assert gc.isenabled()


def load_script(path: Path):
    """A script of the checkout (not part of the package), imported as a module."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_screenshots_of_every_tab(qtbot, tmp_path, fake_audio):
    from speech_app.gui.app import create_application
    take_screenshots = load_script(REPO / "docs" / "make_screenshots.py").take_screenshots

    create_application()
    written = take_screenshots(tmp_path / "shots", services=fake_audio.services(), data_dir=tmp_path / "data")
    assert sorted(p.name for p in written) == ["batch.png", "custom.png", "live.png"]
    assert all(p.stat().st_size > 10_000 for p in written)
