"""`speech-app train`: the dataset recipe (epochs with validation and early stopping, `TrainConfig`)
or the custom-word recipe (a fixed budget of steps from the shipped model, `CustomWordsRecipe`).

The options that set a setting of either recipe, or of the model, are built from the dataclass
fields (see options.py): the default lives in the field alone, and a recipe option left out takes
it from there."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from .exit_status import EXIT_OK, UsageError
from .options import add_setting_option, describe_default, setting_default

HELP = "train a model on folders of recordings and/or synthetic speech"
MAX_WINDOW_SECONDS = 10.0  # a command is a few words; longer windows only cost memory
MAX_LEVEL_DB = 40.0  # --level-db: quieter than 40 dB under the recordings is under most rooms' noise


@dataclass(frozen=True)
class RecipeOption:
    """An option that sets a field of the dataset recipe's TrainConfig (dotted for a nested one), of
    the CustomWordsRecipe, or of both."""

    dest: str
    dataset: str | None = None
    custom: str | None = None
    metavar: str | None = None
    flag: str | None = None


RECIPE_OPTIONS = (  # in the order of `speech-app train --help`
    RecipeOption("epochs", dataset="epochs"),
    RecipeOption("steps", custom="steps"),
    RecipeOption("estimate_runs", custom="estimate_folds", metavar="K"),
    RecipeOption("estimate_steps", custom="estimate_steps", metavar="N"),
    RecipeOption("batch_size", "batch_size", "batch_size"),
    RecipeOption("learning_rate", "learning_rate", "learning_rate"),
    RecipeOption("patience", dataset="patience"),
    RecipeOption("steps_per_epoch", dataset="steps_per_epoch"),
    RecipeOption("warmup_steps", dataset="warmup_steps"),
    RecipeOption("keep", dataset="keep"),
    RecipeOption("window_seconds", dataset="window_seconds"),
    RecipeOption("seed", "seed", "seed"),
    RecipeOption("speed_perturb", "augment.speed", "speed", metavar="R", flag="--speed-perturb"),
    RecipeOption("reverb", dataset="augment.reverb", metavar="P"),
    RecipeOption("level_db", dataset="augment.level_db", metavar="D"),
    RecipeOption("device", "device", "device"),
    RecipeOption("precision", "precision", "precision"),
)
SYNTHETIC_SHARE = RecipeOption("synthetic_share", dataset="synthetic_share", metavar="S")
CONVERSATION_SHARE = RecipeOption("conversation_share", dataset="conversation_share", metavar="S")
DISTILL_OPTIONS = (RecipeOption("distill_weight", dataset="distill_weight", metavar="W"),
                   RecipeOption("distill_temperature", dataset="distill_temperature", metavar="T"))


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..model import ModelConfig
    from ..training.trainer import MODEL_SETTING_FLAGS

    p.add_argument("data_dirs", nargs="*", type=Path, metavar="DATA_DIR", help="folders of real recordings")
    p.add_argument("--words", help="comma-separated words to recognize (default: the 10 standard "
                                   "commands for Speech Commands data, every folder otherwise)")
    p.add_argument("--out", type=Path, required=True, metavar="MODEL.safetensors")
    add_recipe_option(p, RECIPE_OPTIONS[0])  # --epochs
    p.add_argument("--recipe", choices=("auto", "custom", "dataset"), default="auto",
                   help="custom: the few-takes recipe (fine-tune the shipped model for --steps on the takes, "
                        "synthetic speech of the words and the bundled negatives; estimate by rotation); "
                        "dataset: epochs with validation and early stopping, for a large dataset; "
                        "auto (default): dataset for Speech Commands folders, custom otherwise")
    for option in RECIPE_OPTIONS[1:]:
        add_recipe_option(p, option)
    for name, flag in MODEL_SETTING_FLAGS.items():
        add_setting_option(p, ModelConfig, name, flag, dest=name, metavar=flag[2:].upper().replace("-", "_"),
                           default_text=f"default {setting_default(ModelConfig, name)}; "
                           "when fine-tuning, that of the starting model")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint next to --out")
    p.add_argument("--report-dir", type=Path, help="default: <out>_report/ next to the model")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_split_arguments(p.add_argument_group("splits"))
    add_synthetic_arguments(p.add_argument_group("synthetic speech"))
    add_distill_arguments(p.add_argument_group("distillation (dataset recipe)"))


def add_recipe_option(group, option: RecipeOption) -> None:
    """The option of one RecipeOption; its help names each recipe's default where they differ."""
    from ..device import DEVICE_CHOICES, TRAINING_PRECISIONS
    from ..training.custom_words import CustomWordsRecipe
    from ..training.trainer import KEEP_CHOICES, TEXT_ONLY_SETTINGS, TrainConfig

    config, name = (TrainConfig, option.dataset) if option.dataset else (CustomWordsRecipe, option.custom)
    default_text = None
    if option.dataset and option.custom:
        dataset, custom = setting_default(TrainConfig, option.dataset), setting_default(CustomWordsRecipe, option.custom)
        default_text = f"default {describe_default(dataset)}" + (
            f"; {describe_default(custom)} in the custom recipe" if custom != dataset else "")
    elif option.dest in TEXT_ONLY_SETTINGS:
        default_text = (f"default {describe_default(setting_default(TrainConfig, name))}; "
                        f"{TEXT_ONLY_SETTINGS[option.dest]} when training from text alone (--synth, no DATA_DIR)")
    extra = {"choices": DEVICE_CHOICES} if option.dest == "device" else {}
    if option.dest == "precision":
        extra = {"choices": TRAINING_PRECISIONS}
    if option.dest == "keep":
        extra = {"choices": KEEP_CHOICES}
    add_setting_option(group, config, name, option.flag or "--" + option.dest.replace("_", "-"), dest=option.dest,
                       metavar=option.metavar, default_text=default_text,
                       help_prefix="" if option.dataset else "custom recipe: ", **extra)


