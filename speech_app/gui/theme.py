"""Light and dark themes; "system" follows the desktop's colour scheme, also when it changes."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

THEMES = ("system", "light", "dark")
DARK_COLORS = {
    QPalette.ColorRole.Window: "#2b2d30",
    QPalette.ColorRole.WindowText: "#dfe1e5",
    QPalette.ColorRole.Base: "#1e1f22",
    QPalette.ColorRole.AlternateBase: "#2b2d30",
    QPalette.ColorRole.ToolTipBase: "#3c3f41",
    QPalette.ColorRole.ToolTipText: "#dfe1e5",
    QPalette.ColorRole.Text: "#dfe1e5",
    QPalette.ColorRole.Button: "#3c3f41",
    QPalette.ColorRole.ButtonText: "#dfe1e5",
    QPalette.ColorRole.BrightText: "#ff6b68",
    QPalette.ColorRole.Link: "#589df6",
    QPalette.ColorRole.Highlight: "#2f65ca",
    QPalette.ColorRole.HighlightedText: "#ffffff",
    QPalette.ColorRole.PlaceholderText: "#8c8f94",
}
DISABLED_DARK_TEXT = "#7a7d82"


def system_prefers_dark() -> bool:
    hints = QGuiApplication.styleHints()
    if hints.colorScheme() != Qt.ColorScheme.Unknown:
        return hints.colorScheme() == Qt.ColorScheme.Dark
    window = QApplication.style().standardPalette().color(QPalette.ColorRole.Window)
    return window.lightness() < 128  # platforms that do not say: judge by the style's own palette


def dark_palette() -> QPalette:
    palette = QPalette()
    for role, color in DARK_COLORS.items():
        palette.setColor(role, QColor(color))
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText, QPalette.ColorRole.WindowText):
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor(DISABLED_DARK_TEXT))
    return palette


def apply_theme(app: QApplication, choice: str) -> bool:
    """Set the palette for `choice` ('system', 'light' or 'dark'); True when the result is dark."""
    if choice not in THEMES:
        choice = "system"
    dark = choice == "dark" or (choice == "system" and system_prefers_dark())
    app.setPalette(dark_palette() if dark else app.style().standardPalette())
    return dark
