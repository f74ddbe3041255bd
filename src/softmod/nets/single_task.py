"""Single-task SAC as one network: an independent MLP per task, kept as stacked per-task weights.

The rows are grouped by task (:class:`~softmod.nets.layers.TaskGroups`) and every layer is a
:class:`~softmod.nets.layers.GroupedLinear` with one group per task.
"""

from __future__ import annotations

from itertools import pairwise

import torch
from torch import nn

from softmod.config import SingleTaskNetConfig
from softmod.nets.layers import GroupedLinear, TaskGroups
from softmod.nets.protocol import TaskNetwork


class SingleTaskMLP(TaskNetwork):
    """One independent MLP per task (``cfg.hidden``); nothing is shared across tasks.

    Every layer holds weights ``(E, T, in, out)``; a row passes through its own task's MLP only, and
    all tasks are computed together by grouping the rows by task (:class:`TaskGroups`) and one
    batched product per layer. The task selects the network, so no one-hot is input. Under
    multi-task SAC each task's MLP therefore sees only its own task's gradients, as T separate SAC
    learners would (they still share the optimiser step, the batch schedule and gradient clipping,
    which is applied to the global norm of all tasks together). Every parameter is task-specific;
    not graph-safe (grouping rows by task reads group sizes on the host).
    """

    task_specific = ("hidden", "out")

    def __init__(
        self,
        cfg: SingleTaskNetConfig,
        in_dim: int,
        out_dim: int,
        num_tasks: int,
        members: int = 1,
    ) -> None:
        super().__init__()
        if len(cfg.hidden) < 1:
            raise ValueError("an MLP needs at least one hidden layer")
        self.num_tasks = num_tasks
        dims = (in_dim, *cfg.hidden)
        self.hidden = nn.ModuleList(
            GroupedLinear(members, num_tasks, a, b) for a, b in pairwise(dims)
        )
        self.out = GroupedLinear(members, num_tasks, cfg.hidden[-1], out_dim, output=True)

    def forward(self, x: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        """``x: (B, in)`` or ``(E, B, in)``, ``task: (B,)`` -> ``(E, B, out)``."""
        groups = TaskGroups(task, self.num_tasks)
        h = groups.group(x)
        for layer in self.hidden:
            h = torch.relu(layer(h))
        return groups.ungroup(self.out(h))
