"""What the training run learned: errors, baselines, the four-gap diagnosis, plots.

The diagnosis follows the recipe for data from two distributions. Four sets: train;
training-dev (blocks of the training tubs the model never trained on); dev and test
(blocks of the same tubs, or other tubs: `--dev-tub/--test-tub`, e.g. real tubs beside
simulator training tubs). The noise floor (the best error any model can reach, estimated
from the labels themselves) stands in for human-level error. Four gaps:
- avoidable bias     = train - noise floor      -> bigger network / train longer;
- variance           = train-dev - train        -> more data / regularise / augment;
- data mismatch      = dev - train-dev          -> make the training data look like dev/test;
- overfitting to dev = test - dev               -> a bigger dev set, tune less on it.
A gap counts when it is larger than the noise floor's uncertainty (the upper end of its
95 % confidence interval minus the floor). When neither bias nor variance counts the model
is **at the noise floor** of its training data: nothing left to learn from these labels,
go and drive it (unless data mismatch or dev overfitting still counts, which then leads).
Otherwise the largest gap that counts gives the verdict and the next step.

The noise floor is measured with the difference estimator of Rice (1984): for a label
that changes smoothly between consecutive frames, half the mean squared difference of
consecutive labels estimates the variance of the noise on top of it (here: the jitter of
a human thumb on a stick). It is computed within each recording session only, on the
training tubs. Its confidence interval comes from a block bootstrap: the consecutive
differences are cut into blocks of 50 (2.5 s at 20 Hz, so the jitter's own correlation
stays inside a block), 1,000 resamples of the blocks with replacement, the 2.5th and
97.5th percentiles of the estimate.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from training.models import OUTPUT_NAMES

SETS = ("train", "train_dev", "dev", "test")
SET_NAMES = {"train": "train", "train_dev": "training-dev", "dev": "dev", "test": "test"}
FLOOR_BLOCK = 50
FLOOR_RESAMPLES = 1000
AT_THE_FLOOR = "at the noise floor"
# The recipe's next step for each gap, when it counts.
NEXT_STEPS = {
    "avoidable_bias": ("high avoidable bias", "bigger network / train longer"),
    "variance": ("high variance", "more data / regularise (dropout, L2) / augment"),
    "data_mismatch": (
        "data mismatch",
        "make the training data look like dev/test (the simulator's look, lane and steering "
        "scale; augmentation), collect more data like dev/test, error analysis of the dev frames",
    ),
    "overfitting_to_dev": ("overfitting to dev", "a bigger dev set; tune less on it"),
}
SAME_TUBS = "dev and training-dev are blocks of the same tubs: sampling noise, no mismatch"
DRIVE_IT = "go and drive it (closed loop: tubcar sim drive, tubcar replay --closed-loop)"


def errors(true: dict[str, np.ndarray], predicted: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """MSE and MAE of each output."""
    result = {}
    for name in OUTPUT_NAMES:
        diff = np.asarray(predicted[name], dtype=np.float64).reshape(-1) - np.asarray(
            true[name], dtype=np.float64
        )
        result[name] = {"mse": float(np.mean(diff**2)), "mae": float(np.mean(np.abs(diff)))}
    return result


def _squared_steps(values: np.ndarray, sessions: np.ndarray) -> np.ndarray:
    """Half the squared difference of each pair of consecutive labels of one session."""
    same = sessions[1:] == sessions[:-1]
    return 0.5 * np.diff(values.astype(np.float64))[same] ** 2


def noise_floor(values: np.ndarray, sessions: np.ndarray) -> float | None:
    """Label noise variance from consecutive differences within sessions (None if unmeasurable)."""
    steps = _squared_steps(values, sessions)
    return float(np.mean(steps)) if len(steps) >= 10 else None


def noise_floor_interval(
    values: np.ndarray, sessions: np.ndarray, block: int = FLOOR_BLOCK, resamples: int = FLOOR_RESAMPLES
) -> dict[str, Any] | None:
    """The noise floor with its 95 % confidence interval by a block bootstrap (module doc)."""
    steps = _squared_steps(values, sessions)
    if len(steps) < 10:
        return None
    blocks = [steps[start : start + block] for start in range(0, len(steps), block)]
    sums = np.array([chunk.sum() for chunk in blocks])
    counts = np.array([len(chunk) for chunk in blocks])
    picks = np.random.default_rng(0).integers(0, len(blocks), size=(resamples, len(blocks)))
    estimates = sums[picks].sum(axis=1) / counts[picks].sum(axis=1)
    low, high = np.percentile(estimates, [2.5, 97.5])
    return {
        "mse": float(steps.mean()),
        "ci_low": float(low),
        "ci_high": float(high),
        "method": (
            f"block bootstrap: {len(blocks)} blocks of {block} consecutive differences, {resamples} resamples"
        ),
    }


def gap_values(set_mse: dict[str, float], floor_mse: float) -> dict[str, tuple[float, str, str]]:
    """The gaps the sets allow, each (value, the larger set, the smaller): bias always;
    variance from training-dev (without one, from dev with data mismatch folded in, or from
    test); data mismatch and dev overfitting when their sets exist."""
    gaps = {"avoidable_bias": (set_mse["train"] - floor_mse, "train", "floor")}
    held_out = next((name for name in ("train_dev", "dev", "test") if name in set_mse), None)
    if held_out is not None:
        gaps["variance"] = (set_mse[held_out] - set_mse["train"], held_out, "train")
    if "train_dev" in set_mse and "dev" in set_mse:
        gaps["data_mismatch"] = (set_mse["dev"] - set_mse["train_dev"], "dev", "train_dev")
    if "dev" in set_mse and "test" in set_mse:
        gaps["overfitting_to_dev"] = (set_mse["test"] - set_mse["dev"], "test", "dev")
    return gaps


def diagnose(
    set_mse: dict[str, float], floor: dict[str, Any] | None, mismatched: bool = True
) -> dict[str, Any]:
    """The four gaps of the steering error, a verdict for each, the overall verdict and next step.

    `set_mse`: steering MSE of "train" and of those of "train_dev", "dev", "test" that exist;
    `floor`: `noise_floor_interval` (None: unmeasurable, taken as 0 with no uncertainty);
    `mismatched`: dev/test come from other tubs than training. When they do not, dev and
    training-dev are blocks of the same tubs: their gap is the blocks' sampling noise, not
    data mismatch, and is reported without a verdict.
    """
    floor_mse = floor["mse"] if floor else 0.0
    margin = (floor["ci_high"] - floor["mse"]) if floor else 0.0
    gaps = {}
    for name, (value, larger, smaller) in gap_values(set_mse, floor_mse).items():
        counts = value > margin
        verdict, step = NEXT_STEPS[name] if counts else ("within the noise floor's uncertainty", "")
        if name == "data_mismatch" and not mismatched:
            counts, verdict, step = False, SAME_TUBS, ""
        gaps[name] = {
            "value": value,
            "sets": [larger, smaller],
            "counts": bool(counts),
            "verdict": verdict,
            "next_step": step,
        }
    at_floor = not any(gaps[name]["counts"] for name in ("avoidable_bias", "variance") if name in gaps)
    counting = [(gap["value"], name) for name, gap in gaps.items() if gap["counts"]]
    if counting:
        verdict, step = NEXT_STEPS[max(counting)[1]]
    else:
        verdict, step = AT_THE_FLOOR, DRIVE_IT
    return {
        "noise_floor_mse": floor_mse,
        "noise_floor_margin": margin,
        "gaps": gaps,
        "at_noise_floor": at_floor,
        "avoidable_bias": gaps["avoidable_bias"]["value"],
        "variance": gaps["variance"]["value"] if "variance" in gaps else None,
        "verdict": verdict,
        "next_step": step,
    }


def baseline_errors(
    train_labels: dict[str, np.ndarray], labels: dict[str, np.ndarray]
) -> dict[str, dict[str, float]]:
    """Errors of always predicting the training set's mean."""
    constant = {name: np.full(len(labels[name]), float(np.mean(train_labels[name]))) for name in OUTPUT_NAMES}
    return errors(labels, constant)


