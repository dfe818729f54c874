"""One training run, end to end: tubs -> split -> fit -> evaluate -> report -> model bundle.

    train(tubs, out, options)
      start_run     output folder, tf.distribute strategy, seeds            -> Run
      load_data     tubs -> labelled frames in memory, bad records counted  -> Frames, LoadReport
      split_data    train/dev/test, each prepared as the model's input      -> DataSets
      fit_model     build the model, fit it (early stopping), model.keras   -> Fitted
      evaluate      errors, baselines, noise floor, diagnosis               -> Evaluation
      write_report  report.md, metrics.json, learning_curves.png, test_predictions.png
      export_model  pilot.tflite + model.json                               -> ModelCard

Each stage is timed (`TrainResult.stage_seconds`, `tubcar train`'s "took" line), so a
slow run says where its seconds went.

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
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from car.bundle import ModelCard
from car.frames import FrameSpec
from training.data import (
    Frames,
    LoadReport,
    RecordFilter,
    load_frames,
    load_weighted,
    records_used,
    source_size,
)
from training.distribute import CHOICES as DISTRIBUTE_CHOICES
from training.distribute import fit_multiworker, is_chief, output_dir, strategy_from_flag
from training.export import QUANTIZATIONS, export_bundle
from training.fit import FitConfig, fit
from training.flags import flag
from training.latency import DEFAULT_BUDGET_MS, PI4_SCALE_FACTOR
from training.models import (
    ARCHITECTURES,
    OUTPUT_NAMES,
    ModelOptions,
    build_model,
    default_frame_spec,
    keras_predictions,
    set_output_bias,
)
from training.pipeline import (
    evaluation_dataset,
    prepare_all,
    representative_frames,
    steps_per_epoch,
    training_input,
)
from training.report import (
    SETS,
    baseline_errors,
    diagnose,
    errors,
    markdown,
    noise_floor_interval,
    plot_learning_curves,
    plot_predictions,
)
from training.split import Split, SplitConfig, split_frames, split_mismatched
from training.transfer import KERAS_FILE, freeze_convolutions, load_parent_weights, parent_record

if TYPE_CHECKING:
    from augment.transforms import Augmenter


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
    init_from: str | None = flag(
        None,
        "fine-tune: start from the weights of this bundle folder (its model.keras) or .keras file",
        metavar="BUNDLE_OR_KERAS",
    )
    freeze_conv: bool = flag(
        False,
        "with --init-from: train only the dense layers, the convolutions stay the parent's",
        action="store_true",
    )

    def __post_init__(self) -> None:
        if self.freeze_conv and not self.init_from:
            raise ValueError("--freeze-conv keeps a parent's convolutions: give the parent with --init-from")

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
    stage_seconds: dict[str, float] = field(default_factory=dict)  # Stopwatch.laps: where the time went


@dataclass
class Stopwatch:
    """Seconds per stage of a run, in order: where the time from tubs to a bundle goes."""

    laps: dict[str, float] = field(default_factory=dict)
    last: float = field(default_factory=time.perf_counter)

    def lap(self, stage: str) -> None:
        """Record the seconds since the previous lap (or the start) as `stage`."""
        now = time.perf_counter()
        self.laps[stage] = round(now - self.last, 2)
        self.last = now


def stages_text(stages: dict[str, float]) -> str:
    """'set-up 4.1, data 2.4, ... s': where a run's seconds went (`TrainResult.stage_seconds`)."""
    return ", ".join(f"{stage} {seconds:.1f}" for stage, seconds in stages.items()) + " s"


@dataclass(frozen=True, kw_only=True)
class Run:
    """Where this process writes, how it distributes the work, and when it started."""

    out: Path  # a scratch folder on a multi-worker run's non-chief workers
    strategy: Any  # the tf.distribute strategy
    started: float  # time.perf_counter() at the start: training time counts loading too


