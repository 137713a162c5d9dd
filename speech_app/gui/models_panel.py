"""The list of models (the shipped one and the user's), each with its model card."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (QFileDialog, QGroupBox, QHBoxLayout, QListWidget, QListWidgetItem, QPushButton,
                               QSplitter, QTextBrowser, QVBoxLayout)

from ..card import model_card
from .userdata import DataFolder

PATH_ROLE = Qt.ItemDataRole.UserRole


class ModelsPanel(QGroupBox):
    model_chosen = Signal(object)  # Path: use this model in the Live and Batch tabs

    def __init__(self, data: DataFolder, parent=None):
        super().__init__("Models", parent)
        self.data = data
        self.in_use: Path | None = None
        self.extra_models: list[Path] = []  # opened from elsewhere with "Open..."
        layout = QVBoxLayout(self)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.setChildrenCollapsible(False)
        self.model_list = QListWidget()
        self.model_list.setTextElideMode(Qt.TextElideMode.ElideMiddle)  # long names shorten; the tooltip has all
        self.model_list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.model_list.currentItemChanged.connect(self.on_model_list_current_item_changed)
        self.model_list.itemDoubleClicked.connect(self.on_use_button_clicked)
        self.card = QTextBrowser()
        self.card.setOpenExternalLinks(True)
        splitter.addWidget(self.model_list)
        splitter.addWidget(self.card)
        splitter.setStretchFactor(1, 2)
        layout.addWidget(splitter, 1)
        buttons = QHBoxLayout()
        self.use_button = QPushButton("Use in Live tab")
        self.use_button.clicked.connect(self.on_use_button_clicked)
        self.open_button = QPushButton("Open model file...")
        self.open_button.clicked.connect(self.on_open_button_clicked)
        for button in (self.use_button, self.open_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        layout.addLayout(buttons)
        self.refresh()

    def refresh(self, select: Path | None = None) -> None:
        current = select or self.selected_path()
        self.model_list.clear()
        entries = [(e.path, e.name) for e in self.data.models()]
        entries += [(p, f"{p.stem} ({p.parent})") for p in self.extra_models if p not in {e[0] for e in entries}]
        for path, name in entries:
            item = QListWidgetItem(name)
            item.setData(PATH_ROLE, str(path))
            item.setToolTip(f"{name}\n{path}")
            self.model_list.addItem(item)
        self._mark_in_use()
        paths = self.paths()
        row = paths.index(Path(current)) if current is not None and Path(current) in paths else 0
        if paths:
            self.model_list.setCurrentRow(row)

    def paths(self) -> list[Path]:
        return [Path(self.model_list.item(i).data(PATH_ROLE)) for i in range(self.model_list.count())]

    def selected_path(self) -> Path | None:
        item = self.model_list.currentItem()
        return Path(item.data(PATH_ROLE)) if item is not None else None

    def select(self, path: Path) -> None:
        self.refresh(select=Path(path))

    def mark_in_use(self, path: Path | None) -> None:
        self.in_use = Path(path) if path is not None else (self.paths()[0] if self.paths() else None)
        self._mark_in_use()

    def _mark_in_use(self) -> None:
        for i in range(self.model_list.count()):
            item = self.model_list.item(i)
            font = QFont(item.font())
            font.setBold(self.in_use is not None and Path(item.data(PATH_ROLE)) == self.in_use)
            item.setFont(font)

    @Slot()
    def on_model_list_current_item_changed(self, *_) -> None:
        path = self.selected_path()
        self.card.setMarkdown(model_card(path) if path is not None else "")

    @Slot()
    def on_use_button_clicked(self, *_) -> None:
        path = self.selected_path()
        if path is not None:
            self.model_chosen.emit(path)

    @Slot()
    def on_open_button_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a model", str(self.data.models_dir),
                                              "Models (*.safetensors)")
        if path:
            self.extra_models.append(Path(path))
            self.select(Path(path))
