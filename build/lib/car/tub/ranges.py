"""Record index ranges as people type them: `100:250` (STOP excluded, as in Python) or `7`.

One parser for every command that selects records by `_index` (`tubcar tub delete`,
`tubcar train --records`, `tubcar replay --records`), so they all read a range alike.
"""

from __future__ import annotations

import argparse


def parse_index_range(text: str) -> range:
    """'100:250' -> records 100..249; '7' -> record 7 alone. Usable as an argparse `type`."""
    start, colon, stop = text.partition(":")
    try:
        found = range(int(start), int(stop)) if colon else range(int(text), int(text) + 1)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an index or a START:STOP range (e.g. 100:250, STOP excluded)"
        ) from None
    if not found:
        raise argparse.ArgumentTypeError(f"{text!r} is an empty range: STOP must be above START")
    return found
