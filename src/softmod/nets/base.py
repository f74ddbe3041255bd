"""Building blocks shared by every network: stacked linear layers and the authors' initialisation.

Every network in softmod holds ``members`` independent copies of itself as stacked weights (the
policy has 1 member, the twin Q-function 2), so that both critics run in one batched product
instead of a Python loop. A network maps ``x: (B, in)`` or ``(E, B, in)`` and ``task: (B,)`` to
``(E, B, out)``.
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
