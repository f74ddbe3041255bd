"""MT-SAC network: an MLP on the state concatenated with the one-hot task id (DESIGN §3)."""

from __future__ import annotations

import itertools
import math

import torch
from torch import nn

from softmod.config import MLPNetConfig
from softmod.nets.layers import StackedEmbedding, StackedLinear
from softmod.nets.protocol import TaskNetwork


class TaskConditionedMLP(TaskNetwork):
    """MLP over ``[x, onehot(task)]`` with ``members`` stacked copies.

    The first layer is computed as ``x W_x + W_t[task] + b``, mathematically the same as a Linear on
    the concatenation (the one-hot's columns of the weight are a lookup table), without building the
    one-hot. Its task rows are initialised with the same fan bound as the state rows; they are the
    only task-specific parameters.
    """

    graph_safe = True
    task_specific = ("task_rows",)

    def __init__(
        self, cfg: MLPNetConfig, in_dim: int, out_dim: int, num_tasks: int, members: int = 1
    ) -> None:
        super().__init__()
        hidden = cfg.hidden
        if len(hidden) < 1:
            raise ValueError("an MLP needs at least one hidden layer")
        self.num_tasks = num_tasks
        self.first = StackedLinear(members, in_dim, hidden[0])
        self.task_rows = StackedEmbedding(members, num_tasks, hidden[0], 1 / math.sqrt(hidden[0]))
        self.hidden = nn.ModuleList(
            StackedLinear(members, a, b) for a, b in itertools.pairwise(hidden)
        )
        self.out = StackedLinear(members, hidden[-1], out_dim, output=True)

    def forward(self, x: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        """``x: (B, in)`` or ``(E, B, in)``, ``task: (B,)`` -> ``(E, B, out)``."""
        h = torch.relu(self.first(x) + self.task_rows(task))
        for layer in self.hidden:
            h = torch.relu(layer(h))
        return self.out(h)
