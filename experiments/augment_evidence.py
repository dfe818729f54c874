"""Does augmentation make a model drive on tracks that look different? Measured in the simulator.

The experiment: record expert laps on ONE track (one shape, one look), train the same
model several times on exactly that data, changing only the augmentation, then drive
every model closed-loop on
- the training track itself,
- the training track's shape with other looks (floors, markings, lighting, rooms),
- other tracks (other seeds: new shapes and looks),
- other tracks seen through a worse camera (noise, blur, drifting exposure),
and score autonomy and mean cross-track error. A model that memorised one track's
colours fails on the rest; one that learnt the lane lines keeps driving.

Steering bias: a closed track is driven in one direction, so its turns lean to one
side and so do the labels. On straights the expert steers ~0; the mean of a model's
predictions on straight-road frames (open loop, expert-driven, centred) is its bias.
The flip (mirror + negated steering) is the remedy, measured by the `flip` variant.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from augment.config import AugmentConfig
from training.flags import flag

STRAIGHT_CURVATURE = 0.12  # 1/m: radius above ~8 m counts as straight road


@dataclass(frozen=True)
class Condition:
    """One place to drive: a track (seed, optionally restyled) and camera imperfections."""

    name: str
    group: str  # "training track", "new look", "new track", "new track, poor camera"
    seed: int
    style_seed: int | None = None  # draw a new TrackStyle from this seed for the same shape
    noise: float = 0.0
    blur: float = 0.0
    exposure: float = 0.0

    def track(self) -> Any:
        from sim import Track, TrackStyle

        track = Track.from_seed(self.seed)
        if self.style_seed is None:
            return track
        style = TrackStyle.random(np.random.default_rng([self.style_seed, 0x57E1]))
        return replace(track, style=style, name=f"seed {self.seed} look {self.style_seed}")

    def simulation(self, seed: int = 0) -> Any:
        from sim import ImageEffects, Simulation

        effects = ImageEffects(noise=self.noise, blur=self.blur, exposure=self.exposure)
        return Simulation(self.track(), effects=effects, seed=seed)


@dataclass(frozen=True)
class EvidencePlan:
    """What to record, train and drive; each `flag` field is a flag of `tubcar augment-evidence`."""

    train_seed: int = flag(1, "the one track trained on")
    train_laps: int = flag(6, "expert laps recorded on it")
    expert_noise: float = flag(0.3, "expert steering noise while recording")
    looks: tuple[int, ...] = flag(
        (101, 102, 103), "style seeds: the training shape with these other looks", nargs="*"
    )
    new_tracks: tuple[int, ...] = flag((2, 3, 4, 5), "other track seeds", nargs="*")
    poor_camera: tuple[int, ...] = flag(
        (2, 3), "track seeds also driven with camera noise, blur and exposure drift", nargs="*"
    )
    drive_laps: int = flag(2, "laps driven in each condition")
    epochs: int = flag(20, "epochs each variant trains")
    architecture: str = flag("fast", "architecture to train", name="--model")
    seed: int = flag(0, "seeds the recording and training")
    variants: dict[str, AugmentConfig] = field(default_factory=lambda: default_variants())
    style_dirs: tuple[str, ...] = flag(
        (),
        "style folders (tubcar stylize train): adds a variant trained with stylised copies too",
        name="--styles",
        nargs="*",
        metavar="STYLE_DIR",
    )

    def conditions(self) -> list[Condition]:
        rows = [Condition(f"seed {self.train_seed}", "training track", self.train_seed)]
        rows += [
            Condition(f"seed {self.train_seed} look {k}", "new look", self.train_seed, style_seed=k)
            for k in self.looks
        ]
        rows += [Condition(f"seed {s}", "new track", s) for s in self.new_tracks]
        rows += [
            Condition(
                f"seed {s} poor camera", "new track, poor camera", s, noise=8.0, blur=1.0, exposure=0.25
            )
            for s in self.poor_camera
        ]
        return rows


def default_variants() -> dict[str, AugmentConfig]:
    """No augmentation, flip only (the bias remedy), and the default pipeline."""
    none = AugmentConfig.preset_named("none")
    return {"none": none, "flip": replace(none, flip=0.5), "default": AugmentConfig()}


def straight_road_frames(condition: Condition, laps: int = 1) -> list[np.ndarray]:
    """Camera frames on straight road while the expert drives without noise (centred, aligned)."""
    from evaluation.scoring import expert_pilot

    sim = condition.simulation()
    expert = expert_pilot(sim)
    observation = sim.reset()
    frames: list[np.ndarray] = []
    while sim.laps < laps and sim.time_s < 600:
        frame = observation.image
        assert frame is not None, "reset() and step() render unless told not to"
        where = sim.track.locate(sim.state.x, sim.state.y)
        if abs(sim.track.curvature[where.index]) < STRAIGHT_CURVATURE and abs(where.cte) < 0.05:
            frames.append(frame)
        observation = sim.step(*expert.run(frame))
    return frames


def drive(bundle: Path, condition: Condition, laps: int, throttle: float) -> dict[str, Any]:
    """Closed-loop score of a model bundle on one condition (sim.score).

    Every model drives at the same constant throttle (the expert's mean), so the
    comparison is about steering alone.
    """
    from car.pilot import Pilot
    from evaluation.scoring import camera_pilot, score

    pilot = Pilot.load(bundle)
    return score(camera_pilot(pilot.run), condition.simulation(), laps=laps, throttle=throttle)


def steering_bias(bundle: Path, frames: list[np.ndarray]) -> float:
    """Mean predicted steering on straight-road frames (+ = right)."""
    from car.pilot import Pilot

    pilot = Pilot.load(bundle)
    return float(np.mean([pilot.run(frame)[0] for frame in frames])) if frames else float("nan")


def run_evidence(plan: EvidencePlan, out: Path, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Record, train every variant, score everywhere; writes evidence.json/.md/.png into `out`."""
    from sim import Simulation, Track, record_tub
    from training.fit import FitConfig
    from training.train import TrainOptions, train

    out = Path(out)
    tub = out / "tubs" / f"seed{plan.train_seed}"
    if not tub.exists():
        summary = record_tub(
            Simulation(Track.from_seed(plan.train_seed)),
            tub,
            laps=plan.train_laps,
            noise=plan.expert_noise,
            seed=plan.seed,
        )
        log(f"recorded {summary['records']} frames on seed {plan.train_seed} into {tub}")
    records = _tub_records(tub)
    labels = np.array([r["user/angle"] for r in records])
    throttle = float(np.mean([r["user/throttle"] for r in records]))
    conditions = plan.conditions()
    straights = {
        c.name: straight_road_frames(c) for c in conditions if c.group in ("training track", "new track")
    }

    results: dict[str, Any] = {
        "plan": {k: v for k, v in plan.__dict__.items() if k != "variants"},
        "variants": {name: config.to_dict() for name, config in plan.variants.items()},
        "drive_throttle": throttle,
        "training_labels": {
            "frames": len(labels),
            "mean_angle": float(labels.mean()),
            "share_right": float((labels > 0.02).mean()),
            "share_left": float((labels < -0.02).mean()),
        },
        "models": {},
    }
    variants = {name: (config, [tub]) for name, config in plan.variants.items()}
    if plan.style_dirs:
        variants["default+style"] = (
            AugmentConfig(),
            [tub, *stylised_copies(tub, plan.style_dirs, out / "tubs", log)],
        )
        results["variants"]["default+style"] = {**AugmentConfig().to_dict(), "styles": list(plan.style_dirs)}
    for name, (config, tubs) in variants.items():
        bundle = out / "models" / name
        if not (bundle / "model.json").exists():
            options = TrainOptions(
                architecture=plan.architecture,
                augment=config,
                fit=FitConfig(epochs=plan.epochs, seed=plan.seed, verbose=0),
            )
            log(f"training variant {name!r} on {len(tubs)} tub(s) ...")
            train(tubs, bundle, options, log=lambda _: None)
        scores = {}
        for condition in conditions:
            result = drive(bundle, condition, plan.drive_laps, throttle)
            scores[condition.name] = {
                "group": condition.group,
                **{
                    k: result[k]
                    for k in ("autonomy", "mean_cte", "interventions", "laps", "completed", "elapsed_s")
                },
            }
            log(
                f"  {name:>8} on {condition.name:<24} autonomy {result['autonomy']:.3f}  "
                f"mean CTE {result['mean_cte']:.3f} m"
            )
        bias = {track: steering_bias(bundle, frames) for track, frames in straights.items()}
        results["models"][name] = {"scores": scores, "straight_bias": bias, "groups": _group_means(scores)}
        log(f"  {name:>8} mean steering on straights: " + ", ".join(f"{t} {b:+.3f}" for t, b in bias.items()))
    results["straight_frames"] = {track: len(frames) for track, frames in straights.items()}
    (out / "evidence.json").write_text(json.dumps(results, indent=2))
    (out / "evidence.md").write_text(markdown(results))
    plot(results, out / "evidence.png")
    return results


def stylised_copies(
    tub: Path, style_dirs: tuple[str, ...], folder: Path, log: Callable[[str], None]
) -> list[Path]:
    """The training tub re-rendered in each style (kept between runs)."""
    from augment.style import Stylizer, read_card, stylize_tub

    copies = []
    for style_dir in style_dirs:
        card = read_card(style_dir)
        target = folder / f"{tub.name}-{card.get('name') or Path(style_dir).name}"
        if not target.exists():
            report = stylize_tub(Stylizer(style_dir), card, tub, target, progress=False)
            log(f"stylised {report.frames} frames into {target}")
        copies.append(target)
    return copies


def _tub_records(path: Path) -> list[dict]:
    from car.tub import Tub

    return list(Tub(path).records())


def _group_means(scores: dict[str, dict]) -> dict[str, dict[str, float]]:
    groups: dict[str, list[dict]] = {}
    for row in scores.values():
        groups.setdefault(row["group"], []).append(row)
    return {
        group: {
            "autonomy": float(np.mean([r["autonomy"] for r in rows])),
            "mean_cte": float(np.mean([r["mean_cte"] for r in rows])),
            "drives": len(rows),
        }
        for group, rows in groups.items()
    }


def markdown(results: dict[str, Any]) -> str:
    """The README tables: per group and per condition, variants side by side."""
    models = results["models"]
    names = list(models)
    groups = list(next(iter(models.values()))["groups"])
    lines = [
        "| where | " + " | ".join(f"{n}: autonomy / mean CTE (m)" for n in names) + " |",
        "| --- |" + " --- |" * len(names),
    ]
    for group in groups:
        cells = [
            f"{models[n]['groups'][group]['autonomy']:.3f} / {models[n]['groups'][group]['mean_cte']:.3f}"
            for n in names
        ]
        lines.append(
            f"| **{group}** (mean of {models[names[0]]['groups'][group]['drives']}) | "
            + " | ".join(cells)
            + " |"
        )
    lines += ["", "| condition | " + " | ".join(names) + " |", "| --- |" + " --- |" * len(names)]
    for condition in next(iter(models.values()))["scores"]:
        scores = {n: models[n]["scores"][condition] for n in names}
        cells = [f"{scores[n]['autonomy']:.3f} / {scores[n]['mean_cte']:.3f}" for n in names]
        lines.append(f"| {condition} | " + " | ".join(cells) + " |")
    labels = results["training_labels"]
    lines += [
        "",
        f"Training labels: {labels['frames']} frames, mean steering {labels['mean_angle']:+.3f}, "
        f"{labels['share_right']:.0%} right / {labels['share_left']:.0%} left.",
        "",
        "| mean predicted steering on straights | " + " | ".join(names) + " |",
        "| --- |" + " --- |" * len(names),
    ]
    for track in results["straight_frames"]:
        lines.append(
            f"| {track} ({results['straight_frames'][track]} frames) | "
            + " | ".join(f"{models[n]['straight_bias'][track]:+.3f}" for n in names)
            + " |"
        )
    lines.append(
        "| **mean absolute bias** | "
        + " | ".join(
            f"**{np.nanmean(np.abs(list(models[n]['straight_bias'].values()))):.3f}**" for n in names
        )
        + " |"
    )
    return "\n".join(lines) + "\n"


def plot(results: dict[str, Any], path: Path) -> Path:
    """Autonomy and mean CTE per condition group, one bar per variant."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = results["models"]
    names = list(models)
    groups = list(next(iter(models.values()))["groups"])
    x = np.arange(len(groups))
    width = 0.8 / len(names)
    figure, axes = plt.subplots(1, 2, figsize=(12, 4))
    for metric, axis in zip(("autonomy", "mean_cte"), axes, strict=True):
        for i, name in enumerate(names):
            axis.bar(x + i * width, [models[name]["groups"][g][metric] for g in groups], width, label=name)
        axis.set_xticks(x + width * (len(names) - 1) / 2, groups, fontsize=8)
        axis.set_title(
            {"autonomy": "autonomy (higher is better)", "mean_cte": "mean |CTE|, m (lower is better)"}[metric]
        )
    handles, labels = axes[0].get_legend_handles_labels()
    figure.legend(handles, labels, title="augmentation", loc="lower center", ncol=len(names))
    figure.suptitle(
        f"trained on seed {results['plan']['train_seed']} only; driven closed-loop in the simulator"
    )
    figure.tight_layout(rect=(0, 0.12, 1, 1))
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