def add_split_arguments(s) -> None:
    from ..data.dataset import UNKNOWN_PERCENT, VALIDATION_PERCENT

    s.add_argument("--testing-list", type=Path, metavar="FILE",
                   help="clips (one path a line); every clip of their speakers tests, never trains or "
                   "validates; the speaker hash then gives no testing band")
    s.add_argument("--validation-percent", type=float, default=VALIDATION_PERCENT, metavar="P",
                   help=f"speakers whose hash falls below P%% validate (default {VALIDATION_PERCENT:g}, "
                        "the dataset's rule)")
    s.add_argument("--unknown-percent", type=float, default=UNKNOWN_PERCENT, metavar="P",
                   help=f"_unknown_ examples per split, as a %% of the command clips (default {UNKNOWN_PERCENT:g})")
    s.add_argument("--even-unknown", action="store_true",
                   help="draw _unknown_ evenly across the other words (default: in proportion to their clips)")


def add_synthetic_arguments(g) -> None:
    from ..synth.generator import DEFAULT_CLIPS_PER_WORD
    from ..training.custom_words import CustomWordsRecipe

    g.add_argument("--synthetic", type=Path, action="append", default=[], metavar="DIR",
                   help="a folder of synthetic clips (from `speech-app synth`); repeatable")
    add_recipe_option(g, SYNTHETIC_SHARE)
    g.add_argument("--conversation", type=Path, action="append", default=[], metavar="DIR",
                   help="dataset recipe: a folder of recordings of continuous speech (people talking), cut into "
                        "windows drawn as _unknown_; repeatable")
    add_recipe_option(g, CONVERSATION_SHARE)
    g.add_argument("--holdout-real", default="", metavar="WORDS",
                   help="comma-separated words whose real clips only validate, never train "
                        "(measures what synthetic speech alone is worth)")
    g.add_argument("--synth", action="store_true",
                   help="synthesize speech for --words (and filler words for _unknown_) with the installed engines")
    add_setting_option(g, CustomWordsRecipe, "synth_per_word", metavar="N", help_prefix="",
                       default_text=f"default {DEFAULT_CLIPS_PER_WORD}; "
                                    f"{setting_default(CustomWordsRecipe, 'synth_per_word')} in the custom recipe")
    g.add_argument("--no-synth", action="store_true", help="custom recipe: no synthetic speech (it is on by default)")
    g.add_argument("--synth-engines", default="auto", metavar="E", help="as `speech-app synth --engines`")
    g.add_argument("--all-voices", action="store_true",
                   help="with --synth: also synthetic voices whose licence forbids commercial use (mbrola, "
                        "RHVoice evgeniy-eng and lyubov); by default only voices a shipped model may be trained on")
    g.add_argument("--init-from", default="auto", metavar="MODEL",
                   help="fine-tune from this model file ('shipped': the shipped model; 'none': from scratch; "
                        "default 'auto': the shipped model when there is no real data, else none)")


