"""Task-conditioned networks, chosen by explicit dispatch on the network config type."""

from __future__ import annotations

from torch import nn

from softmod.config import (
    CARENetConfig,
    HardRoutingNetConfig,
    MixExpertNetConfig,
    MLPNetConfig,
    MOORENetConfig,
    MultiHeadNetConfig,
    NetworkConfig,
    PaCoNetConfig,
    SingleTaskNetConfig,
    SoftModularNetConfig,
)
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
        case SoftModularNetConfig():
            from softmod.nets.soft_modules import SoftModularNet

            return SoftModularNet(cfg, in_dim, out_dim, num_tasks, members)
        case MultiHeadNetConfig():
            from softmod.nets.multihead import MultiHeadMLP

            return MultiHeadMLP(cfg, in_dim, out_dim, num_tasks, members)
        case MixExpertNetConfig():
            from softmod.nets.moe import MixExpertNet

            return MixExpertNet(cfg, in_dim, out_dim, num_tasks, members)
        case HardRoutingNetConfig():
            from softmod.nets.hard_routing import HardRoutingNet

            return HardRoutingNet(cfg, in_dim, out_dim, num_tasks, members)
        case SingleTaskNetConfig():
            from softmod.nets.single_task import SingleTaskMLP

            return SingleTaskMLP(cfg, in_dim, out_dim, num_tasks, members)
        case MOORENetConfig():
            from softmod.nets.moore import MOORENet

            return MOORENet(cfg, in_dim, out_dim, num_tasks, members)
        case PaCoNetConfig():
            from softmod.nets.paco import PaCoNet

            return PaCoNet(cfg, in_dim, out_dim, num_tasks, members)
        case CARENetConfig():
            from softmod.nets.care import CARENet

            return CARENet(cfg, in_dim, out_dim, num_tasks, members)
        case _:
            raise TypeError(f"unknown network config {type(cfg).__name__}")


def count_parameters(module: nn.Module) -> int:
    """Number of scalar parameters in a module."""
    return sum(p.numel() for p in module.parameters())
