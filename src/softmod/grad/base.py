"""The gradient seam of the SAC update (issues 19.5, 21): how task gradients are combined.

:meth:`MultiTaskSAC.update <softmod.sac.agent.MultiTaskSAC.update>` computes the losses, zeroes
the policy and Q gradients, then hands an :class:`UpdateTerms` to the run's :class:`GradMethod`,
whose :meth:`GradMethod.backward` fills the ``.grad`` of the policy and Q parameters. Clipping, the
optimiser steps, :meth:`GradMethod.after_step` and the soft target update follow in the update.

Per-task losses come from the stratified batch by a reshape: the replay returns its rows sorted by
task, ``B / T`` rows each (``MultiTaskReplay.sample``), so a per-row loss ``(…, B)`` becomes
``(…, T, B / T)`` and its mean over the last axis is each task's loss. The per-task losses average
to the plain loss (``mean_t L_t = L``) up to float rounding.

Per-task gradients (:func:`per_task_grads`) are ONE backward of the ``(T,)`` loss vector with the
``T`` one-hot cotangents batched (``torch.autograd.grad(..., is_grads_batched=True)``, a vmap over
the backward graph), no Python loop over tasks. Cost: about ``T`` times the backward of the plain
update (each batched cotangent runs the whole backward graph, whose rows of other tasks are zero),
and ``T x P`` floats for the gradients of ``P`` parameters (MT10, soft-shallow policy: 10 x 2.1M).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch


@dataclass
class UpdateTerms:
    """One update's losses, as the gradient method sees them.

    ``total`` is the plain update's scalar (critic + policy + the networks' own losses), built by
    exactly the same operations as before the seam existed. The per-row pieces give per-task
    losses; ``extra`` is the networks' own losses (Hard Routing's REINFORCE router), never
    combined per task; ``critic_now`` recomputes the per-task critic losses with the current Q
    parameters on the same batch and targets (no graph), for methods that look after the step.
    """

    total: torch.Tensor
    loss_q: torch.Tensor
    loss_pi: torch.Tensor
    extra: torch.Tensor | None
    q_rows: torch.Tensor  # (E, B): w_b (Q_e(s_b, a_b) - y_b)², with graph
    pi_rows: torch.Tensor  # (B,): w_b (α_b log π(a_b|s_b) - min_e Q_e(s_b, a_b)), with graph
    num_tasks: int
    critic_now: Callable[[], torch.Tensor]

    def critic_task_losses(self) -> torch.Tensor:
        """``(T,)``: each task's critic loss, the sum over the twin critics of the task's MSE."""
        e = self.q_rows.shape[0]
        return self.q_rows.reshape(e, self.num_tasks, -1).mean(-1).sum(0)

    def policy_task_losses(self) -> torch.Tensor:
        """``(T,)``: each task's policy loss."""
        return self.pi_rows.reshape(self.num_tasks, -1).mean(-1)


def task_losses_of_rows(q_rows: torch.Tensor, num_tasks: int) -> torch.Tensor:
    """``(T,)`` per-task critic losses of ``(E, B)`` per-row losses (as :class:`UpdateTerms`)."""
    return q_rows.reshape(q_rows.shape[0], num_tasks, -1).mean(-1).sum(0)


def per_task_grads(task_losses: torch.Tensor, params: list[torch.Tensor]) -> torch.Tensor:
    """``(T, P)``: the gradient of each task's loss w.r.t. ``params`` (flattened, concatenated),
    from one batched backward (see the module doc for the cost). Parameters a loss does not reach
    (Hard Routing's router logits) get zeros."""
    t = task_losses.shape[0]
    eye = torch.eye(t, device=task_losses.device, dtype=task_losses.dtype)
    grads = torch.autograd.grad(
        task_losses, params, grad_outputs=eye, is_grads_batched=True, allow_unused=True
    )
    return torch.cat(
        [
            task_losses.new_zeros(t, p.numel()) if g is None else g.reshape(t, -1)
            for g, p in zip(grads, params, strict=True)
        ],
        dim=1,
    )


def set_grads(params: list[torch.Tensor], flat: torch.Tensor) -> None:
    """Write a flat ``(P,)`` gradient into ``params``' ``.grad`` (which were zeroed to None)."""
    for p, g in zip(params, flat.split([p.numel() for p in params]), strict=True):
        p.grad = g.view_as(p).to(p.dtype).contiguous()


