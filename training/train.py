"""One training run, end to end: tubs -> split -> fit -> report -> model bundle.

Writes into `out`: `pilot.tflite` + `model.json` (the bundle), `model.keras`,
`report.md`, `metrics.json`, `learning_curves.png`, `test_predictions.png`,
`checkpoints/best.keras` and TensorBoard `logs/`.

With `distribute="multiworker"` every worker runs `train` with its own TF_CONFIG; only
the chief (worker 0) evaluates and exports, the others save their copy of the model in
a scratch folder (`out/workers/worker_<i>`) and return (see training.distribute).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from car.frames import FrameSpec, normalise
from training.augment_workers import AugmentedBatches
from training.data import Frames, LoadReport, RecordFilter, load_frames, source_size
from training.distribute import CHOICES as DISTRIBUTE_CHOICES
from training.distribute import fit_multiworker, is_chief, output_dir, strategy_from_flag
from training.export import QUANTIZATIONS, export_bundle
from training.fit import FitConfig, fit
from training.flags import flag
from training.latency import DEFAULT_BUDGET_MS, PI4_SCALE_FACTOR
from training.models import ARCHITECTURES, ModelOptions, build_model, default_frame_spec, set_output_bias
from training.pipeline import (
    augmented_dataset,
    evaluation_dataset,
    prepare_all,
    steps_per_epoch,
    training_dataset,
    worker_augmented_dataset,
)
from training.report import (
    OUTPUTS,
    baseline_errors,
    diagnose,
    errors,
    markdown,
    noise_floor,
    plot_learning_curves,
    plot_predictions,
)
from training.split import Split, SplitConfig, split_frames

KERAS_FILE = "model.keras"


@dataclass(frozen=True)
class TrainOptions:
    """Everything one run needs besides the data; `flag` fields are flags of `tubcar train`."""

    architecture: str = flag("fast", "architecture", name="--model", choices=ARCHITECTURES)
    model: ModelOptions = field(default_factory=ModelOptions)
    fit: FitConfig = field(default_factory=FitConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    rules: RecordFilter = field(default_factory=RecordFilter)
    frame_overrides: dict[str, Any] = field(default_factory=dict)  # FrameSpec fields, e.g. crop_top
    quantization: str = flag(
        "auto", "auto: int8 if it passes parity", name="--quantize", choices=("auto", *QUANTIZATIONS)
    )
    budget_ms: float = flag(
        DEFAULT_BUDGET_MS, "model latency allowed on a Pi 4 (20 Hz loop), ms", name="--latency-budget-ms"
    )
    pi_scale_factor: float = flag(PI4_SCALE_FACTOR, "assumed Pi 4 / this machine latency ratio")
    augment: Any = None  # augment.AugmentConfig, or None for no augmentation
    workers: int = flag(4, "threads decoding JPEGs")
    augment_workers: int = flag(
        os.cpu_count() or 1,
        "processes augmenting training batches, one per CPU core by default (0: in the training process)",
    )
    distribute: str = flag(
        "none",
        "mirrored: every local GPU; multiworker: several machines, each with its TF_CONFIG",
        choices=DISTRIBUTE_CHOICES,
    )

    @property
    def augments(self) -> bool:
        return self.augment is not None and self.augment.enabled


@dataclass
class TrainResult:
    out: Path
    card: Any  # car.bundle.ModelCard; None on a multi-worker run's non-chief workers
    metrics: dict[str, Any]
    history: dict[str, list[float]]
    split: Split
    model: Any  # the Keras model (best dev-loss weights)
    report_text: str


def frame_spec(frames: Frames, options: TrainOptions) -> FrameSpec:
    """The architecture's input for this camera, with the user's overrides applied."""
    width, height = source_size(frames)
    return replace(default_frame_spec(options.architecture, width, height), **options.frame_overrides)


def build_augmenter(options: TrainOptions) -> Callable | None:
    """The augment package's label-aware augmenter, or None when augmentation is off."""
    if options.augment is None or not options.augment.enabled:
        return None
    import augment

    return augment.build_augmenter(options.augment, seed=options.fit.seed)


