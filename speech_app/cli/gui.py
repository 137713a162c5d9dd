"""`speech-app gui`: open the desktop app (and `speech-app` alone, where there is a screen)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..gui import TABS, display_available, missing_packages
from .exit_status import EXIT_NO_GUI

HELP = "open the desktop app"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, help="model to start with (default: the last one used)")
    parser.add_argument("--device", help="input device: its number or part of its name")
    parser.add_argument("--tab", choices=TABS, help="tab to open (default: the last one used)")
    parser.add_argument("--data-dir", type=Path, metavar="DIR",
                        help="where takes and custom models are kept (default: the user's data folder)")


def run(args: argparse.Namespace) -> int:
    """Open the main window and run until it is closed."""
    if missing_packages():
        print("speech-app gui: the desktop app needs PySide6 and pyqtgraph: pip install 'speech-app[gui]'",
              file=sys.stderr)
        return EXIT_NO_GUI
    from ..gui.app import run_app

    return run_app(args)


def opens_by_default() -> bool:
    """`speech-app` alone opens the desktop app when there is a display to show it on."""
    return display_available()
