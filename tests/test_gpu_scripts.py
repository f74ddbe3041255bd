"""benchmarks/gpu/learn.sh, the learning run of a device call: a device call is short and rare, so
the script is checked here, on the toy benchmark and the CPU, both ways it can end: the run reaches
its budget (run.py's record with the final evaluation) or the cap stops it (partial.py's record of
what it reached). Either way the run's train.csv comes back beside the record."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOY = ["--benchmark", "toy", "--method", "mt-sac", "--eval-interval", "400", "--eval-episodes",
       "2", "--final-episodes", "3", "--warmup-per-task", "50", "--batch-size", "32",
       "--device", "cpu", "--threads", "1"]  # fmt: skip


def _learn(tmp_path: Path, cap: int, name: str, budget: int) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    res, runs = tmp_path / "res", tmp_path / "runs"
    cmd = ["bash", "benchmarks/gpu/learn.sh", str(cap), name, str(res), str(runs), *TOY,
           "--budget", str(budget)]  # fmt: skip
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def test_learn_sh_records_a_finished_run_with_its_final_evaluation(tmp_path: Path) -> None:
    done = _learn(tmp_path, 300, "done", 1200)
    assert done.returncode == 0, done.stderr
    record = json.loads((tmp_path / "res" / "done.json").read_text())
    assert record["env_steps"] == 1200 and record["final_eval"]["episodes_per_task"] == 3
    assert not (tmp_path / "res" / "done-partial.json").exists()
    assert (tmp_path / "res" / "train-done.csv").read_text().startswith("step,")
    assert "final success" in (tmp_path / "res" / "train-done.log").read_text()


def test_learn_sh_records_a_run_stopped_by_its_cap(tmp_path: Path) -> None:
    capped = _learn(tmp_path, 25, "capped", 10_000_000)
    assert capped.returncode == 0, capped.stderr
    res = tmp_path / "res"
    assert not (res / "capped.json").exists()  # no final evaluation: it did not reach its budget
    record = json.loads((res / "capped-partial.json").read_text())
    (run,) = record["runs"]
    assert 400 <= run["reached_env_steps"] < 10_000_000 and run["curve"]
    assert (res / "capped-partial.png").read_bytes()[:4] == b"\x89PNG"
    assert (res / "train-capped.csv").read_text().startswith("step,")
    # the run stopped with a checkpoint, so a later call could go on with run.py --resume
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert any((run_dir / "checkpoints").iterdir())