def predict(model, prepared: np.ndarray, spec: FrameSpec) -> dict[str, np.ndarray]:
    """Keras predictions by output name, each (N,)."""
    outputs = model.predict(
        evaluation_dataset(prepared, np.zeros(len(prepared)), np.zeros(len(prepared)), spec), verbose=0
    )
    return {name: np.asarray(values).reshape(-1) for name, values in zip(OUTPUTS, outputs)}


def labels(frames: Frames) -> dict[str, np.ndarray]:
    return {"angle": frames.angles, "throttle": frames.throttles}


def evaluate(
    model, sets: dict[str, tuple[Frames, np.ndarray]], spec: FrameSpec, all_frames: Frames
) -> dict[str, Any]:
    """Errors on each set, the train-mean baseline, the noise floor and the diagnosis."""
    train_labels = labels(sets["train"][0])
    predictions = {name: predict(model, prepared, spec) for name, (_, prepared) in sets.items()}
    errs = {name: errors(labels(frames), predictions[name]) for name, (frames, _) in sets.items()}
    floor = {name: noise_floor(getattr(all_frames, f"{name}s"), all_frames.sessions) for name in OUTPUTS}
    return {
        "errors": errs,
        "baseline": {
            name: baseline_errors(train_labels, labels(frames)) for name, (frames, _) in sets.items()
        },
        "noise_floor": floor,
        "diagnosis": diagnose(errs["train"]["angle"]["mse"], errs["dev"]["angle"]["mse"], floor["angle"]),
        "predictions": predictions,
    }


def train(
    tubs: list[str | Path] | None,
    out: str | Path,
    options: TrainOptions = TrainOptions(),
    *,
    frames: tuple[Frames, LoadReport] | None = None,
    split: Split | None = None,
    log=print,
) -> TrainResult:
    """Train, report and export one model; `frames`/`split` may be given to skip loading/splitting."""
    import cv2
    import keras

    cv2.setNumThreads(0)  # OpenCV's own thread pool inside tf.data's threads can deadlock
    started = time.perf_counter()
    strategy = strategy_from_flag(options.distribute)
    out = output_dir(out)  # non-chief workers of a cluster write into scratch folders
    out.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(options.fit.seed)

    all_frames, load_report = frames or load_frames(
        tubs or [], options.rules, options.workers, progress=options.fit.verbose > 0
    )
    log(f"data: {load_report.summary()}")
    for line in load_report.bad[:5]:
        log(f"  skipped: {line}")
    split = split or split_frames(all_frames.sessions, options.split)
    log(f"split by {options.split.unit}s of {options.split.block_frames} frames: {split.sizes()}")
    if not len(split.dev):
        raise ValueError("the dev set is empty: early stopping and the report need one (check --split)")

    spec = frame_spec(all_frames, options)
    subsets = {
        name: all_frames.take(getattr(split, name))
        for name in ("train", "dev", "test")
        if len(getattr(split, name))
    }
    prepared = {name: prepare_all(subset.images, spec) for name, subset in subsets.items()}
    augmenter = build_augmenter(options)
    train_set = subsets["train"]
    dev_set = subsets["dev"]
    dev_data = evaluation_dataset(prepared["dev"], dev_set.angles, dev_set.throttles, spec)
    steps = steps_per_epoch(len(train_set), options.fit.batch_size)

    def build():
        model = build_model(options.architecture, spec.input_shape, options.model)
        set_output_bias(
            model, {"angle": float(train_set.angles.mean()), "throttle": float(train_set.throttles.mean())}
        )
        return model

    log(
        f"model {options.architecture}: input {spec.input_shape}, augmentation "
        f"{f'on ({options.augment_workers} worker processes)' if augmenter else 'off'}, distribute {options.distribute}"
    )
    with ExitStack() as cleanup:
        if augmenter:
            batches = cleanup.enter_context(
                AugmentedBatches(
                    train_set.images,
                    train_set.angles,
                    train_set.throttles,
                    augmenter,
                    spec,
                    options.augment_workers,
                )
            )
            if options.distribute == "multiworker":  # each worker augments only its share of a global batch
                train_data = partial(
                    worker_augmented_dataset, batches, spec, options.fit.batch_size, options.fit.seed
                )
            else:
                train_data = augmented_dataset(batches, spec, options.fit.batch_size, options.fit.seed)
        else:
            train_data = training_dataset(
                prepared["train"],
                train_set.angles,
                train_set.throttles,
                spec,
                options.fit.batch_size,
                options.fit.seed,
            )
        model, history = fit_with_strategy(build, train_data, dev_data, steps, options, out, strategy, log)
    train_seconds = time.perf_counter() - started
    model.save(out / KERAS_FILE)
    if not is_chief():
        log(f"worker done: its copy of the model is in {out}; the chief evaluates and exports")
        return TrainResult(out, None, {}, history, split, model, "")

    evaluation = evaluate(
        model, {name: (subsets[name], prepared[name]) for name in subsets}, spec, all_frames
    )
    predictions = evaluation.pop("predictions")
    best_epoch = int(np.argmin(history["val_loss"])) + 1
    evaluation["summary"] = {
        "architecture": options.architecture,
        "frames": f"{split.sizes()} (split by {options.split.unit})",
        "epochs run": f"{len(history['loss'])} (best dev loss at epoch {best_epoch})",
        "training time": f"{train_seconds:.0f} s",
        "augmentation": "on" if augmenter else "off",
    }
    plot_learning_curves(history, out / "learning_curves.png")
    if "test" in subsets:
        plot_predictions(subsets["test"].angles, predictions["test"]["angle"], out / "test_predictions.png")
    text = markdown(evaluation, f"Training report: {options.architecture}")
    (out / "report.md").write_text(text)
    (out / "metrics.json").write_text(json.dumps(evaluation, indent=2))
    log(text)

    representative = normalise(
        prepared["train"][np.random.default_rng(options.fit.seed).permutation(len(train_set))[:200]], spec
    )
    card = export_bundle(
        model,
        spec,
        out,
        architecture=options.architecture,
        representative=representative,
        parity_inputs=normalise(prepared["dev"], spec),
        quantization=options.quantization,
        training=training_record(load_report, split, options, history, train_seconds),
        metrics={key: evaluation[key] for key in ("errors", "baseline", "noise_floor", "diagnosis")},
        budget_ms=options.budget_ms,
        pi_scale_factor=options.pi_scale_factor,
        log=log,
    )
    return TrainResult(out, card, evaluation, history, split, model, text)


