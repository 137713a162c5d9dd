"""Live views: waveform, spectrogram, confidence bars, level meter and the training chart.

Each view keeps its data in NumPy arrays updated with whole-array operations (no per-sample Python
loops), and repaints only when its owner calls `refresh()` from a GUI timer.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFontMetrics, QPainter, QPalette
from PySide6.QtWidgets import QGridLayout, QLabel, QProgressBar, QWidget

from ..audio import SAMPLE_RATE

WAVEFORM_SECONDS = 3.0  # audio shown by the waveform
WAVEFORM_POINTS = 1200  # min/max pairs drawn for it, whatever the window width
SPECTROGRAM_SECONDS = 3.0
FFT_SAMPLES = 512  # 32 ms analysis window at 16 kHz
SPECTROGRAM_HOP_SAMPLES = 160  # 10 ms between columns
SPECTROGRAM_MAX_HZ = 8_000.0
SPECTROGRAM_LEVELS_DB = (-100.0, -20.0)  # colour scale: quiet room to loud speech
LEVEL_METER_FLOOR_DB = -60.0
BAR_STEPS = 1000  # resolution of a confidence bar
TRAINING_COLOR, VALIDATION_COLOR = "#4c9be8", "#e8884c"
CHART_PADDING = 0.05  # share of an axis left free at each end, so the last epoch's marker shows whole
CHART_MARGIN_PX = 4  # room around the chart's scene inside its view
MATRIX_MIN_SIDE = 110  # pixels: the confusion matrix still reads at this size
MATRIX_LABEL_SHARE = 0.3  # at most this share of the width (height) goes to row (column) labels
MATRIX_PAD = 4  # pixels


def _rolling_append(buffer: np.ndarray, values: np.ndarray, axis: int = 0) -> np.ndarray:
    """Append along `axis`, dropping the oldest entries so the size stays the same."""
    size = buffer.shape[axis]
    joined = np.concatenate([buffer, values], axis=axis)
    return joined.take(np.arange(joined.shape[axis] - size, joined.shape[axis]), axis=axis)


class WaveformView(pg.PlotWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.samples = np.zeros(int(WAVEFORM_SECONDS * SAMPLE_RATE), dtype=np.float32)
        self.setYRange(-1.0, 1.0)
        self.setXRange(-WAVEFORM_SECONDS, 0.0)
        self.setMouseEnabled(x=False, y=False)
        self.hideButtons()
        self.setLabel("bottom", "seconds")
        self.setMinimumHeight(90)
        self.curve = self.plot(pen=pg.mkPen(width=1))

    def append(self, samples: np.ndarray) -> None:
        self.samples = _rolling_append(self.samples, samples[-len(self.samples) :])

    def clear_audio(self) -> None:
        self.samples[:] = 0.0
        self.refresh()

    def refresh(self) -> None:
        buckets = self.samples[: len(self.samples) // WAVEFORM_POINTS * WAVEFORM_POINTS].reshape(WAVEFORM_POINTS, -1)
        envelope = np.stack([buckets.min(axis=1), buckets.max(axis=1)], axis=1).reshape(-1)  # (2 * points,)
        times = np.linspace(-WAVEFORM_SECONDS, 0.0, len(envelope))
        self.curve.setData(times, envelope)


class SpectrogramView(pg.PlotWidget):
    """A scrolling log-power spectrogram (time left to right, 0-8 kHz bottom to top)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        columns = int(SPECTROGRAM_SECONDS * SAMPLE_RATE / SPECTROGRAM_HOP_SAMPLES)
        self.power_db = np.full((columns, FFT_SAMPLES // 2 + 1), SPECTROGRAM_LEVELS_DB[0], dtype=np.float32)
        self._pending = np.zeros(0, dtype=np.float32)  # samples not yet in a full analysis frame
        self._window = np.hanning(FFT_SAMPLES).astype(np.float32)
        self.image = pg.ImageItem(axisOrder="col-major")
        self.image.setColorMap(pg.colormap.get("inferno"))
        self._rect = QRectF(-SPECTROGRAM_SECONDS, 0.0, SPECTROGRAM_SECONDS, SPECTROGRAM_MAX_HZ)
        self.addItem(self.image)
        self.setMouseEnabled(x=False, y=False)
        self.hideButtons()
        self.setLabel("left", "kHz")
        self.getAxis("left").setScale(0.001)
        self.setXRange(-SPECTROGRAM_SECONDS, 0.0, padding=0.0)
        self.setYRange(0.0, SPECTROGRAM_MAX_HZ, padding=0.0)
        self.setMinimumHeight(110)
        self.refresh()

    def append(self, samples: np.ndarray) -> None:
        signal = np.concatenate([self._pending, samples])
        n_frames = max(0, (len(signal) - FFT_SAMPLES) // SPECTROGRAM_HOP_SAMPLES + 1)
        if n_frames == 0:
            self._pending = signal
            return
        frames = np.lib.stride_tricks.sliding_window_view(signal, FFT_SAMPLES)[::SPECTROGRAM_HOP_SAMPLES][:n_frames]
        spectrum = np.abs(np.fft.rfft(frames * self._window, axis=1)) ** 2 / FFT_SAMPLES  # (frames, bins)
        columns = 10.0 * np.log10(spectrum + 1e-12).astype(np.float32)
        self.power_db = _rolling_append(self.power_db, columns[-len(self.power_db) :])
        self._pending = signal[n_frames * SPECTROGRAM_HOP_SAMPLES :]

    def clear_audio(self) -> None:
        self.power_db[:] = SPECTROGRAM_LEVELS_DB[0]
        self._pending = np.zeros(0, dtype=np.float32)
        self.refresh()

    def refresh(self) -> None:
        self.image.setImage(self.power_db, autoLevels=False, levels=SPECTROGRAM_LEVELS_DB, rect=self._rect)


class ConfidenceBars(QWidget):
    """One bar per class: the smoothed probability the recognizer gives it right now."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.grid = QGridLayout(self)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.bars: dict[str, QProgressBar] = {}
        self.labels: list[str] = []

    def set_labels(self, labels: list[str]) -> None:
        while self.grid.count():
            self.grid.takeAt(0).widget().deleteLater()
        self.labels, self.bars = list(labels), {}
        for row, label in enumerate(labels):
            bar = QProgressBar()
            bar.setRange(0, BAR_STEPS)
            bar.setFormat("%p%")
            bar.setAccessibleName(f"confidence for {label}")
            self.grid.addWidget(QLabel(label), row, 0)
            self.grid.addWidget(bar, row, 1)
            self.bars[label] = bar
        for row in range(self.grid.rowCount()):
            self.grid.setRowStretch(row, 0)
        self.grid.setRowStretch(len(labels), 1)  # bars packed at the top

    def show_scores(self, scores: np.ndarray) -> None:
        top = int(np.argmax(scores)) if len(scores) else -1
        for index, (label, value) in enumerate(zip(self.labels, scores)):
            bar = self.bars[label]
            bar.setValue(int(round(float(value) * BAR_STEPS)))
            bar.setProperty("top", index == top)

    def values(self) -> dict[str, float]:
        return {label: bar.value() / BAR_STEPS for label, bar in self.bars.items()}


class LevelMeter(QProgressBar):
    """Input level in dBFS while a take is recorded."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setRange(int(LEVEL_METER_FLOOR_DB), 0)
        self.setFormat("%v dB")
        self.setAccessibleName("input level")
        self.set_level(LEVEL_METER_FLOOR_DB)

    def set_level(self, dbfs: float) -> None:
        self.setValue(int(round(max(LEVEL_METER_FLOOR_DB, min(0.0, dbfs)))))


class TrainingChart(pg.GraphicsLayoutWidget):
    """Loss and accuracy while training: per batch (training) and per epoch (validation). The legend
    has its own row under the plots, so it never covers a curve."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.loss_plot = self.addPlot(row=0, col=0, title="loss")
        self.accuracy_plot = self.addPlot(row=0, col=1, title="accuracy")
        for plot in (self.loss_plot, self.accuracy_plot):
            plot.setLabel("bottom", "epoch")
            plot.setMouseEnabled(x=False, y=False)  # a dragged view would stop following the run
            plot.hideButtons()
        self.train_loss = self.loss_plot.plot(pen=pg.mkPen(TRAINING_COLOR, width=2))
        self.val_loss = self.loss_plot.plot(pen=pg.mkPen(VALIDATION_COLOR, width=2), symbol="o",
                                            symbolBrush=VALIDATION_COLOR, symbolPen=VALIDATION_COLOR)
        self.train_acc = self.accuracy_plot.plot(pen=pg.mkPen(TRAINING_COLOR, width=2))
        self.val_acc = self.accuracy_plot.plot(pen=pg.mkPen(VALIDATION_COLOR, width=2), symbol="o",
                                               symbolBrush=VALIDATION_COLOR, symbolPen=VALIDATION_COLOR)
        self.legend = pg.LegendItem(colCount=2)
        self.legend.addItem(self.train_loss, "training")
        self.legend.addItem(self.val_loss, "validation")
        self.addItem(self.legend, row=1, col=0, colspan=2)
        self.setToolTip("Training: the epoch's running average after each batch. Validation: held-out clips, "
                        "after each epoch.")
        minimum = self.ci.effectiveSizeHint(Qt.SizeHint.MinimumSize)  # the plots and legend never get cut off
        self.setMinimumSize(int(minimum.width()) + 2 * CHART_MARGIN_PX, max(160, int(minimum.height())))
        self.clear_points()

    def clear_points(self, epochs: int = 1) -> None:
        """Empty the chart for a run of `epochs` epochs: the x axes span the run, the loss axis
        follows the new losses (nothing is kept from an earlier run)."""
        self.batches: list[tuple[float, float, float]] = []  # (epoch position, loss, accuracy)
        self.epochs: list[tuple[float, float, float]] = []
        for plot in (self.loss_plot, self.accuracy_plot):
            plot.setXRange(0.0, float(max(1, epochs)), padding=CHART_PADDING)
        self.loss_plot.enableAutoRange(axis="y")
        self.accuracy_plot.setYRange(0.0, 1.0, padding=CHART_PADDING)
        self.refresh()

    def add_batch(self, info: dict) -> None:
        position = info["epoch"] - 1 + info["batch"] / max(1, info["batches"])
        self.batches.append((position, info["loss"], info["accuracy"]))

    def add_epoch(self, info: dict) -> None:
        self.epochs.append((float(info["epoch"]), info["val_loss"], info["val_accuracy"]))
        self.refresh()

    def refresh(self) -> None:
        for points, loss_curve, acc_curve in ((self.batches, self.train_loss, self.train_acc),
                                              (self.epochs, self.val_loss, self.val_acc)):
            data = np.array(points, dtype=np.float64).reshape(-1, 3)
            loss_curve.setData(data[:, 0], data[:, 1])
            acc_curve.setData(data[:, 0], data[:, 2])


class ConfusionMatrixView(QWidget):
    """A confusion matrix drawn to fit the widget, in the window's palette (so it follows the
    theme): rows are the true words, columns the predicted ones; a cell's shade is its share of
    the row (the recall for the diagonal), its number the count of clips."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.labels: list[str] = []
        self.matrix = np.zeros((0, 0), dtype=np.int64)
        self.setToolTip("Rows: the word said; columns: the word heard. Shade: share of the row.")

    def set_matrix(self, matrix, labels: list[str]) -> None:
        self.matrix = np.asarray(matrix, dtype=np.int64).reshape(len(labels), len(labels))
        self.labels = list(labels)
        self.update()

    def clear(self) -> None:
        self.set_matrix(np.zeros((0, 0)), [])

    def minimumSizeHint(self) -> QSize:  # noqa: N802
        return QSize(MATRIX_MIN_SIDE, MATRIX_MIN_SIDE)

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(3 * MATRIX_MIN_SIDE, 3 * MATRIX_MIN_SIDE)

    def layout_rects(self) -> tuple[QRectF, float, float]:
        """(the grid's rectangle, the row-label width, the column-label height) for the current size."""
        metrics = QFontMetrics(self.font())
        widest = max((metrics.horizontalAdvance(label) for label in self.labels), default=0) + 2 * MATRIX_PAD
        label_w = min(widest, MATRIX_LABEL_SHARE * self.width())
        label_h = min(widest, MATRIX_LABEL_SHARE * self.height())
        side = max(0.0, min(self.width() - label_w, self.height() - label_h) - MATRIX_PAD)
        return QRectF(label_w, MATRIX_PAD, side, side), label_w, label_h

    def paintEvent(self, event) -> None:  # noqa: N802
        n = len(self.labels)
        if n == 0:
            return
        painter = QPainter(self)
        palette = self.palette()
        base, accent = palette.color(QPalette.ColorRole.Base), palette.color(QPalette.ColorRole.Highlight)
        grid, label_w, label_h = self.layout_rects()
        cell = grid.width() / n
        shares = self.matrix / np.maximum(self.matrix.sum(axis=1, keepdims=True), 1)
        metrics = QFontMetrics(self.font())
        for (row, col), share in np.ndenumerate(shares):
            rect = QRectF(grid.left() + col * cell, grid.top() + row * cell, cell, cell)
            painter.fillRect(rect, _blend(base, accent, float(share)))
            count = int(self.matrix[row, col])
            if count and cell >= metrics.height():
                strong = share > 0.5
                painter.setPen(palette.color(QPalette.ColorRole.HighlightedText if strong else QPalette.ColorRole.Text))
                painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, str(count))
        painter.setPen(palette.color(QPalette.ColorRole.Mid))
        painter.drawRect(grid)
        painter.setPen(palette.color(QPalette.ColorRole.WindowText))
        for index, label in enumerate(self.labels):
            row_text = metrics.elidedText(label, Qt.TextElideMode.ElideRight, int(label_w - MATRIX_PAD))
            painter.drawText(QRectF(0, grid.top() + index * cell, label_w - MATRIX_PAD, cell),
                             Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, row_text)
            painter.save()  # column labels read bottom to top, under their column
            painter.translate(QPointF(grid.left() + index * cell, grid.bottom() + MATRIX_PAD))
            painter.rotate(-90)
            col_text = metrics.elidedText(label, Qt.TextElideMode.ElideRight, int(label_h - MATRIX_PAD))
            painter.drawText(QRectF(-(label_h - MATRIX_PAD), 0, label_h - MATRIX_PAD, cell),
                             Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, col_text)
            painter.restore()
        painter.end()


def _blend(low: QColor, high: QColor, share: float) -> QColor:
    share = min(1.0, max(0.0, share))
    return QColor.fromRgbF(*(a + (b - a) * share for a, b in zip(low.getRgbF()[:3], high.getRgbF()[:3])))


def style_plots(widgets: list, dark: bool) -> None:
    """Match pyqtgraph's colours to the window theme."""
    background, foreground = ("#1e1f22", "#d0d0d0") if dark else ("#ffffff", "#303030")
    pg.setConfigOptions(background=background, foreground=foreground, antialias=False)
    for widget in widgets:
        widget.setBackground(background)
        items = widget.ci.items if isinstance(widget, pg.GraphicsLayoutWidget) else [widget.getPlotItem()]
        for item in items:
            if isinstance(item, pg.LegendItem):
                item.setLabelTextColor(foreground)
                continue
            if isinstance(item, pg.PlotItem):
                item.setTitle(item.titleLabel.text, color=foreground)
            for axis in ("left", "bottom"):
                item.getAxis(axis).setPen(foreground)
                item.getAxis(axis).setTextPen(foreground)
        if isinstance(widget, WaveformView):
            widget.curve.setPen(pg.mkPen("#7fc7ff" if dark else "#1f5fa8", width=1))