@dataclass(frozen=True, kw_only=True)
class Sources:
    """Where the frames come from: the training tubs (with their weights) and, for the
    recipe's mismatched data, the dev and test tubs."""

    tubs: Sequence[str | Path] = ()
    tub_weights: Sequence[float] | None = None  # one per path of `tubs`; None: all count alike
    dev_tubs: Sequence[str | Path] = ()
    test_tubs: Sequence[str | Path] = ()

    @property
    def mismatched(self) -> bool:
        return bool(self.dev_tubs or self.test_tubs)


@dataclass(frozen=True, kw_only=True)
class DataSets:
    """The run's frames split into train/training-dev/dev/test, each also prepared as the model's input."""

    frames: Frames  # every kept frame: the training tubs' first, then any dev/test tubs'
    training_frames: int  # how many of them come from the training tubs (the noise floor's)
    load_report: LoadReport  # the training tubs'
    target_report: LoadReport | None  # the dev/test tubs', when they are other tubs
    split: Split
    spec: FrameSpec
    sets: dict[str, Frames]  # "train", "dev" and those of "train_dev", "test" that are not empty
    prepared: dict[str, np.ndarray]  # the same sets as model frames, (N, H, W, C) uint8


@dataclass(frozen=True, kw_only=True)
class Fitted:
    """The trained model and how training went."""

    model: Any  # Keras, with its best dev-loss weights
    history: dict[str, list[float]]
    seconds: float  # from the start of the run to the end of fitting


@dataclass(frozen=True, kw_only=True)
class Evaluation:
    """How well the model predicts each set, beside the baselines."""

    metrics: dict[str, Any]  # metrics.json: errors, baseline, noise_floor, diagnosis, summary
    predictions: dict[str, dict[str, np.ndarray]]  # set -> output -> (N,)


def train(
    tubs: Sequence[str | Path] | Sources | None,
    out: str | Path,
    options: TrainOptions = TrainOptions(),
    *,
    frames: tuple[Frames, LoadReport] | None = None,
    split: Split | None = None,
    log=print,
) -> TrainResult:
    """Train, report and export one model; `frames`/`split` may be given to skip loading/splitting.

    `tubs`: the training tubs, or `Sources` (weighted tubs, other tubs for dev/test).
    """
    watch = Stopwatch()
    run = start_run(out, options)
    watch.lap("set-up")  # mostly importing TensorFlow
    sources = tubs if isinstance(tubs, Sources) else Sources(tubs=tubs or ())
    data = split_data(sources, options, frames, split, log)
    watch.lap("data")
    fitted = fit_model(data, options, run, log)
    watch.lap("fit")
    if not is_chief():
        log(f"worker done: its copy of the model is in {run.out}; the chief evaluates and exports")
        return TrainResult(run.out, None, {}, fitted.history, data.split, fitted.model, "", watch.laps)
    evaluation = evaluate(fitted, data, options)
    watch.lap("evaluate")
    text = write_report(evaluation, fitted, data, options, run.out, log)
    watch.lap("report")
    card = export_model(fitted, data, evaluation, options, run.out, log)
    watch.lap("export")
    return TrainResult(
        run.out, card, evaluation.metrics, fitted.history, data.split, fitted.model, text, watch.laps
    )


def start_run(out: str | Path, options: TrainOptions) -> Run:
    """The output folder (a scratch one on non-chief workers), the strategy, seeded randomness."""
    import cv2
    import keras

    cv2.setNumThreads(0)  # OpenCV's own thread pool inside tf.data's threads can deadlock
    started = time.perf_counter()
    strategy = strategy_from_flag(options.distribute)
    folder = output_dir(out)
    folder.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(options.fit.seed)
    return Run(out=folder, strategy=strategy, started=started)


def load_data(
    tubs: Sequence[str | Path],
    options: TrainOptions,
    weights: Sequence[float] | None = None,
    log=print,
    what: str = "data",
) -> tuple[Frames, LoadReport]:
    """Every record the filter keeps, decoded into memory, weighted by tub; says what was kept."""
    progress = options.fit.verbose > 0
    if weights is None:
        frames, report = load_frames(tubs, options.rules, options.workers, progress=progress)
    else:
        frames, report = load_weighted(tubs, weights, options.rules, options.workers, progress=progress)
    log(f"{what}: {report.summary()}")
    for line in report.bad[:5]:
        log(f"  skipped: {line}")
    return frames, report


