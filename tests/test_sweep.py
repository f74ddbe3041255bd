"""Sweeps on a local Ray: a 2 x 2 toy grid completes and reports; a killed trial resumes; re-runs
skip finished trials."""

from __future__ import annotations

import csv
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from softmod.sweep import (
    SweepArgs,
    SweepError,
    SweepSpec,
    TrialFailed,
    build_trials,
    run_sweep,
    wait_for_previous_attempt,
)
from softmod.training_support import training_pid

# tiny toy trials: 2 tasks, short episodes, small batches (each trial is a real `softmod train`)
TOY = {
    "toy-tasks": "2",
    "horizon": "30",
    "warmup-per-task": "100",
    "batch-per-task": "16",
    "eval-interval": "1000",
    "eval-episodes": "2",
    "log-interval": "500",
}


def _spec(methods: tuple[str, ...], seeds: tuple[int, ...], **extra: str) -> SweepSpec:
    return SweepSpec(methods, (), ("toy",), ("fixed",), seeds, {**TOY, **extra})


def test_grid_names_every_trial() -> None:
    trials = build_trials(SweepSpec(("mt-sac", "soft-shallow"), (), ("mt10", "mt50"),
                                    ("fixed", "conditioned"), (0, 1, 2)))  # fmt: skip
    assert len(trials) == 2 * 2 * 2 * 3
    assert len({t.name for t in trials}) == len(trials)
    t = next(t for t in trials if t.name == "mt50-conditioned-soft-shallow-s2")
    assert t.args[t.args.index("--method") + 1] == "soft-shallow"
    assert t.args[t.args.index("--seed") + 1] == "2"


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        (SweepSpec((), (), ("toy",), ("fixed",), (0,)), "at least one"),
        (SweepSpec(("mt-sac",), (), ("toy",), ("fixed",), ()), "seed"),
        (SweepSpec(("no-such-method",), (), ("toy",), ("fixed",), (0,)), "no-such-method"),
        (SweepSpec(("mt-sac",), (), ("mt77",), ("fixed",), (0,)), "mt77"),
        (SweepSpec(("mt-sac",), (), ("toy",), ("fixed",), (0,), {"seed": "3"}), "grid"),
        (SweepSpec(("mt-sac",), (), ("toy",), ("fixed",), (0,), {"horizon": "900"}), "900"),
        (SweepSpec(("mt-sac",), (), ("toy",), ("fixed",), (0,), {"no-such": "1"}), "no-such"),
    ],
)
def test_bad_grid_is_refused_before_ray_starts(spec: SweepSpec, needle: str) -> None:
    with pytest.raises(SweepError) as err:
        build_trials(spec)
    assert needle in str(err.value)
    assert "\n" not in str(err.value)


def test_bad_override_syntax() -> None:
    with pytest.raises(SweepError, match="KEY=VALUE"):
        SweepArgs(Path("x"), methods=("mt-sac",), set=("total-steps",)).spec()


def test_without_ray_the_error_says_how_to_install(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    with pytest.raises(SweepError, match=r"pip install"):
        run_sweep(_spec(("mt-sac",), (0,)), tmp_path / "sweep", progress=False)
    assert not (tmp_path / "sweep").exists()


def _steps(run_dir: Path) -> list[int]:
    with (run_dir / "train.csv").open() as f:
        return [int(float(row["step"])) for row in csv.DictReader(f)]


@pytest.mark.slow
def test_local_sweep_completes_reports_and_skips_finished(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    spec = _spec(("mt-sac", "mt-mh-sac"), (0, 1), **{"total-steps": "1000"})
    res = run_sweep(spec, sweep, num_cpus=2, progress=False)
    assert not res.failed and sorted(res.finished) == sorted(t.name for t in build_trials(spec))
    for name in res.finished:
        run = sweep / name
        final = json.loads((run / "final_eval.json").read_text())
        assert final["episodes_per_task"] >= 1 and len(final["tasks"]) == 2
        assert _steps(run)[-1] == 1000
    status = json.loads((sweep / "sweep.json").read_text())["status"]
    assert set(status.values()) == {"done"}
    from softmod.report.build import build_report

    build_report([sweep], sweep / "report", routing=False, progress=False)
    table = (sweep / "report" / "table1.csv").read_text()
    assert "mt-sac" in table and "mt-mh-sac" in table

    stamps = {n: (sweep / n / "final_eval.json").stat().st_mtime_ns for n in res.finished}
    again = run_sweep(spec, sweep, num_cpus=2, progress=False)  # nothing left to do: no Ray
    assert sorted(again.skipped) == sorted(res.finished) and not again.finished
    assert stamps == {n: (sweep / n / "final_eval.json").stat().st_mtime_ns for n in stamps}


@pytest.mark.slow
def test_killed_trial_is_retried_and_resumes_from_its_checkpoint(tmp_path: Path) -> None:
    from softmod.checkpoint import latest_checkpoint_step

    sweep = tmp_path / "sweep"
    spec = _spec(("mt-sac",), (0,), **{"total-steps": "2500", "checkpoint-interval": "500"})
    (trial,) = build_trials(spec)
    run_dir, book = sweep / trial.name, sweep / "trials" / f"{trial.name}.json"
    killed: dict[str, int] = {}

    def killer() -> None:  # SIGKILL the training process once its first checkpoint exists
        deadline = time.time() + 240
        while time.time() < deadline:
            step = latest_checkpoint_step(run_dir) if run_dir.exists() else None
            if step is not None and book.exists():
                pid = json.loads(book.read_text())["attempts"][-1]["pid"]
                os.kill(pid, signal.SIGKILL)
                killed["step"], killed["pid"] = step, pid
                return
            time.sleep(0.2)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    res = run_sweep(spec, sweep, num_cpus=2, max_retries=2, progress=False)
    thread.join(timeout=5)
    assert killed, "the trial finished before it could be killed"
    assert res.finished == [trial.name] and not res.failed
    attempts = json.loads(book.read_text())["attempts"]
    assert len(attempts) == 2
    assert attempts[0]["exit"] == -signal.SIGKILL and attempts[1]["exit"] == 0
    # from the checkpoint it had (the warm-up's, or a later one written before the kill landed)
    assert attempts[1]["resumed_from"] is not None
    assert attempts[1]["resumed_from"] >= killed["step"] > 0
    steps = _steps(run_dir)  # the step counter continued: no duplicated or missing rows
    assert steps == list(range(500, 2501, 500))


def test_a_retry_waits_until_the_previous_attempt_let_go_of_the_run(tmp_path: Path) -> None:
    import subprocess

    run = tmp_path / "trial"
    run.mkdir()
    hold = (f"import time; from softmod.training_support import hold_run_dir\n"
            f"with hold_run_dir({str(run)!r}):\n"
            f"    print('held', flush=True); time.sleep(3)")  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-c", hold], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline() == "held\n"
    with pytest.raises(TrialFailed, match=rf"still trained by process {proc.pid} after 0 s"):
        wait_for_previous_attempt(run, timeout=0.2)
    start = time.monotonic()
    wait_for_previous_attempt(run)
    assert time.monotonic() - start > 0.5 and training_pid(run) is None
    assert proc.wait() == 0
