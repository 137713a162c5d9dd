"""`speech-app data download`: get a dataset to train on."""

from __future__ import annotations

import sys
from pathlib import Path

from .exit_status import EXIT_OK, EXIT_SOME_FAILED

HELP = "get training data"


def add_arguments(p) -> None:
    from ..data.download import DEFAULT_DEST, DEFAULT_VERSION, SPEECH_COMMANDS

    actions = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    d = actions.add_parser("download", help="download a dataset (resumes, verifies checksums)")
    d.add_argument("dataset", choices=("speech-commands",))
    d.add_argument("--version", dest="dataset_version", default=DEFAULT_VERSION, choices=tuple(SPEECH_COMMANDS))
    d.add_argument("--dest", type=Path, default=DEFAULT_DEST, help="folder to download and extract into")
    d.add_argument("--url", help="another address of the same archive (a mirror, or file://)")


def run(args) -> int:
    return {"download": run_download}[args.data_command](args)


def run_download(args) -> int:
    from ..data.download import DownloadError, download_speech_commands

    try:
        folder = download_speech_commands(args.dataset_version, args.dest, url=args.url)
    except DownloadError as err:
        print(f"speech-app: {err}", file=sys.stderr)
        return EXIT_SOME_FAILED
    print(folder)
    return EXIT_OK
