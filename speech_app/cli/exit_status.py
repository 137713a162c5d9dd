"""How a `speech-app` command ends: its exit status, and the errors that choose it. The one home of
the exit codes of every subcommand."""

from __future__ import annotations

import os
import sys

EXIT_OK = 0
EXIT_SOME_FAILED = 1  # classify, synth: some inputs failed and the others were done; data: the download failed
EXIT_NO_AUDIO = 1  # listen: no input device, or no audio system to ask
EXIT_NO_GUI = 1  # gui: the desktop app's packages are not installed
EXIT_USAGE = 2  # bad arguments or inputs the user must fix (synth: also no engine to use; nothing was tried)
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a Ctrl-C
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: the reader (`| head -1`) left, as for any Unix tool


class UsageError(Exception):
    """Bad arguments or inputs the user must fix; printed as one line, exit status EXIT_USAGE."""


def quiet_broken_pipe() -> int:
    """The reader of standard output has gone (`| head -1`): stop quietly, as Unix tools do. Standard
    output is pointed at /dev/null so that Python's final flush does not complain again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return EXIT_BROKEN_PIPE
