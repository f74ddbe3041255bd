"""Issue 16 on MT10 through the CLI: runs survive a stop before the first evaluation, a kill
between the last checkpoint and ``final.pt``, a kill before the first periodic checkpoint, and a
storm of SIGKILLs, each ending bit-identical to an uninterrupted run."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest
import tyro

from softmod.checkpoint import load_file, step_checkpoints
from softmod.cli import TrainArgs
from softmod.loop import train

from .test_resume import _start, _steps, _wait_for, assert_same_run

pytestmark = pytest.mark.slow

# A short MT10 run: warm-up ends at step 200 (20 per task), evaluation only at the end, the
# default checkpoint interval (500k): the checkpoints are the warm-up's and the final one.
TOTAL = 1000
MT10 = [
    "--benchmark", "mt10", "--total-steps", str(TOTAL), "--warmup-per-task", "20",
    "--batch-per-task", "8", "--buffer-per-task", "1000", "--eval-interval", str(TOTAL),
    "--eval-episodes", "1", "--log-interval", "100", "--horizon", "40", "--threads", "1",
    "--device", "cpu", "--no-progress",
]  # fmt: skip
WARMUP_END = 200


def _finish(proc: subprocess.Popen, timeout: float = 300) -> tuple[int, str]:
    _, err = proc.communicate(timeout=timeout)
    return proc.returncode, err


def _saved(run: Path) -> list[int]:
    return [s for s, _ in step_checkpoints(run / "checkpoints")]


def _reference(tmp_path: Path, *extra: str) -> Path:
    """The same run in one go, in this process."""
    ref = tmp_path / "ref"
    train(tyro.cli(TrainArgs, args=[*MT10, *extra]).to_config(), ref, progress=False)
    return ref


def test_killed_before_the_first_periodic_checkpoint_then_stopped_before_the_first_evaluation(
    tmp_path: Path,
) -> None:
    run = tmp_path / "run"
    # SIGKILL with the default interval (500k): the warm-up's checkpoint is there to resume from
    proc = _start(*MT10, "--run-dir", str(run))
    _wait_for(lambda: WARMUP_END in _saved(run), proc, timeout=180)
    proc.kill()
    proc.wait()
    assert _saved(run) == [WARMUP_END]
    code, err = _finish(_start(*MT10, "--run-dir", str(run)))  # reusing the dir says what to do
    assert code == 2 and f"--resume {run}" in err

    # resumed, then SIGTERM before the first evaluation (at the end): the eval envs were never
    # reset, and the checkpoint the signal writes must resume
    proc = _start("--resume", str(run))
    _wait_for(lambda: max(_steps(run / "train.csv"), default=0) > WARMUP_END, proc, timeout=180)
    proc.send_signal(signal.SIGTERM)
    code, err = _finish(proc)
    assert code == 143, err
    assert f"step-{WARMUP_END:012d}.pt" in err.replace("\n", "")  # resumed from the warm-up's
    assert "continue with softmod train --resume" in err.strip().splitlines()[-1]
    stopped = _saved(run)[-1]
    assert WARMUP_END < stopped < TOTAL
    state = load_file(run / "checkpoints" / f"step-{stopped:012d}.pt")
    assert state["eval_env"]["envs"][0]["rng_at_reset"] is None  # never evaluated yet

    code, err = _finish(_start("--resume", str(run)))
    assert code == 0, err
    assert (run / "checkpoints" / "final.pt").exists()
    assert json.loads((run / "final_eval.json").read_text())["step"] == TOTAL
    assert _steps(run / "train.csv") == list(range(100, TOTAL + 1, 100))
    assert_same_run(_reference(tmp_path), run)


def test_a_kill_between_the_last_checkpoint_and_final_pt_is_finished_by_resume(
    tmp_path: Path,
) -> None:
    run = tmp_path / "run"
    kill = "import os, softmod.loop as t; t.Trainer.finish = lambda self: os.kill(os.getpid(), 9)"
    code, err = _finish(_start(*MT10, "--total-steps", "300", "--run-dir", str(run), code=kill))
    assert code == -signal.SIGKILL, err
    assert _saved(run)[-1] == 300
    assert not (run / "checkpoints" / "final.pt").exists()
    assert not (run / "final_eval.json").exists()

    code, err = _finish(_start("--resume", str(run)))
    assert code == 0, err
    assert "finishing" in err
    assert (run / "checkpoints" / "final.pt").exists()
    final = json.loads((run / "final_eval.json").read_text())
    assert final["step"] == 300 and len(final["tasks"]) == 10
    assert _steps(run / "train.csv") == [100, 200, 300]  # nothing trained twice

    code, err = _finish(_start("--resume", str(run)))  # now it is complete
    assert code == 2 and "complete at step 300" in err and "larger --total-steps" in err


def test_a_sigkill_storm_then_resume_is_bit_identical(tmp_path: Path) -> None:
    run, rng = tmp_path / "run", random.Random(16)
    every = ["--checkpoint-interval", "100"]
    proc = _start(*MT10, *every, "--run-dir", str(run))
    kills: list[int] = []
    for _ in range(3):
        # a random moment after the run made progress: mid-interval, mid-update or mid-save
        before = max(_saved(run), default=0)
        end = time.monotonic() + 180
        while max(_saved(run), default=0) <= before and proc.poll() is None:
            assert time.monotonic() < end, "no progress"
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 0.4))
        if proc.poll() is not None:  # finished before the kill
            break
        proc.kill()
        proc.wait()
        kills.append(max(_saved(run)))
        proc = _start("--resume", str(run))
    code, err = _finish(proc)
    assert code == 0, err
    assert len(kills) >= 2, kills  # the storm really hit the run
    assert _steps(run / "train.csv") == list(range(100, TOTAL + 1, 100))
    assert not list((run / "checkpoints").glob("*.tmp"))
    assert_same_run(_reference(tmp_path, *every), run)
