"""Hyperparameter search: one optimising metric, one satisficing constraint, KerasTuner trials.

Each trial is a full training run (`training.train.train`: fit, report, TFLite export with
its measured latency) with hyperparameters drawn at random: learning rate on a log scale,
batch size, dropout, L2 on a log scale, and the model's width multiplier. A trial is
*feasible* when its exported model meets the latency budget (the
satisficing metric); among feasible trials the one with the best optimising metric wins:
the dev steering MSE, or closed-loop autonomy replaying a held-out tub when asked.
Random rather than grid search: with a few important and many unimportant knobs, random
draws try more distinct values of the important ones.

KerasTuner keeps each trial in `out/<stage>/trial_*/trial.json`: running the same search
again resumes it (finished trials are reloaded, not re-run), and its distributed mode
(KERASTUNER_TUNER_ID, KERASTUNER_ORACLE_IP, KERASTUNER_ORACLE_PORT) spreads trials over
machines. Coarse to fine: a second stage draws from the ranges spanned by the best
trials of the first.
"""

from __future__ import annotations

import csv
import math
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

OBJECTIVES = ("dev_mse", "autonomy")
INFEASIBLE = 1000.0  # added to the score of a trial that misses the latency budget
TRIAL_FILES = ("pilot.tflite", "model.json", "report.md", "metrics.json", "learning_curves.png")


@dataclass(frozen=True)
class SearchSpace:
    """Ranges the random search draws from; log-scaled where the knob acts multiplicatively."""

    lr: tuple[float, float] = (1e-4, 1e-2)  # log scale
    batch_sizes: tuple[int, ...] = (16, 32, 64, 128)
    dropout: tuple[float, float] = (0.0, 0.5)
    l2: tuple[float, float] = (1e-6, 1e-2)  # log scale
    widths: tuple[float, ...] = (0.5, 1.0, 1.5, 2.0)  # multiplier of every layer's units

    def declare(self, hp) -> dict[str, Any]:
        """Draw one set of values through KerasTuner's HyperParameters `hp`."""
        values = {
            "lr": hp.Float("lr", *self.lr, sampling="log"),
            "batch_size": hp.Choice("batch_size", list(self.batch_sizes)),
            "dropout": hp.Float("dropout", *self.dropout),
            "l2": hp.Float("l2", *self.l2, sampling="log"),
            "width": hp.Choice("width", list(self.widths)),
        }
        return values

    def around(self, best: list[dict[str, Any]]) -> SearchSpace:
        """The finer space spanned by the best trials' values (ranges widened a little)."""

        def span(name: str, low: float, high: float, factor: float) -> tuple[float, float]:
            values = [trial[name] for trial in best]
            return max(low, min(values) / factor), min(high, max(values) * factor)

        dropouts = [trial["dropout"] for trial in best]
        return SearchSpace(
            lr=span("lr", *self.lr, factor=1.5),
            batch_sizes=tuple(sorted({trial["batch_size"] for trial in best})),
            dropout=(max(self.dropout[0], min(dropouts) - 0.05), min(self.dropout[1], max(dropouts) + 0.05)),
            l2=span("l2", *self.l2, factor=3.0),
            widths=tuple(sorted({trial["width"] for trial in best})),
        )


@dataclass(frozen=True)
class SearchConfig:
    """What to optimise, under which constraint, for how many trials."""

    trials: int = 10
    objective: str = "dev_mse"
    latency_budget_ms: float | None = None  # None: the training options' budget
    autonomy_tub: Path | None = None  # objective "autonomy": the tub replayed closed loop
    fine_trials: int = 0  # > 0: a second, finer stage around the best coarse trials
    fine_from: int = 3  # how many of the best coarse trials span the fine ranges
    seed: int = 0
    space: SearchSpace = field(default_factory=SearchSpace)

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got {self.objective!r}")
        if self.objective == "autonomy" and self.autonomy_tub is None:
            raise ValueError("the autonomy objective needs a tub to replay closed loop (autonomy_tub)")
        if self.trials < 1 or self.fine_trials < 0:
            raise ValueError("trials must be >= 1 and fine_trials >= 0")


