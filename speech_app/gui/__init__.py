"""The desktop app (PySide6): live recognition, batch classification and custom words.

This module imports no Qt, so the command line (cli/gui.py) can ask `display_available()` and
offer the tabs cheaply; `app.run_app()` is the rest.
"""

from __future__ import annotations

import importlib.util
import os
import sys

HEADLESS_PLATFORMS = ("offscreen", "minimal", "vnc")  # Qt platforms that show nothing on a screen
TABS = ("live", "batch", "custom")  # the main window's tabs, in order
REQUIRED_PACKAGES = ("PySide6", "pyqtgraph")  # the `gui` extra


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


def missing_packages() -> list[str]:
    """The packages of the `gui` extra that are not installed."""
    return [name for name in REQUIRED_PACKAGES if importlib.util.find_spec(name) is None]
