"""GradNorm: gradient normalisation for adaptive loss balancing (Chen et al., ICML 2018).

Followed: the paper's Algorithm 1; facebookresearch/mtrl ``mtrl/agent/gradnorm.py`` (the MTRL
reference: which losses, α = 1.0 from ``config/agent/components/metaworld_gradnorm.yaml``) and
rainx0r/metaworld-algorithms ``metaworld_algorithms/optim/gradnorm.py`` (norms of the full
per-task gradients, initial losses taken at the first update, weights renormalised to sum T).

Which losses, which parameters: the critic loss (both critics as one vector) and the policy loss,
each with its own task weights (mtrl keys them by component); the temperatures stay plain (mtrl:
``log_alpha`` has no shared layer, so its loss is a plain backward). The gradient norms are taken
over the network's SHARED parameters (``TaskNetwork.shared_parameters``: the paper's ``W`` are
shared weights; a task-specific slice, e.g. a head, only measures its own task); the weighted
gradient is applied to all parameters.

The rule, per loss, at update t with task losses ``L_i(t)``, task gradients ``g_i`` and weights
``w_i(t)`` (``w(0) = 1``): the network's gradient is ``(1/T) sum_i w_i(t) g_i``;
``G_i = w_i ||g_i||``, ``Ḡ = mean_i G_i``, ``r_i = L̃_i / mean_j L̃_j`` with
``L̃_i = L_i(t) / L_i(0)``; ``L_grad = sum_i |G_i - Ḡ r_i^α|`` with the targets ``Ḡ r_i^α`` held
constant; ``w`` takes one Adam step on ``∇_w L_grad`` after the network's step, then
``w <- T w / sum_j w_j``.

Departures:
1. The network's gradient is the MEAN ``(1/T) sum_i w_i g_i`` (the paper's ``sum_i w_i L_i`` with
   our per-task losses divided by T), so ``w = 1`` is the plain update; metaworld-algorithms sums.
2. Norms over all shared parameters, not the paper's "last shared layer" (mtrl): the networks
   here have no common last shared layer; metaworld-algorithms takes all parameters.
3. ``Ḡ`` is held constant with the targets, as the paper; metaworld-algorithms lets gradient flow
   through the mean.
4. Weights' optimiser: Adam with lr 0.025 (``--gradnorm-lr``), ours: mtrl uses lr 1e-6 (and its
   renormalisation does not write back), which leaves the weights at 1; metaworld-algorithms has
   no default.
"""

from __future__ import annotations

from typing import Any

import torch

from softmod.config import GradNormConfig
from softmod.grad.base import PerTaskGradMethod, UpdateTerms


def gradnorm_weight_grad(
    weights: torch.Tensor,
    grad_norms: torch.Tensor,
    task_losses: torch.Tensor,
    initial_losses: torch.Tensor,
    alpha: float,
) -> torch.Tensor:
    """``∇_w L_grad (T,)`` at ``weights``, from the unweighted task gradient norms ``||g_i||``."""
    with torch.enable_grad():
        w = weights.detach().requires_grad_(True)
        norms = w * grad_norms
        ratio = task_losses / initial_losses
        rate = ratio / ratio.mean()
        target = (norms.mean() * rate.pow(alpha)).detach()
        (grad,) = torch.autograd.grad((norms - target).abs().sum(), w)
    return grad


class GradNorm(PerTaskGradMethod):
    """GradNorm on the critic and the policy loss (see the module doc); logs the task weights."""

    name = "gradnorm"
    LOSSES = ("q", "policy")

    def __init__(self, cfg: GradNormConfig, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.alpha = cfg.alpha
        t, dev = self.num_tasks, self.device
        self.weights = {k: torch.ones(t, device=dev, requires_grad=True) for k in self.LOSSES}
        self.initial = {k: torch.full((t,), float("inf"), device=dev) for k in self.LOSSES}
        self.opt = {k: torch.optim.Adam([self.weights[k]], lr=cfg.lr) for k in self.LOSSES}
        self._pending: dict[str, torch.Tensor] = {}

    def combine(
        self, loss: str, grads: torch.Tensor, task_losses: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        w = self.weights[loss].detach()
        initial = torch.where(torch.isinf(self.initial[loss]), task_losses, self.initial[loss])
        self.initial[loss] = initial  # L_i(0): the first update's losses
        shared = self.shared.get(loss)  # None: no shared parameter (single-task): all of them
        norms = (grads if shared is None else grads[:, shared]).norm(dim=1)
        self._pending[loss] = gradnorm_weight_grad(w, norms, task_losses, initial, self.alpha)
        return (w @ grads) / self.num_tasks, self._per_task(f"grad/{loss}_weight", w)

    def after_step(self, terms: UpdateTerms) -> None:
        for loss, grad in self._pending.items():
            self.opt[loss].zero_grad(set_to_none=True)
            self.weights[loss].grad = grad
            self.opt[loss].step()
            with torch.no_grad():
                w = self.weights[loss]
                w.mul_(self.num_tasks / w.sum())
        self._pending = {}

    def task_metrics(self) -> list[str]:
        return ["grad/q_weight", "grad/policy_weight"]

    def state_dict(self) -> dict:
        return {
            k: {
                "weights": self.weights[k].detach().clone(),
                "initial": self.initial[k].clone(),
                "opt": self.opt[k].state_dict(),
            }
            for k in self.LOSSES
        }

    def load_state_dict(self, state: dict) -> None:
        for k in self.LOSSES:
            with torch.no_grad():
                self.weights[k].copy_(state[k]["weights"])
            self.initial[k] = state[k]["initial"].to(self.device).clone()
            self.opt[k].load_state_dict(state[k]["opt"])