def split_data(
    sources: Sources,
    options: TrainOptions,
    given: tuple[Frames, LoadReport] | None = None,
    split: Split | None = None,
    log=print,
) -> DataSets:
    """Load (unless `given`), split (unless `split` is given) and prepare each set for the model.

    With dev/test tubs the training tubs give train and training-dev, the others dev and test.
    """
    frames, load_report = given or load_data(sources.tubs, options, sources.tub_weights, log)
    training_frames, target_report = len(frames), None
    if sources.mismatched and split is None:
        dev, dev_report = _load_target(sources.dev_tubs, options, log, "dev tubs")
        test, test_report = _load_target(sources.test_tubs, options, log, "test tubs")
        target = Frames.concatenate([part for part in (dev, test) if part is not None])
        target_report = (dev_report or LoadReport()).merge(test_report or LoadReport())
        dev_count = len(dev) if dev is not None and test is not None else None
        split = split_mismatched(frames.sessions, target.sessions, options.split, dev_count)
        frames = Frames.concatenate([frames, target])
    split = split or split_frames(frames.sessions, options.split)
    log(f"split by {options.split.unit}s of {options.split.block_frames} frames: {split.sizes()}")
    if not len(split.dev) and options.fit.early_stopping:
        raise ValueError(
            "the dev set is empty: early stopping needs one (check --split, or --no-early-stopping)"
        )
    spec = frame_spec(frames, options)
    sets = {name: frames.take(getattr(split, name)) for name in SETS if len(getattr(split, name))}
    return DataSets(
        frames=frames,
        training_frames=training_frames,
        load_report=load_report,
        target_report=target_report,
        split=split,
        spec=spec,
        sets=sets,
        prepared={name: prepare_all(subset.images, spec) for name, subset in sets.items()},
    )


def _load_target(
    tubs: Sequence[str | Path], options: TrainOptions, log, what: str
) -> tuple[Frames | None, LoadReport | None]:
    """The dev or test tubs' frames (unweighted: they are scored, not trained on), if any."""
    if not tubs:
        return None, None
    frames, report = load_data(tubs, options, log=log, what=what)
    frames.weights = None
    return frames, report


def frame_spec(frames: Frames, options: TrainOptions) -> FrameSpec:
    """The architecture's input for this camera, with the user's overrides applied."""
    width, height = source_size(frames)
    return replace(default_frame_spec(options.architecture, width, height), **options.frame_overrides)


def fit_model(data: DataSets, options: TrainOptions, run: Run, log=print) -> Fitted:
    """Build the model (output biases at the training means), fit it, save model.keras."""
    train_set, spec = data.sets["train"], data.spec
    dev_set = data.sets.get("dev")
    dev_data = (
        None
        if dev_set is None
        else evaluation_dataset(data.prepared["dev"], dev_set.angles, dev_set.throttles, spec)
    )
    steps = steps_per_epoch(len(train_set), options.fit.batch_size, options.fit.steps_per_execution)

    def build():
        model = build_model(options.architecture, spec.input_shape, options.model)
        if options.init_from:  # fine-tuning: the parent's weights, its output layers included
            load_parent_weights(model, options.init_from)
            if options.freeze_conv:
                log(f"froze {freeze_convolutions(model)} convolutional layers of the parent")
        else:
            set_output_bias(
                model,
                {"angle": float(train_set.angles.mean()), "throttle": float(train_set.throttles.mean())},
            )
        return model

    augmentation = f"on ({options.augment_workers} worker processes)" if options.augments else "off"
    log(
        f"model {options.architecture}: input {spec.input_shape}, augmentation {augmentation}, "
        f"distribute {options.distribute}"
    )
    with training_input(
        train_set,
        data.prepared["train"],
        spec,
        options.fit,
        augmenter=build_augmenter(options),
        augment_workers=options.augment_workers,
        per_worker=options.distribute == "multiworker",  # each worker augments its share of a batch
    ) as train_data:
        model, history = fit_with_strategy(build, train_data, dev_data, steps, options, run, log)
    seconds = time.perf_counter() - run.started
    model.save(run.out / KERAS_FILE)
    return Fitted(model=model, history=history, seconds=seconds)


