"""Keeping Python's memory management safe around Qt: cyclic garbage collection on the GUI thread,
and a check that the Qt binding itself keeps its reference counts.

Python's cyclic garbage collection, moved onto the GUI thread while windows are open:
The collector normally runs in whichever thread happens to allocate when a threshold is reached:
here often a worker thread (training allocates a lot). If the garbage holds Qt widgets, they are
then destroyed outside the GUI thread, which can deadlock or crash Qt. So while a window is open,
automatic collection is off and a timer on the GUI thread collects instead.
"""

from __future__ import annotations

import gc
import sys

from PySide6.QtCore import QObject, QTimer

COLLECT_MS = 500  # how often the GUI thread checks whether a collection is due
PROBE_CALLS = 50  # Qt calls made to check the binding's reference counting


class GuiThreadGarbageCollector(QObject):
    """Reference-counted: the first `acquire()` turns automatic collection off, the last
    `release()` collects once more (on the GUI thread) and turns it back on."""

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.users = 0
        self.was_enabled = gc.isenabled()
        self.thresholds = gc.get_threshold()
        self.timer = QTimer(self)
        self.timer.setInterval(COLLECT_MS)
        self.timer.timeout.connect(self.on_timer_timeout)

    def acquire(self) -> None:
        if self.users == 0:
            self.was_enabled = gc.isenabled()
            gc.disable()
            self.timer.start()
        self.users += 1

    def release(self) -> None:
        self.users = max(0, self.users - 1)
        if self.users == 0:
            self.timer.stop()
            gc.collect()
            if self.was_enabled:
                gc.enable()

    def on_timer_timeout(self) -> None:
        """Collect the generations whose allocation counts passed their usual thresholds."""
        counts = gc.get_count()
        for generation in (2, 1, 0):
            if counts[generation] > self.thresholds[generation]:
                gc.collect(generation)
                return


_collector: GuiThreadGarbageCollector | None = None


def gui_thread_collector() -> GuiThreadGarbageCollector:
    """The one collector of this process (call on the GUI thread, with a QApplication)."""
    global _collector
    if _collector is None:
        _collector = GuiThreadGarbageCollector()
    return _collector


def binding_leaks_references() -> bool:
    """True when the Qt binding drops a reference to None or True on each call (PySide6 6.12.0 does
    on Python 3.11 and older, where None and True are not immortal: the process aborts after a few
    thousand calls). Measured, not looked up by version: cheap, and right for any future build."""
    probe = QTimer()
    none_before, true_before = sys.getrefcount(None), sys.getrefcount(True)
    for _ in range(PROBE_CALLS):
        probe.setInterval(1)  # returns None
        probe.timeout.emit()  # emit() returns True
    lost = (none_before - sys.getrefcount(None), true_before - sys.getrefcount(True))
    return max(lost) >= PROBE_CALLS // 2
