"""`speech-app adapt`: a model's commands adapted to one voice from a few takes of each
(speech_app.training.adapt). Output rules as `train --out`: checked before any work, written
through a temporary file and a rename, locked against a second run."""

from __future__ import annotations

from pathlib import Path

from .exit_status import EXIT_OK, UsageError
from .options import add_model_option, add_setting_option, given

HELP = "adapt a model's commands to your voice from a few takes of each"
RECIPE_OPTIONS = {"steps": "steps", "learning_rate": "learning_rate", "trainable": "trainable", "seed": "seed",
                  "device": "device"}  # option dest -> AdaptRecipe field


def add_arguments(p) -> None:
    from ..device import DEVICE_CHOICES
    from ..training.adapt import TRAINABLE_CHOICES, AdaptRecipe

    p.add_argument("takes_dir", type=Path, metavar="TAKES_DIR",
                   help="a folder per command of the model (yes/, no/, ...) holding a few takes of it by one "
                        "person (any length and format); commands without takes keep working as before")
    p.add_argument("--out", type=Path, required=True, metavar="MODEL.safetensors")
    add_model_option(p)
    for dest, name in RECIPE_OPTIONS.items():
        extra = {"choices": DEVICE_CHOICES} if name == "device" else {}
        if name == "trainable":
            extra = {"choices": tuple(TRAINABLE_CHOICES)}
        add_setting_option(p, AdaptRecipe, name, dest=dest, **extra)
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args) -> int:
    from ..modelfile import ModelFileError, load_model
    from ..training.adapt import AdaptRecipe, adapt, summary_lines

    if args.steps is not None and args.steps < 1:
        raise UsageError(f"--steps must be at least 1, not {args.steps}")
    if args.learning_rate is not None and not 0 < args.learning_rate < float("inf"):
        raise UsageError(f"--learning-rate must be above 0, not {args.learning_rate}")
    recipe = AdaptRecipe(**given(args, RECIPE_OPTIONS))
    try:
        from ..atomic_files import check_writable

        check_writable(args.out, "file")  # before the model is loaded and the takes decoded
        result = adapt(args.takes_dir, args.out, recipe, base=load_model(args.model), progress=not args.quiet)
    except (ValueError, ModelFileError) as err:  # AdaptError is a ValueError: one line naming the folder
        raise UsageError(str(err)) from None
    print("\n".join(summary_lines(result)))
    return EXIT_OK
