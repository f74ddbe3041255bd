"""Record runs of ``run.py`` that have not reached their budget (stopped, or still running).

Usage: ``python benchmarks/learning/partial.py NAME RUN_DIR... [--out DIR]`` writes, under
``benchmarks/results/learning/`` (or ``DIR``):

- ``NAME.json``: each run's config, the steps it reached, its periodic evaluations from
  ``eval.csv``, wall time and command, and ``equal_samples``: every run at the largest periodic
  evaluation that all of them reached (mean and per-task success and return), so methods that
  ran at different speeds are compared at the same number of samples;
- ``NAME.png``: mean success and mean return against environment steps, and the per-task return
  at that equal-samples step;
- ``NAME.md``: the equal-samples table.

There is no final evaluation: the periodic ones use a few episodes per task (``--eval-episodes``).
A run directory without ``config.json`` and ``eval.csv`` is a one-line error (exit 2), before
anything is written.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import RESULTS, commit, die, label_runs, machine, read_curve, read_meta, where

from softmod.config import load_config
from softmod.report.collect import ReportError, common_eval_step


def _tasks(row: dict[str, float]) -> list[str]:
    """Task names of an eval row, in column order (``eval/<task>/success``)."""
    return [k.split("/")[1] for k in row if k.startswith("eval/") and k.endswith("/success")]


def row_tasks(row: dict) -> dict[str, dict[str, float | None]]:
    """Per-task success and return of an eval row (``eval.csv`` or a record's ``curve``), in the
    form of ``final_eval.json``'s ``tasks``."""
    return {t: {"success": row[f"eval/{t}/success"], "return": row.get(f"eval/{t}/return")}
            for t in _tasks(row)}  # fmt: skip


def equal_samples(runs: list[dict], step: int) -> dict:
    """Every run at periodic-evaluation ``step`` (which all of them reached)."""
    at: dict[str, dict] = {}
    for run in runs:
        row = next(r for r in run["curve"] if int(r["step"]) == step)
        tasks = _tasks(row)
        at[run["label"]] = {
            "mean_success": row["eval/mean_success"],
            "mean_return": row["eval/mean_return"],
            "success": {t: row[f"eval/{t}/success"] for t in tasks},
            "return": {t: row[f"eval/{t}/return"] for t in tasks},
        }
    return {"step": step, "runs": at}


def _table(eq: dict) -> str:
    methods = list(eq["runs"])
    tasks = list(eq["runs"][methods[0]]["return"])
    head = "| task | " + " | ".join(f"{m} success / return" for m in methods) + " |"
    lines = [f"Periodic evaluation at {eq['step']:,} environment steps (equal samples).", "",
             head, "|---|" + "---|" * len(methods)]  # fmt: skip
    for t in [*tasks, "mean"]:
        cells = []
        for m in methods:
            r = eq["runs"][m]
            s, ret = (r["mean_success"], r["mean_return"]) if t == "mean" else (
                r["success"][t], r["return"][t])  # fmt: skip
            cells.append(f"{100 * s:.0f}% / {ret:.0f}")
        lines.append(f"| {t} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _figure(name: str, runs: list[dict], eq: dict, png: Path) -> None:
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.6))
    for run in runs:
        xs = [r["step"] for r in run["curve"]]
        label = f"{run['label']} (at {run['reached_env_steps']:,})"
        axes[0].plot(xs, [100 * r["eval/mean_success"] for r in run["curve"]], marker="o", ms=2,
                     label=label)  # fmt: skip
        axes[1].plot(xs, [r["eval/mean_return"] for r in run["curve"]], marker="o", ms=2,
                     label=label)  # fmt: skip
    for ax, ylabel in zip(axes[:2], ("mean success rate (%)", "mean episode return"), strict=True):
        ax.axvline(eq["step"], color="grey", ls=":", lw=1)
        ax.set_xlabel("environment steps (all tasks)")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[0].set_ylim(-3, 103)
    methods = list(eq["runs"])
    tasks = list(eq["runs"][methods[0]]["return"])
    width = 0.8 / len(methods)
    for i, m in enumerate(methods):
        vals = [eq["runs"][m]["return"][t] for t in tasks]
        axes[2].bar(np.arange(len(tasks)) + (i - (len(methods) - 1) / 2) * width, vals, width,
                    label=m)  # fmt: skip
    axes[2].set_xticks(np.arange(len(tasks)), [t.removesuffix("-v3") for t in tasks],
                       rotation=60, ha="right", fontsize=7)  # fmt: skip
    axes[2].set_ylabel("episode return")
    axes[2].set_title(f"per task at {eq['step']:,} steps (equal samples)", fontsize=9)
    axes[2].legend(fontsize=8)
    fig.suptitle(f"{name}: before the budget (periodic eval, few episodes per task)", fontsize=10)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)


def main(name: str, run_dirs: list[Path], out: Path = RESULTS) -> Path:
    """Write the record, the equal-samples table and the figure of the runs; return the PNG."""
    for run_dir in run_dirs:
        missing = [f for f in ("config.json", "eval.csv") if not (run_dir / f).exists()]
        if missing:
            die("partial.py", f"{run_dir} is not a run.py run (no {missing[0]})")
    runs = []
    for run_dir in run_dirs:
        cfg = load_config(run_dir / "config.json")
        train = read_curve(run_dir / "train.csv") if (run_dir / "train.csv").exists() else []
        if not train or not read_curve(run_dir / "eval.csv"):
            die("partial.py", f"{run_dir} has no {'logged step' if not train else 'evaluation'} "
                f"yet: nothing to record")  # fmt: skip
        runs.append({
            "method": cfg.method, "benchmark": cfg.env.benchmark, "goals": cfg.env.goals,
            "seed": cfg.seed, "budget": cfg.total_steps, "precision": cfg.precision,
            "horizon": cfg.env.horizon,
            "reached_env_steps": int(train[-1]["step"]), "train_wall_s": train[-1]["time_s"],
            "updates": int(train[-1]["train/updates"]),
            "curve": read_curve(run_dir / "eval.csv"),
            "run_dir": where(run_dir), "command": read_meta(run_dir, cfg)["command"],
        })  # fmt: skip
    label_runs(runs, " s{seed}")
    try:  # the same rule as softmod report --at common
        step = common_eval_step(run_dirs)
    except ReportError as err:
        die("partial.py", str(err).removeprefix("--at common: "))
    eq = equal_samples(runs, step)
    out.mkdir(parents=True, exist_ok=True)
    png = out / f"{name}.png"
    _figure(name, runs, eq, png)
    (out / f"{name}.md").write_text(f"# {name}\n\n" + _table(eq))
    record = {"name": name, "status": "before the budget: periodic evaluations only, no final eval",
              "machine": machine(), "commit": commit(), "equal_samples": eq,
              "runs": runs}  # fmt: skip
    (out / f"{name}.json").write_text(json.dumps(record, indent=2) + "\n")
    return png


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("name")
    ap.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR")
    ap.add_argument("--out", type=Path, default=RESULTS)
    a = ap.parse_args()
    print(main(a.name, a.run_dirs, a.out))
