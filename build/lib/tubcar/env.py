"""The process environment every entry point sets before heavy imports, in one place.

TensorFlow reads `TF_CPP_MIN_LOG_LEVEL` when it is first imported and albumentations
checks PyPI for a newer version on import unless told not to (there is no network on a
car or a lab machine, and the check delays every run). A user's own setting wins.
"""

from __future__ import annotations

import os

DEFAULTS = {
    "TF_CPP_MIN_LOG_LEVEL": "2",  # TensorFlow's C++ info and warning lines
    "NO_ALBUMENTATIONS_UPDATE": "1",  # albumentations' version check over the network
}


def apply() -> None:
    """Set each default that the environment does not already set."""
    for name, value in DEFAULTS.items():
        os.environ.setdefault(name, value)
