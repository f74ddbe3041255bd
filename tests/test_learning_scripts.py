"""benchmarks/learning/: a record from run.py, a run stopped and resumed, the plots from plot.py.

The scripts train on the toy benchmark here (seconds); on Meta-World they are the same code.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        f"learning_{name}", ROOT / "benchmarks" / "learning" / f"{name}.py"
    )
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


RUN, PLOT = _load("run"), _load("plot")
COMMON = ["--benchmark", "toy", "--method", "mt-sac", "--budget", "1200", "--eval-interval",
          "400", "--eval-episodes", "2", "--final-episodes", "3", "--checkpoint-interval", "400",
          "--warmup-per-task", "50", "--batch-size", "32", "--device", "cpu"]  # fmt: skip


def _no_time(curve: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "time_s"} for row in curve]


def test_record_resume_and_plot(tmp_path: Path) -> None:
    runs, out = tmp_path / "runs", tmp_path / "results"
    whole = RUN.main([*COMMON, "--runs-dir", str(runs), "--out", str(out), "--name", "whole"])
    assert whole["env_steps"] == 1200 and whole["benchmark"] == "toy"
    assert [row["step"] for row in whole["curve"]] == [400, 800, 1200]
    assert whole["final_eval"]["episodes_per_task"] == 3
    assert json.loads((out / "whole.json").read_text())["name"] == "whole"

    # stopped at 800 (as at the end of a session), then resumed: the same run as uninterrupted
    with pytest.raises(SystemExit) as stop:
        RUN.main([*COMMON, "--runs-dir", str(runs), "--out", str(out), "--name", "split",
                  "--stop-at", "800"])  # fmt: skip
    assert stop.value.code != 0
    assert not (out / "split.json").exists()  # no record for a run that has not finished
    (run_dir,) = [d for d in runs.iterdir() if d.name.startswith("split-")]
    split = RUN.main(["--resume", str(run_dir), "--out", str(out)])
    assert split["name"] == "split" and split["env_steps"] == 1200
    assert whole["updates"] > 100
    assert _no_time(split["curve"]) == _no_time(whole["curve"])  # bit-identical across the stop
    assert split["final_eval"] == whole["final_eval"]
    assert "--stop-at 800" in split["command"] and "--resume" in split["command"]
    assert split["train_wall_s"] > 0

    PLOT.main(out)
    png = (out / "toy-fixed.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    summary = (out / "summary.md").read_text()
    assert summary.count("| toy-fixed | mt-sac | 1,200 |") == 2


@pytest.mark.parametrize(
    "args,message",
    [
        (["--benchmark", "toy"], "--budget is required"),
        (["--benchmark", "toy", "--method", "nope", "--budget", "100"], "unknown method 'nope'"),
        (["--benchmark", "mt1", "--task", "nope", "--budget", "100"], "unknown task 'nope'"),
        (["--resume", "/nonexistent/run"], "no run there"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(tmp_path: Path, capsys, args, message) -> None:
    runs, out = tmp_path / "runs", tmp_path / "results"
    with pytest.raises(SystemExit) as err:
        RUN.main([*args, "--out", str(out), "--runs-dir", str(runs)])
    assert err.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0]
    assert not runs.exists() and not out.exists()
