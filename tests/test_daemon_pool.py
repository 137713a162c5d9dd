"""Waiting on a worker's result never swallows Ctrl-C (daemon_pool.wait_result)."""

from __future__ import annotations

import _thread
import threading
from concurrent.futures import Future

import pytest

from speech_app.daemon_pool import wait_result


def test_a_ctrl_c_taken_by_another_thread_ends_the_wait():
    """A signal handled on another thread only flags the main thread (as `_thread.interrupt_main` does);
    a wait with no timeout never looked at the flag, and `classify` hung after Ctrl-C."""
    never = Future()
    with pytest.raises(KeyboardInterrupt):
        threading.Timer(0.5, _thread.interrupt_main).start()  # most likely while the wait below sleeps
        wait_result(never)


def test_the_result_and_the_error_come_back():
    done, failed = Future(), Future()
    done.set_result(7)
    failed.set_exception(ValueError("bad clip"))
    assert wait_result(done) == 7
    with pytest.raises(ValueError, match="bad clip"):
        wait_result(failed)
