"""The main window: three tabs, menus and shortcuts, settings, the about box, and themes."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import PySide6
from PySide6.QtCore import QByteArray, QSettings, QSocketNotifier, QStandardPaths, Qt, Slot, qVersion
from PySide6.QtGui import QAction, QActionGroup, QGuiApplication, QKeySequence
from PySide6.QtWidgets import QApplication, QMainWindow, QMessageBox, QTabWidget

from .. import __version__
from . import TABS
from .batch_tab import BatchTab
from .collector import binding_leaks_references, gui_thread_collector
from .custom_tab import CustomWordsTab
from .live_tab import RUNTIME_CHOICES, LiveTab
from .plots import style_plots
from .services import AppServices
from .theme import THEMES, apply_theme
from .userdata import DataFolder, merge_into
from .widgets import ElidedLabel

APP_NAME = "speech-app"
DATA_DIR_ENV = "SPEECH_APP_DATA_DIR"
DEFAULT_SIZE = (1180, 780)  # pixels, before the user resizes the window
STATUS_TIMEOUT_MS = 6000
MOVED_MESSAGE_MS = 30_000  # long enough to read where the user's takes went
ABOUT_TEXT = """<h3>speech-app {version}</h3>
<p>Recognizes spoken commands live from a microphone, labels audio files in batches, and learns
your own words from a few recordings.</p>
<p>MFCC features and a bidirectional LSTM, in PyTorch. The shipped model is trained on
<a href="https://arxiv.org/abs/1804.03209">Speech Commands</a> by Pete Warden / Google (CC BY 4.0).</p>
<p>Model in use: {model}<br>Your takes and models: {data}</p>
<p>Qt {qt} (PySide6), MIT licence.</p>"""


def default_data_dir() -> Path:
    """~/.local/share/speech-app on Linux (and the like elsewhere). Not Qt's AppDataLocation: that
    adds the organization and the application name, both "speech-app", one folder inside the other."""
    if os.environ.get(DATA_DIR_ENV):
        return Path(os.environ[DATA_DIR_ENV])
    generic = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.GenericDataLocation)
    return Path(generic) / APP_NAME


def doubled_data_dir() -> Path:
    """Where earlier versions kept the user's data: `<generic data>/speech-app/speech-app`."""
    return default_data_dir() / APP_NAME


