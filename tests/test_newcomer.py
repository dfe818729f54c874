"""A newcomer's path: the README runs as written after the demo, and every mistake is one line.

The README: every ```bash block runs, in order, from the root of a scratch copy of the
repo (its git files, `../shared` beside it as for a checkout), with the real `.venv/bin`
on the PATH as the README says to put it there: first `./demo.sh` as written, then the
three commands the demo printed at its end (which must be the README's own "Next" block),
then every other command. Sizes are small in the README itself, so nothing here shrinks
them. Servers (`tubcar studio`, `tubcar drive`) are started, their page fetched, and
stopped with Ctrl-C. `./test.sh` is the one command not run: it is what runs this test.

Mistakes: each command is given a path that does not exist, a folder that is not a model
bundle (or style), and a flag it does not have, and must answer one line `error: ...`
naming what was wrong, with exit code 2.
"""

from __future__ import annotations

import hashlib
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tubcar import cli

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
SERVERS = ("tubcar studio", "tubcar drive")  # run until Ctrl-C: started, fetched, stopped
NOT_RUN = ("./test.sh",)  # the suite itself
COMMAND_TIMEOUT_S = 600
# What TensorFlow and LiteRT print from C++ unless told not to: none of it in a normal run.
NATIVE_NOISE = re.compile(r"oneDNN|cpu_feature_guard|XNNPACK delegate|retracing|This TensorFlow binary")


# ------------------------------------------------------------------------------ the README
def readme_blocks(text: str) -> list[tuple[str, list[str]]]:
    """Fenced code blocks as (info string, commands): continuation lines joined, comment-only
    and blank lines dropped (bash drops them too)."""
    blocks, info, lines = [], None, []
    for raw in text.splitlines():
        fence = re.match(r"^\s*```(\w*)\s*$", raw)
        if fence and info is None:
            info, lines = fence.group(1), []
        elif fence:
            blocks.append((info, _commands(lines)))
            info = None
        elif info is not None:
            lines.append(raw)
    return blocks


def _commands(lines: list[str]) -> list[str]:
    commands, pending = [], ""
    for line in lines:
        pending += line.strip()
        if pending.endswith("\\"):
            pending = pending[:-1].rstrip() + " "
            continue
        if pending and not pending.startswith("#"):
            commands.append(pending)
        pending = ""
    return commands


