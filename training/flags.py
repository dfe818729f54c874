"""Command-line flags generated from config dataclasses (training's, and the experiments' plans).

A config field declared with `flag(default, help, ...)` is also a flag: its name
(`--batch-size` for `batch_size`, or the `name=` given), its type (from the field's
annotation), its default and its help all come from the field, so the flags, the
defaults shown by `--help` and the configs written into model.json cannot drift apart.
`augment/config.py` does the same for the augmentation knobs.

    add_flags(group, FitConfig)                       # --epochs, --batch-size, --lr, ...
    fit = from_flags(FitConfig, args, seed=args.seed) # the parsed flags -> FitConfig
"""

from __future__ import annotations

import argparse
import types
import typing
from dataclasses import Field, field, fields
from typing import Any


def flag(default: Any, help: str, *, name: str | None = None, **argparse_options: Any) -> Any:
    """A dataclass field that is also a command-line flag.

    `help` says what the field does (the default is appended in `--help`); `name` is the
    flag when it is not the field's name (`--split-by` for `unit`); other keywords go to `add_argument`
    (choices, nargs, metavar, action, or a `type` other than the annotation's).
    """
    return field(default=default, metadata={"help": help, "flag": name, "argparse": argparse_options})


def flag_fields(config_class: type) -> list[Field]:
    """The fields of `config_class` declared with `flag`, in declaration order."""
    return [spec for spec in fields(config_class) if "argparse" in spec.metadata]


def flag_name(spec: Field) -> str:
    return spec.metadata["flag"] or "--" + spec.name.replace("_", "-")


def dest(spec: Field) -> str:
    """The attribute of the parsed arguments: argparse's own rule (`--split-by` -> split_by)."""
    return flag_name(spec).lstrip("-").replace("-", "_")


def add_flags(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    config_class: type,
    only: tuple[str, ...] | None = None,
) -> None:
    """One flag per `flag` field of `config_class` (or of the fields named in `only`)."""
    hints = typing.get_type_hints(config_class)
    for spec in flag_fields(config_class):
        if only is not None and spec.name not in only:
            continue
        options = dict(spec.metadata["argparse"])
        if "action" not in options:
            options.setdefault("type", _value_type(hints[spec.name]))
        parser.add_argument(
            flag_name(spec),
            dest=dest(spec),
            default=spec.default,
            help=_help(spec.metadata["help"], spec.default),
            **options,
        )


def from_flags(config_class: type, args: argparse.Namespace, **given: Any) -> Any:
    """`config_class` from parsed flags; `given` fields (nested configs, shared seeds) as passed.

    Lists from `nargs` become tuples, as the configs hold them.
    """
    values = dict(given)
    for spec in flag_fields(config_class):
        if spec.name not in values:
            value = getattr(args, dest(spec))
            values[spec.name] = tuple(value) if isinstance(value, list) else value
    return config_class(**values)


def _value_type(hint: Any) -> type:
    """The type one command-line word converts to: `float | None` -> float, tuple[int, ...] -> int."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        hint = next(arg for arg in typing.get_args(hint) if arg is not type(None))
    if typing.get_origin(hint) is tuple:
        hint = typing.get_args(hint)[0]
    return hint


def _help(text: str, default: Any) -> str:
    """The field's help with its default; None means "see the help text", so it is not shown."""
    if default is None:
        return text
    shown = (" ".join(map(str, default)) or "none") if isinstance(default, tuple) else str(default)
    return f"{text} (default: {shown})".replace("%", "%%")
