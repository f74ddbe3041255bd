"""PCGrad: gradient surgery (Yu et al., "Gradient Surgery for Multi-Task Learning", NeurIPS 2020).

Followed: facebookresearch/mtrl ``mtrl/agent/pcgrad.py`` (the MTRL reference on Meta-World, used
by CAGrad's and FAMO's papers) and rainx0r/metaworld-algorithms
``metaworld_algorithms/optim/pcgrad.py`` with ``rl/algorithms/mtsac.py``.

Which losses, which parameters: the critic loss (both critics' parameters, one vector, as mtrl's
``critic`` component) and the policy loss (all policy parameters), each on its own; the
temperatures stay plain (their per-task gradients touch disjoint entries of log α, so PCGrad is the
identity there). All parameters, shared and task-specific, as both references: a task-specific
part of a gradient (a head of another task) is zero in the dot products, so only the shared part
decides a conflict.

The rule: for each task i, in a random order of the other tasks j, if ``g_i · g_j < 0`` then
``g_i <- g_i - (g_i · g_j) / ||g_j||² g_j`` (against the ORIGINAL g_j, as mtrl and the paper's
Algorithm 1); the update is the mean of the projected gradients, then the usual clipping and Adam.

Departures:
1. The projections are done in coefficient space: every projected gradient is
   ``g_i - sum_j C_ij u_j`` (``u_j = g_j / ||g_j||``), and its dot products with the ``u_j`` follow
   from the ``T x T`` Gram matrices, so the ``T - 1`` sequential steps cost ``O(T^3)`` instead of
   ``O(T^2 P)``; the same rule, different float rounding.
2. The random orders come from the global torch generator (saved in checkpoints), not NumPy's.
"""

from __future__ import annotations

import torch

from softmod.grad.base import PerTaskGradMethod


def pcgrad_direction(grads: torch.Tensor, order: torch.Tensor | None = None) -> torch.Tensor:
    """The PCGrad update ``(P,)`` of task gradients ``(T, P)``: the mean of the projected ones.

    ``order (T, T - 1)``: for each task, the other tasks in the order they are projected against
    (default: a random permutation per task from the global torch generator).
    """
    t = grads.shape[0]
    if order is None:
        scores = torch.rand(t, t, device=grads.device)
        scores.fill_diagonal_(2.0)  # each task itself last, then dropped
        order = scores.argsort(dim=1)[:, : t - 1]
    unit = grads / (grads.norm(dim=1, keepdim=True) + 1e-8)
    g_u = grads @ unit.T  # g_i · u_j
    u_u = unit @ unit.T  # u_m · u_j
    coef = grads.new_zeros(t, t)  # projected g_i = g_i - sum_j coef_ij u_j
    rows = torch.arange(t, device=grads.device)
    for k in range(t - 1):  # sequential by the rule: each step sees the earlier projections
        j = order[:, k]
        dot = g_u[rows, j] - (coef @ u_u)[rows, j]  # (projected g_i) · u_j
        coef[rows, j] = dot.clamp(max=0.0)  # only conflicts are projected
    return (grads.sum(0) - coef.sum(0) @ unit) / t


class PCGrad(PerTaskGradMethod):
    """PCGrad on the critic and the policy loss (see the module doc)."""

    name = "pcgrad"

    def combine(
        self, loss: str, grads: torch.Tensor, task_losses: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return pcgrad_direction(grads), {}
