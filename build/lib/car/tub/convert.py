"""Convert a Donkeycar v1 tub (meta.json + record_N.json) into a v2 tub, losslessly."""

from __future__ import annotations

from pathlib import Path

from car.tub.errors import TubError, TubProblem
from car.tub.reader import Tub
from car.tub.writer import TubWriter


def convert_v1_to_v2(source: str | Path, target: str | Path) -> tuple[Tub, list[TubProblem]]:
    """Copy every record and its JPEG bytes unchanged; excluded records become soft-deleted.

    Returns the new tub and the bad source records that were skipped; the source is untouched.
    """
    v1 = Tub(source)
    if v1.version != 1:
        raise TubError(f"{source}: is a v{v1.version} tub, not a v1 tub")
    if Path(target).exists() and any(Path(target).iterdir()):
        raise TubError(f"{target}: exists and is not empty; give a new folder")
    excluded = v1.deleted_indexes
    new_index_of = {}
    with TubWriter(
        target, v1.inputs, list(v1.types.values()), metadata={**v1.metadata, "converted_from": str(source)}
    ) as writer:
        for record in v1.records(include_deleted=True):
            fields = {key: record.get(key) for key in v1.inputs}
            for key in v1.image_keys:
                if fields[key] is not None:
                    fields[key] = v1.image_path(record, key).read_bytes()
            if "_timestamp_ms" in record:
                fields["_timestamp_ms"] = record["_timestamp_ms"]
            new_index_of[record["_index"]] = writer.write(fields)
    converted = Tub(target)
    converted.delete(new_index_of[i] for i in excluded if i in new_index_of)
    return converted, v1.problems
