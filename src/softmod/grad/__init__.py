"""Gradient methods for multi-task learning on the update's gradient seam (issues 19.5, 21).

``plain`` (the paper), ``pcgrad``, ``cagrad``, ``gradnorm`` and ``famo``; one config dataclass
each in ``softmod/config.py`` (:data:`softmod.config.GradConfig`), one file each here, one entry
in :data:`GRAD_METHODS`. ``docs/adding-a-gradient-method.md`` is the recipe.
"""

from __future__ import annotations

import torch
from torch import nn

from softmod.config import (
    CAGradConfig,
    FAMOConfig,
    GradConfig,
    GradNormConfig,
    PCGradConfig,
    PlainGradConfig,
)
from softmod.grad.base import GradMethod, PlainGrad, UpdateTerms

__all__ = ["GRAD_METHODS", "GradMethod", "UpdateTerms", "build_grad_method", "grad_name"]

# --grad name -> config type (the CLI's choices; the config's "type" in config.json)
GRAD_METHODS: dict[str, type] = {
    "plain": PlainGradConfig,
    "pcgrad": PCGradConfig,
    "cagrad": CAGradConfig,
    "gradnorm": GradNormConfig,
    "famo": FAMOConfig,
}


def grad_name(cfg: GradConfig) -> str:
    """The ``--grad`` name of a gradient config."""
    return next(k for k, v in GRAD_METHODS.items() if isinstance(cfg, v))


def build_grad_method(
    cfg: GradConfig,
    policy_params: list[nn.Parameter],
    q_params: list[nn.Parameter],
    num_tasks: int,
    device: torch.device,
) -> GradMethod:
    """The gradient method a config describes, for these parameters."""
    args = (policy_params, q_params, num_tasks, device)
    match cfg:
        case PlainGradConfig():
            return PlainGrad(*args)
        case PCGradConfig():
            from softmod.grad.pcgrad import PCGrad

            return PCGrad(*args)
        case CAGradConfig():
            from softmod.grad.cagrad import CAGrad

            return CAGrad(cfg, *args)
        case GradNormConfig():
            from softmod.grad.gradnorm import GradNorm

            return GradNorm(cfg, *args)
        case FAMOConfig():
            from softmod.grad.famo import FAMO

            return FAMO(cfg, *args)
        case _:
            raise TypeError(f"unknown gradient config {type(cfg).__name__}")
