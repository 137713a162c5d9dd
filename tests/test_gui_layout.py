"""The window on a laptop screen: it fits 1024x700 on every tab, before and after a training run,
with long names and a long status line, and no text is cut off (every label and button gets the
width its text needs, or wraps, or elides with the whole text in its tooltip). Also the plots that
must scale and follow the theme: the confusion matrix and the training chart."""

from __future__ import annotations

import json

import numpy as np
import pytest
from stand_ins import WAIT_MS

from speech_app.gui.plots import CHART_PADDING  # noqa: E402

LAPTOP = (1024, 700)  # the smallest window the app must work in (a 1366x768 screen less the desktop's bars)
LONG_NAME = "lights-on-lights-off-music-louder-quieter-20261129-120000"


def clipped_widgets(root) -> list[str]:
    """Every visible label, button, check box, combo box or group box inside `root` whose text does
    not fit: too narrow for its one line, too short for its wrapped lines, or elided without the
    whole text in its tooltip; and any such widget that sticks out of its parent."""
    from PySide6.QtWidgets import QAbstractButton, QAbstractScrollArea, QComboBox, QGroupBox, QLabel, QWidget

    from speech_app.gui.widgets import ElidedLabel

    import pyqtgraph as pg
    from PySide6.QtCore import Qt

    problems = []
    for chart in root.findChildren(pg.GraphicsLayoutWidget):  # a plot scene larger than its view is cut off
        needed = chart.ci.effectiveSizeHint(Qt.SizeHint.MinimumSize)
        if chart.isVisible() and (needed.width() > chart.width() or needed.height() > chart.height()):
            problems.append(f"{type(chart).__name__}: needs {needed.toTuple()}, has {chart.size().toTuple()}")
    for widget in root.findChildren(QWidget):
        if not widget.isVisible() or not isinstance(widget, (QLabel, QAbstractButton, QComboBox, QGroupBox)):
            continue
        if any(isinstance(a, QAbstractScrollArea) for a in _ancestors(widget, root)):
            continue  # inside a scrolled view: hidden parts are reached by scrolling
        name = f"{type(widget).__name__} {_text(widget)!r}"
        parent = widget.parentWidget()
        if parent is not None and not parent.rect().contains(widget.geometry()):
            problems.append(f"{name}: sticks out of its parent")
        if isinstance(widget, ElidedLabel):
            fits = widget.fontMetrics().horizontalAdvance(widget.shown_text()) <= widget.contentsRect().width()
            if not fits or (widget.is_elided() and not widget.toolTip().startswith(widget.text())):
                problems.append(f"{name}: elided without its text in the tooltip")
            if widget.text() and widget.width() < widget.minimumSizeHint().width():
                problems.append(f"{name}: squeezed below its minimum ({widget.width()} pixels)")
        elif isinstance(widget, QLabel) and widget.text() and widget.wordWrap():
            if widget.heightForWidth(widget.width()) > widget.height():
                problems.append(f"{name}: wrapped text taller than the label")
        elif isinstance(widget, QComboBox):
            if _combo_text_room(widget) < widget.fontMetrics().horizontalAdvance(widget.currentText()):
                problems.append(f"{name}: current text wider than its field")
        elif isinstance(widget, QGroupBox):
            if widget.fontMetrics().horizontalAdvance(widget.title()) > widget.width():
                problems.append(f"{name}: title wider than the box")
        elif widget.sizeHint().width() > widget.width() or widget.minimumSizeHint().height() > widget.height():
            problems.append(f"{name}: needs {widget.sizeHint().toTuple()}, has {widget.size().toTuple()}")
    return problems


def _combo_text_room(combo) -> int:
    """The width of the field a combo box draws its current text in."""
    from PySide6.QtWidgets import QStyle, QStyleOptionComboBox

    option = QStyleOptionComboBox()
    combo.initStyleOption(option)
    field = combo.style().subControlRect(QStyle.ComplexControl.CC_ComboBox, option,
                                         QStyle.SubControl.SC_ComboBoxEditField, combo)
    return field.width()


def _ancestors(widget, root):
    parent = widget.parentWidget()
    while parent is not None and parent is not root:
        yield parent
        parent = parent.parentWidget()


