"""benchmarks/learning/equal_samples.py: methods side by side at several equal-sample steps.

The run directories are written here as ``softmod train`` leaves them (``config.json`` by
``save_config``, an ``eval.csv`` with the columns it logs), with chosen numbers.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from softmod.config import EnvConfig, RunConfig, SACConfig, save_config

from .test_learning_scripts import _load

EQ = _load("equal_samples")
TASKS = ["reach-v3", "push-v3"]


def _run(root: Path, method: str, seed: int, rows: dict[int, tuple[float, float, float, float]],
         precision: str = "bf16") -> Path:  # fmt: skip
    """A run whose eval.csv has, per step, (reach success, push success, reach return, push
    return)."""
    run = root / f"{method}-s{seed}"
    run.mkdir(parents=True)
    sac = SACConfig(balance=method == "soft-shallow")  # the method's default: no "-balance" mark
    cfg = RunConfig(env=EnvConfig(benchmark="mt10", goals="fixed"), method=method, seed=seed,
                    precision=precision, sac=sac)  # fmt: skip
    save_config(cfg, run / "config.json")
    head = ["step", "time_s", "eval/mean_success", "eval/mean_return"]
    head += [f"eval/{t}/{k}" for t in TASKS for k in ("success", "return")]
    lines = [",".join(head)]
    for step, (s0, s1, r0, r1) in rows.items():
        lines.append(f"{step},1.0,{(s0 + s1) / 2},{(r0 + r1) / 2},{s0},{r0},{s1},{r1}")
    (run / "eval.csv").write_text("\n".join(lines) + "\n")
    return run


def test_cells_average_the_seeds_that_reached_the_step_and_the_window_counts_the_best_return(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ss0 = _run(tmp_path, "soft-shallow", 0, {10: (1, 0, 900, 10), 20: (1, 1, 1000, 800)})
    ss1 = _run(tmp_path, "soft-shallow", 1, {10: (0, 0, 300, 30)})  # stopped before step 20
    mh0 = _run(tmp_path, "mt-mh-sac", 0, {10: (1, 0, 1000, 100), 20: (1, 0, 1000, 50)})
    out = tmp_path / "table.md"
    text = EQ.main([str(ss0), str(ss1), str(mh0), "--steps", "20", "10", "30",
                    "--window", "10", "20", "--out", str(out)])  # fmt: skip
    assert out.read_text() == text == capsys.readouterr().out
    rows = {line.split(" | ")[0]: line.split(" | ")[1:] for line in text.splitlines()}
    # mt-mh-sac before soft-shallow (Table 1's order); columns sorted: 10, 20, 30
    assert list(rows)[2:4] == ["| MT10-Fixed mt-mh-sac [bf16] (0)",
                               "| MT10-Fixed soft-shallow [bf16] (0, 1)"]  # fmt: skip
    ss = rows["| MT10-Fixed soft-shallow [bf16] (0, 1)"]
    # step 10: success (50% + 0%) / 2, return (455 + 165) / 2; reach solved in 1 of 2 seeds = 50%
    assert ss[0] == "25% / 310 (reach)"
    assert ss[1] == "100% / 900 (reach, push) [1 of 2 seeds]"
    assert ss[2] == "– |"
    assert rows["| MT10-Fixed mt-mh-sac [bf16] (0)"][1] == "50% / 525 (reach)"
    # window 10..20 over the steps every run shares: only 10 (seed 1 stopped before 20)
    assert "Over the 1 evaluations from 10 to 10:" in text
    assert "| MT10-Fixed mt-mh-sac [bf16] | 50% | 550 | 1 of 1 |" in text
    assert "| MT10-Fixed soft-shallow [bf16] | 25% | 310 | 0 of 1 |" in text


def test_a_group_outside_the_window_is_named_and_left_out(tmp_path: Path) -> None:
    ss = _run(tmp_path, "soft-shallow", 0, {10: (1, 0, 9, 1), 20: (1, 1, 10, 8)})
    late = _run(tmp_path, "mt-sac", 0, {30: (0, 0, 1, 1)}, precision="fp32")
    text = EQ.main([str(ss), str(late), "--steps", "20", "--window", "10", "20"])
    assert "Over the 2 evaluations from 10 to 20:" in text
    assert "| MT10-Fixed soft-shallow [bf16] | 75% | 7 | 2 of 2 |" in text
    assert "Not in the window (no evaluation there): MT10-Fixed mt-sac" in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--steps", "0"], "steps must be positive env-step counts, got 0"),
        (["--steps", "10", "--window", "20", "10"], "needs START <= END, got [20, 10]"),
        (["NOT_A_RUN", "--steps", "10"], "not a run directory of softmod"),
    ],
)
def test_bad_input_is_one_line_before_anything_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    run = _run(tmp_path, "soft-shallow", 0, {10: (1, 0, 9, 1)})
    args = [str(tmp_path / a) if a == "NOT_A_RUN" else a for a in args]
    with pytest.raises(SystemExit) as exc:
        EQ.main([str(run), *args, "--out", str(tmp_path / "t.md")])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("equal_samples.py: error: ") and message in err and "\n" not in err
    assert not (tmp_path / "t.md").exists()