def add_distill_arguments(d) -> None:
    d.add_argument("--teacher", metavar="MODEL[,MODEL...]",
                   help="learn from these models' averaged probabilities as well as from the labels (an ensemble "
                        "distilled into one model); they must have the same labels and window")
    for option in DISTILL_OPTIONS:
        add_recipe_option(d, option)


def dataset_config(args, text_only: bool):
    """The dataset recipe's TrainConfig: the options given, TrainConfig's defaults for the rest."""
    from ..training.trainer import TEXT_ONLY_SETTINGS, TrainConfig

    values = {o.dataset: getattr(args, o.dest) for o in (*RECIPE_OPTIONS, SYNTHETIC_SHARE, CONVERSATION_SHARE, *DISTILL_OPTIONS)
              if o.dataset and getattr(args, o.dest) is not None}
    if text_only:
        values = {**TEXT_ONLY_SETTINGS, **values}
    augment = {k.partition(".")[2]: values.pop(k) for k in [k for k in values if k.startswith("augment.")]}
    config = TrainConfig(**values)
    return replace(config, augment=replace(config.augment, **augment)) if augment else config


def custom_recipe(args):
    """The custom-word recipe: the options given, CustomWordsRecipe's defaults for the rest."""
    from ..training.custom_words import CustomWordsRecipe

    values = {o.custom: getattr(args, o.dest) for o in RECIPE_OPTIONS if o.custom and getattr(args, o.dest) is not None}
    if args.synth_per_word is not None:
        values["synth_per_word"] = args.synth_per_word
    if args.all_voices:
        values["commercial_voices"] = False
    return CustomWordsRecipe(**values)


def model_settings(args) -> dict:
    """The model settings given on the command line: {ModelConfig field: value}."""
    from ..training.trainer import MODEL_SETTING_FLAGS

    return {name: getattr(args, name) for name in MODEL_SETTING_FLAGS if getattr(args, name) is not None}


def comma_list(text: str | None) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()] if text else []


def parse_words(text: str | None, option: str = "--words") -> list[str] | None:
    """The words of `option`, checked (speech_app.words) before any work; None when not given."""
    from ..words import WordError, parse_words as checked_words

    try:
        return (checked_words(text) or None) if text else None
    except WordError as err:
        raise UsageError(f"{option}: {err}") from None


def folder_words(data_dirs: list[Path]) -> list[str]:
    """The words that DATA_DIR's folders name (the standard ten for Speech Commands data), checked:
    a folder name is a label too."""
    from ..data.dataset import default_words
    from ..words import WordError, check_words

    try:  # a missing folder is said later, as before, by whatever reads it
        return check_words(default_words([d for d in data_dirs if d.is_dir()]))
    except WordError as err:
        folders = " ".join(os.fsdecode(d) for d in data_dirs)
        raise UsageError(f"{folders}: the folder names are the words: {err}") from None


