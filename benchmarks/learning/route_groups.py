"""Which tasks a soft-modular policy sends along (nearly) the same route, from ``softmod report``'s
routing data.

Usage: ``python benchmarks/learning/route_groups.py NAME ROUTING_JSON... [--within D] [--out DIR]``
(each ``ROUTING_JSON`` a report's ``data/routing_<group>-s<seed>.json``: per task, the routing
probabilities of every module layer and the final weights, averaged over its states) writes
``NAME.json`` and ``NAME.md`` under ``benchmarks/results/learning/`` (or ``DIR``).

Why: soft modularization is meant to let tasks share some modules and not others. Two tasks whose
routing probabilities are all within ``--within`` (default 0.15) of each other run through the same
weighted mix of modules, so the policy treats them alike apart from what the observation shows.
Per run: the groups of tasks linked by such pairs (connected components), the number of close
pairs, and the mean over task pairs of the mean absolute difference of their routing (0: one route
for all tasks). The report's Figure 3 shows the same routes as diagrams; this puts numbers on them,
so runs (seeds, steps) can be compared.

Bad input (a file that is not routing data, ``--within`` outside (0, 1)) is a one-line error
before anything is written.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import RESULTS, commit, die, where

SCRIPT = "route_groups.py"


def load_routes(path: Path) -> dict[str, np.ndarray]:
    """Per task, its routing as one vector (every layer's probabilities, then the final weights);
    a ValueError says what is wrong."""
    try:
        data = json.loads(path.read_text())
        routes = {task: np.concatenate([np.ravel(np.asarray(r["layers"], dtype=float)),
                                        np.asarray(r["final"], dtype=float)])
                  for task, r in data.items()}  # fmt: skip
    except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as err:
        raise ValueError(f"{path}: not routing data of softmod report ({err!r})") from err
    if len(routes) < 2 or len({v.shape for v in routes.values()}) != 1:
        raise ValueError(f"{path}: not routing data of softmod report (needs 2+ tasks, one shape)")
    return routes


def groups(routes: dict[str, np.ndarray], within: float) -> dict:
    """``{"close_pairs", "groups", "mean_distance"}``: the task pairs whose routing differs by less
    than ``within`` everywhere, the groups of 2+ tasks they link (in task order), and the mean over
    all pairs of the mean absolute difference."""
    tasks = list(routes)
    pairs = list(itertools.combinations(tasks, 2))
    close = [(a, b) for a, b in pairs if np.abs(routes[a] - routes[b]).max() < within]
    parent = {t: t for t in tasks}

    def root(t: str) -> str:
        while parent[t] != t:
            t = parent[t]
        return t

    for a, b in close:
        parent[root(b)] = root(a)
    members: dict[str, list[str]] = {}
    for t in tasks:
        members.setdefault(root(t), []).append(t)
    linked = [g for g in members.values() if len(g) > 1]
    mean = float(np.mean([np.abs(routes[a] - routes[b]).mean() for a, b in pairs]))
    return {"close_pairs": [list(p) for p in close], "groups": linked, "mean_distance": mean}


def _md(record: dict) -> str:
    lines = [f"# {record['name']}", "",
             f"Tasks whose routing probabilities all lie within {record['within']} of each other "
             "share a group (linked through such pairs); distance: the mean over task pairs of "
             "the mean absolute difference of their routing.", "",
             "| routing data | mean distance | close pairs | groups of tasks on one route |",
             "|---|---:|---:|---|"]  # fmt: skip
    for run in record["runs"]:
        shown = "; ".join(", ".join(t.removesuffix("-v3") for t in g) for g in run["groups"])
        lines.append(f"| `{run['source']}` | {run['mean_distance']:.3f} | "
                     f"{len(run['close_pairs'])} | {shown or '–'} |")  # fmt: skip
    lines += ["", f"Commit {record['commit']}."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    """Group the tasks of every routing file, write ``NAME.json`` and ``NAME.md``; returns the
    record."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("name")
    p.add_argument("routing", type=Path, nargs="+", help="a report's data/routing_*.json")
    p.add_argument("--within", type=float, default=0.15, help="largest difference of a route")
    p.add_argument("--out", type=Path, default=RESULTS)
    a = p.parse_args(argv)
    if not 0 < a.within < 1:
        die(SCRIPT, f"--within {a.within}: allowed: 0 < D < 1")
    try:
        loaded = [(path, load_routes(path)) for path in a.routing]
    except ValueError as err:
        die(SCRIPT, str(err))
    runs = [{"source": where(path), **groups(routes, a.within)} for path, routes in loaded]
    record = {"name": a.name, "within": a.within, "runs": runs, "commit": commit()}
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / f"{a.name}.json").write_text(json.dumps(record, indent=1) + "\n")
    (a.out / f"{a.name}.md").write_text(_md(record))
    for run in runs:
        print(f"{run['source']}: mean distance {run['mean_distance']:.3f}, "
              f"{len(run['close_pairs'])} close pairs, groups {run['groups']}")  # fmt: skip
    return record


if __name__ == "__main__":
    main()
