"""Command-line options built from the fields of the settings dataclasses (`TrainConfig`,
`ModelConfig`, `CustomWordsRecipe`, `RecognizerSettings`...): an option's type, help text and
default come from its field, so a default is written once, where the setting lives.

A field's metadata: `help`, the option's help text, to which the default read from the field is
added; `default_text`, what a None default means; `default_note`, a word on the default.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from pathlib import Path


def setting_field(config_cls: type, name: str) -> dataclasses.Field:
    """The field `name` of a settings dataclass; a dotted name reaches into a nested one
    (`augment.speed`: the field `speed` of the dataclass that `TrainConfig.augment` holds)."""
    head, _, rest = name.partition(".")
    found = {f.name: f for f in dataclasses.fields(config_cls)}[head]
    return setting_field(value_type(config_cls, head), rest) if rest else found


def setting_default(config_cls: type, name: str):
    """The default of a (possibly dotted) field, as a fresh instance of the dataclass holds it."""
    value = config_cls()
    for part in name.split("."):
        value = getattr(value, part)
    return value


def value_type(config_cls: type, name: str) -> type:
    """The type of a (possibly dotted) field, `int | None` read as int."""
    head, _, rest = name.partition(".")
    hint = typing.get_type_hints(config_cls)[head]
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        hint = next(arg for arg in typing.get_args(hint) if arg is not type(None))
    return value_type(hint, rest) if rest else hint


def setting_help(config_cls: type, name: str) -> str:
    return setting_field(config_cls, name).metadata["help"]


def describe_default(value) -> str:
    """A default as the help text shows it: 0.002, not 2e-03."""
    return format(value, "g") if isinstance(value, float) else str(value)


def add_setting_option(parser, config_cls: type, name: str, flag: str | None = None, *,
                       default_text: str | None = None, help_prefix: str = "", **kwargs) -> argparse.Action:
    """`--name` (or `flag`) for a field: its type and help from the field. The parsed value is None when
    the option is not given, so the dataclass (or the recipe that chooses between several) supplies
    the default; `default_text` says what that default is when it is not simply the field's."""
    metadata = setting_field(config_cls, name).metadata
    value = metadata.get("default_text") or describe_default(setting_default(config_cls, name))
    default = default_text or f"default {value}" + (f"; {metadata['default_note']}" if "default_note" in metadata else "")
    help_text = f"{help_prefix}{setting_help(config_cls, name)} ({default})".replace("%", "%%")
    option = flag or "--" + name.rpartition(".")[2].replace("_", "-")
    kind = value_type(config_cls, name)
    return parser.add_argument(option, type=kind, default=None, help=help_text, **kwargs)


def given(args: argparse.Namespace, dests: dict[str, str]) -> dict:
    """{field: value} of the options in `dests` (option dest -> field) that the command line gave."""
    return {field: getattr(args, dest) for dest, field in dests.items() if getattr(args, dest, None) is not None}


def add_model_option(parser) -> None:
    """--model, as every command that runs a model takes it."""
    parser.add_argument("--model", type=Path, help="model file (default: the shipped model)")