def run(args) -> int:
    words = parse_words(args.words)
    if not args.data_dirs and not args.synthetic and not args.synth:
        raise UsageError("give DATA_DIR folders, --synthetic DIR, or --words ... --synth")
    if args.synth and not words:
        raise UsageError("--synth needs --words: the words to synthesize")
    if args.speed_perturb is not None and not 0.0 <= args.speed_perturb < 0.5:
        raise UsageError(f"--speed-perturb must be in [0, 0.5), not {args.speed_perturb}")
    check_train_numbers(args)
    if resolve_recipe(args) == "custom":
        return run_custom_train(args, words)
    return run_dataset_train(args, words)


def run_dataset_train(args, words: list[str] | None) -> int:
    """Epochs with validation and early stopping; when fine-tuning, the model's settings are the
    starting model's, and when resuming, the checkpoint's (a different explicit one stops here)."""
    from ..model import ModelConfig
    from ..modelfile import ModelFileError, load_model
    from ..training.trainer import check_outputs, default_report_dir, starting_settings, train

    config = dataset_config(args, text_only=args.synth and not args.data_dirs)
    explicit = model_settings(args)
    holdout_real = tuple(parse_words(args.holdout_real, "--holdout-real") or ())
    if words is None:
        folder_words(args.data_dirs)  # the labels the trainer will take from the folders
    try:
        check_outputs(args.out, args.report_dir or default_report_dir(args.out))  # before hours of work
        init_from = starting_model(args.init_from, has_real_data=bool(args.data_dirs))
        model_config = (starting_settings(init_from, explicit) if init_from is not None
                        else ModelConfig(**explicit) if explicit else None)
        if init_from is not None:
            check_window(args, init_from, "leave it out or use --init-from none")
        teachers = [load_model(Path(path)) for path in comma_list(args.teacher)]
        synthetic = list(args.synthetic) + ([synthesize_for(args, words, config.seed)] if args.synth else [])
        train(args.data_dirs, args.out, words, config, model_config, resume=args.resume, init_from=init_from,
              report_dir=args.report_dir, progress=not args.quiet, synthetic_dirs=synthetic,
              holdout_real=holdout_real, split_options=split_options(args),
              teachers=teachers, conversation_dirs=args.conversation)
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
    from ..modelfile import ModelFileError
    from ..training.custom_words import summary_lines, train_custom_words
    from ..training.trainer import check_outputs, default_report_dir, starting_settings

    for flag, value in (("--epochs", args.epochs), ("--patience", args.patience), ("--resume", args.resume),
                        ("--synthetic", args.synthetic), ("--holdout-real", args.holdout_real),
                        ("--steps-per-epoch", args.steps_per_epoch), ("--warmup-steps", args.warmup_steps),
                        ("--keep", args.keep), ("--teacher", args.teacher), ("--reverb", args.reverb),
                        ("--level-db", args.level_db)):
        if value:
            raise UsageError(f"{flag} belongs to --recipe dataset; the custom recipe trains for --steps")
    if args.init_from == "none":
        raise UsageError("the custom recipe fine-tunes a model; give --init-from MODEL, or --recipe dataset")
    recipe = custom_recipe(args)
    explicit = model_settings(args)
    try:
        check_outputs(args.out, args.report_dir or default_report_dir(args.out))  # before any work
        words = words or folder_words(args.data_dirs)
        if not words:  # said here, naming the folders, rather than as "no words" from the synthesizer
            folders = " ".join(os.fsdecode(d) for d in args.data_dirs)
            raise UsageError(f"{folders}: no word folders with recordings in it (and no --words given)")
        init_from = starting_model("shipped" if args.init_from == "auto" else args.init_from, True)
        starting_settings(init_from, explicit)
        check_window(args, init_from, "leave it out")
        synthetic = None if args.no_synth else synthesize_custom(args, words, recipe)
        result = train_custom_words(args.data_dirs, words, args.out, recipe, init_from=init_from,
                                    synthetic_dir=synthetic, report_dir=args.report_dir, progress=not args.quiet)
    except (FileNotFoundError, ValueError, ModelFileError) as err:
        raise UsageError(str(err)) from None
    print("\n".join(summary_lines(result)))
    return EXIT_OK


