"""The SAC policy (tanh-squashed Gaussian) and the twin Q-function, around any task network."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import nn

from softmod.nets.protocol import TaskNetwork
from softmod.precision import autocast

if TYPE_CHECKING:
    from softmod.nets.soft_modules import RoutingProbs

LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0  # DESIGN §2/§4: log-std clamped to [-20, 2]
_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


class TanhGaussianPolicy(nn.Module):
    """π(a | s, t): a task network outputs ``2|A|`` (mean, log-std); actions are ``tanh`` of a
    reparameterised Normal sample, with the log-prob correction ``-log(1 - a² + 1e-6)``."""

    def __init__(self, net: TaskNetwork, act_dim: int, precision: str = "fp32") -> None:
        super().__init__()
        self.net = net
        self.act_dim = act_dim
        self.precision = precision  # of acting and evaluation (softmod/precision.py)

    def forward(self, obs: torch.Tensor, task: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and clamped log-std, each ``(B, |A|)``."""
        out = self.net(obs, task)[0]
        mean, log_std = out.split(self.act_dim, dim=-1)
        return mean, log_std.clamp(LOG_STD_MIN, LOG_STD_MAX)

    def sample(
        self, obs: torch.Tensor, task: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """A reparameterised action in (-1, 1) and its log-probability ``(B,)``."""
        mean, log_std = self(obs, task)
        std = log_std.exp()
        noise = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        u = mean + std * noise
        action = torch.tanh(u)
        log_prob = (-0.5 * noise.pow(2) - log_std - _HALF_LOG_2PI).sum(-1)
        log_prob = log_prob - torch.log(1 - action.pow(2) + 1e-6).sum(-1)
        return action, log_prob

    @torch.inference_mode()
    def act(self, obs: torch.Tensor, task: torch.Tensor, deterministic: bool) -> torch.Tensor:
        """Action for the environments: ``tanh(mean)`` when deterministic, else a sample (in the
        policy's precision; the mean and the action are fp32 either way)."""
        with autocast(self.precision, obs.device):
            if deterministic:
                return torch.tanh(self(obs, task)[0])
            return self.sample(obs, task)[0]

    @torch.no_grad()
    def routing(self, obs: torch.Tensor, task: torch.Tensor) -> RoutingProbs:
        """The policy network's routing probabilities for a batch (networks with
        ``has_routing``, the soft-modular ones; a TypeError otherwise)."""
        return self.net.routing(obs, task)


class TwinQ(nn.Module):
    """Q1 and Q2 as ONE network with 2 stacked members: ``(obs, act, task) -> (2, B)``."""

    def __init__(self, net: TaskNetwork) -> None:
        super().__init__()
        self.net = net

    def forward(self, obs: torch.Tensor, act: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        """Both Q-values for each row: ``(2, B)``."""
        return self.net(torch.cat([obs, act], dim=-1), task).squeeze(-1)
