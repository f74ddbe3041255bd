"""A run trained on long episodes against runs on short ones, at equal samples and equal horizon.

Usage (from the repository root)::

    python benchmarks/learning/horizon_compare.py mt10-fixed-soft-shallow-s0-h500-vs-h150 \
        runs/learning/mt10-fixed-soft-shallow-h500-bf16-1000k-s0-<time> \
        benchmarks/results/learning/mt10-fixed-soft-shallow-bf16-1000k-s0.json [--horizon 150]

Run 3 of issue 18 trains soft-shallow on Meta-World+'s 500-step episodes to see whether the
paper's 150-step horizon is part of its slow start. The two runs' own evaluations are not
comparable (a 500-step episode has more time to succeed and collects more reward), so every full
checkpoint of the long run (``checkpoints/step-<S>.pt``) is also evaluated on ``--horizon`` steps
(``evaluate_run(..., horizon=150)``: Meta-World's observation and reward hold no time, so that
is its success and return within the first 150 steps of its episodes) and set beside the short
runs' periodic evaluation at the same step S (their ``eval.csv``, or the ``curve`` of a ``run.py``
record when the run directory is gone). Steps of the long run that not every short run evaluated
are left out (named in the table's note).

Writes under ``benchmarks/results/learning/`` (or ``--out``): ``NAME.json`` (every step: the long
run at its own horizon from its ``eval.csv`` and at ``--horizon``, each short run; mean and per
task), ``NAME.md`` (the table) and ``NAME.png`` (success and return against steps). A run keeps
only its newest checkpoints, so the script is run again as the long run goes on: the steps already
in ``NAME.json`` stay, the new ones are added. Bad input is a one-line error (exit 2) before any
evaluation.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

sys.path.insert(0, str(Path(__file__).resolve().parent))
from partial import row_tasks
from rich.progress import track
from run import RESULTS, commit, die, load_run, machine, read_curve, where

from softmod.checkpoint import step_checkpoints
from softmod.config import load_config
from softmod.evaluate import evaluate_run

SCRIPT = "horizon_compare.py"


def _cell(success: float, ret: float, tasks: dict) -> dict:
    return {"mean_success": float(success), "mean_return": float(ret), "tasks": tasks}


def _eval_cell(row: dict) -> dict:
    """One periodic evaluation (a row of ``eval.csv``) as a cell."""
    return _cell(row["eval/mean_success"], row["eval/mean_return"], row_tasks(row))


def compare(long_dir: Path, shorts: list[dict], horizon: int, episodes: int,
            old: dict[int, dict]) -> tuple[list[dict], list[int]]:  # fmt: skip
    """The rows of every checkpoint step that each short run evaluated (old rows kept), and the
    checkpoint steps left out."""
    long_curve = {int(r["step"]): r for r in read_curve(long_dir / "eval.csv")}
    short_curves = [{int(r["step"]): r for r in s["curve"]} for s in shorts]
    rows = dict(old)
    saved = step_checkpoints(long_dir / "checkpoints")
    todo = [(step, path) for step, path in saved if all(step in c for c in short_curves)]
    left_out = [step for step, _ in saved if not all(step in c for c in short_curves)]
    for step, path in track(todo, description=f"checkpoints on {horizon} steps"):
        _, result = evaluate_run(long_dir, episodes, checkpoint=path.name, horizon=horizon)
        own = long_curve.get(step)
        rows[step] = {
            "step": step,
            "long_at_short": _cell(result.mean_success, result.returns.mean(),
                                   result.to_json()["tasks"]),
            "long_at_own": None if own is None else _eval_cell(own),
            "short": [_eval_cell(c[step]) for c in short_curves],
        }  # fmt: skip
    return [rows[s] for s in sorted(rows)], left_out


def solved(tasks: dict) -> str:
    """The tasks with success >= 50%, short names."""
    return ", ".join(t.removesuffix("-v3") for t, v in tasks.items() if v["success"] >= 0.5) or "–"


def write_outputs(name: str, out: Path, record: dict) -> Path:
    """NAME.json, NAME.md and NAME.png; returns the PNG."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(record, indent=1) + "\n")
    h, lh = record["horizon"], record["long"]["horizon"]
    labels = [s["label"] for s in record["shorts"]]
    lines = [f"| step | long run on {h} steps (its {lh}-step evaluation) | "
             + " | ".join(f"{lab} ({h} steps)" for lab in labels) + " |",
             "|---:|---|" + "---|" * len(labels)]  # fmt: skip
    for r in record["rows"]:
        a, own = r["long_at_short"], r["long_at_own"]
        cell = f"{a['mean_success']:.0%} / {a['mean_return']:.0f} ({solved(a['tasks'])})"
        if own is not None:
            cell += f" [{own['mean_success']:.0%} / {own['mean_return']:.0f}]"
        shorts = [f"{s['mean_success']:.0%} / {s['mean_return']:.0f} ({solved(s['tasks'])})"
                  for s in r["short"]]  # fmt: skip
        lines.append(f"| {r['step']:,} | {cell} | " + " | ".join(shorts) + " |")
    lines += ["", f"Each cell: mean success over tasks / mean return over {h} steps (the tasks "
              f"with success >= 50%); in brackets the long run's own periodic evaluation on {lh}-"
              f"step episodes. Long run: `{record['long']['run_dir']}`, its full checkpoints "
              f"evaluated with `softmod eval --horizon {h}` ({record['episodes']} deterministic "
              "episodes per task)."]  # fmt: skip
    if record["left_out"]:
        lines.append(f"Checkpoints left out (no short-run evaluation at that step): "
                     f"{', '.join(f'{s:,}' for s in record['left_out'])}.")  # fmt: skip
    (out / f"{name}.md").write_text("\n".join(lines) + "\n")

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    steps = [r["step"] for r in record["rows"]]
    for ax, key, what in ((axes[0], "mean_success", "success rate (%)"),
                          (axes[1], "mean_return", f"mean return over {h} steps")):  # fmt: skip
        scale = 100.0 if key == "mean_success" else 1.0
        for i, lab in enumerate(labels):
            ax.plot(steps, [scale * r["short"][i][key] for r in record["rows"]], "o-",
                    label=f"{lab} (trained on {h})")  # fmt: skip
        ax.plot(steps, [scale * r["long_at_short"][key] for r in record["rows"]], "s-",
                label=f"long run (trained on {lh}) on {h} steps")  # fmt: skip
        if key == "mean_success":
            own = [(r["step"], scale * r["long_at_own"][key]) for r in record["rows"]
                   if r["long_at_own"] is not None]  # fmt: skip
            if own:
                ax.plot(*zip(*own, strict=True), "x:", label=f"long run on its own {lh} steps")
        ax.set_xlabel("environment steps (samples, all tasks)")
        ax.set_ylabel(what)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"{name}: horizon {lh} against {h} at equal samples, on {h}-step episodes")
    fig.tight_layout()
    png = out / f"{name}.png"
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return png


