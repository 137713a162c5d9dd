"""The `speech-app` command line: the only module (with the GUI) that knows about terminals."""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import sys
from pathlib import Path

from .. import __version__

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a Ctrl-C
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: the reader (`| head -1`) left, as for any Unix tool
PROGRESS_MIN_FILES = 50  # smaller batches finish before a progress bar would tell anything
DEFAULT_EPOCHS, DEFAULT_PATIENCE = 40, 8
TEXT_ONLY_EPOCHS, TEXT_ONLY_PATIENCE = 15, 5  # a few hundred synthetic clips per word converge fast
MAX_WINDOW_SECONDS = 10.0  # a command is a few words; longer windows only cost memory


class UsageError(Exception):
    """Bad arguments or inputs the user must fix; printed as one line, exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="speech-app", description="Recognize spoken commands.")
    parser.add_argument("--version", action="version", version=f"speech-app {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    add_classify_parser(sub)
    add_train_parser(sub)
    add_evaluate_parser(sub)
    add_data_parser(sub)
    add_export_parser(sub)
    add_optional_parsers(sub)
    return parser


def add_classify_parser(sub) -> None:
    p = sub.add_parser("classify", help="label audio files (WAV, FLAC, OGG)")
    p.add_argument("paths", nargs="+", metavar="PATH", help="audio files or folders")
    p.add_argument("--recursive", "-r", action="store_true", help="look inside subfolders too")
    p.add_argument("--model", type=Path, help="model file (default: the shipped model)")
    p.add_argument("--top-k", type=int, default=1, metavar="K", help="also print the next K-1 labels")
    p.add_argument("--format", choices=("csv", "jsonl", "table"), default="csv")
    p.add_argument("--output", "-o", type=Path, metavar="FILE", help="write here instead of standard output")
    p.add_argument("--batch-size", type=int, default=64, metavar="N")
    p.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda", "mps"))
    p.set_defaults(handler=run_classify)


def add_train_parser(sub) -> None:
    p = sub.add_parser("train", help="train a model on folders of recordings and/or synthetic speech")
    p.add_argument("data_dirs", nargs="*", type=Path, metavar="DATA_DIR", help="folders of real recordings")
    p.add_argument("--words", help="comma-separated words to recognize (default: the 10 standard "
                                   "commands for Speech Commands data, every folder otherwise)")
    p.add_argument("--out", type=Path, required=True, metavar="MODEL.safetensors")
    p.add_argument("--epochs", type=int, help="default 40; 15 when training from text alone (--synth, "
                                               "no DATA_DIR), which must finish in minutes on a laptop")
    p.add_argument("--recipe", choices=("auto", "custom", "dataset"), default="auto",
                   help="custom: the few-takes recipe (fine-tune the shipped model for --steps on the takes, "
                        "synthetic speech of the words and the bundled negatives; estimate by rotation); "
                        "dataset: epochs with validation and early stopping, for a large dataset; "
                        "auto (default): dataset for Speech Commands folders, custom otherwise")
    p.add_argument("--steps", type=int, help="custom recipe: training batches (default 160)")
    p.add_argument("--estimate-runs", type=int, metavar="K",
                   help="custom recipe: short runs that each hold out 1/K of the takes and negatives to "
                        "estimate what to expect (default 3; 0: no estimate, faster)")
    p.add_argument("--estimate-steps", type=int, metavar="N", help="custom recipe: batches per estimate run (default 60)")
    p.add_argument("--batch-size", type=int, help="default 128; 48 in the custom recipe")
    p.add_argument("--learning-rate", type=float, help="default 0.002; 0.001 in the custom recipe")
    p.add_argument("--patience", type=int, help="epochs without improvement before stopping (default 8; 5 from text alone)")
    p.add_argument("--steps-per-epoch", type=int, help="batches per epoch (default: one pass over the data)")
    p.add_argument("--keep", choices=("best", "last"), default="best",
                   help="the epoch whose weights are written: best on validation (default), or the last")
    p.add_argument("--warmup-steps", type=int, help="batches of linear learning-rate warm-up (default: 5%% of the "
                   "run's batches); then a cosine decay to 2%% of the peak at the last batch")
    p.add_argument("--window-seconds", type=float, help="input window (default: chosen from the data)")
    p.add_argument("--hidden-size", type=int, help="LSTM units per direction (default 128; when fine-tuning, "
                                                   "that of the starting model)")
    p.add_argument("--layers", type=int, help="LSTM layers (default 2; when fine-tuning, that of the starting model)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--speed-perturb", type=float, metavar="R",
                   help="play each training clip at a random speed in [1-R, 1+R] (pitch follows); "
                        "default 0, 0.15 in the custom recipe")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint next to --out")
    p.add_argument("--report-dir", type=Path, help="default: <out>_report/ next to the model")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    s = p.add_argument_group("splits")
    s.add_argument("--testing-list", type=Path, metavar="FILE",
                   help="clips (one path a line); every clip of their speakers tests, never trains or "
                   "validates; the speaker hash then gives no testing band")
    s.add_argument("--validation-percent", type=float, default=10.0, metavar="P",
                   help="speakers whose hash falls below P%% validate (default 10, the dataset's rule)")
    s.add_argument("--unknown-percent", type=float, default=10.0, metavar="P",
                   help="_unknown_ examples per split, as a %% of the command clips (default 10)")
    s.add_argument("--even-unknown", action="store_true",
                   help="draw _unknown_ evenly across the other words (default: in proportion to their clips)")
    g = p.add_argument_group("synthetic speech")
    g.add_argument("--synthetic", type=Path, action="append", default=[], metavar="DIR",
                   help="a folder of synthetic clips (from `speech-app synth`); repeatable")
    g.add_argument("--synthetic-share", type=float, default=0.5, metavar="S",
                   help="at most this share of a word's training draws are synthetic when it has real clips")
    g.add_argument("--holdout-real", default="", metavar="WORDS",
                   help="comma-separated words whose real clips only validate, never train "
                        "(measures what synthetic speech alone is worth)")
    g.add_argument("--synth", action="store_true",
                   help="synthesize speech for --words (and filler words for _unknown_) with the installed engines")
    g.add_argument("--synth-per-word", type=int, metavar="N", help="default 200; 150 in the custom recipe")
    g.add_argument("--no-synth", action="store_true", help="custom recipe: no synthetic speech (it is on by default)")
    g.add_argument("--synth-engines", default="auto", metavar="E", help="as `speech-app synth --engines`")
    g.add_argument("--init-from", default="auto", metavar="MODEL",
                   help="fine-tune from this model file ('shipped': the shipped model; 'none': from scratch; "
                        "default 'auto': the shipped model when there is no real data, else none)")
    p.set_defaults(handler=run_train)


def add_evaluate_parser(sub) -> None:
    p = sub.add_parser("evaluate", help="accuracy and per-class figures of a model on a data folder")
    p.add_argument("data_dirs", nargs="+", type=Path, metavar="DATA_DIR")
    p.add_argument("--model", type=Path, help="model file (default: the shipped model)")
    p.add_argument("--split", default="all", choices=("all", "training", "validation", "testing"))
    p.add_argument("--report-dir", type=Path, default=Path("evaluation_report"))
    p.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda", "mps"))
    p.add_argument("--rejection", action="store_true",
                   help="also measure how often other words (unseen speakers) and background noise "
                        "are taken for a command")
    p.set_defaults(handler=run_evaluate)


def add_data_parser(sub) -> None:
    p = sub.add_parser("data", help="get training data")
    data_sub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    d = data_sub.add_parser("download", help="download a dataset (resumes, verifies checksums)")
    d.add_argument("dataset", choices=("speech-commands",))
    d.add_argument("--version", dest="dataset_version", default="0.02", choices=("0.01", "0.02"))
    d.add_argument("--dest", type=Path, default=Path("data"), help="folder to download and extract into")
    d.add_argument("--url", help="another address of the same archive (a mirror, or file://)")
    d.set_defaults(handler=run_download)


def add_export_parser(sub) -> None:
    p = sub.add_parser("export", help="write the model (MFCC front end included) for ONNX Runtime")
    p.add_argument("out", type=Path, metavar="OUT.onnx")
    p.add_argument("--format", choices=("onnx",), default="onnx")
    p.add_argument("--model", type=Path, help="model file (default: the shipped model)")
    p.set_defaults(handler=run_export)


def add_optional_parsers(sub) -> None:
    """synth, listen and gui: their modules import their extras (TTS, sounddevice, Qt) only when they run."""
    from ..gui import add_gui_arguments, run_gui
    from .listen import add_listen_arguments, run_listen
    from .synth import add_synth_arguments, run_synth

    for command, help_text, add_arguments, run in (
        ("synth", "make synthetic training speech with offline TTS engines", add_synth_arguments, run_synth),
        ("listen", "recognize commands live from a microphone, one line per detection", add_listen_arguments, run_listen),
        ("gui", "open the desktop app", add_gui_arguments, run_gui),
    ):
        p = sub.add_parser(command, help=help_text)
        add_arguments(p)
        p.set_defaults(handler=run)


def run_classify(args) -> int:
    from ..atomic_files import check_writable
    from ..audio import expand_paths
    from ..inference import CommandClassifier, batch_threads
    from ..modelfile import ModelFileError

    if args.top_k < 1 or args.batch_size < 1:
        raise UsageError("--top-k and --batch-size must be at least 1")
    if args.output is not None:
        check_writable(args.output)  # before any file is decoded
    paths = expand_paths(args.paths, args.recursive)
    if not paths:
        raise UsageError(f"no audio files in {' '.join(map(os.fsdecode, args.paths))} (use --recursive for subfolders)")
    try:
        classifier = CommandClassifier.from_file(args.model, args.device)
    except (ModelFileError, ValueError) as err:
        raise UsageError(str(err)) from None
    top_k = min(args.top_k, len(classifier.labels))
    from tqdm import tqdm

    threads = batch_threads(len(paths), args.batch_size)
    results = tqdm(classifier.classify_files(paths, top_k, args.batch_size, threads), total=len(paths), unit="file",
                   desc="classifying", disable=len(paths) < PROGRESS_MIN_FILES, file=sys.stderr)
    failed = 0
    with open_output(args.output) as out:
        writer = ResultWriter(out, args.format, top_k)
        for result in results:
            failed += result.error is not None
            writer.write(result)
        writer.close()
    if failed:
        print(f"{failed} of {len(paths)} files could not be classified", file=sys.stderr)
    return EXIT_SOME_FAILED if failed else EXIT_OK


@contextlib.contextmanager
def open_output(path: Path | None):
    """Standard output, or a file that appears only when complete (see atomic_files), locked against
    a second run writing it. File names that are not UTF-8 are written as their original bytes."""
    if path is None:
        if hasattr(sys.stdout, "reconfigure"):  # print a name that is not UTF-8 as its own bytes
            sys.stdout.reconfigure(errors="surrogateescape")
        try:
            yield sys.stdout
            sys.stdout.flush()
        except BrokenPipeError:
            raise
        except OSError as err:  # `> /dev/full`, a full disk behind a redirection
            from ..atomic_files import OutputError, describe_os_error

            raise OutputError(describe_os_error("standard output", err)) from None
        return
    from ..atomic_files import atomic_write, output_lock

    with output_lock(path), atomic_write(path, "w", newline="", encoding="utf-8", errors="surrogateescape") as out:
        yield out


class ResultWriter:
    """Writes classification results as CSV, JSON lines, or an aligned table."""

    def __init__(self, out, fmt: str, top_k: int):
        self.out, self.fmt, self.top_k = out, fmt, top_k
        self.rows: list[list[str]] = []
        self.header = ["path", "label", "confidence", "error"]
        for k in range(2, top_k + 1):
            self.header += [f"label_{k}", f"confidence_{k}"]
        if fmt == "csv":
            self.csv = csv.writer(out, lineterminator="\n")
            self.csv.writerow(self.header)

    def row(self, result) -> list[str]:
        conf = [f"{c:.4f}" for c in result.confidences]
        cells = [str(result.path), result.label, conf[0] if conf else "", result.error or ""]
        for k in range(1, self.top_k):
            has = k < len(result.labels)
            cells += [result.labels[k] if has else "", conf[k] if has else ""]
        return cells

    def write(self, result) -> None:
        if self.fmt == "csv":
            self.csv.writerow(self.row(result))
        elif self.fmt == "jsonl":
            record = {"path": str(result.path), "label": result.label or None, "confidence": result.confidence,
                      "error": result.error}
            if self.top_k > 1:
                record["top"] = [{"label": l, "confidence": c} for l, c in zip(result.labels, result.confidences)]
            self.out.write(json.dumps(record) + "\n")
        else:
            self.rows.append(self.row(result))

    def close(self) -> None:
        if self.fmt != "table":
            return
        table = [self.header] + self.rows
        widths = [max(len(r[i]) for r in table) for i in range(len(self.header))]
        for r in table:
            self.out.write("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() + "\n")


def run_train(args) -> int:
    from ..data.augment import AugmentConfig
    from ..model import ModelConfig
    from ..modelfile import ModelFileError
    from ..training.trainer import TrainConfig, check_outputs, default_report_dir, starting_settings, train

    words = [w.strip() for w in args.words.split(",") if w.strip()] if args.words else None
    if not args.data_dirs and not args.synthetic and not args.synth:
        raise UsageError("give DATA_DIR folders, --synthetic DIR, or --words ... --synth")
    if args.synth and not words:
        raise UsageError("--synth needs --words: the words to synthesize")
    if args.speed_perturb is not None and not 0.0 <= args.speed_perturb < 0.5:
        raise UsageError(f"--speed-perturb must be in [0, 0.5), not {args.speed_perturb}")
    check_train_numbers(args)
    if resolve_recipe(args) == "custom":
        return run_custom_train(args, words)
    args.speed_perturb = args.speed_perturb or 0.0
    args.synth_per_word = args.synth_per_word or 200
    text_only = args.synth and not args.data_dirs
    epochs = args.epochs if args.epochs is not None else (TEXT_ONLY_EPOCHS if text_only else DEFAULT_EPOCHS)
    patience = args.patience if args.patience is not None else (TEXT_ONLY_PATIENCE if text_only else DEFAULT_PATIENCE)
    config = TrainConfig(epochs=epochs, batch_size=args.batch_size or 128, learning_rate=args.learning_rate or 2e-3,
                         patience=patience, seed=args.seed, device=args.device,
                         window_seconds=args.window_seconds, steps_per_epoch=args.steps_per_epoch,
                         warmup_steps=args.warmup_steps, keep_last=args.keep == "last",
                         synthetic_share=args.synthetic_share, augment=AugmentConfig(speed=args.speed_perturb))
    explicit = {k: v for k, v in (("hidden_size", args.hidden_size), ("num_layers", args.layers)) if v is not None}
    try:
        check_outputs(args.out, args.report_dir or default_report_dir(args.out))  # before hours of work
        init_from = starting_model(args.init_from, has_real_data=bool(args.data_dirs))
        # fine-tuning: the settings are the starting model's, and a different explicit one stops here
        model_config = starting_settings(init_from, explicit) if init_from is not None else ModelConfig(**explicit)
        if init_from is not None and args.window_seconds not in (None, init_from.features.clip_seconds):
            raise UsageError(f"--window-seconds {args.window_seconds} does not match the starting model "
                             f"({init_from.features.clip_seconds}); leave it out or use --init-from none")
        synthetic = list(args.synthetic) + ([synthesize_for(args, words)] if args.synth else [])
        train(args.data_dirs, args.out, words, config, model_config, resume=args.resume, init_from=init_from,
              report_dir=args.report_dir, progress=not args.quiet, synthetic_dirs=synthetic,
              holdout_real=tuple(w.strip() for w in args.holdout_real.split(",") if w.strip()),
              split_options=split_options(args))
    except (FileNotFoundError, ValueError, ModelFileError) as err:
        raise UsageError(str(err)) from None
    return EXIT_OK


def resolve_recipe(args) -> str:
    """auto: the dataset recipe for Speech Commands folders, the custom-word recipe for folders of takes."""
    from ..data.dataset import is_speech_commands_layout

    if args.recipe != "auto":
        return args.recipe
    if args.synthetic or any(d.is_dir() and is_speech_commands_layout(d) for d in args.data_dirs):
        return "dataset"
    return "custom"


def run_custom_train(args, words: list[str] | None) -> int:
    """The few-takes recipe (speech_app.training.custom_words): settings from the starting model, a fixed budget
    of steps, built-in negatives, and an estimate of what to expect printed at the end."""
    from ..training.custom_words import CustomWordsRecipe, summary_lines, train_custom_words, with_overrides
    from ..data.dataset import default_words
    from ..modelfile import ModelFileError
    from ..training.trainer import check_outputs, default_report_dir, starting_settings

    for flag, value in (("--epochs", args.epochs), ("--patience", args.patience), ("--resume", args.resume),
                        ("--synthetic", args.synthetic), ("--holdout-real", args.holdout_real),
                        ("--steps-per-epoch", args.steps_per_epoch), ("--warmup-steps", args.warmup_steps)):
        if value:
            raise UsageError(f"{flag} belongs to --recipe dataset; the custom recipe trains for --steps")
    if args.init_from == "none":
        raise UsageError("the custom recipe fine-tunes a model; give --init-from MODEL, or --recipe dataset")
    recipe = with_overrides(CustomWordsRecipe(), steps=args.steps, batch_size=args.batch_size,
                            learning_rate=args.learning_rate, speed=args.speed_perturb,
                            synth_per_word=args.synth_per_word, seed=args.seed, device=args.device,
                            estimate_folds=args.estimate_runs, estimate_steps=args.estimate_steps)
    explicit = {k: v for k, v in (("hidden_size", args.hidden_size), ("num_layers", args.layers)) if v is not None}
    try:
        check_outputs(args.out, args.report_dir or default_report_dir(args.out))  # before any work
        words = words or default_words(args.data_dirs)
        if not words:  # said here, naming the folders, rather than as "no words" from the synthesizer
            folders = " ".join(os.fsdecode(d) for d in args.data_dirs)
            raise UsageError(f"{folders}: no word folders with recordings in it (and no --words given)")
        init_from = starting_model("shipped" if args.init_from == "auto" else args.init_from, True)
        starting_settings(init_from, explicit)
        if args.window_seconds not in (None, init_from.features.clip_seconds):
            raise UsageError(f"--window-seconds {args.window_seconds} does not match the starting model "
                             f"({init_from.features.clip_seconds}); leave it out")
        synthetic = None if args.no_synth else synthesize_custom(args, words, recipe)
        result = train_custom_words(args.data_dirs, words, args.out, recipe, init_from=init_from,
                                    synthetic_dir=synthetic, report_dir=args.report_dir, progress=not args.quiet)
    except (FileNotFoundError, ValueError, ModelFileError) as err:
        raise UsageError(str(err)) from None
    print("\n".join(summary_lines(result)))
    return EXIT_OK


def synthesize_custom(args, words: list[str], recipe) -> Path | None:
    """The recipe's synthetic speech; without any TTS engine the takes train alone, with a warning."""
    from ..training.custom_words import synthesize_for_words
    from ..synth import NoEngineError, SynthUsageError

    try:
        return synthesize_for_words(words, recipe, engines=args.synth_engines, progress=not args.quiet)
    except NoEngineError as err:
        print(f"warning: no synthetic speech ({' '.join(str(err).split())})", file=sys.stderr)
        return None
    except SynthUsageError as err:
        raise UsageError(str(err)) from None


