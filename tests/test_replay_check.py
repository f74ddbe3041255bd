"""benchmarks/learning/replay_check.py: two runs of one method and seed compared evaluation by
evaluation. Toy runs (seconds); on MT10 it checks that run 2 of issue 18 repeats the 1M runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .test_learning_scripts import COMMON, RUN, _load, script_error

REPLAY = _load("replay_check")
PARTIAL = _load("partial")


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """The record of a toy run to 1200 steps, the directory of the same seed trained to 800 and
    stopped at 400 then resumed on the way, and the record of seed 1: (record, run dir, seed 1)."""
    tmp = tmp_path_factory.mktemp("replay")
    args = ["--runs-dir", str(tmp / "runs"), "--out", str(tmp / "out")]
    RUN.main([*COMMON, *args, "--name", "whole"])
    short = [a if a != "1200" else "800" for a in COMMON]  # the budget is 1200 in COMMON
    with pytest.raises(SystemExit):
        RUN.main([*short, *args, "--name", "again", "--stop-at", "400"])
    (again_dir,) = (tmp / "runs").glob("again-*")
    RUN.main(["--resume", str(again_dir), "--out", str(tmp / "out")])
    RUN.main([*COMMON, *args, "--name", "other", "--seed", "1"])
    return tmp / "out" / "whole.json", again_dir, tmp / "out" / "other.json"


def test_the_same_seed_is_the_same_run_and_a_changed_value_is_found(
    runs: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    record, again_dir, _ = runs
    rec = REPLAY.main(["same", str(record), str(again_dir), "--out", str(tmp_path)])
    assert rec["comparison"]["steps"] == [400, 800]  # the shorter run's evaluations
    assert rec["comparison"]["identical"] and rec["comparison"]["first_difference"] is None
    assert "**Identical**" in (tmp_path / "same.md").read_text()
    assert json.loads((tmp_path / "same.json").read_text())["runs"][1]["label"] == again_dir.name

    # one return of one task changed at 800 (as a run drifting there would show)
    changed = json.loads(record.read_text())
    row = next(r for r in changed["curve"] if r["step"] == 800)
    key = next(k for k in row if k.startswith("eval/") and k.endswith("/return"))
    row[key] += 1e-3
    (tmp_path / "changed.json").write_text(json.dumps(changed))
    rec = REPLAY.main(["drift", str(tmp_path / "changed.json"), str(again_dir),
                       "--out", str(tmp_path)])  # fmt: skip
    c = rec["comparison"]
    assert not c["identical"] and c["first_difference"] == 800
    assert [(d["step"], d["keys"]) for d in c["differences"]] == [(800, 1)]
    assert "They differ from 800 on" in (tmp_path / "drift.md").read_text()


def test_a_partial_record_of_one_run_is_read_and_one_of_two_runs_is_refused(
    runs: tuple[Path, Path, Path], tmp_path: Path, capsys
) -> None:
    record, again_dir, _ = runs
    PARTIAL.main("again-partial", [again_dir], tmp_path)
    argv = ["p", str(record), str(tmp_path / "again-partial.json"), "--out", str(tmp_path)]
    rec = REPLAY.main(argv)
    assert rec["comparison"]["steps"] == [400, 800] and rec["comparison"]["identical"]
    assert rec["runs"][1]["label"] == "again-partial" and rec["runs"][1]["machine"]["cpus"] >= 1

    (other_dir,) = (record.parent.parent / "runs").glob("other-*")
    PARTIAL.main("two", [again_dir, other_dir], tmp_path)
    argv = ["bad", str(record), str(tmp_path / "two.json"), "--out", str(tmp_path / "out")]
    assert "a partial record of 2 runs; allowed: one run's" in script_error(
        capsys, REPLAY.main, argv
    )
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("which", "message"), [
    ("other-seed", "has seed 1; allowed: 0, as whole"),
    ("nothing", "not a run directory, a run.py record or a partial.py record"),
])  # fmt: skip
def test_bad_input_is_one_line_before_anything_is_written(
    runs: tuple[Path, Path, Path], tmp_path: Path, capsys, which: str, message: str
) -> None:
    record, _, other = runs
    second = {"other-seed": other, "nothing": tmp_path / "none.json"}[which]
    argv = ["bad", str(record), str(second), "--out", str(tmp_path / "out")]
    assert message in script_error(capsys, REPLAY.main, argv)
    assert not (tmp_path / "out").exists()
