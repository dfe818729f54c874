"""Transfer learning and weighted mixing: `tubcar train --init-from [--freeze-conv]`, `--tub-weight`.

A parent is trained for one epoch on records 0-239 of the real Donkey tub, then a child is
fine-tuned from it on records 300-539: the child's bundle names its parent, starts from its
weights (frozen convolutions stay exactly the parent's) and changes the rest.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from training.data import load_weighted
from training.models import build_model
from training.pipeline import draw_plan
from training.transfer import freeze_convolutions, load_parent_weights, parent_keras_file
from tubcar.commands.train import main as train_main

QUICK = ["--epochs", "1", "--augment", "none", "--quantize", "float32", "--verbose", "0"]
QUICK += ["--augment-workers", "0", "--block-frames", "40"]


@pytest.fixture(scope="module")
def parent_and_child(donkey_tub, tmp_path_factory):
    import keras

    folder = tmp_path_factory.mktemp("transfer")
    registry = folder / "index.jsonl"
    parent, child = folder / "parent", folder / "child"
    common = [*QUICK, "--registry", str(registry), "--tub", str(donkey_tub)]
    train_main([*common, "--records", "0:240", "--out", str(parent)])
    train_main(
        [*common, "--records", "300:540", "--out", str(child), "--init-from", str(parent), "--freeze-conv"]
    )
    load = lambda path: keras.models.load_model(path / "model.keras", compile=False)  # noqa: E731
    return parent, child, load(parent), load(child), registry


def test_fine_tuning_starts_from_the_parent_and_changes_the_head(parent_and_child):
    import keras

    _, _, parent, child, _ = parent_and_child
    flatten = next(i for i, layer in enumerate(child.layers) if isinstance(layer, keras.layers.Flatten))
    for position, (before, after) in enumerate(zip(parent.layers, child.layers, strict=True)):
        if not before.weights:
            continue
        same = all(np.array_equal(a, b) for a, b in zip(before.get_weights(), after.get_weights()))
        if position < flatten:
            assert same, f"the frozen {before.name} moved"
        else:
            assert not same, f"fine-tuning left the trainable {before.name} as the parent had it"


def test_the_bundle_and_the_registry_name_the_parent(parent_and_child):
    parent, child, _, _, registry = parent_and_child
    card = json.loads((child / "model.json").read_text())
    named = card["training"]["parent"]
    assert named["bundle"] == str(parent.resolve()) and named["froze_convolutions"] is True
    assert named["records"]["train"]  # the parent's own training records travel with it
    ranges = [r for used in named["records"]["train"].values() for r in used["ranges"]]
    assert all(start >= 0 and stop <= 240 for start, stop in ranges)
    child_records = card["training"]["records"]["train"]
    assert all(a >= 300 and b <= 540 for used in child_records.values() for a, b in used["ranges"])
    assert f"initialised from: {parent}" in (child / "report.md").read_text()
    runs = [json.loads(line) for line in registry.read_text().splitlines()]
    assert runs[0]["parent"] is None and runs[1]["parent"]["bundle"] == str(parent.resolve())


def test_a_parent_of_another_architecture_is_refused(parent_and_child):
    parent, *_ = parent_and_child
    with pytest.raises(ValueError, match="do not fit this model"):
        load_parent_weights(build_model("linear", (120, 160, 3)), parent)
    with pytest.raises(ValueError, match=r"bundle folder or a \.keras file"):
        parent_keras_file(parent / "model.json")
    assert freeze_convolutions(build_model("fast", (40, 80, 3))) == 8  # 4 convs + their batch norms


def test_weighted_tubs_are_drawn_in_proportion_to_their_weights(donkey_tub):
    frames, report = load_weighted([donkey_tub, donkey_tub], [1.0, 0.25], workers=2, progress=False)
    assert len(frames) == report.kept == 2000 and frames.tubs() == [str(donkey_tub)]
    assert set(frames.weights[:1000]) == {1.0} and set(frames.weights[1000:]) == {0.25}
    plan = draw_plan(2000, 64, 0, frames.weights)
    picks = np.concatenate([next(plan)[1] for _ in range(200)])
    share = np.mean(picks < 1000)
    assert share == pytest.approx(0.8, abs=0.02)  # 1000 * 1 : 1000 * 0.25
    with pytest.raises(ValueError, match="one per --tub"):
        load_weighted([donkey_tub], [1.0, 2.0])
