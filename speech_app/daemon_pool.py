"""A pool of worker threads that never keeps the process alive.

`concurrent.futures.ThreadPoolExecutor` joins its threads when its `with` block ends and again when
the interpreter exits, so one worker blocked in I/O (a named pipe, a hung network share) made
Ctrl-C do nothing: the main thread got its KeyboardInterrupt, then waited for that worker forever.
Here the workers are daemon threads, and a block left by an exception (Ctrl-C, or a consumer that
stops early) cancels the jobs not started and does not wait for the running ones.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout

SIGNAL_POLL_S = 0.2  # longest a wait on a worker goes without letting a pending Ctrl-C through


def wait_result(future: Future):
    """`future.result()`, but Ctrl-C still ends the wait. A signal sent to the process may be taken by any
    of its threads (a worker, a BLAS or OpenMP thread): Python then only flags it for the main thread, which
    never sees the flag while it sleeps in a lock with no timeout (`classify` hung after Ctrl-C 3 times in 8
    on a loaded machine). Waking every SIGNAL_POLL_S lets the flagged KeyboardInterrupt be raised; a result
    that arrives wakes the wait at once."""
    while True:
        try:
            return future.result(timeout=SIGNAL_POLL_S)
        except FutureTimeout:
            continue


class DaemonThreadPool:
    """`submit(fn, *args) -> Future`, run by `workers` daemon threads (each first calls `initializer`)."""

    def __init__(self, workers: int, initializer: Callable[[], object] | None = None, name: str = "worker"):
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._threads = [threading.Thread(target=self._work, args=(initializer,), name=f"{name}-{i}", daemon=True)
                         for i in range(max(1, workers))]
        for thread in self._threads:
            thread.start()

    def submit(self, fn: Callable, *args) -> Future:
        future: Future = Future()
        self._jobs.put((future, fn, args))
        return future

    def _work(self, initializer) -> None:
        if initializer is not None:
            initializer()
        while (job := self._jobs.get()) is not None:
            future, fn, args = job
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = fn(*args)
            except BaseException as err:  # handed to whoever waits on the future, as the executor does
                future.set_exception(err)
            else:
                future.set_result(result)

    def shutdown(self, wait: bool = True, cancel_pending: bool = False) -> None:
        """The workers end once the jobs queued are done (`cancel_pending`: once their current one is);
        with `wait`, this returns when they have."""
        while cancel_pending:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                job[0].cancel()
        for _ in self._threads:
            self._jobs.put(None)
        if wait:
            for thread in self._threads:
                thread.join()

    def __enter__(self) -> DaemonThreadPool:
        return self

    def __exit__(self, exc_type, *_) -> None:
        failed = exc_type is not None  # nobody waits for the results any more: neither wait for them
        self.shutdown(wait=not failed, cancel_pending=failed)
