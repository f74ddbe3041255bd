"""MT-MH-SAC network: a shared MLP trunk on [state, one-hot task], one output head per task."""

from __future__ import annotations

import math
from itertools import pairwise

import torch
from torch import nn

from softmod.config import MultiHeadNetConfig
from softmod.nets.layers import GroupedLinear, StackedEmbedding, StackedLinear, TaskGroups
from softmod.nets.protocol import TaskNetwork


class MultiHeadMLP(TaskNetwork):
    """Shared trunk (``cfg.hidden``, one-hot concatenated to the state) and T output heads.

    The trunk is the MT-SAC MLP without its output layer; its first layer is ``x W_x + W_t[task] +
    b``, equal to a Linear on the concatenation (see :class:`~softmod.nets.mlp.TaskConditionedMLP`).
    Head t is ``Linear(hidden[-1], out)``; the heads are stacked as ``(E, T, hidden[-1], out)`` and
    applied to the rows grouped by task in one batched product, so a row only ever touches its own
    task's head. Heads are output layers (uniform in ±3e-3). Task-specific parameters: the heads
    and the one-hot rows. Not graph-safe: grouping rows by task reads group sizes on the host.
    """

    task_specific = ("task_rows", "heads")

    def __init__(
        self,
        cfg: MultiHeadNetConfig,
        in_dim: int,
        out_dim: int,
        num_tasks: int,
        members: int = 1,
    ) -> None:
        super().__init__()
        hidden = cfg.hidden
        if len(hidden) < 1:
            raise ValueError("an MLP needs at least one hidden layer")
        self.num_tasks = num_tasks
        self.first = StackedLinear(members, in_dim, hidden[0])
        self.task_rows = StackedEmbedding(members, num_tasks, hidden[0], 1 / math.sqrt(hidden[0]))
        self.hidden = nn.ModuleList(StackedLinear(members, a, b) for a, b in pairwise(hidden))
        self.heads = GroupedLinear(members, num_tasks, hidden[-1], out_dim, output=True)

    def trunk(self, x: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        """The shared features before the heads: ``(E, B, hidden[-1])``."""
        h = torch.relu(self.first(x) + self.task_rows(task))
        for layer in self.hidden:
            h = torch.relu(layer(h))
        return h

    def forward(self, x: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        """``x: (B, in)`` or ``(E, B, in)``, ``task: (B,)`` -> ``(E, B, out)``, by head task[b]."""
        groups = TaskGroups(task, self.num_tasks)
        return groups.ungroup(self.heads(groups.group(self.trunk(x, task))))