def main(argv: list[str] | None = None) -> Path:
    """Check everything, evaluate the new checkpoints, write the outputs; returns the PNG."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("name")
    p.add_argument("long", type=Path, help="run directory trained on the long horizon")
    p.add_argument("shorts", type=Path, nargs="+", help="run directories or run.py records")
    p.add_argument("--horizon", type=int, default=150, help="the short horizon (the paper: 150)")
    p.add_argument("--episodes", type=int, default=5, help="per task and checkpoint")
    p.add_argument("--out", type=Path, default=RESULTS)
    a = p.parse_args(argv)
    if a.episodes < 1:
        die(SCRIPT, f"--episodes {a.episodes}: allowed: N >= 1")
    if not (a.long / "config.json").is_file() or not (a.long / "eval.csv").is_file():
        die(SCRIPT, f"{a.long}: not a run directory with config.json and eval.csv")
    cfg = load_config(a.long / "config.json")
    if cfg.env.horizon <= a.horizon:
        die(SCRIPT, f"{a.long} has horizon {cfg.env.horizon}; allowed: more than --horizon "
                    f"{a.horizon}")  # fmt: skip
    if not step_checkpoints(a.long / "checkpoints"):
        die(SCRIPT, f"{a.long}: no full checkpoints (checkpoints/step-<S>.pt) to evaluate")
    try:
        shorts = [load_run(s) for s in a.shorts]
    except ValueError as err:
        die(SCRIPT, str(err))
    for s in shorts:
        if s["horizon"] != a.horizon or (s["benchmark"], s["goals"]) != (
                cfg.env.benchmark, cfg.env.goals):  # fmt: skip
            have = f"{s['benchmark']}-{s['goals']} at horizon {s['horizon']}"
            want = f"{cfg.env.benchmark}-{cfg.env.goals} at horizon {a.horizon}"
            die(SCRIPT, f"{s['label']}: {have}; allowed: {want}")
    previous = a.out / f"{a.name}.json"
    old: dict[int, dict] = {}
    if previous.is_file():
        before = json.loads(previous.read_text())
        if [s["label"] for s in before["shorts"]] != [s["label"] for s in shorts]:
            die(SCRIPT, f"{previous} compares other short runs; give another NAME")
        old = {int(r["step"]): r for r in before["rows"]}
    rows, left_out = compare(a.long, shorts, a.horizon, a.episodes, old)
    record = {
        "name": a.name, "horizon": a.horizon, "episodes": a.episodes,
        "long": {"run_dir": where(a.long), "horizon": cfg.env.horizon, "method": cfg.method,
                 "seed": cfg.seed, "precision": cfg.precision},
        "shorts": [{k: v for k, v in s.items() if k != "curve"} for s in shorts],
        "rows": rows, "left_out": left_out, "machine": machine(), "commit": commit(),
    }  # fmt: skip
    png = write_outputs(a.name, a.out, record)
    print(png)
    return png


if __name__ == "__main__":
    main()
