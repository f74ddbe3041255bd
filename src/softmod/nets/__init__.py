"""Task-conditioned networks, chosen by explicit dispatch on the network config type.

Every network implements :class:`~softmod.nets.protocol.TaskNetwork`; :func:`build_network` is the
one place that maps a config type to its network class, and :func:`build_actor_critic` the one
place that builds a run's policy and twin Q-function (the agent, ``softmod params`` and the bench
all call it). Adding a network: docs/adding-a-network.md.
"""

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
from softmod.nets.protocol import TaskNetwork

__all__ = [
    "TanhGaussianPolicy",
    "TaskNetwork",
    "TwinQ",
    "build_actor_critic",
    "build_network",
    "count_parameters",
]


def build_network(
    cfg: NetworkConfig, in_dim: int, out_dim: int, num_tasks: int, members: int = 1
) -> TaskNetwork:
    """Build the network a config describes: ``(x, task) -> (members, B, out_dim)``."""
    match cfg:
        case MLPNetConfig():
            from softmod.nets.mlp import TaskConditionedMLP

            return TaskConditionedMLP(cfg, in_dim, out_dim, num_tasks, members)
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


def build_actor_critic(
    policy_net: NetworkConfig,
    q_net: NetworkConfig,
    obs_dim: int,
    act_dim: int,
    num_tasks: int,
    precision: str = "fp32",
) -> tuple[TanhGaussianPolicy, TwinQ]:
    """The SAC policy (1 member, ``obs -> 2|A|``) and twin Q-function (2 members,
    ``[obs, act] -> 1``) of a run, built in this order (the order the RNG sees)."""
    policy = TanhGaussianPolicy(
        build_network(policy_net, obs_dim, 2 * act_dim, num_tasks, members=1), act_dim, precision
    )
    q = TwinQ(build_network(q_net, obs_dim + act_dim, 1, num_tasks, members=2))
    return policy, q


def count_parameters(module: nn.Module) -> int:
    """Number of scalar parameters in a module."""
    return sum(p.numel() for p in module.parameters())