def mean_pairwise_cosine(grads: torch.Tensor) -> torch.Tensor:
    """Mean cosine similarity over the ``T (T - 1) / 2`` pairs of task gradients ``(T, P)``."""
    t = grads.shape[0]
    unit = grads / (grads.norm(dim=1, keepdim=True) + 1e-12)
    cos = unit @ unit.T
    i, j = torch.triu_indices(t, t, offset=1, device=grads.device)
    return cos[i, j].mean()


class GradMethod:
    """How an update turns its losses into the gradients of the policy and Q parameters.

    A method implements :meth:`backward` (fill ``.grad``; gradients were zeroed to None) and, if it
    learns something across updates, :meth:`after_step`, :meth:`state_dict` and
    :meth:`load_state_dict` (saved in full checkpoints under ``"grad"`` and resumed exactly).
    Metrics returned by :meth:`backward` are 0-dim tensors averaged per train.csv row; per-task
    ones are named ``<name>/<task index>`` and listed by :meth:`task_metrics`, the trainer writes
    them with the task's name.
    """

    name = "plain"
    graph_safe = False  # whether the update may be captured as a CUDA graph (sac/graphed.py)

    def __init__(
        self,
        policy_params: list[torch.Tensor],
        q_params: list[torch.Tensor],
        num_tasks: int,
        device: torch.device,
    ) -> None:
        self.policy_params, self.q_params = policy_params, q_params
        self.num_tasks, self.device = num_tasks, device
        # per loss, (P,) bool: the columns of the flat gradient that belong to shared parameters
        self.shared: dict[str, torch.Tensor | None] = {}

    def set_shared(self, shared: Sequence[Sequence[torch.Tensor]]) -> None:
        """Mark the parameters shared across tasks (``TaskNetwork.shared_parameters`` of the
        policy's and the Q-function's network): :attr:`shared` gets a column mask per loss, or
        None where no parameter is shared (single-task SAC)."""
        ids = {id(p) for params in shared for p in params}
        for loss, params in (("policy", self.policy_params), ("q", self.q_params)):
            flags = [id(p) in ids for p in params]
            self.shared[loss] = (
                torch.cat([torch.full((p.numel(),), f, device=self.device) for p, f in
                           zip(params, flags, strict=True)])
                if any(flags) else None
            )  # fmt: skip

    def backward(self, terms: UpdateTerms) -> dict[str, torch.Tensor]:
        """Fill the gradients of the policy and Q parameters; returns metrics."""
        raise NotImplementedError

    def after_step(self, terms: UpdateTerms) -> None:
        """Called after the policy and Q optimiser steps of the update (not when skipped)."""

    def task_metrics(self) -> list[str]:
        """Names of the per-task metrics :meth:`backward` returns (as ``<name>/<i>``)."""
        return []

    def metrics(self) -> list[str]:
        """Names of the scalar metrics :meth:`backward` returns besides the per-task ones."""
        return []

    def state_dict(self) -> dict[str, torch.Tensor | dict]:
        """Tensors and plain data of what the method learns (saved in the checkpoint)."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict`."""

    def _per_task(self, name: str, values: torch.Tensor) -> dict[str, torch.Tensor]:
        values = values.detach()
        return {f"{name}/{i}": values[i] for i in range(self.num_tasks)}


class PlainGrad(GradMethod):
    """The paper: one backward of the summed losses (bit-identical to softmod before issue 21)."""

    name = "plain"
    graph_safe = True

    def backward(self, terms: UpdateTerms) -> dict[str, torch.Tensor]:
        terms.total.backward()
        return {}


class PerTaskGradMethod(GradMethod):
    """A method that combines the per-task gradients of the critic and of the policy loss, each
    over all parameters of its network, with :meth:`combine`; the networks' own losses are
    added by a plain backward. Logs the mean pairwise cosine of the task gradients."""

    def backward(self, terms: UpdateTerms) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}
        for loss, task_losses, params in (
            ("q", terms.critic_task_losses(), self.q_params),
            ("policy", terms.policy_task_losses(), self.policy_params),
        ):
            grads = per_task_grads(task_losses, params)
            out[f"grad/{loss}_cosine"] = mean_pairwise_cosine(grads).detach()
            flat, metrics = self.combine(loss, grads, task_losses.detach())
            set_grads(params, flat)
            out.update(metrics)
        if terms.extra is not None:  # the router's REINFORCE loss reaches the router logits only
            terms.extra.backward()
        return out

    def combine(
        self, loss: str, grads: torch.Tensor, task_losses: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The update direction ``(P,)`` of the ``(T, P)`` task gradients of ``loss`` (``q`` or
        ``policy``), and metrics."""
        raise NotImplementedError

    def metrics(self) -> list[str]:
        return ["grad/q_cosine", "grad/policy_cosine"]
