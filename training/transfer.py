"""Transfer learning: start from a trained model's weights and fine-tune them.

The recipe for scarce target data (a few minutes of a real track) beside plentiful
related data (the simulator): pre-train where data is plentiful, then train on the
target from those weights instead of from random ones (`tubcar train --init-from
BUNDLE_OR_KERAS`). The parent is a bundle folder (its `model.keras`, written by every
`tubcar train` run) or a `.keras` file; it must be the same architecture with the same
input. `--freeze-conv` keeps the convolutions (and their batch normalisation, which then
runs on its learnt statistics) as the parent left them and trains only the dense layers:
fewer free weights for few frames. The parent is named in model.json and the report
(`parent_record`), so a fine-tuned model can always be traced to what it started from.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from car.bundle import MODEL_JSON, BundleError, load_card

KERAS_FILE = "model.keras"


def parent_keras_file(source: str | Path) -> Path:
    """The Keras file of `--init-from`: a bundle folder's model.keras, or a .keras file."""
    path = Path(source)
    keras_file = path / KERAS_FILE if path.is_dir() else path
    if path.is_dir() and not keras_file.exists():
        raise ValueError(
            f"{path}: no {KERAS_FILE} in this bundle folder (a bundle exported from a .keras file "
            "keeps it elsewhere: give --init-from that .keras file)"
        )
    if keras_file.suffix != ".keras" or not keras_file.is_file():
        raise ValueError(f"{source}: --init-from takes a bundle folder or a .keras file")
    return keras_file


def parent_record(source: str | Path) -> dict[str, Any]:
    """What model.json says about the parent: its file and, from its model.json, how and
    on which records it was trained."""
    keras_file = parent_keras_file(source)
    record: dict[str, Any] = {"keras_file": str(keras_file.resolve())}
    if (keras_file.parent / MODEL_JSON).exists():
        try:
            card = load_card(keras_file.parent)
        except BundleError as err:
            record["model_json_problem"] = str(err)
            return record
        record.update(
            bundle=str(keras_file.parent.resolve()),
            architecture=card.architecture,
            created=card.created,
            git_revision=card.git_revision,
            records=card.training.get("records"),
            parent=card.training.get("parent"),
        )
    return record


def load_parent_weights(model, source: str | Path) -> None:
    """Copy the parent's weights into `model`, which must have the same layers and shapes."""
    import keras

    keras_file = parent_keras_file(source)
    parent = keras.models.load_model(keras_file, compile=False)
    ours = [tuple(weight.shape) for weight in model.weights]
    theirs = [tuple(weight.shape) for weight in parent.weights]
    if ours != theirs:
        raise ValueError(
            f"{keras_file}: its weights do not fit this model (input {parent.input_shape[1:]} vs "
            f"{model.input_shape[1:]}, {len(theirs)} vs {len(ours)} weight arrays): fine-tune the "
            "same architecture with the same --model and input flags"
        )
    model.set_weights(parent.get_weights())


def freeze_convolutions(model) -> int:
    """Make every layer before the first Flatten untrainable; returns how many were frozen."""
    import keras

    frozen = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Flatten):
            return frozen
        if layer.weights:
            layer.trainable = False
            frozen += 1
    raise ValueError(f"model {model.name} has no Flatten layer: cannot tell its convolutions from its head")
