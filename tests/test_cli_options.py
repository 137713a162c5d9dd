"""The command line's structure: every subcommand listed explicitly, real import errors surfacing,
and options built from the settings dataclasses, so that each default is written once."""

from __future__ import annotations

import argparse
import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from speech_app.cli import SUBCOMMANDS, build_parser, listen
from speech_app.cli import train as train_command
from speech_app.cli.options import describe_default, setting_default, setting_field
from speech_app.streaming import RecognizerSettings
from speech_app.training.custom_words import CustomWordsRecipe
from speech_app.training.trainer import MODEL_SETTING_FLAGS, TEXT_ONLY_SETTINGS, TrainConfig

REPO = Path(__file__).resolve().parent.parent
BARE_TRAIN = ["train", "data", "--out", "m.safetensors"]


def options_of(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """dest -> action of every option, argument groups included."""
    return {action.dest: action for action in parser._actions if action.option_strings}


def subparser(name: str) -> argparse.ArgumentParser:
    parser = build_parser()
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[name]


def help_fields(config_cls: type) -> set[str]:
    """The fields a dataclass marks as command-line options (those with help text)."""
    return {f.name for f in dataclasses.fields(config_cls) if "help" in f.metadata}


def test_every_subcommand_is_listed_and_reachable():
    parser = build_parser()
    choices = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    assert list(choices) == list(SUBCOMMANDS) == ["classify", "train", "adapt", "evaluate", "data", "export",
                                                 "synth", "listen", "gui"]
    for name, module in SUBCOMMANDS.items():
        assert choices[name].get_default("handler") is module.run


def run_blocked(module: str, argv: list[str]) -> subprocess.CompletedProcess:
    """`speech-app ARGV` in a fresh interpreter where importing `module` fails."""
    code = f"import sys\nsys.modules[{module!r}] = None\nfrom speech_app.cli import main\nsys.exit(main({argv!r}))"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300)


@pytest.mark.parametrize("module, argv", [
    ("speech_app.streaming", ["listen", "--help"]),  # imported by the listen command's module
    ("speech_app.training.trainer", ["train", "--help"]),  # imported when the train options are built
])
def test_a_broken_import_surfaces_as_itself(module, argv):
    done = run_blocked(module, argv)
    assert done.returncode != 0
    assert "ModuleNotFoundError" in done.stderr and module in done.stderr, done.stderr
    assert "invalid choice" not in done.stderr


def test_the_top_level_help_imports_no_torch():
    code = "import sys\nfrom speech_app.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n" \
           "print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert done.stdout.strip().endswith("False"), done.stdout + done.stderr


