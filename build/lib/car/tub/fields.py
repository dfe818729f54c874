"""Field types of tub records: checking values on write, converting them on read.

The type names are Donkeycar's, so tubs travel both ways. Values are stored in JSON as
Donkeycar stores them: numbers, strings, booleans, lists; images as a file name.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

IMAGE_TYPES = ("image_array",)
NUMBER_TYPES = ("float", "int")
KNOWN_TYPES = ("float", "int", "str", "boolean", "image_array", "nparray", "list", "vector")


def is_finite_number(value: Any) -> bool:
    return (
        isinstance(value, (int, float, np.integer, np.floating))
        and not isinstance(value, bool)
        and math.isfinite(value)
    )


def encode_value(key: str, kind: str, value: Any) -> Any:
    """Python/NumPy value -> JSON-ready value; raises ValueError naming the key when invalid."""
    if value is None:
        return None
    if kind in NUMBER_TYPES:
        if not is_finite_number(value):
            raise ValueError(f"refusing to write {key}={value!r}: {kind} fields must be finite numbers")
        return int(value) if kind == "int" else float(value)
    if kind == "boolean":
        return bool(value)
    if kind == "str":
        return str(value)
    if kind in ("nparray", "list", "vector"):
        array = np.asarray(value)
        if array.dtype.kind in "fc" and not np.all(np.isfinite(array)):
            raise ValueError(f"refusing to write {key}: {kind} holds NaN or inf")
        return array.tolist()
    raise ValueError(f"field {key!r} has unknown type {kind!r}; known types: {', '.join(KNOWN_TYPES)}")


def decode_value(key: str, kind: str, value: Any) -> Any:
    """JSON value -> Python/NumPy value; raises ValueError when it is not what the type says."""
    if value is None:
        return None
    if kind in NUMBER_TYPES:
        if not is_finite_number(value):
            raise ValueError(f"{key} is {value!r}, not a finite number")
        return float(value) if kind == "float" else int(value)
    if kind == "nparray":
        return np.asarray(value)
    return value
