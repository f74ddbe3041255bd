"""How much a multi-task agent's outputs depend on the task id, from its checkpoints over training.

Usage: ``python benchmarks/learning/task_use.py NAME RUN_DIR... [--snapshots DIR] [--episodes N]
[--out DIR]`` writes ``NAME.json``, ``NAME.md`` and ``NAME.png`` under
``benchmarks/results/learning/`` (or ``DIR``).

Why: soft modularization gives the task id to the routing network only, and the authors' code
initialises every routing output layer in ±3e-3, so the routing starts near uniform and the
network's output starts (nearly) independent of the task: until the routing learns, the policy
and the critics act as one network for all tasks. MT-SAC and MT-MH-SAC get the one-hot at the
input (and MT-MH-SAC a head per task), so their outputs depend on the task from the first update.
This script measures that, on one fixed set of states for every checkpoint and method:

- states: ``--episodes`` episodes per task of uniformly random actions in the run's environments
  (seeded, so every run of the same benchmark and seed sees the same states), each with the task
  it came from;
- ``policy_task``: the standard deviation of the deterministic action ``tanh(mean(s, t'))`` over
  all task ids ``t'`` for the same state, averaged over states and action dimensions;
  ``policy_state``: the standard deviation over a task's states with its own id, for scale;
- ``q_task`` / ``q_state``: the same for ``Q1(s, a, t')``, with the action taken in that state;
- soft-modular policies: ``routing_from_uniform``, the mean ``|p - 1/n|`` of every routing
  probability on the states with their own task id (0 = uniform routing).

Checkpoints: a freshly initialised agent (seeded) for step 0, every ``step-*.pt`` in the run's
``checkpoints/`` and in ``--snapshots/<run name>/`` (copies kept while the run prunes its own),
and ``final.pt`` at the run's budget. A bad directory is a one-line error before any work.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import RESULTS, commit, die, label_runs, machine, where

from softmod.checkpoint import load_file, step_checkpoints
from softmod.config import RunConfig, load_config
from softmod.envs import make_env
from softmod.sac.agent import MultiTaskSAC

STATE_STREAM = 4  # environment RNG stream of these states (0 train, 1 eval, 2 final, 3 routing)


def random_states(cfg: RunConfig, episodes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """``(obs (N, O), action (N, A), task (N,), tasks)`` from uniformly random actions in every
    task environment of the run."""
    env_cfg = dataclasses.replace(cfg.env, workers=0)
    env = make_env(env_cfg, cfg.seed, stream=STATE_STREAM)
    rng = np.random.default_rng(cfg.seed)
    obs_all, act_all, task_all = [], [], []
    try:
        obs = env.reset()
        for _ in range(episodes * env.horizon):
            act = rng.uniform(-1, 1, (len(env.task_ids), env.act_dim)).astype(np.float32)
            obs_all.append(np.array(obs, np.float32))
            act_all.append(act)
            task_all.append(np.asarray(env.task_ids))
            obs = env.step(act).obs
    finally:
        env.close()
    stacked = (np.concatenate(x) for x in (obs_all, act_all, task_all))
    return (*stacked, env.num_tasks)


@torch.no_grad()
def measure(agent: MultiTaskSAC, obs: np.ndarray, act: np.ndarray, task: np.ndarray) -> dict:
    """The task- and state-dependence of one agent's policy, Q1 and routing (see module doc)."""
    o, a, t = (torch.as_tensor(x) for x in (obs, act, task))
    num_tasks = agent.num_tasks
    actions, qs = [], []
    for other in range(num_tasks):  # every state with every task id
        ids = torch.full_like(t, other)
        actions.append(torch.tanh(agent.policy(o, ids)[0]))
        qs.append(agent.q(o, a, ids)[0])
    actions_t, qs_t = torch.stack(actions), torch.stack(qs)  # (T', N, A), (T', N)
    own_a = actions_t[t, torch.arange(len(t))]
    own_q = qs_t[t, torch.arange(len(t))]
    tasks = t.unique()
    out = {
        "policy_task": actions_t.std(dim=0).mean().item(),
        "policy_state": torch.stack([own_a[t == k].std(dim=0).mean() for k in tasks]).mean().item(),
        "q_task": qs_t.std(dim=0).mean().item(),
        "q_state": torch.stack([own_q[t == k].std() for k in tasks]).mean().item(),
    }
    try:
        probs = agent.policy.routing(o, t).flat()[0]
        n = agent.policy.net.n
        out["routing_from_uniform"] = (probs - 1.0 / n).abs().mean().item()
    except TypeError:  # not a soft-modular network
        pass
    return out


def checkpoints(run_dir: Path, snapshots: Path | None, budget: int) -> list[tuple[int, Path]]:
    """Every saved agent of a run, oldest first (one per step)."""
    found: dict[int, Path] = {}
    dirs = [run_dir / "checkpoints"] + ([snapshots / run_dir.name] if snapshots else [])
    for d in dirs:
        for step, path in step_checkpoints(d):
            found.setdefault(step, path)
    if (run_dir / "checkpoints" / "final.pt").exists():
        found[budget] = run_dir / "checkpoints" / "final.pt"
    return sorted(found.items())


