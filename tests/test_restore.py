"""benchmarks/learning/restore.py: a run directory rebuilt from its record reports like the run.

Toy runs (seconds); on Meta-World the records are the same run.py JSON.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from softmod.report.build import build_report

from .test_learning_scripts import COMMON, PARTIAL, RUN, _load

RESTORE, EQ = _load("restore"), _load("equal_samples")


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two toy runs (seeds 0 and 1) and their records: (runs dir, records dir)."""
    tmp = tmp_path_factory.mktemp("recorded")
    runs, out = tmp / "runs", tmp / "results"
    for seed in (0, 1):
        RUN.main([*COMMON, "--seed", str(seed), "--runs-dir", str(runs), "--out", str(out)])
    return runs, out


def test_a_restored_run_reports_what_the_run_itself_reports(
    recorded: tuple[Path, Path], tmp_path: Path
) -> None:
    runs, out = recorded
    records = sorted(out.glob("*.json"))
    assert len(records) == 2
    dirs = RESTORE.main([*map(str, records), "--out", str(tmp_path / "restored")])
    assert [d.name for d in dirs] == [f"{r.stem}-restored" for r in records]
    assert (dirs[0] / "RESTORED.md").read_text().startswith("Rebuilt by")
    original, again = tmp_path / "original", tmp_path / "again"
    for at in (None, 800, 1200):  # the final evaluation, a periodic one, the final step
        a = build_report([runs], original, routing=False, progress=False, at=at, videos=False)
        b = build_report(dirs, again, routing=False, progress=False, at=at, videos=False)
        assert len(a.runs) == len(b.runs) == 2 and not b.skipped
        assert [r.episodes for r in b.runs] == [r.episodes for r in a.runs]
        assert [r.success.tolist() for r in b.runs] == [r.success.tolist() for r in a.runs]
        for name in ("table1.md", "per_task.md"):
            assert (again / name).read_text() == (original / name).read_text(), (at, name)
    assert [r.episodes for r in b.runs] == [3, 3]  # at the final step: the final evaluation


def test_bad_records_are_one_line_before_anything_is_written(
    recorded: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, out = recorded
    record = json.loads(next(out.glob("*.json")).read_text())
    partial = tmp_path / "partial.json"
    partial.write_text(json.dumps({**record, "final_eval": None}))
    lying = tmp_path / "lying.json"
    lying.write_text(json.dumps({**record, "seed": 7}))
    resumed = tmp_path / "resumed.json"
    resumed.write_text(json.dumps({**record, "command": "python benchmarks/learning/run.py "
                                   "--resume runs/learning/x"}))  # fmt: skip
    restored = tmp_path / "restored"
    for bad, message in [(partial, "no final evaluation, and not a partial.py record"),
                         (lying, "seed 0 from the command, 7"),
                         (resumed, "its start is unknown")]:  # fmt: skip
        good = next(out.glob("*.json"))
        with pytest.raises(SystemExit) as exc:
            RESTORE.main([str(good), str(bad), "--out", str(restored)])
        assert exc.value.code == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and message in err, err
        assert not restored.exists()  # the good record was not restored either
    RESTORE.main([str(good), "--out", str(restored)])
    with pytest.raises(SystemExit):  # never overwrites a restored directory
        RESTORE.main([str(good), "--out", str(restored)])
    assert "exists already" in capsys.readouterr().err


def test_a_partial_record_restores_its_unfinished_runs_at_equal_samples(tmp_path: Path) -> None:
    """Two runs stopped before their budget, recorded by partial.py: restored, they give the
    report at a step both reached, and equal_samples.py, what the runs themselves give."""
    runs, out = tmp_path / "runs", tmp_path / "results"
    for seed, stop in ((0, "1200"), (1, "800")):
        with pytest.raises(SystemExit):  # --stop-at ends the run with exit 0 after a checkpoint
            RUN.main([*COMMON, "--budget", "4000", "--seed", str(seed), "--runs-dir", str(runs),
                      "--out", str(out), "--stop-at", stop])  # fmt: skip
    originals = sorted(runs.iterdir())
    PARTIAL.main("stopped", originals, out)
    dirs = RESTORE.main([str(out / "stopped.json"), "--out", str(tmp_path / "restored")])
    assert [d.name for d in dirs] == ["stopped-mt-sac-s0-restored", "stopped-mt-sac-s1-restored"]
    assert "reached 1,200 of 4,000 env steps" in (dirs[0] / "RESTORED.md").read_text()
    assert not list(dirs[0].glob("eval_*ep*.json")) and not (dirs[0] / "final_eval.json").exists()
    a = build_report(originals, tmp_path / "a", routing=False, progress=False, at=800, videos=False)
    assert len(a.runs) == 2
    b = build_report(dirs, tmp_path / "b", routing=False, progress=False, at=800, videos=False)
    assert len(b.runs) == 2 and not b.skipped
    for name in ("table1.md", "per_task.md"):
        assert (tmp_path / "b" / name).read_text() == (tmp_path / "a" / name).read_text(), name
    unfinished = build_report(dirs, tmp_path / "c", routing=False, progress=False, videos=False)
    assert not unfinished.runs and len(unfinished.skipped) == 2  # no final evaluation: skipped
    steps = ["--steps", "400", "800", "1200"]
    assert EQ.main([*map(str, dirs), *steps]) == EQ.main([*map(str, originals), *steps])
