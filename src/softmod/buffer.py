"""Multi-task replay: one FIFO ring per task, stratified sampling (DESIGN §4)."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch


class Batch(NamedTuple):
    """A stratified batch: ``batch_size / T`` rows of each task, task indices included."""

    obs: torch.Tensor  # (B, obs_dim)
    action: torch.Tensor  # (B, act_dim)
    reward: torch.Tensor  # (B,)
    next_obs: torch.Tensor  # (B, obs_dim)
    terminated: torch.Tensor  # (B,) float: 1 only at a true terminal (never at a time limit)
    task: torch.Tensor  # (B,) int64


class MultiTaskReplay:
    """T FIFO rings of ``capacity`` transitions each, stored as ``(T, capacity, ·)`` tensors.

    Rows of task t go to ring t only; once a ring is full its oldest row is overwritten. ``sample``
    draws ``batch_size // T`` rows uniformly from each task's ring, so every batch holds every task
    equally, whatever the tasks' episode lengths or data counts.
    """

    def __init__(
        self,
        num_tasks: int,
        capacity: int,
        obs_dim: int,
        act_dim: int,
        device: torch.device | str = "cpu",
        seed: int = 0,
    ) -> None:
        if capacity < 1:
            raise ValueError(f"replay capacity per task must be >= 1, got {capacity}")
        self.num_tasks = num_tasks
        self.capacity = capacity
        self.device = torch.device(device)
        shape = (num_tasks, capacity)
        kw: dict[str, Any] = dict(dtype=torch.float32, device=self.device)
        self.obs = torch.zeros((*shape, obs_dim), **kw)
        self.next_obs = torch.zeros((*shape, obs_dim), **kw)
        self.action = torch.zeros((*shape, act_dim), **kw)
        self.reward = torch.zeros(shape, **kw)
        self.terminated = torch.zeros(shape, **kw)
        self.pos = np.zeros(num_tasks, np.int64)  # next write position of each ring
        self.size = np.zeros(num_tasks, np.int64)  # rows stored in each ring
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(seed)

    def add(
        self,
        task: np.ndarray,
        obs: np.ndarray,
        action: np.ndarray,
        reward: np.ndarray,
        next_obs: np.ndarray,
        terminated: np.ndarray,
    ) -> None:
        """Append one transition per row to the ring of that row's task (tasks must be distinct)."""
        task = np.asarray(task, np.int64)
        if len(np.unique(task)) != len(task):
            raise ValueError("add() takes at most one transition per task per call")
        pos = self.pos[task]
        t_idx = torch.as_tensor(task, device=self.device)
        p_idx = torch.as_tensor(pos, device=self.device)

        def put(dst: torch.Tensor, src: np.ndarray) -> None:
            dst[t_idx, p_idx] = torch.as_tensor(src, dtype=torch.float32).to(self.device)

        put(self.obs, obs)
        put(self.action, action)
        put(self.reward, reward)
        put(self.next_obs, next_obs)
        put(self.terminated, terminated)
        self.pos[task] = (pos + 1) % self.capacity
        self.size[task] = np.minimum(self.size[task] + 1, self.capacity)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The filled part of every ring, the write positions, sizes and the sampling RNG."""
        n = int(self.size.max())

        def filled(x: torch.Tensor) -> torch.Tensor:
            # a view would drag its whole storage into the file: copy unless it is the whole ring
            part = x[:, :n]
            if part.is_cuda:
                return part.cpu()
            return part if n == self.capacity else part.clone()

        return {
            "obs": filled(self.obs),
            "next_obs": filled(self.next_obs),
            "action": filled(self.action),
            "reward": filled(self.reward),
            "terminated": filled(self.terminated),
            "pos": torch.from_numpy(self.pos.copy()),
            "size": torch.from_numpy(self.size.copy()),
            "capacity": torch.tensor(self.capacity),
            "generator": self.generator.get_state(),
        }

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Restore a :meth:`state_dict` of a replay with the same task count, capacity and dims."""
        if int(state["capacity"]) != self.capacity:
            raise ValueError(
                f"saved replay has capacity {int(state['capacity'])} per task, not {self.capacity}"
            )
        n = state["obs"].shape[1]
        for name in ("obs", "next_obs", "action", "reward", "terminated"):
            dst, src = getattr(self, name), state[name]
            if src.shape[0] != dst.shape[0] or src.shape[2:] != dst.shape[2:]:
                raise ValueError(f"saved replay {name} has shape {tuple(src.shape)}")
            dst[:, :n] = src.to(self.device)
        self.pos = state["pos"].numpy().astype(np.int64).copy()
        self.size = state["size"].numpy().astype(np.int64).copy()
        try:
            self.generator.set_state(state["generator"])
        except RuntimeError:  # saved on another device type: sampling continues, not bit-exact
            self.generator.manual_seed(int(self.size.sum()))

    def min_size(self) -> int:
        """Rows stored in the emptiest ring."""
        return int(self.size.min())

    def sample(self, batch_size: int) -> Batch:
        """Draw ``batch_size // T`` rows uniformly from each task's ring (with replacement)."""
        if batch_size % self.num_tasks != 0:
            raise ValueError(
                f"batch size {batch_size} is not a multiple of the task count {self.num_tasks}"
            )
        if self.min_size() == 0:
            raise ValueError("cannot sample: some task's ring is empty")
        per_task = batch_size // self.num_tasks
        sizes = torch.as_tensor(self.size, device=self.device)[:, None]
        u = torch.rand((self.num_tasks, per_task), generator=self.generator, device=self.device)
        # float rounding can give u * size == size: clamp into the filled part of each ring
        rows = torch.minimum((u * sizes).long(), sizes - 1)
        task = torch.arange(self.num_tasks, device=self.device)[:, None].expand_as(rows)
        t, r = task.reshape(-1), rows.reshape(-1)
        return Batch(
            obs=self.obs[t, r],
            action=self.action[t, r],
            reward=self.reward[t, r],
            next_obs=self.next_obs[t, r],
            terminated=self.terminated[t, r],
            task=t,
        )