def _text(widget) -> str:
    for attribute in ("text", "currentText", "title"):
        if hasattr(widget, attribute):
            return getattr(widget, attribute)()
    return ""


def fit_to_laptop(window, qtbot) -> None:
    window.resize(*LAPTOP)
    qtbot.waitUntil(lambda: window.size().toTuple() == LAPTOP, timeout=WAIT_MS)


def assert_fits_on_every_tab(window, qtbot) -> None:
    for tab in ("live", "batch", "custom"):
        window.show_tab(tab)
        hint = window.minimumSizeHint()
        assert hint.width() <= LAPTOP[0] and hint.height() <= LAPTOP[1], f"{tab} tab needs {hint.toTuple()}"
        fit_to_laptop(window, qtbot)
        qtbot.wait(50)  # let the layouts settle
        assert clipped_widgets(window) == [], f"{tab} tab"


def tiny_metrics(labels: list[str], seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    matrix = rng.integers(0, 3, (len(labels), len(labels))) + np.diag(rng.integers(5, 20, len(labels)))
    classes = [{"label": label, "recall": 0.9, "precision": 0.8, "f1": 0.85, "support": int(matrix[i].sum())}
               for i, label in enumerate(labels)]
    return {"validation": {"accuracy": 0.9, "clips": int(matrix.sum()), "classes": classes,
                           "confusion_matrix": matrix.tolist()}}


# -- the checker itself --------------------------------------------------------------------------

def test_the_clipping_check_finds_cut_off_text(qapp):
    from PySide6.QtWidgets import QLabel, QSizePolicy, QVBoxLayout, QWidget

    from speech_app.gui.widgets import ElidedLabel

    box = QWidget()
    layout = QVBoxLayout(box)
    squeezed = QLabel("a label whose text is much wider than the box it lives in")
    squeezed.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)  # lets the layout cut it
    elided = ElidedLabel("an elided label whose text is much wider than the box it lives in")
    layout.addWidget(squeezed)
    layout.addWidget(elided)
    box.resize(150, 80)
    box.show()
    qapp.processEvents()
    problems = clipped_widgets(box)
    assert len(problems) == 1 and "a label whose text" in problems[0]
    assert elided.is_elided() and elided.toolTip() == elided.text()
    box.resize(800, 80)
    qapp.processEvents()
    assert clipped_widgets(box) == [] and not elided.is_elided()
    box.close()


# -- the window ----------------------------------------------------------------------------------

def test_the_window_fits_a_laptop_screen_on_every_tab(window, qtbot):
    qtbot.waitUntil(lambda: window.live.start_button.isEnabled(), timeout=WAIT_MS)
    assert_fits_on_every_tab(window, qtbot)
    window.resize(1366, 768)
    qtbot.waitUntil(lambda: window.size().toTuple() == (1366, 768), timeout=WAIT_MS)
    assert clipped_widgets(window) == []


def test_long_names_and_a_long_status_line_do_not_widen_the_window(window, qtbot, tmp_path):
    from pathlib import Path

    long_model = tmp_path / f"{LONG_NAME}.safetensors"
    window.use_model(long_model)  # the stand-in loader takes any path
    qtbot.waitUntil(lambda: window.live.model_path == long_model, timeout=WAIT_MS)
    window.live.start_listening()
    qtbot.waitUntil(lambda: "dropped" in window.live_status.text(), timeout=WAIT_MS)  # the long status line
    assert LONG_NAME in window.live.model_label.text() and LONG_NAME in window.batch.model_label.text()
    window.custom.set_words("lights on, lights off, music, louder, quieter, a rather long phrase to say")
    window.custom.models.extra_models.append(Path(long_model))
    window.custom.models.refresh()
    assert_fits_on_every_tab(window, qtbot)
    window.show_tab("live")
    assert window.live.model_label.is_elided() or window.live.model_label.width() >= window.live.model_label.sizeHint().width()
    window.live.stop_listening()


