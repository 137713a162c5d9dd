"""Python's cyclic garbage collection, moved onto the GUI thread while windows are open.

The collector normally runs in whichever thread happens to allocate when a threshold is reached:
here often a worker thread (training allocates a lot). If the garbage holds Qt widgets, they are
then destroyed outside the GUI thread, which can deadlock or crash Qt. So while a window is open,
automatic collection is off and a timer on the GUI thread collects instead.
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QObject, QTimer

COLLECT_MS = 500  # how often the GUI thread checks whether a collection is due


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
