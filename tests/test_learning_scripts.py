"""benchmarks/learning/: a record from run.py, a run stopped and resumed, the plots from plot.py.

The scripts train on the toy benchmark here (seconds); on Meta-World they are the same code.
"""

from __future__ import annotations

import importlib.util
import json
import sys
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
    sys.modules[spec.name] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


RUN, PLOT, PARTIAL = _load("run"), _load("plot"), _load("partial")
COMMON = ["--benchmark", "toy", "--method", "mt-sac", "--budget", "1200", "--eval-interval",
          "400", "--eval-episodes", "2", "--final-episodes", "3", "--checkpoint-interval", "400",
          "--warmup-per-task", "50", "--batch-size", "32", "--device", "cpu"]  # fmt: skip


def _no_time(curve: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "time_s"} for row in curve]


def script_error(capsys: pytest.CaptureFixture[str], main, argv: list[str]) -> str:
    """A learning script's bad-input error: ``main(argv)`` exits 2 with one line on stderr (no
    traceback), which is returned."""
    with pytest.raises(SystemExit) as err:
        main(argv)
    assert err.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_record_resume_and_plot(tmp_path: Path) -> None:
    runs, out = tmp_path / "runs", tmp_path / "results"
    whole = RUN.main([*COMMON, "--runs-dir", str(runs), "--out", str(out), "--name", "whole"])
    assert whole["env_steps"] == 1200 and whole["benchmark"] == "toy"
    assert [row["step"] for row in whole["curve"]] == [400, 800, 1200]
    assert whole["final_eval"]["episodes_per_task"] == 3
    assert json.loads((out / "whole.json").read_text())["name"] == "whole"
    # the final evaluation is also the run's eval_<E>ep.json, which softmod report takes
    (whole_dir,) = [d for d in runs.iterdir() if d.name.startswith("whole-")]
    in_run = json.loads((whole_dir / "eval_3ep.json").read_text())
    assert in_run["mean_success"] == whole["final_eval"]["mean_success"]
    assert in_run["episodes_per_task"] == 3 and in_run["checkpoint"] == "final.pt"
    # killed during its final evaluation (trained, no record): --resume evaluates and records it
    (out / "whole.json").unlink()
    (whole_dir / "eval_3ep.json").unlink()
    again = RUN.main(["--resume", str(whole_dir), "--out", str(out)])
    assert again["final_eval"] == whole["final_eval"] and (whole_dir / "eval_3ep.json").exists()
    assert (again["env_steps"], again["updates"]) == (1200, whole["updates"])
    assert _no_time(again["curve"]) == _no_time(whole["curve"])  # not trained any further

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
    png = (out / "toy-fixed-1k.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    summary = (out / "summary.md").read_text()
    assert summary.count("| toy-fixed | mt-sac s0 | 1,200 |") == 2


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
    assert message in script_error(capsys, RUN.main, [*args, "--out", str(out), "--runs-dir",
                                                      str(runs)])  # fmt: skip
    assert not runs.exists() and not out.exists()


def test_partial_compares_at_equal_samples(tmp_path: Path, capsys) -> None:
    """Two runs stopped at different steps: the record compares them at the last common eval."""
    runs, out = tmp_path / "runs", tmp_path / "results"
    for method, stop in (("mt-sac", "1200"), ("mt-mh-sac", "800")):
        args = [a if a != "mt-sac" else method for a in COMMON]
        with pytest.raises(SystemExit):
            RUN.main([*args, "--budget", "4000", "--runs-dir", str(runs), "--out", str(out),
                      "--name", method, "--stop-at", stop])  # fmt: skip
    dirs = sorted(runs.iterdir())  # mt-mh-sac-..., mt-sac-...
    png = PARTIAL.main("both", dirs, out)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    record = json.loads((out / "both.json").read_text())
    reached = {r["method"]: r["reached_env_steps"] for r in record["runs"]}
    assert reached == {"mt-mh-sac": 800, "mt-sac": 1200}
    eq = record["equal_samples"]
    assert eq["step"] == 800 and set(eq["runs"]) == {"mt-sac", "mt-mh-sac"}
    for run_dir in dirs:  # the figures at step 800 are the ones in the run's eval.csv
        row = next(r for r in RUN.read_curve(run_dir / "eval.csv") if r["step"] == 800)
        method = json.loads((run_dir / "config.json").read_text())["method"]
        got = eq["runs"][method]
        assert got["mean_return"] == row["eval/mean_return"]
        assert sum(got["return"].values()) / len(got["return"]) == pytest.approx(
            got["mean_return"], rel=1e-4
        )
    table = (out / "both.md").read_text()
    assert "800 environment steps" in table and table.count("| mean |") == 1

    # a directory that is not a run: one line naming it, nothing written
    capsys.readouterr()
    with pytest.raises(SystemExit) as err:
        PARTIAL.main("bad", [tmp_path / "nothing"], out)
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert err.value.code == 2 and "is not a run.py run" in line and "nothing" in line
    assert not (out / "bad.json").exists()
    # a run stopped before its first evaluation: said so in one line, nothing written
    early = tmp_path / "early"
    early.mkdir()
    (early / "config.json").write_text((dirs[0] / "config.json").read_text())
    (early / "eval.csv").write_text((dirs[0] / "eval.csv").read_text().splitlines()[0] + "\n")
    (early / "train.csv").write_text((dirs[0] / "train.csv").read_text())
    with pytest.raises(SystemExit) as err:
        PARTIAL.main("bad", [early], out)
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert err.value.code == 2 and "no evaluation yet" in line and not (out / "bad.json").exists()


def test_runs_that_differ_only_in_precision_or_horizon_get_distinct_labels() -> None:
    """An fp32/bf16 pair of one seed (issue 17) and a horizon-500 run (issue 18) must not share
    a label: equal_samples keys its table by label and would drop one of them."""
    runs = [
        {"method": "soft-shallow", "seed": 0, "precision": "fp32", "horizon": 150},
        {"method": "soft-shallow", "seed": 0, "precision": "bf16", "horizon": 150},
        {"method": "soft-shallow", "seed": 0, "precision": "fp32", "horizon": 500},
        {"method": "soft-shallow", "seed": 1, "precision": "fp32", "horizon": 150},
        {"method": "mt-sac", "seed": 0, "precision": "fp32", "horizon": 150},
    ]
    RUN.label_runs(runs, " s{seed}")
    assert [r["label"] for r in runs] == [
        "soft-shallow s0 fp32 h150",
        "soft-shallow s0 bf16 h150",
        "soft-shallow s0 fp32 h500",
        "soft-shallow s1",
        "mt-sac",
    ]


def test_resume_with_a_larger_budget_continues_a_finished_run_under_a_new_name(
    tmp_path: Path, capsys
) -> None:
    """Run 2 of issue 18: a run finished at its budget continues to a larger one; the record of
    the first budget stays, the new one takes the new budget in its name."""
    runs, out = tmp_path / "runs", tmp_path / "results"
    first = RUN.main([*COMMON, "--runs-dir", str(runs), "--out", str(out)])
    assert first["name"] == "toy-fixed-mt-sac-1k-s0" and first["env_steps"] == 1200
    (run_dir,) = runs.iterdir()
    with pytest.raises(SystemExit) as bad:  # a smaller budget: one line, nothing changed
        RUN.main(["--resume", str(run_dir), "--budget", "800", "--out", str(out)])
    assert bad.value.code == 2 and "--budget 800" in capsys.readouterr().err
    assert json.loads((run_dir / "learning.json").read_text())["name"] == first["name"]

    longer = RUN.main(["--resume", str(run_dir), "--budget", "2000", "--out", str(out)])
    assert longer["name"] == "toy-fixed-mt-sac-2k-s0" and longer["env_steps"] == 2000
    assert [row["step"] for row in longer["curve"]] == [400, 800, 1200, 1600, 2000]
    assert _no_time(longer["curve"][:3]) == _no_time(first["curve"])  # the same run, continued
    kept = json.loads((out / "toy-fixed-mt-sac-1k-s0.json").read_text())
    assert kept == json.loads(json.dumps(first))  # the first budget's record stays
    assert json.loads((run_dir / "learning.json").read_text())["name"] == longer["name"]
    assert "--budget 2000" in longer["command"]


def test_task_use_measures_dependence_on_the_task_id(tmp_path: Path, capsys) -> None:
    """task_use.py: step 0 plus every checkpoint; a network blind to the task id measures 0."""
    task_use = _load("task_use")
    runs, out = tmp_path / "runs", tmp_path / "results"
    for method in ("soft-shallow", "mt-mh-sac"):
        args = [a if a != "mt-sac" else method for a in COMMON]
        RUN.main([*args, "--budget", "800", "--runs-dir", str(runs), "--out", str(out),
                  "--name", method])  # fmt: skip
    dirs = sorted(runs.iterdir())  # mt-mh-sac-..., soft-shallow-...
    png = task_use.main("tu", dirs, out=out)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    record = json.loads((out / "tu.json").read_text())
    by_method = {r["method"]: r for r in record["runs"]}
    for run in record["runs"]:  # a fresh agent, the checkpoints at 400 and the final weights
        assert [row["step"] for row in run["rows"]] == [0, 400, 800]
    soft, mh = by_method["soft-shallow"]["rows"], by_method["mt-mh-sac"]["rows"]
    assert "routing_from_uniform" in soft[0] and "routing_from_uniform" not in mh[0]
    assert soft[0]["routing_from_uniform"] < 0.01  # the authors' ±3e-3 routing init: uniform
    assert soft[-1]["routing_from_uniform"] > soft[0]["routing_from_uniform"]  # it learned
    assert mh[-1]["policy_task"] > 0 and "| soft-shallow | 800 |" in (out / "tu.md").read_text()

    # the same states with a task embedding that ignores the task: no spread over task ids
    from softmod.config import load_config
    from softmod.sac.agent import MultiTaskSAC

    cfg = load_config(dirs[1] / "config.json")
    obs, act, task, num_tasks = task_use.random_states(cfg, 1)
    agent = MultiTaskSAC(cfg, obs.shape[1], act.shape[1], num_tasks, task_use.torch.device("cpu"))
    for net in (agent.policy.net, agent.q.net):
        task_use.torch.nn.init.zeros_(net.task_embed.weight)
    blind = task_use.measure(agent, obs, act, task)
    assert blind["policy_task"] == 0 and blind["q_task"] == 0 and blind["policy_state"] > 0

    capsys.readouterr()
    with pytest.raises(SystemExit) as err:
        task_use.main("bad", [tmp_path / "nothing"], out=out)
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert err.value.code == 2 and "not a softmod run" in line and not (out / "bad.json").exists()


def test_plot_groups_records_by_budget_and_labels_their_settings() -> None:
    """plot.py: a 120k check and a 1M run get separate figures; a label names the precision and
    horizon the way softmod report does, and the seed."""
    rec = {"benchmark": "mt10", "goals": "fixed", "method": "soft-shallow", "seed": 1,
           "env_steps": 1_000_000, "precision": "bf16", "horizon": 500}  # fmt: skip
    assert PLOT.group_key(rec) == "mt10-fixed-1000k"
    assert PLOT.group_key({**rec, "env_steps": 120_000}) == "mt10-fixed-120k"
    assert PLOT.label(rec) == "soft-shallow [bf16, h500] s1"
    assert PLOT.label({**rec, "precision": "fp32", "horizon": 150}) == "soft-shallow s1"
