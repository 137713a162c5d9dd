"""README screenshots of each tab, made by the app itself (QWidget.grab), offscreen.

    QT_QPA_PLATFORM=offscreen python docs/make_screenshots.py .github/screenshots

The Live tab hears the repository's sample clips through `FileCapture` (the same streaming path as
a microphone), the Batch tab classifies them, and the Custom words tab trains briefly on takes made
from them. Needs a checkout of the repository (for datasets/samples), so it lives beside the docs,
not in the package.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QEvent, QEventLoop, QSettings, Qt
from PySide6.QtWidgets import QApplication

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the checkout's speech_app, installed or not
SAMPLES_DIR = REPO / "datasets" / "samples"
LIVE_WORDS = ("yes", "no", "up", "left", "right", "go")
CUSTOM_WORDS = ("yes", "no")
WINDOW_SIZE = (1366, 768)  # pixels: a common laptop screen
PLAY_SPEED = 1.5  # faster than real time, still a natural-looking spectrogram
WAIT_S = 300.0
SETTLE_S = 0.5  # let the last repaint happen before grabbing


def wait_for(condition, timeout_s: float = WAIT_S) -> bool:
    """Run the event loop until `condition()` holds (or the time is up)."""
    app = QApplication.instance()
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
        time.sleep(0.01)
    return True


def pause(seconds: float) -> None:
    end = time.monotonic() + seconds
    wait_for(lambda: time.monotonic() > end, seconds + 1)


def sample(word: str) -> Path:
    return next(SAMPLES_DIR.glob(f"{word}_*"))


def demo_services():
    """The real model; the sample clips as the microphone; no speakers."""
    from speech_app.capture import FileCapture, InputDevice
    from speech_app.gui.services import AppServices

    clips = [sample(w) for w in LIVE_WORDS]
    return AppServices(list_devices=lambda: [InputDevice(0, "Sample clips", "demo", 1, 16_000.0, True)],
                       open_source=lambda device: FileCapture(clips, gap_s=0.6, speed=PLAY_SPEED),
                       play=lambda samples, rate: None)


def make_takes(data_dir: Path) -> None:
    """Takes for the Custom words tab: the samples of each word, a few times over."""
    from speech_app.audio import load_audio, write_wav

    for word in CUSTOM_WORDS:
        clip = load_audio(sample(word))
        for take in range(6):
            write_wav(data_dir / "recordings" / word / f"take-demo{take}_nohash_0.wav", clip * (0.6 + 0.08 * take))


def take_screenshots(out_dir: Path, services=None, data_dir: Path | None = None, train: bool = False,
                     size: tuple[int, int] = WINDOW_SIZE, theme: str = "light") -> list[Path]:
    from speech_app.training.custom_words import CustomWordsRecipe
    from speech_app.gui.app import MainWindow

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="speech-app-shots-"))
    data_dir = data_dir or scratch / "data"
    make_takes(data_dir)
    settings = QSettings(str(scratch / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(services or demo_services(), settings, data_dir)
    window.resize(*size)
    window.set_theme(theme)
    window.show()
    written = []
    try:
        written.append(_shoot_live(window, out_dir))
        written.append(_shoot_batch(window, out_dir, scratch))
        window.custom.training.recipe = CustomWordsRecipe(steps=12, batch_size=16, estimate_folds=2, estimate_steps=4,
                                                          negatives_per_word=4, device="cpu")
        written.append(_shoot_custom(window, out_dir, train))
    finally:
        window.close()
        window.deleteLater()
        QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
        shutil.rmtree(scratch, ignore_errors=True)
    return written


def _save(window, out_dir: Path, name: str) -> Path:
    pause(SETTLE_S)
    path = out_dir / f"{name}.png"
    window.grab().save(str(path))
    return path


def _shoot_live(window, out_dir: Path) -> Path:
    window.show_tab("live")
    wait_for(lambda: window.live.start_button.isEnabled(), 60)
    window.live.start_listening()
    wait_for(lambda: window.live.listening, 30)
    capture_s = len(LIVE_WORDS) * 1.6 / PLAY_SPEED + 1.0
    pause(capture_s)
    return _save(window, out_dir, "live")


def _shoot_batch(window, out_dir: Path, scratch: Path) -> Path:
    window.live.stop_listening()
    window.show_tab("batch")
    broken = scratch / "not-really-audio.wav"  # one file that fails, to show its reason
    broken.write_bytes(b"RIFF, but nothing more")
    window.batch.add_paths([SAMPLES_DIR, broken])
    wait_for(lambda: not window.batch.is_busy(), 120)
    window.batch.table.sortByColumn(2, Qt.SortOrder.DescendingOrder)
    return _save(window, out_dir, "batch")


def _shoot_custom(window, out_dir: Path, train: bool) -> Path:
    window.show_tab("custom")
    window.custom.set_words(", ".join(CUSTOM_WORDS))
    if train:
        window.custom.training.synth_check.setChecked(False)
        window.custom.training.start_training(list(CUSTOM_WORDS))
        wait_for(lambda: not window.custom.training.training)
    return _save(window, out_dir, "custom")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python docs/make_screenshots.py", description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path, nargs="?", default=REPO / ".github" / "screenshots")
    parser.add_argument("--no-train", action="store_true", help="skip the short training run in the Custom words tab")
    parser.add_argument("--size", default="x".join(map(str, WINDOW_SIZE)), metavar="WxH",
                        help="window size in pixels (default: %(default)s)")
    parser.add_argument("--theme", choices=("light", "dark"), default="light")
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from speech_app.gui.app import create_application

    create_application()
    for path in take_screenshots(args.out_dir, train=not args.no_train, size=(width, height), theme=args.theme):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
