"""CAGrad: conflict-averse gradient descent (Liu et al., NeurIPS 2021).

Followed: Cranial-XIX/CAGrad ``mtrl/mtrl_files/cagrad.py`` (its patch of facebookresearch/mtrl for
Meta-World, method ``cagrad``, the default of its ``run.sh``: c = 0.9 on MT10, 0.5 on MT50).

Which losses, which parameters: the critic loss (both critics' parameters as one vector) and the
policy loss (all policy parameters), each on its own, over all parameters, as the patch (which
subclasses mtrl's gradient-manipulation agent and replaces the gradient of every component).

The rule (paper eq. and the patch): with ``g0`` the mean task gradient and ``G`` the task
gradients, the dual weights ``w`` on the simplex minimise ``w·G g0 + c ||g0|| ||G^T w||``; the
update is ``(g0 + λ g_w) / (1 + c²)`` with ``g_w = G^T w`` and ``λ = c ||g0|| / ||g_w||``. The
dual is solved as the patch does: ``w = softmax(ω)``, 20 steps of SGD (lr 25, 50 for 50 tasks,
momentum 0.5) on ``ω`` from 0, keeping the best of the 21 objectives seen, on the Gram matrix
normalised by the mean task-gradient norm squared.

Departures:
1. The temperatures stay plain: the patch applies CAGrad to the temperature loss too, whose
   per-task gradients touch disjoint entries of log α (no conflict to avert); CAGrad would only
   rescale them.
2. The dual is solved on the device, the best iterate kept with ``torch.where`` (the patch moves
   the Gram matrix to the CPU and compares ``obj.item()``): the same iterates, no host sync.
"""

from __future__ import annotations

from typing import Any

import torch

from softmod.config import CAGradConfig
from softmod.grad.base import PerTaskGradMethod

INNER_STEPS = 20  # the patch's SGD steps on the dual (21 objectives evaluated)
MOMENTUM = 0.5


def cagrad_direction(grads: torch.Tensor, c: float) -> tuple[torch.Tensor, torch.Tensor]:
    """CAGrad's update ``(P,)`` of task gradients ``(T, P)`` and its dual weights ``w (T,)``."""
    t = grads.shape[0]
    gram = grads @ grads.T
    scale = (torch.diagonal(gram) + 1e-4).sqrt().mean()
    gram = (gram / scale.pow(2)).detach()
    gram_g0 = gram.mean(1, keepdim=True)  # G g0, (T, 1)
    g0_sq = gram_g0.mean(0, keepdim=True)  # ||g0||²
    radius = (g0_sq + 1e-4).sqrt() * c  # c ||g0||
    lr = 50.0 if t == 50 else 25.0

    def objective(omega: torch.Tensor) -> torch.Tensor:
        w = torch.softmax(omega, 0)
        return w.T @ gram_g0 + radius * (w.T @ gram @ w + 1e-4).sqrt()

    omega = grads.new_zeros(t, 1)
    best_omega, best = omega, torch.full_like(g0_sq, float("inf"))
    momentum = torch.zeros_like(omega)
    with torch.enable_grad():
        for i in range(INNER_STEPS + 1):
            omega = omega.detach().requires_grad_(True)
            obj = objective(omega)
            better = obj < best
            best_omega = torch.where(better, omega.detach(), best_omega)
            best = torch.where(better, obj.detach(), best)
            if i < INNER_STEPS:
                (grad,) = torch.autograd.grad(obj.sum(), omega)
                momentum = MOMENTUM * momentum + grad  # torch SGD: buf = m buf + g (buf_0 = g)
                omega = omega.detach() - lr * momentum
    w = torch.softmax(best_omega, 0)
    gw_norm = (w.T @ gram @ w + 1e-4).sqrt()
    lam = radius.view(-1) / (gw_norm + 1e-4)
    coef = (1.0 / t + w * lam).view(-1, 1)
    return (coef * grads).sum(0) / (1.0 + c**2), w.view(-1)


class CAGrad(PerTaskGradMethod):
    """CAGrad on the critic and the policy loss (see the module doc); logs the dual weights."""

    name = "cagrad"

    def __init__(self, cfg: CAGradConfig, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.c = cfg.c

    def combine(
        self, loss: str, grads: torch.Tensor, task_losses: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        direction, w = cagrad_direction(grads, self.c)
        return direction, self._per_task(f"grad/{loss}_weight", w)

    def task_metrics(self) -> list[str]:
        return ["grad/q_weight", "grad/policy_weight"]
