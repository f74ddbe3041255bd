"""FAMO: fast adaptive multitask optimisation (Liu et al., NeurIPS 2023).

Followed: Cranial-XIX/FAMO ``famo.py`` (the method) and ``mtrl_files/famo.py`` with
``mtrl_files/run.sh`` (its patch of facebookresearch/mtrl for Meta-World: which loss, when the
weights are updated, γ = 0.01 and lr = 0.025 for MT10).

Which losses, which parameters: the critic loss only, over all critic parameters, as the mtrl
patch (its policy and temperature losses are the plain means). FAMO needs no per-task gradients:
one backward, plus one forward of the critics without a graph after their step, O(1) extra.

The rule: task weights ``z = softmax(ξ)``, ``ξ(0) = 0``. The critics' gradient is that of
``sum_i z_i log(L_i + ε) / c`` with ``c = sum_i z_i / (L_i + ε)`` held constant, i.e. the convex
combination ``sum_i (z_i / (c (L_i + ε))) ∇L_i``. After the critics' step the same batch's task
losses ``L_i'`` give ``δ_i = log(L_i + ε) - log(L_i' + ε)``, and ``ξ`` takes one Adam step (weight
decay γ) on ``J_softmax(ξ)^T δ``. ε = 1e-8; the minimum losses of ``famo.py`` are 0.

Departures:
1. The mtrl patch MULTIPLIES the weighted log-loss by ``c`` (``real_backprop_loss``); ``famo.py``
   and the paper divide by it, which we follow (the weights of the task gradients then sum to 1,
   as plain's 1/T do).
2. ``z`` is detached in the critics' loss (``famo.py`` lets a gradient reach ξ there, which its
   weight step then overwrites).
"""

from __future__ import annotations

from typing import Any

import torch

from softmod.config import FAMOConfig
from softmod.grad.base import GradMethod, UpdateTerms

EPS = 1e-8


def famo_logit_grad(
    logits: torch.Tensor, before: torch.Tensor, after: torch.Tensor
) -> torch.Tensor:
    """``J_softmax(ξ)^T δ`` with ``δ = log(before + ε) - log(after + ε)``."""
    delta = (before + EPS).log() - (after + EPS).log()
    with torch.enable_grad():
        xi = logits.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(torch.softmax(xi, -1), xi, grad_outputs=delta.detach())
    return grad


class FAMO(GradMethod):
    """FAMO on the critic loss (see the module doc); logs the task weights z."""

    name = "famo"

    def __init__(self, cfg: FAMOConfig, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.logits = torch.zeros(self.num_tasks, device=self.device, requires_grad=True)
        self.opt = torch.optim.Adam([self.logits], lr=cfg.lr, weight_decay=cfg.gamma)
        self._before: torch.Tensor | None = None

    def backward(self, terms: UpdateTerms) -> dict[str, torch.Tensor]:
        task_losses = terms.critic_task_losses()
        z = torch.softmax(self.logits.detach(), -1)
        d = task_losses + EPS
        c = (z / d).sum().detach()
        total = (d.log() * z / c).sum() + terms.loss_pi
        if terms.extra is not None:
            total = total + terms.extra
        total.backward()
        self._before = task_losses.detach()
        return self._per_task("grad/q_weight", z)

    def after_step(self, terms: UpdateTerms) -> None:
        assert self._before is not None
        grad = famo_logit_grad(self.logits, self._before, terms.critic_now())
        self.opt.zero_grad(set_to_none=True)
        self.logits.grad = grad
        self.opt.step()
        self._before = None

    def task_metrics(self) -> list[str]:
        return ["grad/q_weight"]

    def state_dict(self) -> dict:
        return {"logits": self.logits.detach().clone(), "opt": self.opt.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        with torch.no_grad():
            self.logits.copy_(state["logits"])
        self.opt.load_state_dict(state["opt"])
