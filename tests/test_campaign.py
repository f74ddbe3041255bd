"""benchmarks/learning/campaign.py: a plan of runs kept going a few at a time, stopped, recorded.

Toy runs (seconds each); on Meta-World the runs are the same run.py processes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .test_learning_scripts import ROOT, _load, script_error

CAMPAIGN = _load("campaign")
SCRIPT = ROOT / "benchmarks" / "learning" / "campaign.py"
TOY = ["--eval-interval", "400", "--eval-episodes", "2", "--final-episodes", "3",
       "--checkpoint-interval", "400", "--warmup-per-task", "50", "--batch-size", "32",
       "--device", "cpu"]  # fmt: skip


def _plan(path: Path, runs: list[dict], **defaults) -> Path:
    path.write_text(json.dumps({"defaults": {"benchmark": "toy", "args": TOY, **defaults},
                                "runs": runs}))  # fmt: skip
    return path


def test_the_plan_runs_in_order_and_a_larger_budget_continues_the_same_run(
    tmp_path: Path, capsys
) -> None:
    plan = _plan(tmp_path / "plan.json", [
        {"method": "mt-sac", "seed": 0},
        {"method": "mt-sac", "seed": 0, "budget": 2000},  # continues the first, once it finished
        {"method": "mt-mh-sac", "seed": 0},
    ], budget=1000)  # fmt: skip
    runs, out = tmp_path / "runs", tmp_path / "results"
    args = [str(plan), "--runs-dir", str(runs), "--out", str(out), "--poll", "0.2"]
    before = CAMPAIGN.main([*args, "--status"])
    assert [s.state for s in before] == ["new", "wait", "new"]
    assert not runs.exists()  # --status starts nothing

    after = CAMPAIGN.main([*args, "--slots", "2"])
    assert [s.state for s in after] == ["done", "done", "done"]
    names = ["toy-fixed-mt-sac-1k-s0", "toy-fixed-mt-sac-2k-s0", "toy-fixed-mt-mh-sac-1k-s0"]
    records = [json.loads((out / f"{n}.json").read_text()) for n in names]
    assert [r["env_steps"] for r in records] == [1000, 2000, 1000]
    assert records[1]["run_dir"] == records[0]["run_dir"]  # one run directory, extended
    # both budgets' final evaluations stay in it: the 1,000-step one under its step's name
    extended = ROOT / records[0]["run_dir"]
    finals = {n: json.loads((extended / n).read_text())
              for n in ("eval_3ep.json", "eval_3ep_step-000000001000.json")}  # fmt: skip
    assert [f["step"] for f in finals.values()] == [2000, 1000]
    assert [f["tasks"] for f in finals.values()] == [records[1]["final_eval"]["tasks"],
                                                     records[0]["final_eval"]["tasks"]]  # fmt: skip
    assert len(list(runs.iterdir())) == 2  # the run directories only: the logs lie beside
    log = (runs.with_name(runs.name + "-logs") / "toy-fixed-mt-sac-2k-s0.log").read_text()
    assert "--resume" in log and "--budget 2000" in log
    table = capsys.readouterr().out
    assert table.count("| done |") == 3 and table.count(", final (3 episodes/task) |") == 3
    # a done entry's row is its record's, not that of the directory a larger budget extended
    assert "| toy-fixed-mt-sac-1k-s0 | done | 1,000 |" in table
    assert "| toy-fixed-mt-sac-2k-s0 | done | 2,000 |" in table
    assert "record toy-fixed-mt-sac-1k-s0.json |" in table


def test_a_larger_budget_whose_smaller_run_directory_is_gone_trains_again_from_step_0(
    tmp_path: Path,
) -> None:
    plan = _plan(tmp_path / "plan.json", [
        {"method": "mt-sac", "seed": 0},
        {"method": "mt-sac", "seed": 0, "budget": 2000},
        {"method": "mt-mh-sac", "seed": 0},
        {"method": "mt-mh-sac", "seed": 0, "budget": 2000},
    ], budget=1000)  # fmt: skip
    runs, out = tmp_path / "runs", tmp_path / "results"
    out.mkdir()
    # the 1,000-step mt-sac run was recorded on a machine that was not kept: no run directory
    (out / "toy-fixed-mt-sac-1k-s0.json").write_text("{}")
    states = CAMPAIGN.main([str(plan), "--runs-dir", str(runs), "--out", str(out), "--status"])
    assert [s.state for s in states] == ["done", "new", "new", "wait"]
    assert CAMPAIGN.status_table(states).splitlines()[2] == (  # an unreadable record: dashes
        "| toy-fixed-mt-sac-1k-s0 | done | – | – | – | – | record toy-fixed-mt-sac-1k-s0.json |"
    )
    assert states[1].args[states[1].args.index("--budget") + 1] == "2000"
    assert "--resume" not in states[1].args


def test_a_stopped_campaign_stops_its_runs_with_a_checkpoint_and_records_them(
    tmp_path: Path,
) -> None:
    plan = _plan(tmp_path / "plan.json", [{"method": "mt-sac", "seed": 0}], budget=200_000)
    runs, out = tmp_path / "runs", tmp_path / "results"
    args = [str(plan), "--runs-dir", str(runs), "--out", str(out), "--poll", "0.2"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, str(SCRIPT), *args, "--record-every", "1"], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)  # fmt: skip
    deadline = time.monotonic() + 300
    evals = []
    while len(evals) < 2:  # the header and a first evaluation (at 400)
        assert proc.poll() is None and time.monotonic() < deadline, proc.stdout
        time.sleep(0.5)
        evals = [line for f in runs.glob("*/eval.csv") for line in f.read_text().splitlines()]
    (run_dir,) = list(runs.iterdir())
    # --record-every: the running run's record is written while it runs, before any stop
    while not list(out.glob("*-partial.json")):
        assert proc.poll() is None and time.monotonic() < deadline, proc.stdout
        time.sleep(0.2)
    held = CAMPAIGN.training_pid(run_dir)
    assert held is not None and held != proc.pid  # its run.py child trains it
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, output
    assert "(every 1 s)" in output
    assert CAMPAIGN.training_pid(run_dir) is None  # the child stopped too
    (state,) = CAMPAIGN.main([*args, "--status"])
    assert state.state == "resume" and state.found.reached >= 400
    date = run_dir.name.rsplit("-", 2)[1]
    record = json.loads((out / f"toy-fixed-mt-sac-200k-s0-{date}-partial.json").read_text())
    # the last logged step (partial.py) and the stop's checkpoint (--status: where resume goes on)
    assert 400 <= record["runs"][0]["reached_env_steps"] <= state.found.reached
    log = runs.with_name(runs.name + "-logs") / "toy-fixed-mt-sac-200k-s0.log"
    assert "stopped at step" in log.read_text()


@pytest.mark.parametrize(
    "runs,message",
    [
        ([{"method": "mt-sac", "seed": 0, "colour": "red"}], "unknown key 'colour'"),
        ([{"method": "nope", "seed": 0}], "unknown method 'nope'"),
        ([{"method": "mt-sac"}], "no 'seed'"),
        ([{"method": "mt-sac", "seed": 0}] * 2, "listed twice"),
    ],
)
def test_a_bad_plan_is_one_line_before_anything_starts(tmp_path: Path, capsys, runs, message):
    plan = _plan(tmp_path / "plan.json", runs, budget=1000)
    argv = [str(plan), "--runs-dir", str(tmp_path / "runs")]
    assert message in script_error(capsys, CAMPAIGN.main, argv)
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(("option", "message"), [
    (["--slots", "0"], "--slots 0: must be at least 1"),
    (["--record-every", "-5"], "--record-every -5: allowed: 0 (off) or seconds > 0"),
])  # fmt: skip
def test_bad_campaign_options_are_one_line_before_anything_starts(
    tmp_path: Path, capsys, option: list[str], message: str
) -> None:
    plan = _plan(tmp_path / "plan.json", [{"method": "mt-sac", "seed": 0}], budget=1000)
    argv = [str(plan), "--runs-dir", str(tmp_path / "runs"), *option]
    assert message in script_error(capsys, CAMPAIGN.main, argv)
    assert not (tmp_path / "runs").exists()


def test_the_speed_shown_is_the_median_of_updating_intervals_not_the_warm_up() -> None:
    row = lambda step, rate, updates: {"step": step, "train/steps_per_s": rate,  # noqa: E731
                                       "train/updates": updates}  # fmt: skip
    warm = [row(5000 * i, 1000.0, 0) for i in range(1, 8)] + [row(40000, 1100.0, 1)]
    assert CAMPAIGN.training_rate(warm) is None  # every interval so far was (mostly) warm-up
    paused = [row(45000, 64.0, 500), row(50000, 2.0, 1000), row(55000, 66.0, 1500)]
    assert CAMPAIGN.training_rate(warm + paused) == 64.0
    long = warm + [row(40000 + 5000 * i, 30.0 + i, 500 * i) for i in range(1, 30)]
    assert CAMPAIGN.training_rate(long) == 30.0 + 24  # the median of the last 12 (18..29)
