"""Record runs of ``run.py`` that were stopped before their budget: curves only, no final eval.

Usage: ``python benchmarks/learning/partial.py NAME RUN_DIR... [--out DIR]`` writes
``benchmarks/results/learning/NAME.json`` (or ``DIR/NAME.json``: each run's config, the steps it
reached, its periodic evaluations from ``eval.csv``, wall time, command) and ``NAME.png`` (success
against environment steps).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import RESULTS, ROOT, commit, machine, read_curve


def _where(run_dir: Path) -> str:
    try:
        return str(run_dir.resolve().relative_to(ROOT))
    except ValueError:
        return str(run_dir.resolve())


def main(name: str, run_dirs: list[Path], out: Path = RESULTS) -> Path:
    """Write the record and the figure of the stopped runs."""
    runs = []
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for run_dir in run_dirs:
        cfg = json.loads((run_dir / "config.json").read_text())
        curve = read_curve(run_dir / "eval.csv")
        train = read_curve(run_dir / "train.csv")
        runs.append({
            "method": cfg["method"], "benchmark": cfg["env"]["benchmark"],
            "goals": cfg["env"]["goals"], "seed": cfg["seed"], "budget": cfg["total_steps"],
            "reached_env_steps": int(train[-1]["step"]), "train_wall_s": train[-1]["time_s"],
            "updates": int(train[-1]["train/updates"]), "curve": curve,
            "run_dir": _where(run_dir), "command": _command(run_dir),
        })  # fmt: skip
        label = f"{cfg['method']} (stopped at {int(train[-1]['step']):,})"
        xs, ys = [r["step"] for r in curve], [100 * r["eval/mean_success"] for r in curve]
        ax.plot(xs, ys, marker="o", ms=3, label=label)
    ax.set_xlabel("environment steps (all tasks)")
    ax.set_ylabel("success rate (%)")
    ax.set_ylim(-3, 103)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=9)
    ax.set_title(f"{name}: stopped before the budget (periodic eval, 5 episodes/task)", fontsize=10)
    fig.tight_layout()
    out.mkdir(parents=True, exist_ok=True)
    png = out / f"{name}.png"
    fig.savefig(png, dpi=110)
    record = {"name": name, "status": "stopped before the budget: curves only, no final eval",
              "machine": machine(), "commit": commit(), "runs": runs}  # fmt: skip
    (out / f"{name}.json").write_text(json.dumps(record, indent=2) + "\n")
    return png


def _command(run_dir: Path) -> str:
    """The run.py command that started the run (noted in ``learning.json`` since session 3)."""
    meta = run_dir / "learning.json"
    return json.loads(meta.read_text())["command"] if meta.exists() else "(not recorded)"


if __name__ == "__main__":
    args = sys.argv[1:]
    out = RESULTS
    if "--out" in args:
        i = args.index("--out")
        out, args = Path(args[i + 1]), args[:i] + args[i + 2 :]
    print(main(args[0], [Path(p) for p in args[1:]], out))