def plot_learning_curves(
    history: dict[str, list[float]], path: Path, steering_lines: dict[str, float | None] | None = None
) -> Path:
    """Train and dev loss per epoch (log scale), one panel per output; `steering_lines`
    (label -> MSE: the noise floor, predicting the mean) are drawn across the steering panel."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [("loss", "total loss"), ("angle_loss", "steering MSE"), ("throttle_loss", "throttle MSE")]
    keys = [(key, title) for key, title in keys if key in history]
    figure, axes = plt.subplots(1, len(keys), figsize=(5 * len(keys), 3.6), squeeze=False)
    epochs = np.arange(1, len(history["loss"]) + 1)
    for axis, (key, title) in zip(axes[0], keys, strict=True):
        axis.plot(epochs, history[key], label="train (augmented, dropout on)")
        if f"val_{key}" in history:
            axis.plot(epochs, history[f"val_{key}"], label="dev")
        if key == "angle_loss":
            for (label, value), style in zip((steering_lines or {}).items(), (":", "--", "-.")):
                if value is not None and value > 0:
                    axis.axhline(value, color="gray", linestyle=style, lw=1.2, label=label)
            axis.legend(fontsize=7)
        axis.set_yscale("log")
        axis.set_xlabel("epoch")
        axis.set_title(title)
        axis.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def plot_predictions(
    true: np.ndarray, predicted: np.ndarray, path: Path, title: str = "test set steering"
) -> Path:
    """Predicted vs true steering on the test set: scatter, and both over the frames."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (scatter, series) = plt.subplots(1, 2, figsize=(12, 4), gridspec_kw={"width_ratios": [1, 2]})
    scatter.scatter(true, predicted, s=6, alpha=0.5)
    scatter.plot([-1, 1], [-1, 1], color="gray", lw=1)
    scatter.set_xlabel("true angle")
    scatter.set_ylabel("predicted angle")
    scatter.set_xlim(-1.05, 1.05)
    scatter.set_ylim(-1.05, 1.05)
    scatter.set_title(title)
    series.plot(true, label="true", lw=1)
    series.plot(predicted, label="predicted", lw=1)
    series.set_xlabel("test frame (recording order, blocks concatenated)")
    series.set_ylabel("angle")
    series.legend()
    series.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def _row(name: str, values: dict[str, dict[str, float]]) -> str:
    return (
        f"| {name} | {values['angle']['mse']:.4f} | {values['angle']['mae']:.4f} "
        f"| {values['throttle']['mse']:.4f} | {values['throttle']['mae']:.4f} |"
    )


