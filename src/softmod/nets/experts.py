"""Layers shared by MOORE, PaCo and CARE: ``members x experts`` stacked linear layers.

Every network holds ``members`` independent copies (policy 1, twin Q 2, see
:mod:`softmod.nets.base`); these networks also hold ``k`` experts (MOORE, CARE) or parameter sets
(PaCo) per layer. :class:`ExpertLinear` keeps them as one weight ``(E, k, in, out)`` and applies
every expert of every member in one batched product, with no Python loop over either.

Initialisers follow the reference code of each method (not the soft-modularization authors'
``authors_init_``): :func:`xavier_` is ``torch.nn.init.xavier_uniform_`` applied to each
``(in, out)`` matrix of a stack.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from softmod.precision import fp32_output, lowp


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
    ``(E, k, 1, out)``. Input as :func:`expert_product`; output ``(E, k, B, out)``.

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


class MemberLinear(nn.Module):
    """``members`` independent ``Linear(in, out)`` (no expert axis), weight ``(E, in, out)``,
    bias ``(E, 1, out)``: ``(B, in)`` or ``(E, B, in)`` -> ``(E, B, out)``. Xavier-uniform
    weights and zero biases unless re-initialised by the owner."""

    def __init__(
        self, members: int, in_features: int, out_features: int, output: bool = False
    ) -> None:
        super().__init__()
        self.members, self.in_features, self.out_features = members, in_features, out_features
        self.output = output
        self.weight = nn.Parameter(torch.empty(members, in_features, out_features))
        self.bias = nn.Parameter(torch.zeros(members, 1, out_features))
        xavier_(self.weight)

    @staticmethod
    def _product(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        return torch.matmul(x, weight) + bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Every member: ``-> (E, B, out)``."""
        if self.output:
            return fp32_output(self._product, x, self.weight, self.bias)
        return self._product(x, lowp(self.weight), lowp(self.bias))

    def extra_repr(self) -> str:
        """Shape summary for ``print(module)``."""
        return f"members={self.members}, in={self.in_features}, out={self.out_features}"
