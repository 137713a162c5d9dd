"""The desktop app (PySide6): live recognition, batch classification and custom words.

This module imports no Qt, so the command line can ask `display_available()` and add the `gui`
arguments cheaply; `run_gui()` imports the rest.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from pathlib import Path

EXIT_OK, EXIT_NO_GUI = 0, 1
HEADLESS_PLATFORMS = ("offscreen", "minimal", "vnc")  # Qt platforms that show nothing on a screen
TABS = ("live", "batch", "custom")


def display_available() -> bool:
    """True when a window can be shown: the Qt bindings are installed and there is a screen."""
    if importlib.util.find_spec("PySide6") is None:
        return False
    platform = os.environ.get("QT_QPA_PLATFORM", "").split(":")[0]
    if platform in HEADLESS_PLATFORMS:
        return False
    if sys.platform.startswith(("win", "darwin")):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def add_gui_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, help="model to start with (default: the last one used)")
    parser.add_argument("--device", help="input device: its number or part of its name")
    parser.add_argument("--tab", choices=TABS, help="tab to open (default: the last one used)")
    parser.add_argument("--data-dir", type=Path, metavar="DIR",
                        help="where takes and custom models are kept (default: the user's data folder)")


def run_gui(args: argparse.Namespace) -> int:
    """Open the main window and run until it is closed."""
    if importlib.util.find_spec("PySide6") is None or importlib.util.find_spec("pyqtgraph") is None:
        print("speech-app gui: the desktop app needs PySide6 and pyqtgraph: pip install 'speech-app[gui]'",
              file=sys.stderr)
        return EXIT_NO_GUI
    from .app import run_app

    return run_app(args)
