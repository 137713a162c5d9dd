"""`speech-app evaluate`: a model's accuracy and per-class figures on a data folder, and with
`--rejection` how often other words and noise are taken for a command."""

from __future__ import annotations

from pathlib import Path

from .exit_status import EXIT_OK, UsageError
from .options import add_model_option

HELP = "accuracy and per-class figures of a model on a data folder"
DEFAULT_REPORT_DIR = Path("evaluation_report")


def add_arguments(p) -> None:
    from ..data.dataset import SPLITS
    from ..device import DEVICE_CHOICES

    p.add_argument("data_dirs", nargs="+", type=Path, metavar="DATA_DIR")
    add_model_option(p)
    p.add_argument("--split", default="all", choices=("all", *SPLITS))
    p.add_argument("--report-dir", type=Path, default=DEFAULT_REPORT_DIR)
    p.add_argument("--device", default="cpu", choices=DEVICE_CHOICES)
    p.add_argument("--rejection", action="store_true",
                   help="also measure how often other words (unseen speakers) and background noise "
                        "are taken for a command")


def run(args) -> int:
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
