"""Multi-task SAC: twin Q, target networks, per-task temperatures, balance weights (DESIGN §4).

The algorithm does not know which network it trains: the policy and the Q-function are built from
their network configs by :func:`softmod.nets.build_actor_critic`, and talk to the agent only
through the network protocol (:class:`softmod.nets.protocol.TaskNetwork`).

The gradient seam (issues 19.5, 21): the update builds its losses as an
:class:`~softmod.grad.base.UpdateTerms` and the run's gradient method (``cfg.grad``,
``softmod/grad/``) fills the gradients; ``plain`` is one backward of the summed losses, as the
paper.

``cfg.precision`` (issue 17): ``fp32`` as the paper; ``bf16`` runs the forward passes of the update
in bf16 mixed precision, a departure from the paper, with Q-values, TD target and losses in fp32
(``softmod/precision.py`` lists what runs in which precision).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from softmod.buffer import Batch
from softmod.config import RunConfig
from softmod.grad import build_grad_method
from softmod.grad.base import UpdateTerms, task_losses_of_rows
from softmod.nets import build_actor_critic, count_parameters
from softmod.precision import autocast
from softmod.sac import losses


def clip_grad_norm_members(
    params: list[torch.Tensor], max_norm: float, members: int
) -> torch.Tensor:
    """Clip the gradient of each stacked member to global norm ``max_norm`` separately.

    Every parameter has the member axis first, so Q1's and Q2's norms are computed and applied
    without a loop over critics. Returns the per-member norms before clipping, ``(members,)``.
    """
    grads = [p.grad for p in params if p.grad is not None]
    sq = torch.stack([g.reshape(members, -1).pow(2).sum(1) for g in grads]).sum(0)
    norms = sq.sqrt()
    scale = (max_norm / (norms + 1e-6)).clamp(max=1.0)  # as torch.nn.utils.clip_grad_norm_
    for g in grads:
        g.mul_(scale.view(-1, *([1] * (g.dim() - 1))))
    return norms


def make_adam(params: list[nn.Parameter], lr: float) -> torch.optim.Adam:
    """Adam with the fused kernel where the device supports it (CPU and CUDA in PyTorch >= 2.4),
    else the multi-tensor one: the same update rule, one kernel per tensor instead of ~10
    elementwise passes (measured on CPU: soft-shallow's 2.1M parameters, 17.5 -> 4.6 ms/step)."""
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.Adam(params, lr=lr, foreach=True)


class MultiTaskSAC(nn.Module):
    """Policy, twin Q, target twin Q and one log-temperature per task, with their optimisers."""

    def __init__(
        self, cfg: RunConfig, obs_dim: int, act_dim: int, num_tasks: int, device: torch.device
    ) -> None:
        super().__init__()
        self.cfg = cfg.sac
        self.num_tasks, self.obs_dim, self.act_dim = num_tasks, obs_dim, act_dim
        self.target_entropy = (
            float(-act_dim) if cfg.sac.target_entropy is None else cfg.sac.target_entropy
        )
        self.precision = cfg.precision  # fp32 | bf16 (softmod/precision.py)
        self.policy, self.q = build_actor_critic(
            cfg.policy_net, cfg.q_net, obs_dim, act_dim, num_tasks, cfg.precision
        )
        self.q_target = copy.deepcopy(self.q).requires_grad_(False)
        self.log_alpha = nn.Parameter(torch.full((num_tasks,), cfg.sac.init_log_alpha))
        self.to(device)
        s = cfg.sac
        self.policy_opt = make_adam(list(self.policy.parameters()), s.lr_policy)
        self.q_opt = make_adam(list(self.q.parameters()), s.lr_q)  # Adam is per element:
        self.alpha_opt = make_adam([self.log_alpha], s.lr_alpha)  # one for Q1+Q2 is exact
        self._nets = (self.policy.net, self.q.net)  # TaskNetwork: before_update, extra_loss
        # networks with a learning signal of their own (Hard Routing's REINFORCE router)
        self._extra_loss_nets = [n for n in self._nets if n.has_extra_loss]
        # networks that leave rows out of an update's losses (PaCo's mask-out)
        self._row_mask_nets = [n for n in self._nets if n.has_row_mask]
        self._q_params: list[torch.Tensor] = list(self.q.parameters())
        self._q_target_params: list[torch.Tensor] = list(self.q_target.parameters())
        # how the task gradients of the critic and policy losses are combined (softmod/grad/)
        self.grad = build_grad_method(
            cfg.grad, list(self.policy.parameters()), self._q_params, num_tasks, device
        )
        # which of those parameters are shared across tasks (the network protocol's split)
        self.grad.set_shared([n.shared_parameters() for n in (self.policy.net, self.q.net)])

    def parameter_counts(self) -> dict[str, int]:
        """Parameters of the policy and of ONE Q-function (the twin holds two)."""
        return {"policy": count_parameters(self.policy), "q": count_parameters(self.q) // 2}

    def update(self, batch: Batch) -> dict[str, torch.Tensor]:
        """One gradient step on policy, both Q-functions and the temperatures; soft target update.

        Order as in the authors' code: the α step comes first, and the temperatures and balance
        weights used by the Q and policy losses are read after it; the policy loss uses the Q
        networks as they were before this step's Q update.
        """
        s, task = self.cfg, batch.task
        for net in self._nets:
            net.before_update()
        # forward passes in the run's precision: bf16 products inside, the Q-values, log-probs,
        # TD target and losses in fp32 (softmod/precision.py); nothing changes for fp32
        with autocast(self.precision, self.log_alpha.device):
            terms, loss_alpha, q_pred, log_prob = self._losses(batch, task)

        self.policy_opt.zero_grad(set_to_none=True)
        self.q_opt.zero_grad(set_to_none=True)
        grad_metrics = self.grad.backward(terms)  # plain: terms.total.backward()
        pi_norm = torch.nn.utils.clip_grad_norm_(self.policy.parameters(), s.grad_clip)
        q_norms = clip_grad_norm_members(self._q_params, s.grad_clip, members=2)
        self.policy_opt.step()
        self.q_opt.step()
        self.grad.after_step(terms)
        with torch.no_grad():
            torch._foreach_lerp_(self._q_target_params, self._q_params, s.tau)
        for net in self._nets:
            net.after_update()

        return {
            "loss/q": terms.loss_q.detach(),
            "loss/policy": terms.loss_pi.detach(),
            "loss/alpha": loss_alpha.detach(),
            "q/mean": q_pred.detach().mean(),
            "policy/entropy": -log_prob.detach().mean(),
            "grad_norm/policy": pi_norm.detach(),
            "grad_norm/q": q_norms.detach().max(),
            **grad_metrics,
        }

    def _losses(
        self, batch: Batch, task: torch.Tensor
    ) -> tuple[UpdateTerms, torch.Tensor, torch.Tensor, torch.Tensor]:
        """The α step, then the critic and policy losses (``update``'s forward part): the terms
        for the gradient method, the α loss, the Q-values and the log-probabilities."""
        s = self.cfg
        new_action, log_prob = self.policy.sample(batch.obs, task)

        # temperatures
        loss_alpha = losses.alpha_loss(self.log_alpha[task], log_prob, self.target_entropy)
        self.alpha_opt.zero_grad(set_to_none=True)
        loss_alpha.backward()
        self.alpha_opt.step()
        log_alpha = self.log_alpha.detach()
        alpha = log_alpha.exp()[task]
        if s.balance:
            weight = losses.balance_weights(log_alpha)[task]
        else:
            weight = torch.ones_like(alpha)

        # critics
        with torch.no_grad():
            next_action, next_log_prob = self.policy.sample(batch.next_obs, task)
            next_q = self.q_target(batch.next_obs, next_action, task).min(0).values
            target = losses.q_target(
                batch.reward, batch.terminated, next_q, next_log_prob, alpha, s.gamma
            )
        q_pred = self.q(batch.obs, batch.action, task)

        # policy: gradients flow through the (frozen) critics into the action only
        self.q.requires_grad_(False)
        q_new = self.q(batch.obs, new_action, task).min(0).values
        self.q.requires_grad_(True)
        if self._row_mask_nets:  # detached per-row total loss: policy + both critics
            row_loss = weight * ((q_pred - target).pow(2).sum(0) + alpha * log_prob - q_new)
            for net in self._row_mask_nets:  # PaCo's mask-out: 0 for its masked tasks' rows
                weight = weight * net.row_mask(row_loss.detach(), task)
        loss_q = losses.critic_loss(q_pred, target, weight)
        loss_pi = losses.policy_loss(q_new, log_prob, alpha, weight)
        total = loss_q + loss_pi
        extra = None
        if self._extra_loss_nets:  # per-row losses of each network, (members, B)
            rows = {
                id(self.policy.net): (weight * (alpha * log_prob - q_new)).detach()[None],
                id(self.q.net): ((q_pred - target).pow(2) * weight).detach(),
            }
            for net in self._extra_loss_nets:
                net_loss = net.extra_loss(rows[id(net)], task)
                total = total + net_loss
                extra = net_loss if extra is None else extra + net_loss

        def critic_now() -> torch.Tensor:  # per-task critic losses after the Q step (no graph)
            with torch.no_grad(), autocast(self.precision, self.log_alpha.device):
                q_now = self.q(batch.obs, batch.action, task)
            return task_losses_of_rows((q_now - target).pow(2) * weight, self.num_tasks)

        terms = UpdateTerms(
            total=total,
            loss_q=loss_q,
            loss_pi=loss_pi,
            extra=extra,
            q_rows=(q_pred - target).pow(2) * weight,  # per-row losses, for the methods that
            pi_rows=weight * (alpha * log_prob - q_new),  # need per-task ones (plain ignores them)
            num_tasks=self.num_tasks,
            critic_now=critic_now,
        )
        return terms, loss_alpha, q_pred, log_prob
