"""Single-task SAC as one network: an independent MLP per task, kept as stacked per-task weights.

Also home of the two helpers every per-task (or per-module) network uses:

- :class:`TaskGroups` regroups a batch's rows by task, ``(…, B, d) <-> (…, T, m, d)``, so that
  per-task weights apply to all tasks in ONE batched product. The training batch is stratified and
  sorted by task, so there the grouping is a free reshape; any other batch (unsorted, unequal or
  missing tasks) is gathered into zero-padded groups of the largest task's size ``m``.
- :class:`GroupedLinear`: ``members x groups`` independent ``Linear`` layers, weight
  ``(E, G, in, out)``, applied to grouped rows ``(E, G, m, in)`` with one ``bmm``.
"""

from __future__ import annotations

from itertools import pairwise

import torch
from torch import nn

from softmod.config import SingleTaskNetConfig
from softmod.nets.base import authors_init_
from softmod.precision import fp32_output, lowp


class TaskGroups:
    """The rows of a batch grouped by task, padded to the largest group ``m``.

    ``group``: ``(…, B, d) -> (…, T, m, d)`` (padding rows are zero); ``ungroup``: the inverse,
    ``(…, T, m, d) -> (…, B, d)`` in the batch's original row order. Both are reshapes when the
    batch is sorted by task with equal counts (the stratified training batch, and acting with one
    row per task), otherwise index gathers; gradients flow through either; padding rows get none.
    """

    def __init__(self, task: torch.Tensor, num_tasks: int) -> None:
        rows = task.shape[0]
        self.num_tasks, self.rows = num_tasks, rows
        counts = torch.bincount(task, minlength=num_tasks)
        if counts.numel() > num_tasks:
            raise ValueError(f"task index out of range for {num_tasks} tasks")
        ordered = (task[1:] >= task[:-1]).all() if rows > 1 else torch.ones((), dtype=torch.bool)
        m, is_sorted = torch.stack([counts.max(), ordered.long()]).tolist()  # one host sync
        self.size = int(m)
        self.dense = bool(is_sorted) and rows == num_tasks * self.size
        if not self.dense:
            order = torch.argsort(task, stable=True)
            task_sorted = task[order]
            start = torch.cumsum(counts, 0) - counts
            rank = torch.arange(rows, device=task.device) - start[task_sorted]
            slot = torch.empty_like(order)
            slot[order] = task_sorted * self.size + rank  # each row's slot in the (T*m) groups
            source = torch.full((num_tasks * self.size,), rows, device=task.device)
            source[slot] = torch.arange(rows, device=task.device)  # each slot's row; rows = pad
            self.slot, self.source = slot, source

    def group(self, x: torch.Tensor) -> torch.Tensor:
        """``(…, B, d) -> (…, T, m, d)``."""
        if self.dense:
            return x.unflatten(-2, (self.num_tasks, self.size))
        pad = torch.cat([x, x.new_zeros(*x.shape[:-2], 1, x.shape[-1])], dim=-2)
        return pad.index_select(-2, self.source).unflatten(-2, (self.num_tasks, self.size))

    def ungroup(self, y: torch.Tensor) -> torch.Tensor:
        """``(…, T, m, d) -> (…, B, d)`` in the original row order."""
        flat = y.flatten(-3, -2)
        return flat if self.dense else flat.index_select(-2, self.slot)


def grouped_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """``x (E, G, m, in)`` or ``(G, m, in)`` times ``weight (E, G, in, out)`` plus ``bias
    (E, G, 1, out)``, one ``baddbmm`` over the ``E*G`` groups: ``(E, G, m, out)``."""
    members, groups = weight.shape[:2]
    if x.dim() == 3:
        x = x.unsqueeze(0).expand(members, -1, -1, -1)
    out = torch.baddbmm(bias.flatten(0, 1), x.flatten(0, 1), weight.flatten(0, 1))
    return out.unflatten(0, (members, groups))


class GroupedLinear(nn.Module):
    """``members x groups`` independent ``Linear(in, out)`` layers, weight ``(E, G, in, out)``.

    Same initialisation as :class:`~softmod.nets.base.StackedLinear` (authors' code): hidden layers
    uniform in ±1/sqrt(out) with biases 0.1, output layers uniform in ±3e-3.
    """

    def __init__(
        self,
        members: int,
        groups: int,
        in_features: int,
        out_features: int,
        output: bool = False,
    ) -> None:
        super().__init__()
        self.members, self.groups = members, groups
        self.in_features, self.out_features, self.output = in_features, out_features, output
        self.weight = nn.Parameter(torch.empty(members, groups, in_features, out_features))
        self.bias = nn.Parameter(torch.empty(members, groups, 1, out_features))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Authors' initialisation (:func:`softmod.nets.base.authors_init_`)."""
        authors_init_(self.weight, self.bias, self.output)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Group g of every member on rows of group g: ``(E|·, G, m, in) -> (E, G, m, out)``
        (an output layer in fp32 under ``--precision bf16``, see :mod:`softmod.precision`)."""
        if self.output:
            return fp32_output(grouped_linear, x, self.weight, self.bias)
        return grouped_linear(x, lowp(self.weight), lowp(self.bias))

    def extra_repr(self) -> str:
        """Shape summary for ``print(module)``."""
        return (
            f"members={self.members}, groups={self.groups}, "
            f"in={self.in_features}, out={self.out_features}"
        )


class SingleTaskMLP(nn.Module):
    """One independent MLP per task (``cfg.hidden``); nothing is shared across tasks.

    Every layer holds weights ``(E, T, in, out)``; a row passes through its own task's MLP only, and
    all tasks are computed together by grouping the rows by task (:class:`TaskGroups`) and one
    batched product per layer. The task selects the network, so no one-hot is input. Under
    multi-task SAC each task's MLP therefore sees only its own task's gradients, as T separate SAC
    learners would (they still share the optimiser step, the batch schedule and gradient clipping,
    which is applied to the global norm of all tasks together).
    """

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