def check_window(args, init_from, advice: str) -> None:
    """A fine-tuned model keeps the window of the model it starts from; another --window-seconds stops here."""
    if args.window_seconds not in (None, init_from.features.clip_seconds):
        raise UsageError(f"--window-seconds {args.window_seconds} does not match the starting model "
                         f"({init_from.features.clip_seconds}); {advice}")


def synthesize_custom(args, words: list[str], recipe) -> Path | None:
    """The recipe's synthetic speech; without any TTS engine the takes train alone, with a warning."""
    from ..synth import NoEngineError, SynthUsageError
    from ..training.custom_words import synthesize_for_words

    try:
        return synthesize_for_words(words, recipe, engines=args.synth_engines, progress=not args.quiet)
    except NoEngineError as err:
        print(f"warning: no synthetic speech ({' '.join(str(err).split())})", file=sys.stderr)
        return None
    except SynthUsageError as err:
        raise UsageError(str(err)) from None


POSITIVE_TRAIN_OPTIONS = ("epochs", "batch_size", "patience", "steps_per_epoch", "warmup_steps", "hidden_size",
                          "num_layers", "synth_per_word")


def check_train_numbers(args) -> None:
    """Zero or negative sizes would train nothing (or crash deep inside); say so at once."""
    from ..training.trainer import MODEL_SETTING_FLAGS

    for name in POSITIVE_TRAIN_OPTIONS:
        value = getattr(args, name, None)
        if value is not None and value < 1:
            flag = MODEL_SETTING_FLAGS.get(name, "--" + name.replace("_", "-"))
            raise UsageError(f"{flag} must be at least 1, not {value}")
    if args.window_seconds is not None and not 0 < args.window_seconds <= MAX_WINDOW_SECONDS:
        raise UsageError(f"--window-seconds must be above 0 and at most {MAX_WINDOW_SECONDS:g}, not {args.window_seconds}")
    if args.learning_rate is not None and not 0 < args.learning_rate < float("inf"):
        raise UsageError(f"--learning-rate must be above 0, not {args.learning_rate}")
    if args.reverb is not None and not 0.0 <= args.reverb <= 1.0:
        raise UsageError(f"--reverb must be in [0, 1], not {args.reverb}")
    if args.level_db is not None and not 0.0 <= args.level_db <= MAX_LEVEL_DB:
        raise UsageError(f"--level-db must be in [0, {MAX_LEVEL_DB:g}], not {args.level_db}")
    if args.distill_weight is not None and not 0.0 <= args.distill_weight <= 1.0:
        raise UsageError(f"--distill-weight must be in [0, 1], not {args.distill_weight}")
    if args.distill_temperature is not None and not 0 < args.distill_temperature < float("inf"):
        raise UsageError(f"--distill-temperature must be above 0, not {args.distill_temperature}")


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


def synthesize_for(args, words: list[str], seed: int) -> Path:
    """The dataset recipe's synthetic speech of `words` and filler words, with the data's own noise."""
    from ..data.dataset import noise_files_of
    from ..synth import NoEngineError, SynthUsageError
    from ..synth.generator import DEFAULT_CLIPS_PER_WORD
    from ..synth.text_training import synthesize_training_set

    noise = [f for d in args.data_dirs for f in noise_files_of(d)]
    try:
        return synthesize_training_set(words, per_word=args.synth_per_word or DEFAULT_CLIPS_PER_WORD, seed=seed,
                                       engines=args.synth_engines, noise_files=noise, progress=not args.quiet,
                                       commercial_only=not args.all_voices)
    except (NoEngineError, SynthUsageError) as err:
        raise UsageError(str(err)) from None


def starting_model(choice: str, has_real_data: bool):
    """The model to fine-tune from: its encoder already knows real voices."""
    from ..modelfile import load_model

    if choice == "none" or (choice == "auto" and has_real_data):
        return None
    return load_model(None if choice in ("auto", "shipped") else Path(choice))
