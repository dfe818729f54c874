"""A style folder: the trained transform network, its settings, and where it came from.

STYLE_DIR/style.json            name, network spec, training settings, loss history
STYLE_DIR/transform.weights.h5  the network's weights
STYLE_DIR/style.png             the style image it learnt
STYLE_DIR/transform-160x120-b32.tflite
                                the network for `apply`: float32 TFLite, one per frame size
                                and batch (fixed shapes let XNNPACK plan once); written by
                                save_style for the training tubs' frame size, and by
                                tflite_file for any other size on first use
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from augment.style.network import NetworkSpec, build_transform_net, to_tflite

STYLE_FORMAT = "tubcar-style/1"
STYLE_JSON = "style.json"
WEIGHTS_FILE = "transform.weights.h5"
STYLE_IMAGE = "style.png"
APPLY_BATCH = 32  # frames per TFLite call: larger batches stop paying off on a 2-core CPU


class StyleError(ValueError):
    """A style folder that cannot be used; the message names the file and the problem."""


def read_image(path: str | Path) -> np.ndarray:
    """An image file as RGB uint8 (H, W, 3), or a StyleError naming the file."""
    if not Path(path).is_file():
        raise StyleError(f"{path}: no such image file")
    image = cv2.imread(str(path), cv2.IMREAD_COLOR_RGB)
    if image is None:
        raise StyleError(f"{path}: not a readable image file")
    return image


def save_style(
    folder: str | Path,
    network: Any,
    spec: NetworkSpec,
    style_image: np.ndarray,
    info: dict[str, Any],
    frame_size: tuple[int, int] = (120, 160),
) -> Path:
    """Write the style folder; info holds the name, training settings and loss history.

    frame_size (H, W) is the size of the tubs' frames: its TFLite file is written now so
    that `apply` starts without building a TensorFlow graph.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("transform-*.tflite"):  # made from earlier weights
        stale.unlink()
    network.save_weights(folder / WEIGHTS_FILE)
    _write_tflite(folder, network, spec, *frame_size, APPLY_BATCH)
    cv2.imwrite(str(folder / STYLE_IMAGE), cv2.cvtColor(style_image, cv2.COLOR_RGB2BGR))
    card = {
        "format": STYLE_FORMAT,
        "network": spec.to_dict(),
        "style_sha256": hashlib.sha256(np.ascontiguousarray(style_image).tobytes()).hexdigest(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **info,
    }
    (folder / STYLE_JSON).write_text(json.dumps(card, indent=2, default=_jsonable) + "\n")
    return folder


def _jsonable(value: Any) -> Any:
    if hasattr(value, "__dataclass_fields__"):
        return asdict(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot store {type(value).__name__} in {STYLE_JSON}")


def tflite_file(folder: str | Path, height: int, width: int, batch_size: int = APPLY_BATCH) -> Path:
    """The style's network for (batch_size, height, width, 3) frames as a TFLite file.

    Converted from the Keras weights and kept in the folder on first use (folders saved
    before TFLite files existed, or a new frame size); later calls only read it.
    """
    path = Path(folder) / f"transform-{width}x{height}-b{batch_size}.tflite"
    if not path.is_file():
        network, card = load_style(folder)
        _write_tflite(
            Path(folder), network, NetworkSpec.from_dict(card["network"]), height, width, batch_size
        )
    return path


def _write_tflite(
    folder: Path, network: Any, spec: NetworkSpec, height: int, width: int, batch_size: int
) -> None:
    path = folder / f"transform-{width}x{height}-b{batch_size}.tflite"
    partial = path.with_suffix(".partial")
    partial.write_bytes(to_tflite(network, spec, height, width, batch_size))
    partial.replace(path)  # a crash never leaves a half-written model behind


def read_card(folder: str | Path) -> dict[str, Any]:
    """The style.json card of a style folder, checked; "folder" is added (absolute)."""
    folder = Path(folder)
    card_path = folder / STYLE_JSON
    if not card_path.is_file():
        raise StyleError(
            f"{folder}: not a style folder (no {STYLE_JSON}); make one with `tubcar stylize train`"
        )
    try:
        card = json.loads(card_path.read_text())
        NetworkSpec.from_dict(card["network"])  # checks the network entry
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
        raise StyleError(f"{card_path}: unreadable style card ({err})") from None
    if card.get("format") != STYLE_FORMAT:
        raise StyleError(f"{card_path}: format {card.get('format')!r} is not {STYLE_FORMAT!r}")
    card["folder"] = str(folder.resolve())
    return card


def load_style(folder: str | Path) -> tuple[Any, dict[str, Any]]:
    """The transform network (Keras, variable input size) and the style.json card of a style folder."""
    folder = Path(folder)
    card = read_card(folder)
    network = build_transform_net(NetworkSpec.from_dict(card["network"]))
    try:
        network.load_weights(folder / WEIGHTS_FILE)
    except (OSError, ValueError) as err:
        raise StyleError(f"{folder / WEIGHTS_FILE}: cannot load the network weights ({err})") from None
    return network, card
