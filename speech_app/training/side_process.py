"""A part of a training that runs beside the rest, in a forked child process on its own core.

The custom recipe's estimate (short runs on held-out folds) and its final run are independent: both start
from the same weights and read the same decoded clips, and each run's random state comes from its own seed
(Trainer.train_batches). On a CPU with two or more cores the estimate runs in a fork of the process, which
shares the decoded clips with the parent page by page (copy on write) instead of decoding them again, while
the parent trains the final model: the wall time is about the longer of the two rather than their sum.

Each side runs torch on one intra-op thread: two processes of two threads on two cores would spin against
each other (measured under load: 19.8 s of CPU for six steps at two threads against 1.8 s at one), and a
run's weights depend on its thread count (about 1e-5 apart), never on which side finishes first.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
import traceback
from typing import Callable

import torch

MIN_CORES = 2  # a fork on one core only takes turns with its parent
SIDE_THREADS = 1  # torch intra-op threads of each side (see above)
DISABLE_ENV = "SPEECH_APP_NO_SIDE_PROCESS"  # set (to anything but "" or "0"): run the estimate in turn, in-process


def side_process_possible(device: torch.device) -> bool:
    """Whether a side process can run beside this one: fork is safe (Linux, no CUDA state to inherit),
    there is a core for each side, and the user did not turn it off."""
    return (sys.platform.startswith("linux") and device.type == "cpu" and (os.cpu_count() or 1) >= MIN_CORES
            and os.environ.get(DISABLE_ENV, "") in ("", "0"))


def torch_threads(threads: int) -> int:
    """Set torch's intra-op threads; returns the number it had."""
    before = torch.get_num_threads()
    if threads != before:
        torch.set_num_threads(threads)
    return before


class SideCall:
    """`function(*args)` started now in a forked child process; `result()` waits for it. The child sees
    the parent's memory as it was at the fork, runs torch on SIDE_THREADS thread(s) and sends back the
    function's result (pickled) and its CPU seconds (`cpu_seconds`, `wall_seconds`)."""

    def __init__(self, function: Callable, *args):
        self.name = function.__name__  # what runs aside (benchmarks/bench_custom_words.py counts by it)
        context = multiprocessing.get_context("fork")
        self._receive, send = context.Pipe(duplex=False)
        self._process = context.Process(target=_child, args=(send, function, args), daemon=True,
                                        name="speech-app side process")
        self._process.start()
        send.close()  # the child holds the only sending end: a child that dies gives EOFError, not a hang
        self.cpu_seconds = self.wall_seconds = 0.0

    def result(self):
        """The function's result, or its exception raised here (as a RuntimeError with the child's traceback
        when the exception itself cannot travel)."""
        try:
            kind, payload, self.cpu_seconds, self.wall_seconds = self._receive.recv()
        except EOFError:
            self._process.join()
            raise RuntimeError(f"the side process ended without a result (exit code {self._process.exitcode})") from None
        finally:
            self._receive.close()
        self._process.join()
        if kind == "error":
            raise payload
        return payload

    def cancel(self) -> None:
        """Stop the child (the parent failed or was cancelled): nothing of it is wanted any more."""
        if self._process.is_alive():
            self._process.terminate()
        self._process.join()
        self._receive.close()


def _child(send, function: Callable, args: tuple) -> None:
    torch.set_num_threads(SIDE_THREADS)
    started, wall_started = time.process_time(), time.perf_counter()
    try:
        message = ("ok", function(*args))
    except BaseException as err:  # noqa: BLE001 - every failure goes back to the parent, which raises it
        if hasattr(err, "add_note"):  # Python 3.11+: the child's traceback travels with the exception
            err.add_note("in the side process:\n" + traceback.format_exc())
        message = ("error", err)
    cpu, wall = time.process_time() - started, time.perf_counter() - wall_started
    try:
        send.send((*message, cpu, wall))
    except Exception:  # noqa: BLE001 - a result or exception that cannot be pickled
        send.send(("error", RuntimeError("the side process failed:\n" + traceback.format_exc()), cpu, wall))
    send.close()
