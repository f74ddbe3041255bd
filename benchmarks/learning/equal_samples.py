"""Methods side by side at equal samples, at several steps: the README's equal-samples tables.

Usage::

    python benchmarks/learning/equal_samples.py RUN_DIR... --steps 250000 500000 1000000 \
        [--window 510000 1000000] [--out FILE.md]

Runs are grouped as ``softmod report`` groups them (method, marked with its precision, horizon or
reward version where they differ from the paper's settings; one row per group, averaged over its
seeds). Every cell is the periodic evaluation of ``eval.csv`` at that step: mean success over
tasks (%) / mean return, averaged over the group's seeds that reached the step, and the tasks
whose success averaged over those seeds is at least 50%. A cell that not every seed of its group
reached says how many did; a group none of whose seeds reached it gets a dash.

``--window A B`` adds, over the periodic evaluations from A to B that every run reached: each
group's mean success and mean return, and in how many of those evaluations its mean return was
the highest of all groups.

On MT10-Fixed the periodic evaluation is exact (fixed goals, deterministic actions: every
episode of a task is the same episode), so it equals the 100-episode final evaluation at the
same step. A bad run directory, or a step or window that is not positive, is a one-line error
(exit 2) before anything is written.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import die

from softmod.report.collect import eval_rows, group_key, row_sort_key, setting_label

SOLVED = 0.5  # a task counts as solved in a cell when its success over the seeds averages this
CAPTION = (
    "Each cell: mean success over tasks / mean return (the tasks with success >= 50%); "
    "periodic evaluation (eval.csv), averaged over the seeds that reached the step."
)


@dataclass
class Curve:
    """The periodic evaluations of one run, by step."""

    path: Path
    group: str  # setting and method row, e.g. "MT10-Fixed soft-shallow [bf16]"
    seed: int
    tasks: list[str]
    rows: dict[int, dict[str, float]]  # step -> eval.csv row (floats)


def load(run_dir: Path) -> Curve:
    """One run directory's config and ``eval.csv``; a one-line error where either is missing."""
    try:
        cfg = json.loads((run_dir / "config.json").read_text())
        seed = int(cfg["seed"])
        group_key(cfg, 0)  # a malformed config is caught here
    except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
        die("equal_samples.py", f"{run_dir}: not a run directory of softmod ({err})")
    rows = eval_rows(run_dir / "eval.csv")
    if not rows:
        die("equal_samples.py", f"{run_dir}: no periodic evaluation (eval.csv) yet")
    tasks = [k.split("/")[1] for k in rows[0] if k.count("/") == 2 and k.endswith("/success")]
    by_step = {int(float(r["step"])): {k: float(v) for k, v in r.items() if v not in ("", "nan")}
               for r in rows}  # fmt: skip
    bench, goals, row = group_key(cfg, len(tasks))
    return Curve(run_dir, f"{setting_label(bench, goals)} {row}", seed, tasks, by_step)


def groups_of(curves: list[Curve]) -> dict[str, list[Curve]]:
    """Runs by group, in the report's row order, each group by seed."""
    out: dict[str, list[Curve]] = {}
    for c in curves:
        out.setdefault(c.group, []).append(c)
    order = sorted(out, key=lambda g: (g.split(" ", 1)[0], row_sort_key(g.split(" ", 1)[1])))
    return {g: sorted(out[g], key=lambda c: c.seed) for g in order}


def cell(runs: list[Curve], step: int) -> dict | None:
    """A group at ``step``: mean success and return over the seeds that reached it, the tasks it
    solved there, and how many seeds that is; None when none did."""
    have = [c for c in runs if step in c.rows]
    if not have:
        return None
    tasks = have[0].tasks
    per_task = np.array([[c.rows[step][f"eval/{t}/success"] for t in tasks] for c in have])
    return {
        "success": float(np.mean([c.rows[step]["eval/mean_success"] for c in have])),
        "return": float(np.mean([c.rows[step]["eval/mean_return"] for c in have])),
        "solved": [t for t, s in zip(tasks, per_task.mean(axis=0), strict=True) if s >= SOLVED],
        "seeds": [c.seed for c in have],
        "of": len(runs),
    }


