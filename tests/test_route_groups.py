"""benchmarks/learning/route_groups.py: the tasks a soft-modular policy sends along one route, from
softmod report's routing data (a made-up run here, and the committed report of the 1M run)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from .test_learning_scripts import ROOT, _load, script_error

GROUPS = _load("route_groups")
REPORT = ROOT / "benchmarks" / "results" / "learning" / "report-mt10-fixed-s0-at-1000k" / "data"


def _route(p: float, q: float) -> dict:
    """One task's routing: one layer of 2 x 2 probabilities and 2 final weights."""
    return {"layers": [[[p, 1 - p], [q, 1 - q]]], "final": [p, 1 - p]}


def test_tasks_linked_by_close_routes_form_one_group(tmp_path: Path) -> None:
    # a ~ b and b ~ c (within 0.15), a and c 0.2 apart: one group through b; d far from all
    data = {"a": _route(0.10, 0.9), "b": _route(0.20, 0.9), "c": _route(0.30, 0.9),
            "d": _route(0.90, 0.1)}  # fmt: skip
    (tmp_path / "routing.json").write_text(json.dumps(data))
    rec = GROUPS.main(["g", str(tmp_path / "routing.json"), "--out", str(tmp_path)])
    (run,) = rec["runs"]
    assert run["close_pairs"] == [["a", "b"], ["b", "c"]] and run["groups"] == [["a", "b", "c"]]
    # mean |difference| over the 6 pairs (6 numbers each: p, 1-p, q, 1-q, p, 1-p)
    pq = [(0.1, 0.9), (0.2, 0.9), (0.3, 0.9), (0.9, 0.1)]
    pairs = list(itertools.combinations(pq, 2))
    expect = sum(4 * abs(x - y) + 2 * abs(u - v) for (x, u), (y, v) in pairs) / len(pairs) / 6
    assert run["mean_distance"] == pytest.approx(expect)
    assert "| a, b, c |" in (tmp_path / "g.md").read_text()
    narrow = GROUPS.main(["n", str(tmp_path / "routing.json"), "--within", "0.05",
                          "--out", str(tmp_path)])  # fmt: skip
    assert narrow["runs"][0]["groups"] == []


def test_the_report_s_own_routing_data_is_read(tmp_path: Path) -> None:
    (path,) = REPORT.glob("routing_*.json")
    rec = GROUPS.main(["real", str(path), "--out", str(tmp_path)])
    (run,) = rec["runs"]
    assert 0 < run["mean_distance"] < 1
    assert all(t.endswith("-v3") for g in run["groups"] for t in g)
    assert run["source"].startswith("benchmarks/results/learning/")


@pytest.mark.parametrize(("which", "message"), [
    ("within", "--within 1.5: allowed: 0 < D < 1"),
    ("not-routing", "not routing data of softmod report"),
])  # fmt: skip
def test_bad_input_is_one_line_before_anything_is_written(
    tmp_path: Path, capsys, which: str, message: str
) -> None:
    (tmp_path / "curve.json").write_text(json.dumps({"step": [1, 2]}))
    (path,) = REPORT.glob("routing_*.json")
    argv = {"within": [str(path), "--within", "1.5"],
            "not-routing": [str(tmp_path / "curve.json")]}[which]  # fmt: skip
    assert message in script_error(capsys, GROUPS.main, ["bad", *argv, "--out",
                                                         str(tmp_path / "out")])  # fmt: skip
    assert not (tmp_path / "out").exists()