class MainWindow(QMainWindow):
    def __init__(self, services: AppServices | None = None, settings: QSettings | None = None,
                 data_dir: Path | None = None, model_path: Path | None = None, device: str | None = None):
        super().__init__()
        self.setWindowTitle(APP_NAME)
        self.closed = False
        self.collector = gui_thread_collector()  # before any worker thread runs Python code
        self.collector.acquire()
        self.services = services or AppServices()
        self.settings = settings or QSettings()
        moved_message = ""
        if data_dir is None:
            data_dir = default_data_dir()
            moved_message = self._move_doubled_data(data_dir)
        self.data = DataFolder(data_dir)
        if device is not None:
            self.settings.setValue("live/device", device)
        self.live = LiveTab(self.services, self.settings)
        self.batch = BatchTab(self.services, self.settings)
        self.custom = CustomWordsTab(self.services, self.settings, self.data, self.live.selected_device)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.live, "&Live")
        self.tabs.addTab(self.batch, "&Batch")
        self.tabs.addTab(self.custom, "&Custom words")
        self.setCentralWidget(self.tabs)
        self.live_status = ElidedLabel("Loading the model...")
        self.statusBar().addPermanentWidget(self.live_status)
        self._connect_tabs()
        self._build_menus()
        self._restore_settings()
        self.use_model(model_path or self._saved_model())
        if moved_message:
            self.statusBar().showMessage(moved_message, MOVED_MESSAGE_MS)

    def _move_doubled_data(self, data_dir: Path) -> str:
        """Takes and models from the folder earlier versions used move to `data_dir`; the saved
        model follows them."""
        old = doubled_data_dir() if not os.environ.get(DATA_DIR_ENV) else None
        if old is None or not old.is_dir():
            return ""
        moved = merge_into(old, data_dir)
        saved = str(self.settings.value("model/path", ""))
        if saved and Path(saved).is_relative_to(old):
            self.settings.setValue("model/path", str(data_dir / Path(saved).relative_to(old)))
        return f"Moved {len(moved)} files of yours from {old} to {data_dir}" if moved else ""

    def _connect_tabs(self) -> None:
        self.live.status_text_changed.connect(self.live_status.setText)
        self.batch.status_text_changed.connect(self.on_tab_status_text_changed)
        self.custom.status_text_changed.connect(self.on_tab_status_text_changed)
        self.live.model_loaded.connect(self.on_live_model_loaded)
        self.live.devices_changed.connect(self.on_live_devices_changed)
        self.live.listening_changed.connect(self.on_live_listening_changed)
        self.custom.models.model_chosen.connect(self.use_model)
        self.custom.training.use_model_requested.connect(self.on_training_use_model_requested)
        self.custom.training.model_trained.connect(lambda path: self.statusBar().showMessage(
            f"New model: {Path(path).name} (in {Path(path).parent})", STATUS_TIMEOUT_MS))

    def _action(self, menu, text: str, slot, shortcut=None, tip: str = "") -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.setStatusTip(tip)
        action.triggered.connect(slot)
        menu.addAction(action)
        return action

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        self._action(file_menu, "Add &files to batch...", self.on_add_files_action_triggered, QKeySequence.StandardKey.Open)
        self._action(file_menu, "Add f&older to batch...", self.on_add_folder_action_triggered, "Ctrl+Shift+O")
        self._action(file_menu, "Open &model...", self.on_open_model_action_triggered, "Ctrl+M")
        file_menu.addSeparator()
        self._action(file_menu, "&Export transcript...", self.live.on_export_button_clicked, "Ctrl+E")
        self._action(file_menu, "Export &batch results...", self.batch.on_export_button_clicked, "Ctrl+Shift+E")
        file_menu.addSeparator()
        self._action(file_menu, "&Quit", self.close, QKeySequence.StandardKey.Quit)
        live_menu = bar.addMenu("&Live")
        self.listen_action = self._action(live_menu, "&Start listening", self.on_listen_action_triggered, "F5")
        self._action(live_menu, "&Clear transcript", self.live.clear_transcript, "Ctrl+L")
        self._action(live_menu, "&Refresh input devices", self.live.on_refresh_button_clicked, "Ctrl+Shift+R")
        runtime_menu = live_menu.addMenu("Run the model &on")
        self.runtime_group = QActionGroup(self)
        for runtime, text in RUNTIME_CHOICES.items():
            action = self._action(runtime_menu, text, lambda _=False, r=runtime: self.live.set_runtime(r),
                                  tip="Where the Live tab's model runs; the status bar says which it runs on")
            action.setCheckable(True)
            action.setChecked(runtime == self.live.runtime())
            action.setData(runtime)
            self.runtime_group.addAction(action)
        words_menu = bar.addMenu("&Words")
        self._action(words_menu, "&Record take", self.on_record_action_triggered, "Ctrl+R")
        self._action(words_menu, "&Train", self.on_train_action_triggered, "Ctrl+T")
        self._action(words_menu, "&Adapt to your voice...", self.open_voice_dialog, "Ctrl+Shift+V",
                     "Record two takes of each command of the model in use and adapt it to your voice")
        view_menu = bar.addMenu("&View")
        for index, name in enumerate(("&Live", "&Batch", "&Custom words")):
            self._action(view_menu, name, lambda _=False, i=index: self.tabs.setCurrentIndex(i), f"Ctrl+{index + 1}")
        theme_menu = view_menu.addMenu("&Theme")
        self.theme_group = QActionGroup(self)
        for theme in THEMES:
            action = self._action(theme_menu, theme.capitalize(), lambda _=False, t=theme: self.set_theme(t))
            action.setCheckable(True)
            action.setData(theme)
            self.theme_group.addAction(action)
        help_menu = bar.addMenu("&Help")
        self._action(help_menu, "&About speech-app", self.show_about, QKeySequence.StandardKey.HelpContents)
        self._action(help_menu, "About &Qt", QApplication.aboutQt)

    def _restore_settings(self) -> None:
        geometry = self.settings.value("window/geometry")
        if isinstance(geometry, QByteArray) and not geometry.isEmpty():
            self.restoreGeometry(geometry)
        else:
            self.resize(*DEFAULT_SIZE)
        tab = str(self.settings.value("window/tab", "live"))
        self.tabs.setCurrentIndex(TABS.index(tab) if tab in TABS else 0)
        self.set_theme(str(self.settings.value("window/theme", "system")))
        QGuiApplication.styleHints().colorSchemeChanged.connect(self.on_style_hints_color_scheme_changed)

    def _saved_model(self) -> Path | None:
        saved = self.settings.value("model/path", "")
        return Path(saved) if saved and Path(saved).is_file() else None

    # -- public actions ---------------------------------------------------------------------------
    def show_tab(self, name: str) -> None:
        self.tabs.setCurrentIndex(TABS.index(name))

    @Slot(object)
    def use_model(self, path: Path | None) -> None:
        """Use a model in the Live and Batch tabs (None: the shipped model)."""
        self.live.set_model(path)
        self.batch.set_model(path)

    def set_theme(self, theme: str) -> None:
        theme = theme if theme in THEMES else "system"
        self.theme = theme
        self.settings.setValue("window/theme", theme)
        for action in self.theme_group.actions():
            action.setChecked(action.data() == theme)
        self.dark = apply_theme(QApplication.instance(), theme)
        style_plots([self.live.waveform, self.live.spectrogram, self.custom.training.chart], self.dark)

    def show_about(self) -> QMessageBox:
        """The about box, shown without blocking (it is window-modal)."""
        model = self.live.model_path or "the shipped Speech Commands model"
        box = QMessageBox(self)
        box.setWindowTitle("About speech-app")
        box.setTextFormat(Qt.TextFormat.RichText)
        box.setText(ABOUT_TEXT.format(version=__version__, model=model, data=self.data.root,
                                      qt=qVersion()))
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()
        return box

    def closeEvent(self, event) -> None:
        if self.closed:
            return super().closeEvent(event)
        self.closed = True
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/tab", TABS[self.tabs.currentIndex()])
        self.live.shutdown()
        self.batch.shutdown()
        self.custom.shutdown()
        self.settings.sync()
        self.collector.release()
        super().closeEvent(event)

    # -- slots ------------------------------------------------------------------------------------
    @Slot(str)
    def on_tab_status_text_changed(self, text: str) -> None:
        self.statusBar().showMessage(text, STATUS_TIMEOUT_MS)

    @Slot(object, list)
    def on_live_model_loaded(self, path, labels: list) -> None:
        self.settings.setValue("model/path", str(path) if path else "")
        self.custom.models.mark_in_use(path)
        self.custom.training.base_model = Path(path) if path else self.custom.models.in_use

    @Slot(list)
    def on_live_devices_changed(self, devices: list) -> None:
        self.custom.set_input_available(bool(devices))

    @Slot(bool)
    def on_live_listening_changed(self, listening: bool) -> None:
        self.listen_action.setText("&Stop listening" if listening else "&Start listening")

    @Slot(object)
    def on_training_use_model_requested(self, path: Path) -> None:
        self.use_model(path)
        self.show_tab("live")

    @Slot()
    def on_listen_action_triggered(self) -> None:
        self.show_tab("live")
        self.live.toggle_listening()

    @Slot()
    def on_add_files_action_triggered(self) -> None:
        self.show_tab("batch")
        self.batch.on_add_files_button_clicked()

    @Slot()
    def on_add_folder_action_triggered(self) -> None:
        self.show_tab("batch")
        self.batch.on_add_folder_button_clicked()

    @Slot()
    def on_open_model_action_triggered(self) -> None:
        self.show_tab("custom")
        self.custom.models.on_open_button_clicked()

    @Slot()
    def open_voice_dialog(self):
        """Adapt the Live tab's model to the user's voice (gui/voice_dialog.py); returns the dialog."""
        from .voice_dialog import VoiceDialog

        dialog = VoiceDialog(self.services, self.data, self.live.model_path, self.live.confidence_bars.labels,
                             self.live.selected_device, self)
        dialog.model_adapted.connect(self.on_voice_model_adapted)
        dialog.base_requested.connect(self.use_model)
        dialog.show()
        return dialog

    @Slot(object)
    def on_voice_model_adapted(self, path: Path) -> None:
        self.custom.models.refresh()
        self.use_model(path)

    @Slot()
    def on_record_action_triggered(self) -> None:
        self.show_tab("custom")
        self.custom.record_take()

    @Slot()
    def on_train_action_triggered(self) -> None:
        self.show_tab("custom")
        self.custom.training.on_train_button_clicked()

    @Slot()
    def on_style_hints_color_scheme_changed(self, *_) -> None:
        if self.theme == "system":
            self.set_theme("system")


