"""The training loop: read it top to bottom.

One *vector step* steps every task's environment once (N = T environment steps) and is followed by
one gradient step (DESIGN §4: "1 gradient step per vector step"), once every task's ring holds the
warm-up amount. ``total_steps`` counts environment steps over all tasks, as the paper's "samples".
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from softmod.buffer import MultiTaskReplay
from softmod.checkpoint import save_weights
from softmod.config import RunConfig, save_config
from softmod.envs import make_env
from softmod.evaluate import EvalResult, evaluate
from softmod.runlog import RunLogger
from softmod.sac.agent import MultiTaskSAC
from softmod.sac.losses import balance_weights
from softmod.validation import check_run_dir, validate_config

TRAIN_STREAM, EVAL_STREAM = 0, 1  # environment RNG streams (fixed goals are shared by both)


@dataclass(frozen=True)
class TrainResult:
    """What a finished run returns (everything is also in the run directory)."""

    run_dir: Path
    env_steps: int
    updates: int
    wall_s: float
    final_eval: EvalResult
    parameter_counts: dict[str, int]


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when present, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and PyTorch."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _crossed(step: int, stride: int, interval: int) -> bool:
    """Whether the last ``stride`` steps ending at ``step`` crossed a multiple of ``interval``."""
    return step // interval > (step - stride) // interval


def _progress(console: Console, enabled: bool) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("env steps · {task.fields[sps]} steps/s · success {task.fields[success]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        disable=not enabled,
        refresh_per_second=4,
    )


def train(
    cfg: RunConfig, run_dir: Path, progress: bool = True, console: Console | None = None
) -> TrainResult:
    """Train one multi-task SAC agent as ``cfg`` says; write everything under ``run_dir``."""
    console = console or Console(stderr=True)
    names = validate_config(cfg)  # every option checked before anything is built
    run_dir = Path(run_dir)
    check_run_dir(run_dir)
    device = resolve_device(cfg.device)
    if cfg.torch_threads > 0:
        torch.set_num_threads(cfg.torch_threads)
    seed_everything(cfg.seed)
    run_dir.mkdir(parents=True, exist_ok=True)
    save_config(cfg, run_dir / "config.json")

    env = make_env(cfg.env, cfg.seed, TRAIN_STREAM)
    eval_env = make_env(cfg.env, cfg.seed, EVAL_STREAM)
    n_envs, n_tasks = env.num_envs, env.num_tasks
    agent = MultiTaskSAC(cfg, env.obs_dim, env.act_dim, n_tasks, device)
    counts = agent.parameter_counts()
    (run_dir / "params.json").write_text(json.dumps(counts, indent=2) + "\n")
    console.print(
        f"[bold]softmod[/] {cfg.method} on {cfg.env.benchmark}-{cfg.env.goals} "
        f"({n_tasks} tasks, horizon {cfg.env.horizon}), device {device}, "
        f"parameters: policy {counts['policy']:,}, Q-function {counts['q']:,} (x2) -> {run_dir}"
    )
    replay = MultiTaskReplay(
        n_tasks, cfg.sac.buffer_per_task, env.obs_dim, env.act_dim, device, seed=cfg.seed
    )
    logger = RunLogger(run_dir, names)
    action_rng = np.random.default_rng([cfg.seed, 99])
    batch_size = cfg.sac.batch_per_task * n_tasks
    warmup = cfg.sac.warmup_per_task
    total_vec_steps = math.ceil(cfg.total_steps / n_envs)
    task_ids = torch.as_tensor(env.task_ids, device=device)

    # issue 6: overlapped collection (env workers step while the update runs); see envs/subproc.py
    overlap = cfg.env.async_step and hasattr(env, "step_async")
    obs = env.reset()
    ep_return, ep_hit = np.zeros(n_envs), np.zeros(n_envs, bool)
    done_returns: list[float] = []
    done_success: list[float] = []
    sums: dict[str, torch.Tensor] = {}
    updates, updates_since_log = 0, 0
    start = last_log_time = time.perf_counter()
    last_log_step = 0
    last_eval: EvalResult | None = None

    with _progress(console, progress) as bar:
        bar_task = bar.add_task("train", total=total_vec_steps * n_envs, sps="-", success="-")
        for it in range(1, total_vec_steps + 1):
            # act: uniform random actions until every task has its warm-up transitions
            if replay.min_size() < warmup:
                action = action_rng.uniform(-1.0, 1.0, (n_envs, env.act_dim)).astype(np.float32)
            else:
                obs_t = torch.as_tensor(obs, device=device)
                action = agent.policy.act(obs_t, task_ids, deterministic=False).cpu().numpy()
            metrics = None
            if overlap:  # issue 6: this update does not see this vector step's transitions yet
                env.step_async(action)
                if replay.min_size() >= warmup:
                    metrics = agent.update(replay.sample(batch_size))
                res = env.step_wait()
            else:
                res = env.step(action)
            # store the REAL next observation (final_obs), not the auto-reset one; a time-limit
            # truncation is stored as non-terminal so the Q target bootstraps through it
            replay.add(res.task_ids, obs, action, res.reward, res.final_obs, res.terminated)
            ep_return += res.reward
            ep_hit |= res.success > 0
            ended = res.truncated | res.terminated
            if ended.any():
                done_returns.extend(ep_return[ended].tolist())
                done_success.extend(ep_hit[ended].astype(float).tolist())
                ep_return[ended], ep_hit[ended] = 0.0, False
            obs = res.obs

            if not overlap and replay.min_size() >= warmup:
                metrics = agent.update(replay.sample(batch_size))
            if metrics is not None:
                for k, v in metrics.items():
                    sums[k] = sums[k] + v if k in sums else v
                updates += 1
                updates_since_log += 1

            step = it * n_envs
            last = it == total_vec_steps
            if _crossed(step, n_envs, cfg.log_interval) or last:
                now = time.perf_counter()
                row: dict[str, float] = {
                    "time_s": now - start,
                    "train/steps_per_s": (step - last_log_step) / max(now - last_log_time, 1e-9),
                    "train/updates": updates,
                }
                if done_returns:
                    row["train/episode_return"] = float(np.mean(done_returns))
                    row["train/episode_success"] = float(np.mean(done_success))
                for k, v in sums.items():
                    row[k] = float(v) / max(updates_since_log, 1)
                log_alpha = agent.log_alpha.detach()
                weights = balance_weights(log_alpha).cpu().numpy()
                for i, name in enumerate(names):
                    row[f"alpha/{name}"] = float(log_alpha[i].exp())
                    row[f"balance/{name}"] = float(weights[i])
                logger.log_train(step, row)
                bar.update(bar_task, sps=f"{row['train/steps_per_s']:.0f}")
                done_returns.clear()
                done_success.clear()
                sums, updates_since_log = {}, 0
                last_log_step, last_log_time = step, now
            if _crossed(step, n_envs, cfg.eval_interval) or last:
                last_eval = evaluate(agent.policy, eval_env, cfg.eval_episodes, device)
                logger.log_eval(
                    step, {"time_s": time.perf_counter() - start, **last_eval.metrics()}
                )
                bar.update(bar_task, success=f"{last_eval.mean_success:.0%}")
            bar.update(bar_task, completed=step)

    wall = time.perf_counter() - start
    assert last_eval is not None
    save_weights(agent, run_dir / "checkpoints" / "final.pt", step=total_vec_steps * n_envs)
    (run_dir / "final_eval.json").write_text(json.dumps(last_eval.to_json(), indent=2) + "\n")
    logger.close()
    env.close()
    eval_env.close()
    console.print(
        f"done: {total_vec_steps * n_envs:,} env steps, {updates:,} updates in {wall:.0f} s; "
        f"final success {last_eval.mean_success:.1%} ({cfg.eval_episodes} episodes per task)"
    )
    return TrainResult(run_dir, total_vec_steps * n_envs, updates, wall, last_eval, counts)