def test_after_a_training_run_the_window_still_fits(window, qtbot, tiny_training):
    """The tiny fixture model's real report shown in the tab, then a twelve-word evaluation."""
    panel = window.custom.training
    window.show_tab("custom")  # shown before the results arrive, as in use
    fit_to_laptop(window, qtbot)
    panel.chart.clear_points(len(tiny_training.history))
    for entry in tiny_training.history:
        panel.chart.add_epoch(entry)
    panel.show_evaluation(tiny_training.report_dir)
    labels = json.loads((tiny_training.report_dir / "metrics.json").read_text())["validation"]["classes"]
    assert [row[0] for row in panel.evaluation_rows()] == [c["label"] for c in labels]
    assert_fits_on_every_tab(window, qtbot)
    twelve = ["_silence_", "_unknown_", "yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]
    panel.show_metrics(tiny_metrics(twelve))
    assert len(panel.evaluation_rows()) == 12  # every row, not one
    assert_fits_on_every_tab(window, qtbot)


# -- the plots -----------------------------------------------------------------------------------

def _pixel(widget, x: float, y: float):
    from PySide6.QtGui import QColor

    image = widget.grab().toImage()
    ratio = image.devicePixelRatio()
    return QColor(image.pixel(int(x * ratio), int(y * ratio)))


def test_the_confusion_matrix_scales_and_follows_the_theme(window, qtbot):
    from PySide6.QtGui import QPalette

    panel = window.custom.training
    window.show_tab("custom")
    labels = ["_silence_", "_unknown_", "yes", "no"]
    metrics = tiny_metrics(labels)
    metrics["validation"]["confusion_matrix"] = [[5, 0, 0, 0], [0, 0, 0, 0], [0, 0, 4, 0], [0, 0, 0, 3]]
    panel.show_metrics(metrics)
    view = panel.confusion
    sides = []
    for size in ((150, 150), (400, 300)):
        view.setMinimumSize(*size)
        view.setMaximumSize(*size)
        qtbot.waitUntil(lambda: view.size().toTuple() == size, timeout=WAIT_MS)
        grid, _, _ = view.layout_rects()
        assert grid.right() <= size[0] and grid.bottom() <= size[1] and grid.width() > 0
        sides.append(grid.width())
    assert sides[1] > 1.5 * sides[0]  # the matrix grows with its widget
    grid, _, _ = view.layout_rects()
    cell = grid.width() / len(labels)
    for theme in ("dark", "light"):
        window.set_theme(theme)
        qtbot.wait(50)
        palette = view.palette()
        empty = _pixel(view, grid.left() + 1.5 * cell, grid.top() + 0.1 * cell)  # row 0, column 1: no clips
        full = _pixel(view, grid.left() + 0.1 * cell, grid.top() + 0.1 * cell)  # row 0, column 0: the whole row
        assert empty.name() == palette.color(QPalette.ColorRole.Base).name()
        assert full.name() == palette.color(QPalette.ColorRole.Highlight).name()
        assert (empty.lightness() < 100) == (theme == "dark")


def test_the_chart_legend_stays_clear_of_the_curves_and_a_new_run_resets_the_axes(window, qtbot):
    chart = window.custom.training.chart
    window.show_tab("custom")
    fit_to_laptop(window, qtbot)
    legend = chart.legend.sceneBoundingRect()
    for plot in (chart.loss_plot, chart.accuracy_plot):
        assert not legend.intersects(plot.vb.sceneBoundingRect())
    chart.clear_points(20)
    for epoch in range(1, 21):
        chart.add_batch({"epoch": epoch, "batch": 1, "batches": 1, "loss": 30.0 / epoch, "accuracy": 0.5})
        chart.add_epoch({"epoch": epoch, "val_loss": 40.0 / epoch, "val_accuracy": 0.5})
    qtbot.waitUntil(lambda: chart.loss_plot.vb.viewRange()[1][1] > 30.0, timeout=WAIT_MS)
    chart.clear_points(3)  # the next run: 3 epochs, small losses
    chart.add_batch({"epoch": 1, "batch": 1, "batches": 1, "loss": 0.5, "accuracy": 0.7})
    chart.add_epoch({"epoch": 1, "val_loss": 0.4, "val_accuracy": 0.8})
    qtbot.waitUntil(lambda: chart.loss_plot.vb.viewRange()[1][1] < 1.0, timeout=WAIT_MS)
    for plot in (chart.loss_plot, chart.accuracy_plot):
        low, high = plot.vb.viewRange()[0]
        margin = CHART_PADDING * 3
        assert low == pytest.approx(-margin, abs=0.01) and high == pytest.approx(3.0 + margin, abs=0.01)