def _fmt(c: dict | None) -> str:
    if c is None:
        return "–"
    solved = ", ".join(t.removesuffix("-v3") for t in c["solved"]) or "none"
    seeds = f" [{len(c['seeds'])} of {c['of']} seeds]" if len(c["seeds"]) < c["of"] else ""
    return f"{100 * c['success']:.0f}% / {c['return']:.0f} ({solved}){seeds}"


def window(groups: dict[str, list[Curve]], start: int, end: int) -> dict:
    """The groups every run of which has evaluations from ``start`` to ``end``, over the
    evaluations there that all their runs share; the other groups are listed as ``left_out``."""
    inside = {g: runs for g, runs in groups.items()
              if all(any(start <= s <= end for s in c.rows) for c in runs)}  # fmt: skip
    left_out = [g for g in groups if g not in inside]
    runs = [c for rs in inside.values() for c in rs]
    shared = set.intersection(*(set(c.rows) for c in runs)) if runs else set()
    steps = sorted(s for s in shared if start <= s <= end)
    if not steps:
        return {"steps": [], "groups": {}, "left_out": list(groups)}
    cells = {g: [cell(rs, s) for s in steps] for g, rs in inside.items()}
    best = [max(cells, key=lambda g, i=i: cells[g][i]["return"]) for i in range(len(steps))]
    return {
        "steps": steps,
        "groups": {
            g: {
                "mean_success": float(np.mean([c["success"] for c in cs])),
                "mean_return": float(np.mean([c["return"] for c in cs])),
                "highest_return": sum(b == g for b in best),
            }
            for g, cs in cells.items()
        },
        "left_out": left_out,
    }


def table(groups: dict[str, list[Curve]], steps: list[int], win: dict | None) -> str:
    """The Markdown: one row per group, one column per step; the window summary under it."""
    lines = [
        "| group (seeds) | " + " | ".join(f"{s:,}" for s in steps) + " |",
        "|---|" + "---|" * len(steps),
    ]
    for g, runs in groups.items():
        seeds = ", ".join(str(c.seed) for c in runs)
        lines.append(f"| {g} ({seeds}) | " + " | ".join(_fmt(cell(runs, s)) for s in steps) + " |")
    lines += ["", CAPTION]
    if win is not None:
        if not win["steps"]:
            lines += ["", "Window: no periodic evaluation in it that every run reached."]
        else:
            s = win["steps"]
            lines += ["", f"Over the {len(s)} evaluations from {s[0]:,} to {s[-1]:,}:", ""]
            lines += ["| group | mean success | mean return | evaluations with the highest "
                      "return |", "|---|---|---|---|"]  # fmt: skip
            for g, w in win["groups"].items():
                lines.append(f"| {g} | {100 * w['mean_success']:.0f}% | {w['mean_return']:.0f} | "
                             f"{w['highest_return']} of {len(s)} |")  # fmt: skip
        if win["left_out"]:
            lines += ["", "Not in the window (no evaluation there): " + ", ".join(win["left_out"])]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> str:
    """Print (and with ``--out`` write) the equal-samples table of the runs."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", type=Path, help="run directories (holding config.json)")
    p.add_argument("--steps", nargs="+", type=int, required=True, help="env steps of the columns")
    p.add_argument("--window", nargs=2, type=int, metavar=("START", "END"))
    p.add_argument("--out", type=Path, help="also write the table (Markdown) here")
    a = p.parse_args(argv)
    bad = [s for s in a.steps + (a.window or []) if s <= 0]
    if bad:
        die("equal_samples.py", f"steps must be positive env-step counts, got {bad[0]}")
    if a.window and a.window[0] > a.window[1]:
        die("equal_samples.py", f"--window START END needs START <= END, got {a.window}")
    groups = groups_of([load(d) for d in a.runs])
    text = table(groups, sorted(set(a.steps)), window(groups, *a.window) if a.window else None)
    print(text, end="")
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(text)
    return text


if __name__ == "__main__":
    main()
