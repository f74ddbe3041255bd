"""The protocol every task-conditioned network implements: :class:`TaskNetwork`.

The agent, the checkpoint code, the CUDA-graph update and the gradient methods talk to a network
only through this class: no ``hasattr``, no signature inspection, no class names. A network
subclasses :class:`TaskNetwork` directly (one level; ``TaskNetwork`` is an ``nn.Module``), is built
by :func:`softmod.nets.build_network` from its config, and declares:

- ``forward(x, task)``: ``x`` ``(B, in)`` (shared by every member) or ``(E, B, in)``, ``task``
  ``(B,)`` long task indices -> ``(E, B, out)``, for the ``members = E`` stacked copies it was
  built with (policy: 1, twin Q-function: 2). The constructor is
  ``(cfg, in_dim, out_dim, num_tasks, members)``.
- ``graph_safe`` (class attribute, default False): True when the forward never synchronises with
  the host (no ``.tolist()``, ``.item()`` or data-dependent shapes), so that the whole update can
  be captured as one CUDA graph (:mod:`softmod.sac.graphed`).
- ``task_specific`` (class attribute, default ``()``: every parameter shared across tasks): the
  names (or name prefixes, up to a ``.``) of the parameters that are task-specific, i.e. each
  task's loss reaches only that task's own slice of them (per-task heads, one-hot embedding rows,
  per-task routers). :meth:`~TaskNetwork.shared_parameters` and
  :meth:`~TaskNetwork.task_specific_parameters` split the parameters by it.
- ``has_extra_loss`` (default False): the network has a learning signal of its own (Hard Routing's
  REINFORCE router). The agent then calls :meth:`~TaskNetwork.extra_loss` every update with the
  network's detached per-row losses and adds the result to the total loss.
- :meth:`~TaskNetwork.before_update`: called once at the start of every update (Hard Routing
  samples its routes there); default nothing.
- ``has_row_mask`` (default False) and :meth:`~TaskNetwork.row_mask`: the network leaves rows out
  of this update's losses (PaCo's loss mask-out of diverging tasks). The agent then passes the
  detached per-row total loss (policy + both critics) and multiplies the rows' loss weights by
  the returned ``(B,)`` weights.
- :meth:`~TaskNetwork.after_update`: called once after the optimiser steps of every update (PaCo
  resets the masked tasks' compositional vectors there); default nothing.
- :meth:`~TaskNetwork.extra_state` / :meth:`~TaskNetwork.load_extra_state`: tensors a checkpoint
  must hold besides the ``state_dict`` (Hard Routing's sampled routes); default none.
- ``has_routing`` (default False) and :meth:`~TaskNetwork.routing`: the routing probabilities of a
  batch (soft modularization's :class:`~softmod.nets.soft_modules.RoutingProbs`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import torch
from torch import nn

if TYPE_CHECKING:
    from softmod.nets.soft_modules import RoutingProbs


class TaskNetwork(nn.Module):
    """A task-conditioned network with ``members`` stacked copies (see the module docstring)."""

    graph_safe: ClassVar[bool] = False
    task_specific: ClassVar[tuple[str, ...]] = ()
    has_extra_loss: ClassVar[bool] = False
    has_routing: ClassVar[bool] = False
    has_row_mask: ClassVar[bool] = False

    def forward(self, x: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        """``x: (B, in)`` or ``(E, B, in)``, ``task: (B,)`` -> ``(E, B, out)``."""
        raise NotImplementedError(f"{type(self).__name__} does not define forward(x, task)")

    # ------------------------------------------------------------------ parameters
    def is_task_specific(self, name: str) -> bool:
        """Whether the parameter ``name`` (as :meth:`named_parameters` names it, relative to this
        network) is task-specific: it equals, or lies under, a name in ``task_specific``."""
        return any(name == p or name.startswith(p + ".") for p in self.task_specific)

    def task_specific_parameters(self) -> list[nn.Parameter]:
        """The parameters each task's loss reaches only in its own slice (``task_specific``)."""
        return [p for n, p in self.named_parameters() if self.is_task_specific(n)]

    def shared_parameters(self) -> list[nn.Parameter]:
        """Every other parameter: shared across tasks (what gradient surgery combines)."""
        return [p for n, p in self.named_parameters() if not self.is_task_specific(n)]

    # ------------------------------------------------------------------ update hooks
    def before_update(self) -> None:
        """Called by the agent once at the start of every update; default nothing."""

    def extra_loss(self, row_loss: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        """The network's own loss term (only called when ``has_extra_loss``): ``row_loss
        (E, B)`` is this network's detached per-row loss (lower is better), ``task (B,)``."""
        raise NotImplementedError(f"{type(self).__name__} declares no extra loss")

    def row_mask(self, row_loss: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        """The weights ``(B,)`` (0 or 1) of the rows this update keeps in its losses (only called
        when ``has_row_mask``): ``row_loss (B,)`` is the detached per-row total loss, policy plus
        both critics, ``task (B,)``. No host synchronisation in a graph-safe network."""
        raise NotImplementedError(f"{type(self).__name__} declares no row mask")

    def after_update(self) -> None:
        """Called by the agent once after the optimiser steps of every update; default nothing."""

    # ------------------------------------------------------------------ checkpoints
    def extra_state(self) -> dict[str, torch.Tensor]:
        """Tensors a checkpoint holds besides the ``state_dict``; default none."""
        return {}

    def load_extra_state(self, state: dict[str, torch.Tensor]) -> None:
        """Restore :meth:`extra_state` (on the network's device)."""
        if state:
            raise ValueError(f"{type(self).__name__} holds no extra state, got {sorted(state)}")

    # ------------------------------------------------------------------ analysis
    def routing(self, x: torch.Tensor, task: torch.Tensor) -> RoutingProbs:
        """The routing probabilities of a batch (only when ``has_routing``)."""
        raise TypeError(
            f"{type(self).__name__} has no routing network: routing probabilities exist only for "
            "soft-modular networks (methods soft-*)"
        )
