"""Mix-Expert network: K MT-SAC experts mixed by a softmax gate on [state, one-hot task].

Paper §5.2 (iv): "four experts with the same architecture as MT-SAC, and a learned gating network
for expert combination". The paper gives no gate architecture; here it is an MLP of
``cfg.gate_hidden`` (default 2 x 256) on the same input as the experts, ending in an output layer
initialised in ±3e-3, so the gate starts near uniform (as the soft-modular routing does).
"""

from __future__ import annotations

import math
from itertools import pairwise

import torch
from torch import nn

from softmod.config import MixExpertNetConfig, MLPNetConfig
from softmod.nets.layers import GroupedLinear
from softmod.nets.mlp import TaskConditionedMLP
from softmod.nets.protocol import TaskNetwork
from softmod.precision import fp32_einsum, lowp


class MixExpertNet(TaskNetwork):
    """``y = sum_k softmax(gate(s, z))_k * expert_k(s, z)``, with ``members`` stacked copies.

    Each expert is the MT-SAC MLP (:class:`~softmod.nets.mlp.TaskConditionedMLP`: ``cfg.hidden``,
    first layer ``x W_x + W_t[task] + b``). The ``E x K`` experts are stacked on an expert axis,
    weights ``(E, K, in, out)``, so all experts of all copies run in one batched product per layer
    (and every parameter keeps the member axis first, as the per-critic gradient clip expects). The
    gate is a TaskConditionedMLP with ``E`` members and K outputs. Task-specific parameters: the
    experts' and the gate's one-hot rows.
    """

    graph_safe = True
    task_specific = ("task_rows", "gate.task_rows")

    def __init__(
        self,
        cfg: MixExpertNetConfig,
        in_dim: int,
        out_dim: int,
        num_tasks: int,
        members: int = 1,
    ) -> None:
        super().__init__()
        if cfg.experts < 1:
            raise ValueError(f"Mix-Expert needs at least one expert, got {cfg.experts}")
        if len(cfg.hidden) < 1:
            raise ValueError("an expert MLP needs at least one hidden layer")
        e, k, hidden = members, cfg.experts, cfg.hidden
        self.members, self.num_experts = e, k
        self.first = GroupedLinear(e, k, in_dim, hidden[0])
        bound = 1 / math.sqrt(hidden[0])  # as TaskConditionedMLP's task rows
        self.task_rows = nn.Parameter(
            torch.empty(e, k, num_tasks, hidden[0]).uniform_(-bound, bound)
        )
        self.hidden = nn.ModuleList(GroupedLinear(e, k, a, b) for a, b in pairwise(hidden))
        self.out = GroupedLinear(e, k, hidden[-1], out_dim, output=True)
        self.gate = TaskConditionedMLP(MLPNetConfig(cfg.gate_hidden), in_dim, k, num_tasks, e)

    def gates(self, x: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        """Softmax weights over the experts for each row: ``(E, B, K)``, summing to 1."""
        return torch.softmax(self.gate(x, task), dim=-1)

    def experts(self, x: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        """Every expert's output for every row: ``(E, K, B, out)``."""
        xe = x.unsqueeze(-3) if x.dim() == 3 else x  # (E, 1, B, in) or (B, in): all experts read it
        h = torch.matmul(xe, lowp(self.first.weight)) + lowp(self.first.bias)
        h = h + lowp(self.task_rows)[:, :, task]
        h = torch.relu(h)
        for layer in self.hidden:
            h = torch.relu(layer(h))
        return self.out(h)

    def forward(  # type: ignore[override]  # the protocol's call, plus an optional extra output
        self, x: torch.Tensor, task: torch.Tensor, return_gates: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """``x: (B, in)`` or ``(E, B, in)``, ``task: (B,)`` -> ``(E, B, out)``; with
        ``return_gates`` also the gate weights ``(E, B, K)``."""
        gates = self.gates(x, task)  # (E, B, K)
        # bf16 runs: the experts' outputs are fp32 (output layers) and so is their mix (mix())
        y = fp32_einsum("ebk,ekbo->ebo", gates, self.experts(x, task))
        return (y, gates) if return_gates else y