def _floor_line(name: str, floor: dict[str, Any] | None) -> str:
    if floor is None:
        return f"- {name}: not measurable (too few consecutive frames)"
    return (
        f"- {name}: MSE {floor['mse']:.4f}, 95 % CI [{floor['ci_low']:.4f}, {floor['ci_high']:.4f}] "
        f"({floor['method']})"
    )


def diagnosis_lines(diagnosis: dict[str, Any]) -> list[str]:
    """The gaps table and the verdict, as Markdown lines (report.md and the acceptance)."""
    names = {**SET_NAMES, "floor": "noise floor"}
    lines = [
        f"A gap counts above {diagnosis['noise_floor_margin']:.4f} (the noise floor's uncertainty: "
        "the top of its confidence interval minus the floor).",
        "",
        "| gap | steering MSE | verdict |",
        "|---|---|---|",
    ]
    for name, gap in diagnosis["gaps"].items():
        verdict = f"**{gap['verdict']}** -> {gap['next_step']}" if gap["counts"] else gap["verdict"]
        larger, smaller = (names[which] for which in gap["sets"])
        title = f"{name.replace('_', ' ')} ({larger} - {smaller})"
        lines.append(f"| {title} | {gap['value']:+.4f} | {verdict} |")
    floor = "yes" if diagnosis["at_noise_floor"] else "no"
    lines += [
        "",
        f"- bias and variance within the noise floor's uncertainty (at the noise floor): {floor}",
        f"- verdict: **{diagnosis['verdict']}** -> next step: {diagnosis['next_step']}",
    ]
    return lines


def _records_lines(records: dict[str, dict[str, dict]]) -> list[str]:
    lines = []
    for name, tubs in records.items():
        for tub, used in tubs.items():
            ranges = ", ".join(f"{start}-{stop - 1}" for start, stop in used["ranges"])
            lines.append(f"- {SET_NAMES[name]}: {used['records']} records of {tub} ({ranges})")
    return lines


def markdown(metrics: dict[str, Any], title: str, records: dict[str, dict] | None = None) -> str:
    """The report.md text: errors per set, baselines, noise floor, the four gaps, the data, plots."""
    lines = [f"# {title}", ""]
    lines += [f"- {key}: {value}" for key, value in metrics.get("summary", {}).items()]
    lines += [
        "",
        "## Errors (un-augmented frames, dropout off)",
        "",
        "| set | steering MSE | steering MAE | throttle MSE | throttle MAE |",
        "|---|---|---|---|---|",
    ]
    lines += [_row(SET_NAMES[name], metrics["errors"][name]) for name in SETS if name in metrics["errors"]]
    lines += [
        _row(f"baseline: train mean on {SET_NAMES[name]}", metrics["baseline"][name])
        for name in SETS
        if name in metrics["baseline"]
    ]
    floor = metrics["noise_floor"]
    lines += ["", "## Noise floor (label jitter between consecutive frames, Rice 1984)", ""]
    lines += [_floor_line(name, floor.get(name)) for name in OUTPUT_NAMES]
    for name, value in metrics.get("noise_floor_dev", {}).items():
        lines.append(_floor_line(f"{name} on the dev/test tubs", value))
    lines += ["", "## Diagnosis (steering)", "", *diagnosis_lines(metrics["diagnosis"])]
    if records:
        lines += ["", "## Records used", "", *_records_lines(records)]
    lines += [
        "",
        "## Plots",
        "",
        "![learning curves](learning_curves.png)",
        "",
        "![test predictions](test_predictions.png)",
        "",
    ]
    return "\n".join(lines)
