"""The Batch tab's table model: the results of a batch as rows, added a chunk at a time.

One `beginInsertRows` per chunk (not a QStandardItemModel row of four items per file) keeps the GUI
thread's work per result small: with thousands of files arriving, one signal and one insertion per
chunk is what lets the view and the sorting proxy keep up (tests/test_gui_responsive.py).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt

COLUMNS = ("File", "Label", "Confidence", "Error")
SORT_ROLE = Qt.ItemDataRole.UserRole + 1  # numbers sort as numbers, not as text
PATH_ROLE = Qt.ItemDataRole.UserRole + 2
CONFIDENCE_COLUMN = COLUMNS.index("Confidence")


def error_reason(path: Path, message: str) -> str:
    """The reason alone ("no such file"), without the path an error message starts with (and with
    the file's name where the decoder repeats its path): the File column already names the file,
    and a long path would hide the reason."""
    for prefix in (f"{path}: ", f"{path.name}: "):
        if message.startswith(prefix):
            message = message[len(prefix):]
            break
    return message.replace(str(path), path.name)


@dataclass(frozen=True)
class ResultRow:
    path: Path
    cells: tuple[str, str, str, str]  # as shown, in COLUMNS order
    sort_keys: tuple
    error: str  # the whole message, path included (the Error column's tooltip)

    @classmethod
    def from_result(cls, result) -> ResultRow:
        """From an inference.FileResult."""
        confidence = result.confidence
        name = os.fsencode(result.path.name).decode("utf-8", "replace")  # shown with U+FFFD where not UTF-8
        reason = error_reason(result.path, result.error or "")
        shown = "" if confidence is None else f"{confidence:.3f}"
        return cls(result.path, (name, result.label, shown, reason),
                   (name.lower(), result.label, -1.0 if confidence is None else confidence, reason), result.error or "")


class BatchResultsModel(QAbstractTableModel):
    """Rows in the order the results came; `append` adds many at once."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self._rows: list[ResultRow] = []

    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: N802 (Qt's name)
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation, role=Qt.ItemDataRole.DisplayRole):  # noqa: N802
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    def data(self, index: QModelIndex, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        row, column = self._rows[index.row()], index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return row.cells[column]
        if role == SORT_ROLE:
            return row.sort_keys[column]
        if role == Qt.ItemDataRole.ToolTipRole:
            return {0: str(row.path), 3: row.error}.get(column, row.cells[column])
        if role == PATH_ROLE and column == 0:
            return os.fsencode(row.path)
        if role == Qt.ItemDataRole.TextAlignmentRole and column == CONFIDENCE_COLUMN:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def append(self, results: list) -> None:
        """Add inference.FileResults as rows, in one insertion."""
        if not results:
            return
        first = len(self._rows)
        self.beginInsertRows(QModelIndex(), first, first + len(results) - 1)
        self._rows.extend(ResultRow.from_result(r) for r in results)
        self.endInsertRows()

    def clear(self) -> None:
        self.beginResetModel()
        self._rows = []
        self.endResetModel()

    def row(self, number: int) -> ResultRow:
        return self._rows[number]
