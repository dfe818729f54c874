"""Tubs: JPEG images plus newline-delimited JSON records in Donkeycar's v2 layout.

`TubWriter` appends crash-safely; `Tub` reads v2 (ours and Donkeycar's) and legacy v1
tubs, skipping and reporting bad records; `open_tubs` reads several as one dataset;
`TubLock` lets one process at a time change a tub.
"""

from car.tub.errors import TubError, TubProblem, TubRecordError
from car.tub.lock import TubLock, TubLockedError
from car.tub.reader import LABEL_LIMIT, Tub, decode_jpeg, find_tubs, open_tubs
from car.tub.writer import TubWriter, image_file_name

__all__ = [
    "LABEL_LIMIT",
    "Tub",
    "TubError",
    "TubLock",
    "TubLockedError",
    "TubProblem",
    "TubRecordError",
    "TubWriter",
    "decode_jpeg",
    "find_tubs",
    "image_file_name",
    "open_tubs",
]
