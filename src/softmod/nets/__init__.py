"""Task-conditioned networks, chosen by explicit dispatch on the network config type."""

from __future__ import annotations

from torch import nn

from softmod.config import MLPNetConfig, NetworkConfig
from softmod.nets.actor_critic import TanhGaussianPolicy, TwinQ
from softmod.nets.mlp import TaskConditionedMLP

__all__ = ["TanhGaussianPolicy", "TwinQ", "build_network", "count_parameters"]


def build_network(
    cfg: NetworkConfig, in_dim: int, out_dim: int, num_tasks: int, members: int = 1
) -> nn.Module:
    """Build the network a config describes: ``(x, task) -> (members, B, out_dim)``."""
    match cfg:
        case MLPNetConfig(hidden=hidden):
            return TaskConditionedMLP(in_dim, out_dim, num_tasks, hidden, members)
        case _:
            raise TypeError(f"unknown network config {type(cfg).__name__}")


def count_parameters(module: nn.Module) -> int:
    """Number of scalar parameters in a module."""
    return sum(p.numel() for p in module.parameters())