POSITIVE_TRAIN_OPTIONS = ("epochs", "batch_size", "patience", "steps_per_epoch", "warmup_steps", "hidden_size",
                          "layers", "synth_per_word")


def check_train_numbers(args) -> None:
    """Zero or negative sizes would train nothing (or crash deep inside); say so at once."""
    for name in POSITIVE_TRAIN_OPTIONS:
        value = getattr(args, name, None)
        if value is not None and value < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be at least 1, not {value}")
    if args.window_seconds is not None and not 0 < args.window_seconds <= MAX_WINDOW_SECONDS:
        raise UsageError(f"--window-seconds must be above 0 and at most {MAX_WINDOW_SECONDS:g}, not {args.window_seconds}")
    if args.learning_rate is not None and not 0 < args.learning_rate < float("inf"):
        raise UsageError(f"--learning-rate must be above 0, not {args.learning_rate}")


def split_options(args) -> dict:
    from ..data.dataset import read_speaker_list

    options = {"validation_percent": args.validation_percent, "unknown_percent": args.unknown_percent,
               "even_unknown": args.even_unknown}
    if args.testing_list:
        if not args.testing_list.is_file():
            raise FileNotFoundError(f"{args.testing_list}: no such list file")
        options["testing_speakers"] = read_speaker_list(args.testing_list)
        options["testing_percent"] = 0.0
    return options