def build_augmenter(options: TrainOptions) -> Augmenter | None:
    """The augment package's label-aware augmenter, or None when augmentation is off."""
    if not options.augments:
        return None
    import augment

    return augment.build_augmenter(options.augment, seed=options.fit.seed)


def fit_with_strategy(
    build: Callable, train_data, dev_data, steps: int, options: TrainOptions, run: Run, log=print
) -> tuple[Any, dict[str, list[float]]]:
    """The model `build()` makes, trained under the run's strategy; returns (model, history).

    `none` and `mirrored` run `training.fit.fit` (early stopping, checkpoints) with the
    model built and compiled in the strategy's scope. `multiworker` runs the custom loop
    of `fit_multiworker` (Keras 3's fit and predict fail under that strategy), for all
    `epochs`, then copies the weights into a model built outside the scope, which
    evaluation and export can use.
    """
    strategy = run.strategy
    with strategy.scope():
        model = build()
        log(f"{model.count_params():,} parameters, {strategy.num_replicas_in_sync} replica(s)")
        if options.distribute != "multiworker":
            return model, fit(model, train_data, dev_data, steps, options.fit, run.out)
    history = fit_multiworker(model, train_data, steps, options.fit, strategy, dev_data=dev_data, log=log)
    plain = build()
    plain.set_weights(model.get_weights())
    return plain, history


def evaluate(fitted: Fitted, data: DataSets, options: TrainOptions) -> Evaluation:
    """Errors on each set, the train-mean baseline, the noise floor, the four-gap diagnosis, a summary."""
    predictions = {
        name: keras_predictions(fitted.model, prepared, data.spec) for name, prepared in data.prepared.items()
    }
    truth = {name: labels(frames) for name, frames in data.sets.items()}
    errs = {name: errors(truth[name], predictions[name]) for name in data.sets}
    training = data.frames.take(np.arange(data.training_frames))
    floor = {
        name: noise_floor_interval(getattr(training, f"{name}s"), training.sessions) for name in OUTPUT_NAMES
    }
    history = fitted.history
    kept = _kept_epoch(history, options)
    mismatched = data.training_frames < len(data.frames)
    metrics: dict[str, Any] = {
        "errors": errs,
        "baseline": {name: baseline_errors(truth["train"], truth[name]) for name in data.sets},
        "noise_floor": floor,
        "diagnosis": diagnose(
            {name: errs[name]["angle"]["mse"] for name in data.sets}, floor["angle"], mismatched
        ),
        "summary": {
            "architecture": options.architecture,
            "frames": f"{data.split.sizes()} (split by {options.split.unit})",
            "dev and test": "other tubs than training (mismatched data)"
            if mismatched
            else "blocks of the training tubs",
            "epochs run": f"{len(history['loss'])} ({kept})",
            "training time": f"{fitted.seconds:.0f} s",
            "augmentation": "on" if options.augments else "off",
        },
    }
    if mismatched:
        target = data.frames.take(np.arange(data.training_frames, len(data.frames)))
        metrics["noise_floor_dev"] = {
            name: noise_floor_interval(getattr(target, f"{name}s"), target.sessions) for name in OUTPUT_NAMES
        }
    if data.sets["train"].weights is not None:
        weights = dict(zip(data.frames.tubs(), _tub_weights(data.frames)))
        metrics["summary"]["tub weights"] = ", ".join(f"{tub}: {w:g}" for tub, w in weights.items())
    if options.init_from:
        frozen = " (convolutions frozen)" if options.freeze_conv else ""
        metrics["summary"]["initialised from"] = f"{options.init_from}{frozen}"
    return Evaluation(metrics=metrics, predictions=predictions)


