"""The process environment every `tubcar` command sets before heavy imports, in one place.

Normal runs are quiet: TensorFlow's C++ info and warning lines (TF_CPP_MIN_LOG_LEVEL), its
import banners (silenced while `tensorflow` is first imported, see `car.quiet`), its
Python warnings (tf.function retracing), absl's and Keras's warnings. `tubcar --verbose`
shows them all (and TUBCAR_VERBOSE=1 tells worker processes). albumentations checks PyPI
for a newer version on import unless told not to; there is no network on a car or a lab
machine, and the check delays every run. A user's own environment settings win.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import logging
import os
import sys
import warnings
from types import ModuleType

from car import quiet

DEFAULTS = {
    "NO_ALBUMENTATIONS_UPDATE": "1",  # albumentations' version check over the network
}
QUIET_DEFAULTS = {
    "TF_CPP_MIN_LOG_LEVEL": "2",  # TensorFlow's C++ info and warning lines
}
QUIET_LOGGERS = ("tensorflow", "absl", "keras")  # retracing warnings, absl's and Keras's notes
QUIET_IMPORTS = ("tensorflow",)  # their native banners are hidden while they load


def apply(verbose: bool = False) -> None:
    """Set the environment for this process and the processes it starts."""
    for name, value in DEFAULTS.items():
        os.environ.setdefault(name, value)
    if verbose:
        os.environ[quiet.VERBOSE_VARIABLE] = "1"
    if quiet.verbose():  # asked for here, or by the process that started this one
        return
    for name, value in QUIET_DEFAULTS.items():
        os.environ.setdefault(name, value)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    for module in QUIET_LOGGERS:
        warnings.filterwarnings("ignore", category=UserWarning, module=rf"{module}(\.|$)")
    if not any(isinstance(finder, _QuietImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _QuietImport())


class _QuietImport(importlib.abc.MetaPathFinder):
    """Finds QUIET_IMPORTS as Python would, and runs their first import with stderr silenced."""

    def find_spec(self, fullname, path, target=None):
        if fullname not in QUIET_IMPORTS:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


class _QuietLoader(importlib.abc.Loader):
    """The module's own loader, its `exec_module` run with native stderr silenced."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        module.__loader__ = self.loader  # the module sees its own loader
        if module.__spec__ is not None:
            module.__spec__.loader = self.loader
        with quiet.native_stderr_silenced():
            self.loader.exec_module(module)
