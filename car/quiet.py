"""Keep what native libraries print straight to stderr out of normal runs.

TensorFlow prints its oneDNN and CPU-instruction banners while it is imported, before its
own log settings apply (TF_CPP_MIN_LOG_LEVEL does not reach them); the TFLite converter
prints a summary line of every int8 conversion; LiteRT prints "INFO: Created TensorFlow
Lite XNNPACK delegate for CPU." when a model is loaded, on the car too, and no setting
turns that off. All of them write to file descriptor 2 from C++, below Python's logging
and warnings, so the only way to hide them is to point that descriptor elsewhere for the
moment they speak. `tubcar.env` decides whether a run is verbose (`tubcar --verbose`, or
TUBCAR_VERBOSE=1, which worker processes inherit); this module carries the decision out.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

VERBOSE_VARIABLE = "TUBCAR_VERBOSE"


def verbose() -> bool:
    """True when the user asked to see every library message."""
    return os.environ.get(VERBOSE_VARIABLE, "") not in ("", "0")


@contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """Catch what is written to file descriptor 2 in the block, unless the run is verbose.

    When the block raises, what was caught is written out after all: a native library's
    own explanation of a failure (e.g. TFLite's "ERROR: ..." lines) reaches the user.
    """
    if verbose():
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            yield
        except BaseException:
            _restore(saved)
            caught.seek(0)
            os.write(2, caught.read())
            raise
        _restore(saved)


def _restore(saved: int) -> None:
    sys.stderr.flush()
    os.dup2(saved, 2)
    os.close(saved)