def _kept_epoch(history: dict[str, list[float]], options: TrainOptions) -> str:
    """Which epoch's weights the model kept, in words."""
    best = (
        f"best dev loss at epoch {int(np.argmin(history['val_loss'])) + 1}" if history.get("val_loss") else ""
    )
    if options.fit.early_stopping and best:
        return best
    return "no early stopping: the last epoch kept" + (f"; {best}" if best else "")


def _tub_weights(frames: Frames) -> list[float]:
    """Each tub's weight, in the order of `frames.tubs()`."""
    tubs = np.array([session.rpartition("#")[0] for session in frames.sessions])
    weights = frames.frame_weights()
    return [float(weights[np.flatnonzero(tubs == tub)[0]]) for tub in frames.tubs()]


def labels(frames: Frames) -> dict[str, np.ndarray]:
    return {"angle": frames.angles, "throttle": frames.throttles}


def write_report(
    evaluation: Evaluation, fitted: Fitted, data: DataSets, options: TrainOptions, out: Path, log=print
) -> str:
    """Plots, report.md and metrics.json; returns the report's Markdown."""
    metrics = evaluation.metrics
    floor = metrics["noise_floor"]["angle"]
    watched = next(name for name in ("dev", "test", "train") if name in data.sets)
    plot_learning_curves(
        fitted.history,
        out / "learning_curves.png",
        {
            "noise floor": floor["mse"] if floor else None,
            f"predict the train mean ({watched})": metrics["baseline"][watched]["angle"]["mse"],
        },
    )
    if "test" in data.sets:
        plot_predictions(
            data.sets["test"].angles, evaluation.predictions["test"]["angle"], out / "test_predictions.png"
        )
    text = markdown(metrics, f"Training report: {options.architecture}", records_by_set(data))
    (out / "report.md").write_text(text)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    log(text)
    return text


def records_by_set(data: DataSets) -> dict[str, dict]:
    """Which records of which tubs trained (train), tuned (training-dev, dev) and tested the model."""
    return {name: records_used(frames) for name, frames in data.sets.items()}


def export_model(
    fitted: Fitted, data: DataSets, evaluation: Evaluation, options: TrainOptions, out: Path, log=print
) -> ModelCard:
    """pilot.tflite + model.json: int8 calibrated on training frames (augmented), parity on
    held-out frames (dev; without a dev set, training-dev, then test)."""
    representative = representative_frames(data.sets["train"], data.spec, augmenter=build_augmenter(options))
    metrics = {key: evaluation.metrics[key] for key in ("errors", "baseline", "noise_floor", "diagnosis")}
    held_out = next(name for name in ("dev", "train_dev", "test", "train") if name in data.prepared)
    return export_bundle(
        fitted.model,
        data.spec,
        out,
        architecture=options.architecture,
        representative=representative,
        parity_inputs=data.prepared[held_out],
        quantization=options.quantization,
        training=training_record(data, fitted, options),
        metrics=metrics,
        budget_ms=options.budget_ms,
        pi_scale_factor=options.pi_scale_factor,
        log=log,
    )


def training_record(data: DataSets, fitted: Fitted, options: TrainOptions) -> dict:
    """model.json's `training` entry: the data, exactly which records each set holds, the
    split, every setting, the parent model, the run."""
    record = {
        "data": data.load_report.to_dict(),
        "records": records_by_set(data),
        "split": {**asdict(options.split), "sizes": data.split.sizes()},
        "filter": asdict(options.rules),
        "model": asdict(options.model),
        "fit": options.fit.to_dict(),
        "augment": options.augment.to_dict() if options.augment is not None else None,
        "distribute": options.distribute,
        "epochs_run": len(fitted.history["loss"]),
        "best_dev_loss": float(min(fitted.history["val_loss"])) if fitted.history.get("val_loss") else None,
        "seconds": round(fitted.seconds, 1),
    }
    if data.target_report is not None:
        record["dev_test_data"] = data.target_report.to_dict()
    if data.sets["train"].weights is not None:
        record["tub_weights"] = dict(zip(data.frames.tubs(), _tub_weights(data.frames)))
    if options.init_from:
        record["parent"] = {**parent_record(options.init_from), "froze_convolutions": options.freeze_conv}
    return record