def trial_options(base, values: dict[str, Any]):
    """The base `TrainOptions` with one trial's hyperparameters."""
    return replace(
        base,
        model=replace(base.model, dropout=values["dropout"], l2=values["l2"], width=values["width"]),
        fit=replace(base.fit, lr=values["lr"], batch_size=values["batch_size"], verbose=0),
    )


def replay_autonomy(bundle: Path, tub: Path) -> dict[str, Any]:
    """Closed-loop replay of a recorded tub with the trial's exported pilot."""
    from car.pilot import Pilot
    from car.tub import Tub
    from evaluation.replay import ClosedLoopConfig, camera_for_tub, closed_loop, road_half_width_m

    recorded = Tub(tub)
    config = ClosedLoopConfig(road_half_width_m=road_half_width_m(recorded))
    return closed_loop(recorded, Pilot.load(bundle), camera_for_tub(recorded), config=config).metrics()


def score(result: dict[str, Any], config: SearchConfig) -> float:
    """The one number a trial is ranked by (lower is better); infeasible trials rank last.

    Autonomy ties (several trials that never needed a human) are broken by the mean
    offset from the recorded path, in tenths of a metre.
    """
    if config.objective == "dev_mse":
        value = result["dev_mse"]
    else:
        value = (1.0 - result["autonomy"]) + result["mean_offset"] / 10.0
    return value if result["feasible"] else INFEASIBLE + value


def _tuner_class():
    import keras_tuner

    class PilotSearch(keras_tuner.RandomSearch):
        """RandomSearch whose trial is a whole training run of ours, scored by `score`."""

        def __init__(self, run: Callable[[Any, Path], dict[str, Any]], **kwargs) -> None:
            super().__init__(**kwargs)
            self._run = run

        def run_trial(self, trial, *args, **kwargs) -> dict[str, float]:
            results = self._run(trial.hyperparameters, Path(self.get_trial_dir(trial.trial_id)))
            return {key: float(value) for key, value in results.items() if isinstance(value, (int, float))}

    return PilotSearch


@dataclass
class SearchResult:
    rows: list[dict[str, Any]]  # one per finished trial, best first
    best: dict[str, Any] | None  # the best feasible trial, None if none met the budget
    best_bundle: Path | None
    table: Path


def run_search(
    tubs: list[str | Path], out: str | Path, base, config: SearchConfig, log=print
) -> SearchResult:
    """Search `config.trials` trials (then `fine_trials` finer ones); resumes a search in `out`.

    `base` is the `training.train.TrainOptions` every trial starts from.
    """
    import keras_tuner

    from training.data import load_frames
    from training.split import split_frames
    from training.train import train

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    budget = config.latency_budget_ms if config.latency_budget_ms is not None else base.budget_ms
    base = replace(base, budget_ms=budget)
    frames = load_frames(tubs, base.rules, base.workers, progress=False)
    split = split_frames(frames[0].sessions, base.split)
    log(
        f"search: {frames[1].summary()}; split {split.sizes()}; objective {config.objective}, "
        f"latency budget {budget:g} ms (Pi 4 estimate)"
    )

    def stage(name: str, trials: int, space: SearchSpace) -> list[dict[str, Any]]:
        def run(hp, trial_dir: Path) -> dict[str, Any]:
            values = space.declare(hp)
            started = time.perf_counter()
            result = train(
                None, trial_dir, trial_options(base, values), frames=frames, split=split, log=lambda *_: None
            )
            row = {**values, **trial_metrics(result, trial_dir, config, budget)}
            row["seconds"] = round(time.perf_counter() - started, 1)
            row["score"] = score(row, config)
            log(f"{name} trial {trial_dir.name}: " + ", ".join(f"{k} {_fmt(v)}" for k, v in row.items()))
            return row

        declared = keras_tuner.HyperParameters()
        space.declare(declared)  # the oracle must know the space before the first trial
        tuner = _tuner_class()(
            run,
            objective=keras_tuner.Objective("score", direction="min"),
            max_trials=trials,
            seed=config.seed,
            hyperparameters=declared,
            tune_new_entries=False,
            directory=str(out),
            project_name=name,
            overwrite=False,
            max_consecutive_failed_trials=3,
        )
        chief = is_search_chief()  # a worker's oracle is a client of the chief's, with fewer methods
        if chief and tuner.remaining_trials is not None and tuner.remaining_trials < trials:
            log(f"{name}: resuming, {trials - tuner.remaining_trials} trials already done")
        tuner.search()
        for trial_id, reason in failed_trials(tuner) if chief else ():
            log(f"{name} trial {trial_id} failed: {reason}")
        return stage_rows(tuner, name, trials)

    rows = stage("coarse", config.trials, config.space)
    if config.fine_trials and rows:
        leaders = [row for row in rows if row["feasible"]][: config.fine_from] or rows[: config.fine_from]
        finer = config.space.around(leaders)
        log(f"fine stage around the best {len(leaders)} trials: {finer}")
        rows += stage("fine", config.fine_trials, finer)
    if not is_search_chief():
        log("search worker: trials done; the chief writes the table and the best bundle")
        return SearchResult(rows, None, None, out / "trials.csv")
    rows.sort(key=lambda row: row["score"])
    table = write_table(rows, out / "trials.csv")
    best = next((row for row in rows if row["feasible"]), None)
    best_bundle = copy_bundle(Path(best["trial_dir"]), out / "best") if best else None
    return SearchResult(rows, best, best_bundle, table)


