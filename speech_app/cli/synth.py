"""The `speech-app synth` subcommand: arguments, the run, and the summary table on stdout."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..audio import is_audio_file
from .exit_status import EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE

HELP = "make synthetic training speech with offline TTS engines"


# The synth package is imported when this subcommand runs, not for every command (start-up of classify).


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..synth.engines import engine_names
    from ..synth.generator import DEFAULT_CLIPS_PER_WORD

    parser.description = ("Write one-second 16 kHz clips of words and phrases with every installed offline "
                          "speech engine, varying voice, pitch and speed, then adding reverb, noise, gain and shift.")
    parser.add_argument("--words", required=True, help='comma-separated words or phrases, e.g. "yes,lights on,marvin"')
    parser.add_argument("--out", required=True, type=Path, help="output folder; one sub-folder per word")
    parser.add_argument("--per-word", type=int, default=DEFAULT_CLIPS_PER_WORD, metavar="N",
                        help=f"clips per word (default {DEFAULT_CLIPS_PER_WORD})")
    parser.add_argument("--engines", default="auto",
                        help=f"'auto' (every installed engine) or a comma-separated subset of: {','.join(engine_names())}")
    parser.add_argument("--seed", type=int, default=0, help="the same seed gives the same files (default 0)")
    parser.add_argument("--jobs", type=int, default=None, metavar="J", help="worker processes (default: all cores)")
    parser.add_argument("--noise", type=Path, action="append", default=[], metavar="PATH",
                        help="background-noise file or folder (e.g. Speech Commands' _background_noise_); "
                             "repeatable; default: generated white/pink/brown noise")
    parser.add_argument("--commercial-voices", action="store_true",
                        help="only voices whose licence allows shipping a model trained on them "
                             "(leaves out mbrola and RHVoice evgeniy-eng/lyubov)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


def noise_files_from(paths: list[Path]) -> list[Path]:
    """Files as given; folders expanded to the audio files directly inside them."""
    from ..synth.generator import SynthUsageError

    files = []
    for path in paths:
        if path.is_dir():
            files += sorted(p for p in path.iterdir() if p.is_file() and is_audio_file(p))
        elif path.is_file():
            files.append(path)
        else:
            raise SynthUsageError(f"{path}: no such noise file or folder")
    return files


def run(args: argparse.Namespace) -> int:
    """0: every clip written; 1: some clips failed; 2: bad arguments or no engine to use."""
    from ..synth.generator import NoEngineError, SynthUsageError, synthesize_words

    try:
        summary = synthesize_words(args.words.split(","), args.out, per_word=args.per_word, engines=args.engines,
                                   seed=args.seed, jobs=args.jobs, noise_files=noise_files_from(args.noise) or None,
                                   progress=not args.no_progress, commercial_only=args.commercial_voices)
    except (SynthUsageError, NoEngineError) as err:
        print(f"speech-app synth: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    print(summary.table())
    return EXIT_SOME_FAILED if summary.failures else EXIT_OK
