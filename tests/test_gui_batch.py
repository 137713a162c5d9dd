"""The Batch tab: files and folders in (calls, and drag-and-drop), a sortable table, errors shown,
CSV export, play, progress and cancel; the work runs in a worker thread."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from stand_ins import SAMPLES_DIR, WAIT_MS, FakeAudio

from speech_app.gui.batch_results import COLUMNS

N_SAMPLES = len([p for p in SAMPLES_DIR.iterdir() if p.suffix in (".wav", ".flac", ".ogg")])
SHOWN_CONFIDENCE_STEP = 1e-3  # the table shows three decimals
MANY_COPIES = 40  # the sample folder listed this many times: a batch long enough to cancel


def batch_window(make_window, model_path: Path | None):
    audio = FakeAudio()
    window = make_window(audio.services(load_classifier=_real_loader))
    window.use_model(model_path)
    window.show_tab("batch")
    return window, audio


def _real_loader(path):
    from speech_app.gui.services import load_command_classifier

    return load_command_classifier(path)


def classify(window, qtbot, paths) -> list[list[str]]:
    window.batch.add_paths(paths)
    qtbot.waitUntil(lambda: not window.batch.is_busy(), timeout=WAIT_MS * 3)
    return window.batch.rows()


def test_a_folder_and_a_bad_file_give_one_row_each(make_window, qtbot, random_model, tmp_path):
    window, _ = batch_window(make_window, random_model)
    (tmp_path / "broken.wav").write_bytes(b"RIFF not really")
    rows = classify(window, qtbot, [SAMPLES_DIR, tmp_path / "broken.wav"])
    assert len(rows) == N_SAMPLES + 1
    by_file = {r[0]: r for r in rows}
    assert by_file["broken.wav"][1] == "" and by_file["broken.wav"][3].startswith("cannot decode")
    assert str(tmp_path) not in by_file["broken.wav"][3]  # the reason, not the path (the tooltip has both)
    good = [r for r in rows if r[0] != "broken.wav"]
    assert all(r[1] and 0.0 <= float(r[2]) <= 1.0 and r[3] == "" for r in good)
    assert window.batch.progress.value() == window.batch.progress.maximum()


def test_sorting_by_confidence_is_numeric(make_window, qtbot, random_model):
    from PySide6.QtCore import Qt

    window, _ = batch_window(make_window, random_model)
    classify(window, qtbot, [SAMPLES_DIR])
    window.batch.table.sortByColumn(COLUMNS.index("Confidence"), Qt.SortOrder.DescendingOrder)
    view = window.batch.sorted_results
    shown = [float(view.index(r, 2).data()) for r in range(view.rowCount())]
    assert shown == sorted(shown, reverse=True)
    window.batch.table.sortByColumn(0, Qt.SortOrder.AscendingOrder)
    names = [view.index(r, 0).data() for r in range(view.rowCount())]
    assert names == sorted(names, key=str.lower)


def test_the_table_starts_in_file_order_a_to_z(make_window, qtbot, random_model):
    from PySide6.QtCore import Qt

    window, _ = batch_window(make_window, random_model)
    header = window.batch.table.horizontalHeader()
    assert (header.sortIndicatorSection(), header.sortIndicatorOrder()) == (0, Qt.SortOrder.AscendingOrder)
    classify(window, qtbot, [SAMPLES_DIR])
    view = window.batch.sorted_results
    names = [view.index(r, 0).data() for r in range(view.rowCount())]
    assert len(names) == N_SAMPLES and names == sorted(names, key=str.lower)


def test_the_error_column_shows_the_reason(make_window, qtbot, random_model, tmp_path):
    from PySide6.QtCore import Qt

    window, _ = batch_window(make_window, random_model)
    deep = tmp_path / ("a-long-folder-name" * 4)
    deep.mkdir()
    (deep / "empty.wav").write_bytes(b"")
    rows = classify(window, qtbot, [deep / "empty.wav", deep / "missing.wav"])
    reasons = {r[0]: r[3] for r in rows}
    assert reasons["missing.wav"] == "no such file"
    assert reasons["empty.wav"] and "a-long-folder-name" not in reasons["empty.wav"]
    model = window.batch.results
    tips = {model.index(r, 0).data(): model.index(r, 3).data(Qt.ItemDataRole.ToolTipRole) for r in range(2)}
    assert tips["missing.wav"] == f"{deep / 'missing.wav'}: no such file"  # the whole message on hover


def test_export_csv_has_full_paths(make_window, qtbot, random_model, tmp_path):
    window, _ = batch_window(make_window, random_model)
    classify(window, qtbot, [SAMPLES_DIR])
    window.batch.export_csv(tmp_path / "results.csv")
    with open(tmp_path / "results.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == N_SAMPLES and set(rows[0]) == {"path", "label", "confidence", "error"}
    assert all(Path(r["path"]).is_file() for r in rows)


def test_drag_and_drop_adds_files(make_window, qtbot, random_model):
    from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
    from PySide6.QtGui import QDropEvent

    window, _ = batch_window(make_window, random_model)
    data = QMimeData()
    data.setUrls([QUrl.fromLocalFile(str(p)) for p in sorted(SAMPLES_DIR.glob("yes_*")) + sorted(SAMPLES_DIR.glob("no_*"))])
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, data, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    window.batch.dropEvent(event)
    qtbot.waitUntil(lambda: len(window.batch.rows()) == 2 and not window.batch.is_busy(), timeout=WAIT_MS)
    assert sorted(r[0].split("_")[0] for r in window.batch.rows()) == ["no", "yes"]


def test_cancel_stops_a_long_batch(make_window, qtbot, random_model):
    window, _ = batch_window(make_window, random_model)
    window.batch.add_paths([SAMPLES_DIR] * MANY_COPIES)
    qtbot.waitUntil(lambda: len(window.batch.rows()) > 0, timeout=WAIT_MS)
    window.batch.cancel()
    qtbot.waitUntil(lambda: not window.batch.is_busy(), timeout=WAIT_MS)
    assert len(window.batch.rows()) < N_SAMPLES * MANY_COPIES
    assert not window.batch.cancel_button.isEnabled()
    assert classify(window, qtbot, [SAMPLES_DIR])  # a new batch after a cancel runs normally


def test_play_the_selected_file(make_window, qtbot, random_model):
    window, audio = batch_window(make_window, random_model)
    classify(window, qtbot, sorted(SAMPLES_DIR.glob("yes_*")))
    window.batch.table.selectRow(0)
    window.batch.play_selected()
    assert len(audio.played) == 1 and len(audio.played[0]) > 8000


def test_shipped_model_batch_labels_the_sample_clips(make_window, qtbot, shipped_classifier, reliable_words):
    """The table shows what the shipped model says of each sample clip, as the library says it, and
    so the words the model is sure of come out right."""
    window, _ = batch_window(make_window, None)
    rows = classify(window, qtbot, [SAMPLES_DIR])
    paths = sorted(p for p in SAMPLES_DIR.iterdir() if p.suffix in (".wav", ".flac", ".ogg"))
    expected = {r.path.name: r for r in shipped_classifier.classify_files(paths)}
    assert sorted(r[0] for r in rows) == sorted(expected)
    for name, label, confidence, _ in rows:
        assert label == expected[name].label
        assert float(confidence) == pytest.approx(expected[name].confidence, abs=SHOWN_CONFIDENCE_STEP)
    labels = {r[0].split("_")[0]: r[1] for r in rows}
    assert {word: labels[word] for word in reliable_words} == {word: word for word in reliable_words}