def without_comment(command: str) -> str:
    return re.sub(r"\s+#.*$", "", command).strip()


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the repo's files beside `shared/`, its `.venv` the real one's commands
    (its install stamp says up to date, so `demo.sh` installs nothing into the real one)."""
    root = tmp_path_factory.mktemp("newcomer")
    repo = root / "repo"
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = REPO / name
        if source.is_file():
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, repo / name)
    (root / "shared").symlink_to((REPO.parent / "shared").resolve())
    venv = repo / ".venv"
    venv.mkdir()
    (venv / "bin").symlink_to((REPO / ".venv" / "bin").resolve())
    stamp = hashlib.sha256((repo / "pyproject.toml").read_bytes()).hexdigest()
    (venv / ".installed-train").write_text(stamp + "\n")
    return repo


def environment(repo: Path) -> dict[str, str]:
    """The shell a reader has after `export PATH="$PWD/.venv/bin:$PATH"` in the repo root."""
    return {**os.environ, "PATH": f"{repo / '.venv' / 'bin'}:{os.environ['PATH']}"}


def run_command(command: str, repo: Path) -> subprocess.CompletedProcess:
    done = subprocess.run(
        ["bash", "-c", command],
        cwd=repo,
        env=environment(repo),
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
    )
    assert done.returncode == 0, f"{command}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    assert not NATIVE_NOISE.search(done.stderr), f"{command}: a library's banner\n{done.stderr[-3000:]}"
    return done


def ctrl_c_as_in_a_terminal() -> None:
    """A suite started as a script's background job (`./test.sh &`) inherits Ctrl-C ignored,
    as POSIX shells start background jobs, and so would the server; a reader's terminal
    delivers it: the server starts with Ctrl-C at its default."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_server(command: str, repo: Path, attempts: int = 5) -> None:
    """Start a server command, fetch the page it prints, stop it with Ctrl-C (exit 0).

    Another test run on this machine may hold the port: then wait and start it again.
    """
    for _ in range(attempts):
        process = subprocess.Popen(
            ["bash", "-c", f"exec {command}"],
            cwd=repo,
            env={**environment(repo), "PYTHONFAULTHANDLER": "1"},  # SIGABRT prints every thread's stack
            preexec_fn=ctrl_c_as_in_a_terminal,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        url = None
        deadline = time.monotonic() + 180
        while url is None and time.monotonic() < deadline and process.poll() is None:
            line = process.stdout.readline()
            if match := re.search(r"http://\S+", line):
                url = match.group(0)
        if url is None:
            process.kill()
            _, err = process.communicate()
            if "cannot listen" in err:
                time.sleep(3)
                continue
            pytest.fail(f"{command}: printed no address\n{err[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=30) as page:
                assert page.status == 200 and b"<html" in page.read(2000).lower(), command
            process.send_signal(signal.SIGINT)
            _, err = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGABRT)
            _, err = process.communicate(timeout=30)
            pytest.fail(f"{command}: still running 60 s after Ctrl-C; its threads:\n{err[-6000:]}")
        finally:  # a server that failed the test or ignored Ctrl-C must not keep its port
            if process.poll() is None:
                process.kill()
                process.communicate()
        assert process.returncode == 0, f"{command}: exit {process.returncode} after Ctrl-C\n{err[-3000:]}"
        assert not NATIVE_NOISE.search(err), f"{command}: a library's banner\n{err[-3000:]}"
        return
    pytest.fail(f"{command}: its port stayed busy")


def child_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@pytest.mark.timeout(1800)  # ~4 min on an idle 2-core machine; minutes more beside other jobs
def test_every_bash_command_in_the_readme_runs_as_written_after_the_demo(scratch: Path) -> None:
    readme = (scratch / "README.md").read_text()
    blocks = readme_blocks(readme)
    assert all(info in ("bash", "console", "python", "text") for info, _ in blocks), (
        "a fence without a language"
    )
    commands = [command for info, lines in blocks if info == "bash" for command in lines]
    assert [without_comment(command) for command in commands[:2]] == ["./demo.sh", "./test.sh"]

    started, cpu = time.monotonic(), child_cpu_s()
    demo = run_command("./demo.sh", scratch)
    timings = [("./demo.sh", time.monotonic() - started, child_cpu_s() - cpu)]
    assert re.search(r"score: 3 laps, autonomy \d\.\d{3}", demo.stdout), demo.stdout[-2000:]
    printed = re.findall(r"^  (tubcar .+)$", demo.stdout.split("next, try:")[1], flags=re.MULTILINE)
    readme_next = next(
        lines for info, lines in blocks if info == "bash" and lines[0].startswith("tubcar sim drive")
    )
    assert printed == [without_comment(command) for command in readme_next]  # the README shows what it prints

    done = {"./demo.sh"}
    for command in [*printed, *commands]:
        if without_comment(command) in NOT_RUN or without_comment(command) in done:
            continue
        started, cpu = time.monotonic(), child_cpu_s()
        if command.startswith(SERVERS):
            run_server(without_comment(command), scratch)
        else:
            run_command(command, scratch)
        timings.append((without_comment(command), time.monotonic() - started, child_cpu_s() - cpu))
        done.add(without_comment(command))
    for command, wall_s, cpu_s in timings:  # shown with `pytest -s`: where the time goes
        print(f"{wall_s:6.1f} s wall {cpu_s:6.1f} s CPU  {command}")

    assert (scratch / "runs" / "demo" / "movie.mp4").stat().st_size > 10_000
    listing = run_command("tubcar models ls", scratch).stdout
    assert "fast int8" in listing and "autonomy" in listing  # the demo's run, driven


# ------------------------------------------------------------------------------ quiet output
RETRACING = """
from tubcar import env
env.apply()
import tensorflow as tf

@tf.function
def add_one(x):
    return x + 1

for size in range(1, 9):
    add_one(tf.zeros((size,)))  # a new shape each call: retracing, and TensorFlow's warning about it
print("done")
"""


def test_tensorflow_banners_and_retracing_warnings_only_with_verbose() -> None:
    base = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "TUBCAR_VERBOSE")}
    quiet = subprocess.run(
        [sys.executable, "-c", RETRACING], env=base, capture_output=True, text=True, timeout=300
    )
    assert quiet.returncode == 0 and quiet.stdout == "done\n" and quiet.stderr == "", quiet.stderr
    loud = subprocess.run(
        [sys.executable, "-c", RETRACING],
        env={**base, "TUBCAR_VERBOSE": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert loud.returncode == 0 and "triggered tf.function retracing" in loud.stderr


def test_training_shows_one_bar_over_all_epochs_with_the_time_left(capsys: pytest.CaptureFixture) -> None:
    """`tubcar train`'s default progress (FitConfig.verbose 2): the total, the time left, a line an epoch."""
    from training.fit import FitConfig
    from training.progress import epoch_bar

    assert FitConfig().verbose == 2
    bar = epoch_bar(30)
    bar.on_train_begin()
    for epoch in range(2):
        bar.on_epoch_end(epoch, {"loss": 0.5 / (epoch + 1), "val_loss": 0.25, "lr": 1e-3})
    bar.on_train_end()
    out, err = capsys.readouterr()
    assert "epoch 1/30: loss 0.5, val_loss 0.25" in out and "epoch 2/30: loss 0.25" in out
    assert re.search(r"train:\s+7%.*\| 2/30 \[\d\d:\d\d<\d\d:\d\d", err), err  # done/total [spent<left


def test_verbose_shows_the_traceback_behind_a_mistake(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from car.tub import TubError

    monkeypatch.setenv("TUBCAR_VERBOSE", "0")  # --verbose sets it to 1; undone after the test

    assert cli.main(["tub", "info", str(tmp_path / "missing")]) == 2
    with pytest.raises(TubError, match="missing"):
        cli.main(["--verbose", "tub", "info", str(tmp_path / "missing")])


# ------------------------------------------------------------------------------ mistakes
# The car's half of issue 18 tests these (init and pull come with it).
CAR_COMMANDS = {"drive", "calibrate", "deploy", "init", "pull"}


def error_cases(tub: Path, bundle: Path, out: Path) -> dict[str, tuple[list | None, list | None, list]]:
    """Per command: (a missing path, a folder that is not a bundle or style, a bad flag)."""
    missing, wrong = str(out / "no-such-thing"), str(tub)  # a tub is no model bundle
    t, b, o = str(tub), str(bundle), str(out)
    return {
        "tub": (["tub", "info", missing], None, ["tub", "info", t, "--bogus"]),
        "sim": (
            ["sim", "compare", "--tub", missing, "--out", f"{o}/c.png"],
            ["sim", "drive", "--model", wrong, "--track", "1"],
            ["sim", "drive", "--model", b, "--track", "1", "--bogus"],
        ),
        "train": (
            ["train", "--tub", missing, "--out", f"{o}/m"],
            None,
            ["train", "--tub", t, "--out", o, "--bogus"],
        ),
        "export": (
            ["export", "convert", "--keras", f"{missing}.keras", "--tub", t, "--out", f"{o}/e"],
            ["export", "latency", wrong],
            ["export", "latency", b, "--bogus"],
        ),
        "augment": (
            ["augment", "preview", "--tub", missing],
            None,
            ["augment", "preview", "--tub", t, "--bogus"],
        ),
        "stylize": (
            [
                "stylize",
                "train",
                "--style",
                f"{missing}.png",
                "--tub",
                t,
                "--out",
                f"{o}/s",
                "--vgg-weights",
                "random",
            ],
            ["stylize", "apply", "--style", wrong, "--tub", t, "--out", f"{o}/a"],
            ["stylize", "apply", "--style", wrong, "--tub", t, "--out", f"{o}/a", "--bogus"],
        ),
        "search": (
            ["search", "--tub", missing, "--out", f"{o}/search"],
            None,
            ["search", "--tub", t, "--bogus"],
        ),
        "models": (["models", "ls", "--index", f"{missing}.jsonl"], None, ["models", "ls", "--bogus"]),
        "replay": (
            ["replay", "--tub", missing, "--model", b],
            ["replay", "--tub", t, "--model", wrong],
            ["replay", "--tub", t, "--model", b, "--bogus"],
        ),
        "movie": (
            ["movie", "--tub", missing],
            ["movie", "--tub", t, "--model", wrong],
            ["movie", "--tub", t, "--bogus"],
        ),
        "studio": (["studio", missing], ["studio", t, "--model", wrong], ["studio", t, "--bogus"]),
        "bench": (
            ["bench", "loop", "--model", missing, "--ticks", "10"],
            ["bench", "loop", "--model", wrong, "--ticks", "10"],
            ["bench", "tub", "--bogus"],
        ),
        "demo": (None, None, ["demo", "--bogus"]),
        "acceptance": (
            ["acceptance", "real", "--tub", missing, "--out", f"{o}/acc"],
            None,
            ["acceptance", "real", "--tub", t, "--out", o, "--bogus"],
        ),
        "augment-evidence": (
            ["augment-evidence", "--out", f"{o}/ev", "--styles", missing],
            None,
            ["augment-evidence", "--out", o, "--bogus"],
        ),
        "replay-validation": (None, None, ["replay-validation", "--bogus"]),
        "calibrate-camera": (
            ["calibrate-camera", "--tub", missing],
            None,
            ["calibrate-camera", "--tub", t, "--bogus"],
        ),
    }


def test_every_mistake_is_one_line_naming_it_with_exit_code_2(
    scratch: Path, tmp_path: Path, capfd: pytest.CaptureFixture
) -> None:
    """In this process (one TensorFlow import); the demo's tub and bundle are the good inputs."""
    demo = scratch / "runs" / "demo"
    if not (demo / "fast" / "model.json").exists():
        run_command("tubcar demo --train-seeds 1 --laps 1 --epochs 1 --drive-laps 1", scratch)
    cases = error_cases(demo / "tubs" / "track1", demo / "fast", tmp_path)
    assert set(cases) == set(cli.COMMANDS) - CAR_COMMANDS  # a new command gets its cases here
    capfd.readouterr()
    for missing, wrong, bad_flag in cases.values():
        for argv, named in (
            (missing, "no-such-thing"),
            (wrong, str(demo / "tubs" / "track1")),
            (bad_flag, "--bogus"),
        ):
            if argv is None:
                continue
            code = cli.main(argv)
            out, err = capfd.readouterr()
            assert code == 2, f"tubcar {' '.join(argv)}: exit {code}\n{out[-1000:]}\n{err[-1000:]}"
            assert err.startswith("error: ") and err.count("\n") == 1, f"tubcar {' '.join(argv)}:\n{err}"
            assert named in err, f"tubcar {' '.join(argv)}: the error does not name {named}:\n{err}"
            assert not (tmp_path / "no-such-thing").exists()  # nothing was made of the mistake
