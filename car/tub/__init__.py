"""Tubs: JPEG images plus newline-delimited JSON records in Donkeycar's v2 layout.

`TubWriter` appends crash-safely; `Tub` reads v2 (ours and Donkeycar's) and legacy v1
tubs, skipping and reporting bad records; `open_tubs` reads several as one dataset.
"""

from car.tub.errors import TubError, TubProblem, TubRecordError
from car.tub.reader import Tub, decode_jpeg, find_tubs, open_tubs
from car.tub.writer import TubWriter, image_file_name

__all__ = [
    "Tub",
    "TubError",
    "TubProblem",
    "TubRecordError",
    "TubWriter",
    "decode_jpeg",
    "find_tubs",
    "image_file_name",
    "open_tubs",
]
