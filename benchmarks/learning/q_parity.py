"""|Q_bf16 - Q_fp32| on one fixed batch, from a run's checkpoints over training (issue 17).

Usage: ``python benchmarks/learning/q_parity.py NAME RUN_DIR [--other RUN_DIR] [--snapshots DIR]
[--episodes N] [--out DIR]`` writes ``NAME.json``, ``NAME.md`` and ``NAME.png`` under
``benchmarks/results/learning/`` (or ``DIR``). The figure puts the runs' learning curves (mean
success and mean return of the periodic evaluations) side by side with the Q differences; the
JSON keeps those curves too, so the record outlives the run directories.

For every saved agent of RUN_DIR (a fresh one for step 0, each ``step-*.pt``, ``final.pt``; see
``task_use.checkpoints``), both Q-functions are evaluated on the same fixed batch (random-action
states of the run's environments, ``task_use.random_states``) once in fp32 and once in bf16 mixed
precision (``softmod/precision.py``), from the same weights: ``q_abs_diff_mean`` / ``_max`` is
the arithmetic error of bf16, next to ``q_abs_mean`` for scale (Q reaches ~1e3 on Meta-World).

``--other RUN_DIR`` (the same benchmark and seed trained in the other precision) adds, at every
step both runs saved, ``runs_q_abs_diff_mean``: |Q_run - Q_other| with each run's weights in its
own precision, i.e. how far the two trainings have drifted apart. Bad input is a one-line error
(exit 2) before any work. Keep more checkpoints while the runs train (``run.py
--keep-checkpoints N`` or ``task_use.py``'s ``--snapshots`` copies) to get more points.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import matplotlib
import torch

matplotlib.use("Agg")
import matplotlib.pyplot as plt

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import RESULTS, commit, die, machine, read_curve, where
from task_use import checkpoints, random_states

from softmod.checkpoint import load_file
from softmod.config import RunConfig, load_config
from softmod.sac.agent import MultiTaskSAC


@torch.no_grad()
def q_values(agent: MultiTaskSAC, batch: tuple[torch.Tensor, ...], precision: str) -> torch.Tensor:
    """Q1 and Q2 ``(2, N)`` of the agent's weights on the batch, in ``precision``."""
    from softmod.precision import autocast

    obs, act, task = batch
    with autocast(precision, obs.device):
        return agent.q(obs, act, task)


def _agents(run_dir: Path, snapshots: Path | None) -> tuple[RunConfig, list[tuple[int, dict]]]:
    cfg = load_config(run_dir / "config.json")
    saved = [(step, load_file(path)["agent"]) for step, path in
             checkpoints(run_dir, snapshots, cfg.total_steps)]  # fmt: skip
    return cfg, saved


def analyse(run_dir: Path, other: Path | None, snapshots: Path | None, episodes: int) -> dict:
    """The rows of the record: one per saved step of ``run_dir``."""
    cfg, saved = _agents(run_dir, snapshots)
    obs, act, task, num_tasks = random_states(cfg, episodes)
    batch = tuple(torch.as_tensor(x) for x in (obs, act, task))
    dims = (obs.shape[1], act.shape[1], num_tasks)
    torch.manual_seed(cfg.seed)
    agent = MultiTaskSAC(cfg, *dims, torch.device("cpu"))
    steps = [(0, {k: v.clone() for k, v in agent.state_dict().items()}), *saved]
    theirs: dict[int, tuple[str, dict]] = {}
    if other is not None:
        ocfg, osaved = _agents(other, snapshots)
        theirs = {step: (ocfg.precision, state) for step, state in osaved}
        other_agent = MultiTaskSAC(ocfg, *dims, torch.device("cpu"))
    rows = []
    for step, state in steps:
        agent.load_state_dict(state)
        q32, q16 = q_values(agent, batch, "fp32"), q_values(agent, batch, "bf16")
        diff = (q16 - q32).abs()
        scale = q32.abs().mean()
        row = {"step": step, "q_abs_mean": float(scale),
               "q_abs_diff_mean": float(diff.mean()), "q_abs_diff_max": float(diff.max()),
               "q_rel_diff_mean": float(diff.mean() / scale.clamp(min=1e-12))}  # fmt: skip
        if step in theirs and step > 0:
            oprec, ostate = theirs[step]
            other_agent.load_state_dict(ostate)
            mine = q16 if cfg.precision == "bf16" else q32
            row["runs_q_abs_diff_mean"] = float(
                (q_values(other_agent, batch, oprec) - mine).abs().mean()
            )
        rows.append(row)
    return {"method": cfg.method, "benchmark": cfg.env.benchmark, "goals": cfg.env.goals,
            "seed": cfg.seed, "precision": cfg.precision, "states": len(obs),
            "run_dir": where(run_dir), "other": None if other is None else where(other),
            "rows": rows}  # fmt: skip


