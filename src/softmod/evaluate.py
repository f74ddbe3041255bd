"""Success-rate evaluation as in the paper (§5.2): deterministic actions, success at any step."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from softmod.envs import MultiTaskVecEnv
from softmod.nets import TanhGaussianPolicy


@dataclass(frozen=True)
class EvalResult:
    """Per-task success rate and mean return over ``episodes`` episodes per task."""

    task_names: list[str]
    success: np.ndarray  # (T,) in [0, 1]
    returns: np.ndarray  # (T,)
    episodes: int

    @property
    def mean_success(self) -> float:
        """Success rate averaged over tasks (the paper's headline number)."""
        return float(self.success.mean())

    def metrics(self) -> dict[str, float]:
        """Flat ``eval/…`` metrics for the logs."""
        out = {
            "eval/mean_success": self.mean_success,
            "eval/mean_return": float(self.returns.mean()),
        }
        for i, name in enumerate(self.task_names):
            out[f"eval/{name}/success"] = float(self.success[i])
            out[f"eval/{name}/return"] = float(self.returns[i])
        return out

    def to_json(self) -> dict:
        """JSON-ready per-task results."""
        return {
            "episodes_per_task": self.episodes,
            "mean_success": self.mean_success,
            "tasks": {
                name: {"success": float(self.success[i]), "return": float(self.returns[i])}
                for i, name in enumerate(self.task_names)
            },
        }


@torch.no_grad()
def evaluate(
    policy: TanhGaussianPolicy,
    env: MultiTaskVecEnv,
    episodes: int,
    device: torch.device,
) -> EvalResult:
    """Run ``episodes`` deterministic episodes in every task environment.

    An episode succeeds if the success flag is 1 at ANY of its steps. All environments share the
    horizon and start together, so episodes run in lock-step across tasks.
    """
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    policy.eval()
    n, t_count = env.num_envs, env.num_tasks
    task = torch.as_tensor(env.task_ids, device=device)
    wins = np.zeros(n)
    rets = np.zeros(n)
    obs = env.reset()
    for _ in range(episodes):
        hit = np.zeros(n, bool)
        ret = np.zeros(n)
        for _ in range(env.horizon):
            act = policy.act(torch.as_tensor(obs, device=device), task, deterministic=True)
            res = env.step(act.cpu().numpy())
            hit |= res.success > 0
            ret += res.reward
            obs = res.obs
        wins += hit
        rets += ret
    policy.train()
    per_task = np.bincount(env.task_ids, minlength=t_count) * episodes
    success = np.bincount(env.task_ids, weights=wins, minlength=t_count) / per_task
    returns = np.bincount(env.task_ids, weights=rets, minlength=t_count) / per_task
    return EvalResult(list(env.task_names), success, returns, episodes)
