"""benchmarks/learning/horizon_compare.py: a long-horizon run beside short-horizon runs, at equal
samples, every one on the short episodes. Toy runs (seconds); on MT10 it is run 3 of issue 18."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .test_learning_scripts import COMMON, RUN, _load, script_error

COMPARE = _load("horizon_compare")


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A toy run on 30-step episodes keeping three checkpoints (400, 800, 1200), and the record
    and run directory of one on 10-step episodes: (long run dir, short record, short run dir)."""
    tmp = tmp_path_factory.mktemp("horizons")
    RUN.main([*COMMON, "--horizon", "30", "--keep-checkpoints", "3", "--runs-dir",
              str(tmp / "runs"), "--out", str(tmp / "out"), "--name", "long"])  # fmt: skip
    RUN.main([*COMMON, "--horizon", "10", "--runs-dir", str(tmp / "runs"), "--out",
              str(tmp / "out"), "--name", "short"])  # fmt: skip
    (long_dir,) = (tmp / "runs").glob("long-*")
    (short_dir,) = (tmp / "runs").glob("short-*")
    return long_dir, tmp / "out" / "short.json", short_dir


def test_each_checkpoint_of_the_long_run_is_set_beside_the_short_runs_on_short_episodes(
    runs: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    long_dir, short_record, short_dir = runs
    png = COMPARE.main(["cmp", str(long_dir), str(short_record), str(short_dir), "--horizon",
                        "10", "--episodes", "2", "--out", str(tmp_path)])  # fmt: skip
    assert png == tmp_path / "cmp.png" and png.stat().st_size > 10_000
    rec = json.loads((tmp_path / "cmp.json").read_text())
    assert [r["step"] for r in rec["rows"]] == [400, 800, 1200] and rec["left_out"] == []
    assert (rec["horizon"], rec["long"]["horizon"]) == (10, 30)
    curve = {int(r["step"]): r for r in json.loads(short_record.read_text())["curve"]}
    for r in rec["rows"]:
        record_cell, dir_cell = r["short"]  # the record and the run directory: the same run
        assert record_cell["mean_success"] == curve[r["step"]]["eval/mean_success"]
        assert dir_cell == record_cell
        # toy rewards are >= 0 per step (> 0 near the goal): the first 10 steps of an episode
        # earn less than all its 30
        assert r["long_at_short"]["mean_return"] < r["long_at_own"]["mean_return"]
        assert len(r["long_at_short"]["tasks"]) == 4
    table = (tmp_path / "cmp.md").read_text()
    assert table.count("\n| 400 |") + table.count("\n| 1,200 |") == 2

    # the long run moved on (its oldest checkpoint gone): the steps already measured stay
    oldest = long_dir / "checkpoints" / "step-000000000400.pt"
    oldest.rename(tmp_path / oldest.name)
    try:
        COMPARE.main(["cmp", str(long_dir), str(short_record), str(short_dir), "--horizon",
                      "10", "--episodes", "2", "--out", str(tmp_path)])  # fmt: skip
    finally:
        (tmp_path / oldest.name).rename(oldest)
    again = json.loads((tmp_path / "cmp.json").read_text())
    assert again["rows"] == rec["rows"]


@pytest.mark.parametrize(("which", "message"), [
    ("short-as-long", "has horizon 10; allowed: more than --horizon 10"),
    ("wrong-horizon", "toy-fixed at horizon 10; allowed: toy-fixed at horizon 20"),
    ("nothing", "not a run directory, a run.py record or a partial.py record"),
])  # fmt: skip
def test_bad_input_is_one_line_before_any_evaluation(
    runs: tuple[Path, Path, Path], tmp_path: Path, capsys, which: str, message: str
) -> None:
    long_dir, short_record, short_dir = runs
    missing = tmp_path / "none.json"
    args = {"short-as-long": [str(short_dir), str(short_record), "--horizon", "10"],
            "wrong-horizon": [str(long_dir), str(short_record), "--horizon", "20"],
            "nothing": [str(long_dir), str(missing), "--horizon", "10"]}[which]  # fmt: skip
    assert message in script_error(capsys, COMPARE.main, ["cmp", *args, "--out",
                                                          str(tmp_path / "out")])  # fmt: skip
    assert not (tmp_path / "out").exists()