def curves(run_dir: Path) -> dict:
    """A run's label and periodic evaluations (step, mean success, mean return)."""
    cfg = load_config(run_dir / "config.json")
    rows = read_curve(run_dir / "eval.csv") if (run_dir / "eval.csv").exists() else []
    return {"label": f"{cfg.method} s{cfg.seed} {cfg.precision}",
            "step": [int(r["step"]) for r in rows],
            "mean_success": [r["eval/mean_success"] for r in rows],
            "mean_return": [r["eval/mean_return"] for r in rows]}  # fmt: skip


def _figure(name: str, run: dict, png: Path) -> None:
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.2))
    for c in run["curves"]:
        axes[0].plot(c["step"], c["mean_success"], label=c["label"])
        axes[1].plot(c["step"], c["mean_return"], label=c["label"])
    rows = run["rows"]
    steps = [r["step"] for r in rows]
    axes[2].plot(steps, [r["q_abs_mean"] for r in rows], "k:", label="mean |Q| (fp32), scale")
    axes[2].plot(steps, [r["q_abs_diff_mean"] for r in rows], "o-",
                 label="same weights: mean |Q_bf16 - Q_fp32|")  # fmt: skip
    apart = [(r["step"], r["runs_q_abs_diff_mean"]) for r in rows if "runs_q_abs_diff_mean" in r]
    if apart:
        axes[2].plot(*zip(*apart, strict=True), "s-", label="the two runs: mean |Q_run - Q_other|")
    axes[2].set_yscale("log")
    for ax, title in zip(axes, ("mean success (periodic evaluation)", "mean return",
                                "Q on one fixed batch"), strict=True):  # fmt: skip
        ax.set_title(title)
        ax.set_xlabel("environment steps")
        ax.legend(fontsize=8)
    fig.suptitle(f"{name}: {run['method']} on {run['benchmark']}-{run['goals']}, seed "
                 f"{run['seed']}, {run['states']} states")  # fmt: skip
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)


def _table(run: dict) -> str:
    lines = ["| step | mean abs Q (fp32) | mean abs(Q_bf16 - Q_fp32) | max | relative | "
             "runs apart |", "|---|---|---|---|---|---|"]  # fmt: skip
    for r in run["rows"]:
        apart = r.get("runs_q_abs_diff_mean")
        lines.append(
            f"| {r['step']:,} | {r['q_abs_mean']:.3g} | {r['q_abs_diff_mean']:.3g} | "
            f"{r['q_abs_diff_max']:.3g} | {r['q_rel_diff_mean']:.2%} | "
            f"{'-' if apart is None else f'{apart:.3g}'} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> Path:
    """Measure a run's checkpoints; write ``NAME.json`` and ``NAME.md``; return the JSON path."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("name")
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--other", type=Path, default=None, help="the run in the other precision")
    ap.add_argument("--snapshots", type=Path, help="copies of pruned checkpoints: DIR/<run name>/")
    ap.add_argument("--episodes", type=int, default=1, help="random-action episodes per task")
    ap.add_argument("--out", type=Path, default=RESULTS)
    a = ap.parse_args(argv)
    for d in (a.run_dir, a.other):
        if d is not None and not (d / "config.json").exists():
            die("q_parity.py", f"{d} is not a softmod run (no config.json)")
    if a.episodes < 1:
        die("q_parity.py", f"--episodes must be >= 1, got {a.episodes}")
    run = analyse(a.run_dir, a.other, a.snapshots, a.episodes)
    run["curves"] = [curves(d) for d in (a.run_dir, a.other) if d is not None]
    a.out.mkdir(parents=True, exist_ok=True)
    _figure(a.name, run, a.out / f"{a.name}.png")
    (a.out / f"{a.name}.md").write_text(f"# {a.name}\n\n{run['method']} on {run['benchmark']}-"
                                        f"{run['goals']}, {run['states']} states\n\n"
                                        + _table(run))  # fmt: skip
    command = " ".join(["python", *(sys.argv if argv is None else ["q_parity.py", *argv])])
    record = {"name": a.name, "command": command, "episodes": a.episodes,
              "machine": machine(), "commit": commit(), "run": run}  # fmt: skip
    path = a.out / f"{a.name}.json"
    path.write_text(json.dumps(record, indent=2) + "\n")
    return path


if __name__ == "__main__":
    print(main())
