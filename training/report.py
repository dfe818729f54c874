"""What the training run learned: errors, baselines, the bias/variance diagnosis, plots.

The diagnosis follows the usual recipe. The noise floor (the best error any model can
reach, estimated from the labels themselves) stands in for human-level error:
- avoidable bias = train error - noise floor;
- variance       = dev error - train error.
Whichever is larger says what to do next: high bias -> a bigger network / train longer;
high variance -> more data / regularise / augment.

The noise floor is measured with the difference estimator of Rice (1984): for a label
that changes smoothly between consecutive frames, half the mean squared difference of
consecutive labels estimates the variance of the noise on top of it (here: the jitter of
a human thumb on a stick). It is computed within each recording session only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

OUTPUTS = ("angle", "throttle")
SETS = ("train", "dev", "test")


def errors(true: dict[str, np.ndarray], predicted: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """MSE and MAE of each output."""
    result = {}
    for name in OUTPUTS:
        diff = np.asarray(predicted[name], dtype=np.float64).reshape(-1) - np.asarray(
            true[name], dtype=np.float64
        )
        result[name] = {"mse": float(np.mean(diff**2)), "mae": float(np.mean(np.abs(diff)))}
    return result


def noise_floor(values: np.ndarray, sessions: np.ndarray) -> float | None:
    """Label noise variance from consecutive differences within sessions (None if unmeasurable)."""
    same = sessions[1:] == sessions[:-1]
    if same.sum() < 10:
        return None
    diffs = np.diff(values.astype(np.float64))[same]
    return float(0.5 * np.mean(diffs**2))


def diagnose(train_mse: float, dev_mse: float, floor: float | None) -> dict[str, Any]:
    """Avoidable bias vs variance of the steering error, and the recipe's next step."""
    floor = floor or 0.0
    bias = max(train_mse - floor, 0.0)
    variance = dev_mse - train_mse
    if bias >= variance:
        verdict, step = "high avoidable bias", "bigger network / train longer (then revisit the architecture)"
    else:
        verdict, step = "high variance", "more data / regularise (dropout, L2) / augment"
    return {
        "noise_floor_mse": floor,
        "avoidable_bias": bias,
        "variance": variance,
        "verdict": verdict,
        "next_step": step,
    }


def baseline_errors(
    train_labels: dict[str, np.ndarray], labels: dict[str, np.ndarray]
) -> dict[str, dict[str, float]]:
    """Errors of always predicting the training set's mean."""
    constant = {name: np.full(len(labels[name]), float(np.mean(train_labels[name]))) for name in OUTPUTS}
    return errors(labels, constant)


def plot_learning_curves(history: dict[str, list[float]], path: Path) -> Path:
    """Train and dev loss per epoch (log scale), one panel per output."""
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
        axis.set_yscale("log")
        axis.set_xlabel("epoch")
        axis.set_title(title)
        axis.grid(alpha=0.3)
    axes[0][0].legend()
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


def markdown(metrics: dict[str, Any], title: str) -> str:
    """The report.md text: errors per set, baselines, noise floor, diagnosis, plots."""
    lines = [f"# {title}", ""]
    lines += [f"- {key}: {value}" for key, value in metrics.get("summary", {}).items()]
    lines += [
        "",
        "## Errors (un-augmented frames, dropout off)",
        "",
        "| set | steering MSE | steering MAE | throttle MSE | throttle MAE |",
        "|---|---|---|---|---|",
    ]
    lines += [_row(name, metrics["errors"][name]) for name in SETS if name in metrics["errors"]]
    lines += [
        _row(f"baseline: train mean on {name}", metrics["baseline"][name])
        for name in SETS
        if name in metrics["baseline"]
    ]
    floor = metrics["noise_floor"]
    lines += ["", "## Noise floor (label jitter between consecutive frames, Rice 1984)", ""]
    for name in OUTPUTS:
        value = floor.get(name)
        lines.append(
            f"- {name}: "
            + ("not measurable (too few consecutive frames)" if value is None else f"MSE {value:.4f}")
        )
    diagnosis = metrics["diagnosis"]
    lines += [
        "",
        "## Diagnosis (steering)",
        "",
        f"- avoidable bias (train - noise floor): {diagnosis['avoidable_bias']:.4f}",
        f"- variance (dev - train): {diagnosis['variance']:.4f}",
        f"- verdict: **{diagnosis['verdict']}** -> next step: {diagnosis['next_step']}",
        "",
        "## Plots",
        "",
        "![learning curves](learning_curves.png)",
        "",
        "![test predictions](test_predictions.png)",
        "",
    ]
    return "\n".join(lines)