def test_classify_imports_neither_the_streaming_nor_the_synthesis_modules():
    # classify's start-up is measured against importing torch alone (benchmarks/RESULTS.md)
    code = ("import sys\nfrom speech_app.cli import build_parser\nbuild_parser(commands=('classify',)).parse_args(['classify', 'x.wav'])\n"
            "print(sorted(m for m in ('speech_app.streaming', 'speech_app.synth') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert done.stdout.strip().endswith("[]"), done.stdout + done.stderr


def test_a_bare_train_command_takes_every_setting_from_the_dataclasses():
    args = build_parser().parse_args(BARE_TRAIN)
    assert train_command.dataset_config(args, text_only=False) == TrainConfig()
    assert train_command.dataset_config(args, text_only=True) == TrainConfig(**TEXT_ONLY_SETTINGS)
    assert train_command.custom_recipe(args) == CustomWordsRecipe()
    assert train_command.model_settings(args) == {}


def test_each_train_setting_has_exactly_one_option_showing_its_default():
    """Every TrainConfig and CustomWordsRecipe field marked with help text is set by one option,
    and no option sets a field without it; the option's help shows the field's default."""
    recipe_options = (*train_command.RECIPE_OPTIONS, train_command.SYNTHETIC_SHARE, train_command.CONVERSATION_SHARE,
                      *train_command.DISTILL_OPTIONS)
    dataset_fields = [o.dataset for o in recipe_options if o.dataset]
    custom_fields = [o.custom for o in recipe_options if o.custom] + ["synth_per_word"]
    assert sorted(f for f in dataset_fields if "." not in f) == sorted(help_fields(TrainConfig))
    assert set(help_fields(CustomWordsRecipe)) <= set(custom_fields)
    assert len(set(dataset_fields)) == len(dataset_fields) and len(set(custom_fields)) == len(custom_fields)
    options = options_of(subparser("train"))
    for option in recipe_options:
        action = options[option.dest]
        assert action.default is None  # left out: the dataclass supplies the default
        if option.dataset:
            shown = (setting_field(TrainConfig, option.dataset).metadata.get("default_text")
                     or describe_default(setting_default(TrainConfig, option.dataset)))
            assert f"default {shown}" in action.help, (option.dest, action.help)
        if option.custom:
            shown = (setting_field(CustomWordsRecipe, option.custom).metadata.get("default_text")
                     or describe_default(setting_default(CustomWordsRecipe, option.custom)))
            assert shown in action.help, action.help
    for name, flag in MODEL_SETTING_FLAGS.items():
        assert options[name].option_strings == [flag] and options[name].default is None


@pytest.mark.parametrize("option", train_command.RECIPE_OPTIONS, ids=lambda o: o.dest)
def test_a_given_train_option_sets_its_fields_and_nothing_else(option):
    value = {"device": "cpu", "learning_rate": "0.0004", "speed_perturb": "0.05", "keep": "last",
             "precision": "float32"}.get(option.dest, "7")
    flag = option.flag or "--" + option.dest.replace("_", "-")
    args = build_parser().parse_args([*BARE_TRAIN, flag, value])
    parsed = getattr(args, option.dest)
    dataset, custom = train_command.dataset_config(args, text_only=False), train_command.custom_recipe(args)
    expected_dataset, expected_custom = TrainConfig(), CustomWordsRecipe()
    if option.dataset:
        field, _, inner = option.dataset.partition(".")
        expected_dataset = dataclasses.replace(
            expected_dataset, **{field: dataclasses.replace(expected_dataset.augment, **{inner: parsed}) if inner
                                 else parsed})
    if option.custom:
        expected_custom = dataclasses.replace(expected_custom, **{option.custom: parsed})
    assert (dataset, custom) == (expected_dataset, expected_custom)


def test_model_options_are_the_model_settings_given():
    args = build_parser().parse_args([*BARE_TRAIN, "--hidden-size", "64", "--layers", "3"])
    assert train_command.model_settings(args) == {"hidden_size": 64, "num_layers": 3}


def test_listen_options_come_from_the_recognizer_settings():
    parser = argparse.ArgumentParser()
    listen.add_arguments(parser)
    assert listen.recognizer_settings(parser.parse_args([])) == RecognizerSettings()
    given = listen.recognizer_settings(parser.parse_args(["--threshold", "0.5", "--suppression-ms", "100"]))
    assert given == RecognizerSettings(threshold=0.5, suppression_ms=100.0)
    options = options_of(parser)
    for name in listen.SETTING_OPTIONS:
        assert f"default {describe_default(getattr(RecognizerSettings(), name))}" in options[name].help


@pytest.mark.parametrize("option", ["--window-seconds", "--hidden-size"])
def test_fine_tuning_refuses_other_settings_than_its_starting_model_in_one_line(capsys, tiny_dataset, tiny_model,
                                                                               tmp_path, option):
    from speech_app.cli import main
    from speech_app.modelfile import load_model

    start = load_model(tiny_model)
    theirs = start.features.clip_seconds if option == "--window-seconds" else start.model.config.hidden_size
    other = str(theirs + 0.5) if option == "--window-seconds" else str(theirs * 2)
    out = tmp_path / "m.safetensors"
    status = main(["train", str(tiny_dataset.root), "--recipe", "dataset", "--init-from", str(tiny_model),
                   option, other, "--out", str(out), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert status == 2 and len(err.splitlines()) == 1, err
    assert f"{option} {other}" in err and str(theirs) in err and not out.exists()