def give_qt_the_home_folder() -> None:
    """Without HOME, Qt takes `/` for the user's home (takes and settings went to /.local/share and
    /.config, or failed there), while Python looks the home up in the password database; Qt gets the
    same answer. Before the QApplication exists: Qt reads it once."""
    if not os.environ.get("HOME"):
        home = os.path.expanduser("~")  # "~" again when the user has no entry either
        if home != "~":
            os.environ["HOME"] = home


def create_application(argv: list[str] | None = None) -> QApplication:
    give_qt_the_home_folder()
    app = QApplication.instance() or QApplication(argv or sys.argv[:1])
    app.setOrganizationName(APP_NAME)
    app.setApplicationName(APP_NAME)
    app.setApplicationDisplayName(APP_NAME)
    app.setStyle("Fusion")  # the same look everywhere, and palettes that themes can change
    return app


def open_main_window(args: argparse.Namespace, services: AppServices | None = None) -> MainWindow:
    """The main window for the `gui` arguments, shown."""
    window = MainWindow(services, data_dir=getattr(args, "data_dir", None), model_path=getattr(args, "model", None),
                        device=getattr(args, "device", None))
    if getattr(args, "tab", None):
        window.show_tab(args.tab)
    window.show()
    return window


def run_app(args: argparse.Namespace) -> int:
    app = create_application()
    if binding_leaks_references():
        print(f"speech-app gui: warning: PySide6 {PySide6.__version__} on Python {sys.version.split()[0]} loses "
              "references with every call and will crash; install another PySide6-Essentials version "
              "(6.11.3 works)", file=sys.stderr)
    window = open_main_window(args)
    with closed_by_ctrl_c(window) as pressed:
        status = app.exec()
    window.close()  # when the loop ended some other way than by closing the window: stop the workers
    if pressed:  # closed as from its menu; the command ends as any command does on Ctrl-C (130)
        raise KeyboardInterrupt
    return status


