"""User mistakes, said in one line: `error: <what>, <where>, <what to do>`, exit code 2.

The library raises its own error types for bad input (a path that is not a tub, a folder
that is not a model bundle, a config key that does not exist, ...), and their messages say
what is wrong and where. `tubcar.cli` catches them for every command and adds what to do;
anything else is a bug and keeps its traceback. The commands' argument parsers come from
`command_parser`, whose mistakes (an unknown flag, a missing argument) read the same way.
`tubcar --verbose COMMAND` shows the traceback of a user error too.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, NoReturn

EXIT_USER_ERROR = 2  # what argparse uses for a usage error: one exit code for every mistake

# The library's user-error types, by "module:Class", with what to do about one. They are
# looked up among the modules already imported: an error can only come from a module the
# command loaded, so `tubcar tub info` never pays for importing the style-transfer code.
HINTS = {
    "car.tub.errors:TubError": "check the path (`tubcar tub check PATH` says what is wrong in a tub)",
    "car.bundle:BundleError": "give the folder `tubcar train` wrote (e.g. runs/demo/fast after ./demo.sh)",
    "car.config:ConfigError": "fix it in the config file (config/car.example.toml lists every key)",
    "augment.style.store:StyleError": "",  # its messages say what to do
    "augment.style.loss:VggWeightsMissing": "",  # its message says where to get the weights
    "training.distribute:DistributeError": "see `tubcar train --help` (--distribute)",
}


class UserError(Exception):
    """A mistake a command finds itself; its message already says what to do."""


def _user_error_hint(err: BaseException) -> str | None:
    """What to do about `err` if it is one of the library's user errors, else None."""
    for name, hint in HINTS.items():
        module_name, class_name = name.split(":")
        error_type = getattr(sys.modules.get(module_name), class_name, None)
        if isinstance(error_type, type) and isinstance(err, error_type):
            return hint
    return None


def one_line(text: str) -> str:
    """A message as one line, however it was written."""
    return " ".join(text.split())


def describe(err: BaseException) -> str | None:
    """The one line a user sees for `err`, or None when `err` is a bug (show the traceback)."""
    if isinstance(err, UserError):
        return f"error: {one_line(str(err))}"
    hint = _user_error_hint(err)
    if hint is not None:
        message = one_line(str(err))
        return f"error: {message}" + (f"; {hint}" if hint and hint not in message else "")
    path_errors = (FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError)
    if isinstance(err, path_errors) and err.filename is not None:
        what = (err.strerror or type(err).__name__).lower()
        return f"error: {what}, {err.filename}, check the path"
    return None


def exit_message(code: object) -> str | None:
    """The one line for `raise SystemExit("message")` (Python's way to stop with a message)."""
    if not isinstance(code, str):
        return None
    message = one_line(code)
    return message if message.startswith("error: ") else f"error: {message}"


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """The command's docstring as written, and every option's default where it has one
    (unless its help already speaks of it), options without help included."""

    def add_argument(self, action: argparse.Action) -> None:
        help_text = action.help or ""
        no_default = any(action.default is value for value in (None, False, argparse.SUPPRESS))  # 0 is one
        hidden = action.help is argparse.SUPPRESS or "default" in help_text.lower()
        if action.option_strings and not no_default and not hidden:
            action.help = f"{help_text} (default: %(default)s)".lstrip()
        super().add_argument(action)


class CommandParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line, like every other mistake.

    Subcommand parsers are made of the same class (argparse's default), so `tubcar tub
    info --bogus` answers `error: unrecognized arguments: --bogus, tubcar tub info, ...`.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USER_ERROR, f"error: {message}, {self.prog}, see `{self.prog} --help`\n")


def command_parser(prog: str, description: str | None) -> CommandParser:
    """The parser of one `tubcar` command: its docstring as help, defaults shown, one-line errors."""
    return CommandParser(prog=prog, description=description)