def synthesize_for(args, words: list[str]) -> Path:
    from ..synth import NoEngineError, SynthUsageError
    from ..synth.text_training import synthesize_training_set

    noise = [f for d in args.data_dirs if (d / "_background_noise_").is_dir()
             for f in sorted((d / "_background_noise_").iterdir()) if f.is_file()]
    try:
        return synthesize_training_set(words, per_word=args.synth_per_word, seed=args.seed,
                                       engines=args.synth_engines, noise_files=noise, progress=not args.quiet)
    except (NoEngineError, SynthUsageError) as err:
        raise UsageError(str(err)) from None


def starting_model(choice: str, has_real_data: bool):
    """The model to fine-tune from: its encoder already knows real voices."""
    from ..modelfile import load_model

    if choice == "none" or (choice == "auto" and has_real_data):
        return None
    return load_model(None if choice in ("auto", "shipped") else Path(choice))


def run_evaluate(args) -> int:
    from ..training.evaluate import evaluate_model, print_evaluation
    from ..inference import CommandClassifier
    from ..modelfile import ModelFileError

    from ..atomic_files import check_writable

    args.report_dir.parent.mkdir(parents=True, exist_ok=True)
    check_writable(args.report_dir, "folder")  # before the evaluation, not after it
    try:
        classifier = CommandClassifier.from_file(args.model, args.device)
        result = evaluate_model(classifier, args.data_dirs, args.split, args.report_dir)
    except (ModelFileError, FileNotFoundError, ValueError) as err:
        raise UsageError(str(err)) from None
    print_evaluation(result)
    if args.rejection:
        from ..training.rejection import measure_rejection

        rejection = measure_rejection(classifier, args.data_dirs)
        for word, (hits, clips) in rejection.per_word.items():
            print(f"  {word:<12} {hits:>4}/{clips:<4} taken for a command")
        print(rejection.summary())
    return EXIT_OK


def run_export(args) -> int:
    from ..export import ExportError, export_onnx
    from ..modelfile import ModelFileError, load_model

    try:
        path = export_onnx(load_model(args.model), args.out)
    except (ModelFileError, ExportError) as err:
        raise UsageError(str(err)) from None
    print(path)
    return EXIT_OK


def run_download(args) -> int:
    from ..data.download import DownloadError, download_speech_commands

    try:
        folder = download_speech_commands(args.dataset_version, args.dest, url=args.url)
    except DownloadError as err:
        print(f"speech-app: {err}", file=sys.stderr)
        return EXIT_SOME_FAILED
    print(folder)
    return EXIT_OK


def opens_gui_by_default() -> bool:
    """`speech-app` alone opens the desktop app when there is a display to show it on."""
    try:
        from ..gui import display_available
    except ImportError:
        return False
    return display_available()


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        if opens_gui_by_default():
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


def quiet_broken_pipe() -> int:
    """The reader of standard output has gone (`| head -1`): stop quietly, as Unix tools do. Standard
    output is pointed at /dev/null so that Python's final flush does not complain again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return EXIT_BROKEN_PIPE