@contextlib.contextmanager
def closed_by_ctrl_c(window: MainWindow) -> Iterator[list]:
    """While the block runs, Ctrl-C in the terminal closes `window` as its Quit menu does; the list
    yielded holds True once it has. A second Ctrl-C while it closes ends the process at once.

    Python's own handler would raise KeyboardInterrupt in whatever slot runs next (a traceback, and the
    window kept running), and Python runs handlers only between its own bytecodes, never while Qt's
    event loop waits in C++. So the handler does nothing itself: the C-level handler also writes the
    signal's number to a socket (signal.set_wakeup_fd), whose notifier wakes the event loop at once.
    A process started with SIGINT ignored (in the background) keeps ignoring it."""
    pressed: list = []
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        yield pressed
        return
    reader, writer = socket.socketpair()
    for end in (reader, writer):
        end.setblocking(False)
    notifier = QSocketNotifier(reader.fileno(), QSocketNotifier.Type.Read)

    def on_notifier_activated(*_) -> None:
        with contextlib.suppress(BlockingIOError):
            if signal.SIGINT in reader.recv(64) and not pressed:  # the numbers of the signals caught
                pressed.append(True)
                signal.signal(signal.SIGINT, signal.SIG_DFL)  # a second Ctrl-C: no more waiting
                window.close()

    notifier.activated.connect(on_notifier_activated)
    previous_handler = signal.signal(signal.SIGINT, lambda *_: None)
    previous_fd = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
    try:
        yield pressed
    finally:
        signal.set_wakeup_fd(previous_fd)
        signal.signal(signal.SIGINT, previous_handler)
        notifier.setEnabled(False)
        reader.close()
        writer.close()