def analyse(run_dir: Path, snapshots: Path | None, episodes: int) -> dict:
    """Measure every checkpoint of one run, and a fresh agent for step 0."""
    cfg = load_config(run_dir / "config.json")
    obs, act, task, num_tasks = random_states(cfg, episodes)
    dims = (obs.shape[1], act.shape[1], num_tasks)
    torch.manual_seed(cfg.seed)
    rows = [{"step": 0, **measure(MultiTaskSAC(cfg, *dims, torch.device("cpu")), obs, act, task)}]
    for step, path in checkpoints(run_dir, snapshots, cfg.total_steps):
        agent = MultiTaskSAC(cfg, *dims, torch.device("cpu"))
        agent.load_state_dict(load_file(path)["agent"])
        rows.append({"step": step, **measure(agent, obs, act, task)})
    return {"method": cfg.method, "benchmark": cfg.env.benchmark, "goals": cfg.env.goals,
            "seed": cfg.seed, "budget": cfg.total_steps, "states": len(obs),
            "run_dir": where(run_dir), "rows": rows}  # fmt: skip


def _figure(name: str, runs: list[dict], png: Path) -> None:
    routed = [r for r in runs if "routing_from_uniform" in r["rows"][0]]
    fig, axes = plt.subplots(1, 3 if routed else 2, figsize=(15 if routed else 10, 4.3))
    for run in runs:
        xs = [r["step"] for r in run["rows"]]
        for ax, key in zip(axes[:2], ("policy", "q"), strict=True):
            line = ax.plot(xs, [r[f"{key}_task"] for r in run["rows"]], marker="o", ms=3,
                           label=f"{run['label']}: over task ids")[0]  # fmt: skip
            dashed = "dashed: std over states" if run is runs[0] else "_nolegend_"
            ax.plot(xs, [r[f"{key}_state"] for r in run["rows"]], ls="--", lw=1,
                    color=line.get_color(), label=dashed)  # fmt: skip
    for run in routed:
        xs = [r["step"] for r in run["rows"]]
        axes[2].plot(xs, [r["routing_from_uniform"] for r in run["rows"]], marker="o", ms=3,
                     label=run["label"])  # fmt: skip
    titles = ("policy: std of the deterministic action, same state, task id changed",
              "Q1: std of Q1(s, a, task id), same (s, a), task id changed",
              "policy routing: mean |p - 1/n| (0 = uniform)")  # fmt: skip
    for ax, title in zip(axes, titles, strict=False):
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("environment steps (all tasks)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"{name}: how much the outputs depend on the task id", fontsize=10)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)


def _table(runs: list[dict]) -> str:
    lines = ["| method | env steps | policy: task / state spread | Q1: task / state spread | "
             "routing mean abs(p - 1/n) |", "|---|---|---|---|---|"]  # fmt: skip
    for run in runs:
        for r in run["rows"]:
            route = f"{r['routing_from_uniform']:.4f}" if "routing_from_uniform" in r else "-"
            lines.append(
                f"| {run['label']} | {r['step']:,} | {r['policy_task']:.4f} / "
                f"{r['policy_state']:.4f} | {r['q_task']:.3f} / {r['q_state']:.3f} | {route} |"
            )
    return "\n".join(lines) + "\n"


def main(name: str, run_dirs: list[Path], snapshots: Path | None = None, episodes: int = 1,
         out: Path = RESULTS) -> Path:  # fmt: skip
    """Measure every run's checkpoints; write ``NAME.json``, ``NAME.md``, ``NAME.png``."""
    for run_dir in run_dirs:
        if not (run_dir / "config.json").exists():
            die("task_use.py", f"{run_dir} is not a softmod run (no config.json)")
    if episodes < 1:
        die("task_use.py", f"--episodes must be >= 1, got {episodes}")
    runs = [analyse(d, snapshots, episodes) for d in run_dirs]
    label_runs(runs, " ({budget:,} run)")
    out.mkdir(parents=True, exist_ok=True)
    png = out / f"{name}.png"
    _figure(name, runs, png)
    (out / f"{name}.md").write_text(f"# {name}\n\n" + _table(runs))
    record = {"name": name, "command": " ".join(["python", *sys.argv]), "episodes": episodes,
              "machine": machine(), "commit": commit(), "runs": runs}  # fmt: skip
    (out / f"{name}.json").write_text(json.dumps(record, indent=2) + "\n")
    return png


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("name")
    ap.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR")
    ap.add_argument("--snapshots", type=Path, help="copies of pruned checkpoints: DIR/<run name>/")
    ap.add_argument("--episodes", type=int, default=1, help="random-action episodes per task")
    ap.add_argument("--out", type=Path, default=RESULTS)
    a = ap.parse_args()
    print(main(a.name, a.run_dirs, a.snapshots, a.episodes, a.out))
