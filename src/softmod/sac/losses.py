"""Multi-task SAC losses as pure functions (DESIGN §4, authors' code).

Shapes: ``B`` rows of a stratified batch; ``task`` the row's task index; per-row ``alpha`` and
``weight`` are the row's task temperature and task balance weight (1 when balancing is off).
"""

from __future__ import annotations

import torch


def balance_weights(log_alpha: torch.Tensor) -> torch.Tensor:
    """Task balance weights ``w = T · softmax_t(-log α_t)``, detached (DESIGN §4; paper eq. 10).

    Departure from the paper: eq. 10 writes softmax(-α); the authors' code, which we follow, uses
    softmax(-log α). The weights average to 1 over tasks and carry no gradient.
    """
    log_alpha = log_alpha.detach()
    return log_alpha.numel() * torch.softmax(-log_alpha, dim=0)


def q_target(
    reward: torch.Tensor,
    terminated: torch.Tensor,
    next_q_min: torch.Tensor,
    next_log_prob: torch.Tensor,
    alpha: torch.Tensor,
    gamma: float,
) -> torch.Tensor:
    """Soft Bellman target ``r + γ (1 - done) (min Q'(s', a') - α log π(a'|s'))``.

    ``terminated`` is 1 only at true terminals; a time-limit truncation is NOT terminal, so the
    target bootstraps there (Meta-World has no true terminals at all).
    """
    return reward + gamma * (1.0 - terminated) * (next_q_min - alpha * next_log_prob)


def critic_loss(q: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Sum over the stacked critics of the weighted MSE ``mean_b w_b (Q_i(s_b, a_b) - y_b)²``.

    ``q``: ``(E, B)``; summing the per-critic means gives each critic exactly its own gradient.
    """
    return ((q - target.detach()).pow(2) * weight).mean(dim=1).sum()


def policy_loss(
    q_new_min: torch.Tensor, log_prob: torch.Tensor, alpha: torch.Tensor, weight: torch.Tensor
) -> torch.Tensor:
    """``mean_b w_b (α_b log π(a_b|s_b) - min_i Q_i(s_b, a_b))``, ``a_b ~ π`` reparameterised."""
    return (weight * (alpha * log_prob - q_new_min)).mean()


def alpha_loss(
    log_alpha_rows: torch.Tensor, log_prob: torch.Tensor, target_entropy: float
) -> torch.Tensor:
    """Per-task temperature loss ``-mean_b log α_{t_b} (log π(a_b|s_b) + H̄).detach()``."""
    return -(log_alpha_rows * (log_prob + target_entropy).detach()).mean()
