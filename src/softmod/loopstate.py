"""The training loop's own state, one dataclass saved and restored whole (issue 19).

Everything the loop advances besides the networks, optimisers, replay, environments and global
RNGs: counters, the running episodes' sums, the partial sums of the current log interval, the
last evaluation, the action RNG of the warm-up. A checkpoint stores :meth:`LoopState.to_dict`
under ``"loop"`` (tensors and plain data, the keys of softmod-checkpoint-1) and
:meth:`LoopState.from_dict` reads it back; adding a field here is the only edit a new counter
needs.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from softmod.evaluate import EvalResult


@dataclass
class LoopState:
    """Counters and sums of a run's loop (see the module doc)."""

    obs: np.ndarray  # (n_envs, obs_dim) the observations the next actions are taken in
    ep_return: np.ndarray  # (n_envs,) return of each running episode so far
    ep_hit: np.ndarray  # (n_envs,) bool: success flag seen in the running episode
    action_rng: np.random.Generator  # uniform random actions of the warm-up
    it: int = 0  # vector steps done
    updates: int = 0  # gradient steps done
    updates_since_log: int = 0
    sums: dict[str, torch.Tensor] = field(default_factory=dict)  # metric sums since the last row
    done_returns: list[float] = field(default_factory=list)  # episodes ended since the last row
    done_success: list[float] = field(default_factory=list)
    elapsed: float = 0.0  # training seconds of the earlier sessions of this run
    last_log_step: int = 0
    last_log_elapsed: float = 0.0
    best_success: float = -1.0  # best periodic mean success (best.pt)
    last_eval: EvalResult | None = None
    faults: int = 0  # environment faults
    skipped: int = 0  # updates skipped for non-finite gradients (--on-nonfinite skip)

    @classmethod
    def fresh(cls, obs: np.ndarray, seed: int) -> LoopState:
        """The state of a new run whose envs were just reset to ``obs``."""
        n = len(obs)
        rng = np.random.default_rng([seed, 99])
        return cls(obs=obs, ep_return=np.zeros(n), ep_hit=np.zeros(n, bool), action_rng=rng)

    def to_dict(self, elapsed_now: float) -> dict[str, Any]:
        """Tensors and plain data; ``elapsed_now``: the run's training seconds so far."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, np.ndarray):
                value = torch.from_numpy(np.array(value, np.float32 if f.name == "obs" else None))
            elif isinstance(value, np.random.Generator):
                value = value.bit_generator.state
            elif isinstance(value, EvalResult):
                value = {
                    "success": value.success.tolist(),
                    "returns": value.returns.tolist(),
                    "episodes": value.episodes,
                }
            elif f.name == "sums":
                value = {k: v.detach().cpu() for k, v in value.items()}
            elif isinstance(value, list):
                value = list(value)
            out[f.name] = value
        out["elapsed"] = elapsed_now
        return out

    @classmethod
    def from_dict(
        cls, d: dict[str, Any], task_names: list[str], seed: int, device: torch.device
    ) -> LoopState:
        """Read :meth:`to_dict` back (``task_names``: the run's, for the last evaluation)."""
        kwargs: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            value = d[f.name]
            if f.name in ("obs", "ep_return", "ep_hit"):
                value = value.numpy().copy()
            elif f.name == "action_rng":
                rng = np.random.default_rng([seed, 99])
                rng.bit_generator.state = value
                value = rng
            elif f.name == "sums":
                value = {k: v.to(device) for k, v in value.items()}
            elif f.name == "last_eval" and value is not None:
                success, returns = np.array(value["success"]), np.array(value["returns"])
                value = EvalResult(list(task_names), success, returns, int(value["episodes"]))
            elif isinstance(value, list | tuple):
                value = list(value)
            elif f.name != "last_eval":
                default: Any = f.default
                value = type(default)(value)  # int / float
            kwargs[f.name] = value
        return cls(**kwargs)

    def restart_episodes(self, obs: np.ndarray) -> None:
        """The envs were reset (their state was not saved): new episodes from ``obs``."""
        self.obs, self.ep_return, self.ep_hit = obs, np.zeros(len(obs)), np.zeros(len(obs), bool)
