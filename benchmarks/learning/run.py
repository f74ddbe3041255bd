"""Train one agent for a fixed budget, evaluate it with the paper's protocol, record the result.

Usage (from the repository root)::

    python benchmarks/learning/run.py --benchmark mt1 --task reach-v3 --method single-task-sac \
        --budget 100000
    python benchmarks/learning/run.py --benchmark mt10 --method soft-shallow --budget 150000

Writes ``benchmarks/results/learning/<name>.json``: the exact command, seed, device, machine,
softmod commit, wall time, the training curve (periodic evaluations from ``eval.csv``) and the final
evaluation (deterministic actions, 100 episodes per task, success at any step: DESIGN §6). The run
directory itself goes under ``runs/learning/`` (not committed).
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

from softmod.bench import machine
from softmod.checkpoint import load_agent
from softmod.cli import TrainArgs
from softmod.envs import make_env
from softmod.evaluate import evaluate
from softmod.train import EVAL_STREAM, train

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results" / "learning"


def commit() -> str:
    """The softmod git commit the result was produced with."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        )
        return out.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def read_curve(path: Path) -> list[dict[str, float]]:
    """The periodic evaluations of a run: one dict per row of ``eval.csv``."""
    with path.open() as f:
        return [{k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(f)]


def main(argv: list[str] | None = None) -> dict:
    """Run the recipe given on the command line; return (and write) the result record."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--benchmark", default="mt10", choices=["mt1", "mt10", "mt50"])
    p.add_argument("--task", default=None)
    p.add_argument("--goals", default="fixed", choices=["fixed", "conditioned"])
    p.add_argument("--method", default="soft-shallow")
    p.add_argument("--budget", type=int, required=True, help="environment steps over all tasks")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--eval-interval", type=int, default=10_000)
    p.add_argument("--eval-episodes", type=int, default=5)
    p.add_argument("--final-episodes", type=int, default=100)
    p.add_argument("--device", default="auto")
    p.add_argument("--name", default=None)
    a = p.parse_args(argv)
    name = a.name or "-".join(
        x for x in (a.benchmark, a.task, a.goals, a.method, f"{a.budget // 1000}k", f"s{a.seed}")
        if x
    )
    args = TrainArgs(
        benchmark=a.benchmark, task=a.task, goals=a.goals, method=a.method,
        total_steps=a.budget, seed=a.seed, device=a.device,
        eval_interval=a.eval_interval, eval_episodes=a.eval_episodes,
        log_interval=min(5_000, a.eval_interval), threads=a.threads, progress=False,
    )  # fmt: skip
    cfg = args.to_config()
    run_dir = ROOT / "runs" / "learning" / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    t0 = time.perf_counter()
    result = train(cfg, run_dir, progress=False)
    train_s = time.perf_counter() - t0
    _, agent = load_agent(run_dir, result_device := agent_device(a.device))
    eval_env = make_env(cfg.env, cfg.seed, EVAL_STREAM)
    final = evaluate(agent.policy, eval_env, a.final_episodes, result_device)
    eval_env.close()
    record = {
        "name": name,
        "command": "python benchmarks/learning/run.py " + " ".join(argv or sys.argv[1:]),
        "benchmark": a.benchmark,
        "goals": a.goals,
        "task": a.task,
        "method": a.method,
        "seed": a.seed,
        "env_steps": result.env_steps,
        "updates": result.updates,
        "horizon": cfg.env.horizon,
        "device": str(result_device),
        "machine": machine(),
        "commit": commit(),
        "threads": a.threads,
        "train_wall_s": round(train_s, 1),
        "parameters": result.parameter_counts,
        "curve": read_curve(run_dir / "eval.csv"),
        "final_eval": final.to_json(),
        "run_dir": str(run_dir.relative_to(ROOT)),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{name}.json"
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"{name}: final success {final.mean_success:.1%} over {a.final_episodes} episodes/task; "
          f"{result.env_steps:,} env steps in {train_s:.0f} s -> {out}")  # fmt: skip
    return record


def agent_device(name: str) -> torch.device:
    """``auto`` picks CUDA when present, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


if __name__ == "__main__":
    main()
