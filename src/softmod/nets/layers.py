"""Layers shared by the networks: stacked linear layers, task grouping and the authors' init.

Every network in softmod holds ``members`` independent copies of itself as stacked weights (the
policy has 1 member, the twin Q-function 2), so that both critics run in one batched product
instead of a Python loop. A network maps ``x: (B, in)`` or ``(E, B, in)`` and ``task: (B,)`` to
``(E, B, out)`` (the protocol: :mod:`softmod.nets.protocol`).

- :class:`StackedLinear`, :class:`StackedEmbedding`: ``members`` copies of a Linear, a table.
- :class:`TaskGroups` regroups a batch's rows by task, ``(…, B, d) <-> (…, T, m, d)``, so that
  per-task weights apply to all tasks in ONE batched product. The training batch is stratified and
  sorted by task, so there the grouping is a free reshape; any other batch (unsorted, unequal or
  missing tasks) is gathered into zero-padded groups of the largest task's size ``m``.
- :class:`GroupedLinear` (and :func:`grouped_linear`): ``members x groups`` independent ``Linear``
  layers, weight ``(E, G, in, out)``, applied to grouped rows ``(E, G, m, in)`` with one ``bmm``.
- :class:`StackedModuleLayer`: the ``n`` modules of one soft-modular layer, ``(E, n, in, out)``.
- :class:`ExpertLinear`: the ``k`` experts (MOORE, CARE) or parameter sets (PaCo) of a layer,
  ``(E, k, in, out)``, on a shared input or one input per expert, with an fp32 output variant;
  initialised by its owner after each method's reference code (:func:`xavier_`,
  :func:`torch_default_bias_`), not with :func:`authors_init_`.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from softmod.precision import fp32_output, lowp

OUTPUT_INIT = 3e-3  # authors' code: output layers uniform in ±3e-3 (weights and biases)
HIDDEN_BIAS = 0.1  # authors' code: hidden biases constant 0.1


def authors_init_(weight: torch.Tensor, bias: torch.Tensor, output: bool) -> None:
    """Authors' initialisation in place: hidden layers uniform ±1/sqrt(out_features) with biases
    0.1; output layers ±3e-3 for weights and biases (``out_features`` is ``weight``'s last axis)."""
    with torch.no_grad():
        if output:
            weight.uniform_(-OUTPUT_INIT, OUTPUT_INIT)
            bias.uniform_(-OUTPUT_INIT, OUTPUT_INIT)
        else:
            bound = 1.0 / math.sqrt(weight.shape[-1])
            weight.uniform_(-bound, bound)
            bias.fill_(HIDDEN_BIAS)


class StackedLinear(nn.Module):
    """``members`` independent ``Linear(in_features, out_features)`` layers, one batched product.

    Weight ``(E, in, out)``, bias ``(E, 1, out)``. Input ``(B, in)`` (shared by every member) or
    ``(E, B, in)``; output ``(E, B, out)``.

    Initialisation follows the authors' code (``torchrl/networks/init.py``): hidden layers draw
    weights uniformly in ±1/sqrt(fan) with biases 0.1, where the authors' ``fanin_init`` reads
    ``weight.size(0)`` of PyTorch's ``(out, in)`` weight, i.e. the layer's OUTPUT width; we keep
    that. Output layers draw weights and biases uniformly in ±3e-3.
    """

    def __init__(
        self, members: int, in_features: int, out_features: int, output: bool = False
    ) -> None:
        super().__init__()
        self.members, self.in_features, self.out_features = members, in_features, out_features
        self.weight = nn.Parameter(torch.empty(members, in_features, out_features))
        self.bias = nn.Parameter(torch.empty(members, 1, out_features))
        self.output = output
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Authors' initialisation (:func:`authors_init_`)."""
        authors_init_(self.weight, self.bias, self.output)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply every member: ``(B, in)`` or ``(E, B, in)`` -> ``(E, B, out)``.

        With ``--precision bf16`` a hidden layer multiplies in bf16 and an output layer in fp32
        (:func:`softmod.precision.fp32_output`)."""
        if self.output:
            return fp32_output(self._product, x, self.weight, self.bias)
        return self._product(x, lowp(self.weight), lowp(self.bias))

    def _product(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            if self.members == 1:
                return torch.addmm(bias[0], x, weight[0]).unsqueeze(0)
            return torch.matmul(x, weight) + bias
        return torch.baddbmm(bias, x, weight)

    def extra_repr(self) -> str:
        """Shape summary for ``print(module)``."""
        return f"members={self.members}, in={self.in_features}, out={self.out_features}"


class StackedEmbedding(nn.Module):
    """Per-member lookup table ``(E, num, dim)``: row ``task`` of each member, ``(E, B, dim)``.

    Used for the task part of a first layer: ``Linear([s, onehot(t)]) = W_s s + W_t[t] + b``, which
    equals concatenating the one-hot without building it.
    """

    def __init__(self, members: int, num: int, dim: int, bound: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(members, num, dim).uniform_(-bound, bound))

    def forward(self, task: torch.Tensor) -> torch.Tensor:
        """Rows of the table for each task index: ``(B,)`` -> ``(E, B, dim)``."""
        return lowp(self.weight)[:, task]  # bf16 runs: the bf16 copy, added to a bf16 product


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

    Same initialisation as :class:`StackedLinear` (authors' code): hidden layers
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
        """Authors' initialisation (:func:`authors_init_`)."""
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


class StackedModuleLayer(nn.Module):
    """``n`` modules of one layer for ``members`` copies: ``n x E`` independent ``Linear(in, out)``.

    Weight ``(E, n, in, out)``, bias ``(E, n, 1, out)``, initialised exactly like a hidden
    :class:`StackedLinear` (uniform ±1/sqrt(out), biases 0.1). Input ``(E, B, in)`` (the same for
    every module) or ``(E, n, B, in)`` (one input per module); output ``(E, n, B, out)``.
    """

    def __init__(self, members: int, modules: int, in_features: int, out_features: int) -> None:
        super().__init__()
        self.members, self.num_modules = members, modules
        self.in_features, self.out_features = in_features, out_features
        self.weight = nn.Parameter(torch.empty(members, modules, in_features, out_features))
        self.bias = nn.Parameter(torch.empty(members, modules, 1, out_features))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Authors' hidden-layer initialisation, as :meth:`StackedLinear.reset_parameters`."""
        authors_init_(self.weight, self.bias, output=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Every module of every member in one batched product -> ``(E, n, B, out)``."""
        e, n, i, o = self.members, self.num_modules, self.in_features, self.out_features
        weight = lowp(self.weight)  # bf16 runs: the bf16 copy of this update (softmod.precision)
        if x.dim() == 3:  # shared input: one product with the modules side by side
            w = weight.permute(0, 2, 1, 3).reshape(e, i, n * o)
            y = torch.bmm(x, w).view(e, x.shape[1], n, o).transpose(1, 2)
            return y + lowp(self.bias)
        b = x.shape[2]
        y = torch.baddbmm(
            lowp(self.bias).view(e * n, 1, o), x.reshape(e * n, b, i), weight.view(e * n, i, o)
        )
        return y.view(e, n, b, o)

    def extra_repr(self) -> str:
        """Shape summary for ``print(module)``."""
        return (
            f"members={self.members}, modules={self.num_modules}, "
            f"in={self.in_features}, out={self.out_features}"
        )


def xavier_(weight: torch.Tensor, gain: float = 1.0) -> None:
    """``xavier_uniform_`` on every ``(in, out)`` matrix of a stacked weight ``(..., in, out)``:
    uniform in ±gain·sqrt(6 / (in + out))."""
    fan_in, fan_out = weight.shape[-2], weight.shape[-1]
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    with torch.no_grad():
        weight.uniform_(-bound, bound)


def torch_default_bias_(bias: torch.Tensor, fan_in: int) -> None:
    """``nn.Linear``'s default bias initialisation: uniform in ±1/sqrt(fan_in)."""
    bound = 1.0 / math.sqrt(fan_in)
    with torch.no_grad():
        bias.uniform_(-bound, bound)


def expert_product(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """``x`` through every expert: ``x`` ``(B, in)`` or ``(E, B, in)`` (shared by the experts) or
    ``(E, k, B, in)`` (one input per expert); ``weight (E, k, in, out)``, ``bias (E, k, 1, out)``
    -> ``(E, k, B, out)``."""
    if x.dim() == 3:
        x = x.unsqueeze(1)  # (E, 1, B, in): every expert of a member reads it
    return torch.matmul(x, weight) + bias


class ExpertLinear(nn.Module):
    """``members x experts`` independent ``Linear(in, out)``; weight ``(E, k, in, out)``, bias
    ``(E, k, 1, out)`` (zeros; the weight is left for the owner to initialise). Input as
    :func:`expert_product`; output ``(E, k, B, out)``.

    ``output=True`` keeps the product in fp32 under ``--precision bf16`` (an output layer, see
    :mod:`softmod.precision`); hidden layers multiply with the bf16 weight copies.
    """

    def __init__(
        self, members: int, experts: int, in_features: int, out_features: int, output: bool = False
    ) -> None:
        super().__init__()
        self.members, self.experts = members, experts
        self.in_features, self.out_features, self.output = in_features, out_features, output
        self.weight = nn.Parameter(torch.empty(members, experts, in_features, out_features))
        self.bias = nn.Parameter(torch.zeros(members, experts, 1, out_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Every expert of every member: ``-> (E, k, B, out)``."""
        if self.output:
            return fp32_output(expert_product, x, self.weight, self.bias)
        return expert_product(x, lowp(self.weight), lowp(self.bias))

    def extra_repr(self) -> str:
        """Shape summary for ``print(module)``."""
        return (
            f"members={self.members}, experts={self.experts}, "
            f"in={self.in_features}, out={self.out_features}"
        )
