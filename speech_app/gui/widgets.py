"""Small widgets that let the window shrink to a laptop screen without cutting text off."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import QLabel, QSizePolicy

ELIDED_MIN_CHARS = 12  # an elided label never gets narrower than about this many characters


class ElidedLabel(QLabel):
    """A one-line label that shortens its text with "..." to fit its width; the tooltip always holds
    the whole text. Its minimum width is a few characters, so a long file name or status line never
    forces the window wider."""

    def __init__(self, text: str = "", parent=None, elide: Qt.TextElideMode = Qt.TextElideMode.ElideMiddle):
        super().__init__(parent)
        self.elide_mode = elide
        self.full_text = ""
        self.details = ""  # more for the tooltip, under the whole text
        # Preferred: the whole text when there is room, down to minimumSizeHint() when there is not
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
        self.setText(text)

    def setText(self, text: str) -> None:  # noqa: N802 (Qt's name)
        self.full_text = text
        self._update_tooltip()
        self._elide()
        self.updateGeometry()

    def set_details(self, details: str) -> None:
        self.details = details
        self._update_tooltip()

    def _update_tooltip(self) -> None:
        self.setToolTip("\n".join(part for part in (self.full_text, self.details) if part))

    def text(self) -> str:  # the whole text, as set; `shown_text()` is what fits
        return self.full_text

    def shown_text(self) -> str:
        return super().text()

    def is_elided(self) -> bool:
        return self.shown_text() != self.full_text

    def sizeHint(self) -> QSize:  # noqa: N802
        metrics = QFontMetrics(self.font())
        margins = self.contentsMargins()
        return QSize(metrics.horizontalAdvance(self.full_text) + margins.left() + margins.right() + 2,
                     super().sizeHint().height())

    def minimumSizeHint(self) -> QSize:  # noqa: N802
        metrics = QFontMetrics(self.font())
        width = min(self.sizeHint().width(), metrics.averageCharWidth() * ELIDED_MIN_CHARS)
        return QSize(width, super().minimumSizeHint().height())

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        margins = self.contentsMargins()
        width = max(0, self.width() - margins.left() - margins.right())
        shown = QFontMetrics(self.font()).elidedText(self.full_text, self.elide_mode, width)
        if shown != super().text():
            super().setText(shown)
