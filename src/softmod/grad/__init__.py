"""Gradient methods for multi-task learning on the update's gradient seam (issues 19.5, 21).

``plain`` (the paper), ``pcgrad``, ``cagrad``, ``gradnorm`` and ``famo``; one config dataclass
each in ``softmod/config.py`` (:data:`softmod.config.GradConfig`), one file each here, one entry
in :data:`GRAD_METHODS`. ``docs/adding-a-gradient-method.md`` is the recipe.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from softmod.config import (
    CAGradConfig,
    FAMOConfig,
    GradConfig,
    GradNormConfig,
    PCGradConfig,
    PlainGradConfig,
)

if TYPE_CHECKING:  # torch is imported only where a method is built (the CLI stays light)
    import torch

    from softmod.grad.base import GradMethod

__all__ = [
    "GRAD_METHODS",
    "GRAD_OPTIONS",
    "build_grad_method",
    "grad_config",
    "grad_name",
    "grad_options",
]

# --grad name -> config type (the CLI's choices; the config's "type" in config.json)
GRAD_METHODS: dict[str, type] = {
    "plain": PlainGradConfig,
    "pcgrad": PCGradConfig,
    "cagrad": CAGradConfig,
    "gradnorm": GradNormConfig,
    "famo": FAMOConfig,
}


# CLI option (field of `softmod train`) -> (--grad name, config field): --cagrad-c, --famo-lr, ...
GRAD_OPTIONS: dict[str, tuple[str, str]] = {
    f"{name}_{f.name}": (name, f.name)
    for name, cls in GRAD_METHODS.items()
    for f in dataclasses.fields(cls)
}


def grad_config(name: str, options: dict[str, float | None]) -> GradConfig:
    """The config of ``--grad name`` with its options (``GRAD_OPTIONS`` keys; None: default). An
    option of another method is a ConfigError (one line)."""
    from softmod.validation import ConfigError

    if name not in GRAD_METHODS:
        raise ConfigError(f"unknown --grad {name!r}; allowed: {', '.join(GRAD_METHODS)}")
    kwargs = {}
    for option, value in options.items():
        if value is None:
            continue
        owner, field = GRAD_OPTIONS[option]
        if owner != name:
            raise ConfigError(
                f"--{option.replace('_', '-')} is an option of --grad {owner}, not of --grad "
                f"{name}; leave it out or use --grad {owner}"
            )
        kwargs[field] = value
    return GRAD_METHODS[name](**kwargs)


def grad_options(cfg: GradConfig) -> dict[str, object]:
    """The ``softmod train`` options (``grad`` and ``GRAD_OPTIONS``) that give ``cfg``."""
    name = grad_name(cfg)
    out: dict[str, object] = {"grad": name}
    for option, (owner, field) in GRAD_OPTIONS.items():
        out[option] = getattr(cfg, field) if owner == name else None
    return out


def grad_name(cfg: GradConfig) -> str:
    """The ``--grad`` name of a gradient config."""
    return next(k for k, v in GRAD_METHODS.items() if isinstance(cfg, v))


def build_grad_method(
    cfg: GradConfig,
    policy_params: list[torch.Tensor],
    q_params: list[torch.Tensor],
    num_tasks: int,
    device: torch.device,
) -> GradMethod:
    """The gradient method a config describes, for these parameters."""
    from softmod.grad.base import PlainGrad

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