def fit_with_strategy(
    build: Callable, train_data, dev_data, steps: int, options: TrainOptions, out: Path, strategy, log=print
) -> tuple[Any, dict[str, list[float]]]:
    """The model `build()` makes, trained under `strategy`; returns (model, history).

    `none` and `mirrored` run `training.fit.fit` (early stopping, checkpoints) with the
    model built and compiled in the strategy's scope. `multiworker` runs the custom loop
    of `fit_multiworker` (Keras 3's fit and predict fail under that strategy), for all
    `epochs`, then copies the weights into a model built outside the scope, which
    evaluation and export can use.
    """
    with strategy.scope():
        model = build()
        log(f"{model.count_params():,} parameters, {strategy.num_replicas_in_sync} replica(s)")
        if options.distribute != "multiworker":
            return model, fit(model, train_data, dev_data, steps, options.fit, out)
    history = fit_multiworker(model, train_data, steps, options.fit, strategy, dev_data=dev_data, log=log)
    plain = build()
    plain.set_weights(model.get_weights())
    return plain, history


def training_record(
    load_report: LoadReport, split: Split, options: TrainOptions, history: dict, seconds: float
) -> dict:
    """model.json's `training` entry: the data, the split, every setting, the run."""
    return {
        "data": load_report.to_dict(),
        "split": {**asdict(options.split), "sizes": split.sizes()},
        "filter": asdict(options.rules),
        "model": asdict(options.model),
        "fit": options.fit.to_dict(),
        "augment": options.augment.to_dict() if options.augment is not None else None,
        "distribute": options.distribute,
        "epochs_run": len(history["loss"]),
        "best_dev_loss": float(min(history["val_loss"])),
        "seconds": round(seconds, 1),
    }