def is_search_chief() -> bool:
    """False in a KerasTuner worker process of a distributed search (the chief runs the oracle)."""
    distributed = "KERASTUNER_ORACLE_IP" in os.environ
    return not distributed or os.environ.get("KERASTUNER_TUNER_ID") == "chief"


def trial_metrics(result, trial_dir: Path, config: SearchConfig, budget_ms: float) -> dict[str, Any]:
    """What the table shows for a trial: dev and train error, latency, feasibility, autonomy."""
    errors = result.metrics["errors"]
    latency = result.card.latency
    # The export's own estimate (p99 of the quietest timing round x the Pi scale factor),
    # so a trial is feasible exactly when its model.json says it meets the budget.
    pi_estimate_ms = latency.pi_estimate_ms
    row = {
        "dev_mse": errors["dev"]["angle"]["mse"],
        "train_mse": errors["train"]["angle"]["mse"],
        "latency_ms": latency.median_ms,
        "pi_estimate_ms": pi_estimate_ms,
        "feasible": bool(pi_estimate_ms <= budget_ms),
        "quantization": result.card.quantization,
        "epochs": result.card.training.get("epochs_run"),
    }
    if config.objective == "autonomy":
        assert config.autonomy_tub is not None, "SearchConfig requires it for this objective"
        replay = replay_autonomy(trial_dir, config.autonomy_tub)
        row.update(
            autonomy=replay["autonomy"],
            interventions=replay["interventions"],
            mean_offset=replay["mean_offset"],
        )
    return row


def stage_rows(tuner, stage: str, trials: int) -> list[dict[str, Any]]:
    """Every finished trial of a tuner as a table row (its values and metrics), best first."""
    rows = []
    for trial in tuner.oracle.get_best_trials(num_trials=trials):
        metrics = {name: trial.metrics.get_last_value(name) for name in trial.metrics.metrics}
        if "score" not in metrics:
            continue  # a failed trial
        row = {"stage": stage, "trial": trial.trial_id, **metrics, **trial.hyperparameters.values}
        row["feasible"] = bool(row.get("feasible"))
        row["trial_dir"] = str(tuner.get_trial_dir(trial.trial_id))
        rows.append(row)
    return rows


def failed_trials(tuner) -> list[tuple[str, str]]:
    """(trial id, last line of its error) of every trial that crashed."""
    failed = []
    for trial_id, trial in tuner.oracle.trials.items():
        if trial.status in ("FAILED", "INVALID"):
            lines = (trial.message or "unknown error").strip().splitlines()
            failed.append((trial_id, lines[-1] if lines else "unknown error"))
    return failed


def write_table(rows: list[dict[str, Any]], path: Path) -> Path:
    """CSV of the trials, best first (the columns of every row, in first-seen order)."""
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(row))
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns))
        writer.writeheader()
        writer.writerows(rows)
    return path


def copy_bundle(trial_dir: Path, target: Path) -> Path:
    """The best trial's bundle (and its report) copied to `target`, ready to deploy."""
    target.mkdir(parents=True, exist_ok=True)
    for name in TRIAL_FILES:
        if (trial_dir / name).exists():
            shutil.copy2(trial_dir / name, target / name)
    return target


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    return str(value)
