"""The `speech-app` command line: with the GUI, the only code that knows about terminals.

Each subcommand is a module of this package with `HELP`, `add_arguments(parser)` and
`run(args) -> exit status`; SUBCOMMANDS lists them. The modules import torch, sounddevice, Qt and
the settings they build options from only inside their functions, and only the chosen subcommand's
options are built, so `speech-app --help` stays instant and a missing extra is named when its
command runs. A broken import is never hidden: it fails here, as itself.
"""

from __future__ import annotations

import argparse
import sys

from .. import __version__
from . import adapt, classify, data, evaluate, export, gui, listen, synth, train
from .exit_status import EXIT_INTERRUPTED, EXIT_USAGE, UsageError, quiet_broken_pipe

SUBCOMMANDS = {  # in the order of `speech-app --help`
    "classify": classify,
    "train": train,
    "adapt": adapt,
    "evaluate": evaluate,
    "data": data,
    "export": export,
    "synth": synth,
    "listen": listen,
    "gui": gui,
}


def build_parser(commands=tuple(SUBCOMMANDS)) -> argparse.ArgumentParser:
    """The parser; only the subcommands in `commands` get their options (the others parse nothing
    but `--help`'s line), since building them imports what their settings live in."""
    parser = argparse.ArgumentParser(prog="speech-app", description="Recognize spoken commands.")
    parser.add_argument("--version", action="version", version=f"speech-app {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=module.HELP)
        if name in commands:
            module.add_arguments(p)
        p.set_defaults(handler=module.run)
    return parser


def chosen_command(argv: list[str]) -> str | None:
    """The subcommand named on the command line: the first argument that is not an option (the
    top-level options, --help and --version, take no value)."""
    return next((arg for arg in argv if not arg.startswith("-")), None)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(commands=(chosen_command(argv),))
    args = parser.parse_args(argv)
    if args.command is None:
        if gui.opens_by_default():
            return main(["gui"])
        parser.print_help()
        return EXIT_USAGE
    from ..atomic_files import OutputError

    try:
        return args.handler(args)
    except (UsageError, OutputError) as err:  # an output that cannot be written is the user's to fix too
        print(f"speech-app {args.command}: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return quiet_broken_pipe()
