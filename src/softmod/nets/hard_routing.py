"""Hard Routing: one module per layer, chosen per task by a tabular REINFORCE router.

Paper §5.2 (v): "four module layers with four modules each layer. For each layer, agent selects one
module to use according to the controller/router depending on the task, following [30]" (Rosenbaum
et al., routing networks). The base network is the soft-modular one (DESIGN §2) with hard choices::

    f   = Linear(in, D) -> ReLU -> Linear(D, D)      # the soft-modular state encoder, D = 400
    h_0 = ReLU(f)
    h_l = ReLU(M^l_{r_l(t)}(h_{l-1}))  for l = 1..L  # ONE module (a Linear, width d) per layer
    y   = Linear(d, out)(h_L)                        # one shared output layer

The paper leaves open most of the router's details; the choices made here:

1. Router form: a table of logits ``(E, T, L, n)`` per member (policy: 1; each Q-function its own),
   initialised to 0 (uniform), a ``nn.Parameter`` trained by the same optimiser as the network (lr
   of that network). Layers are sampled independently given the task: ``p(route | t) =
   prod_l softmax(logits[t, l])[r_l]``. The task enters ONLY through the route (no one-hot input).
2. When routes are sampled: :meth:`HardRoutingNet.resample` draws one route per (member, task) and
   keeps it; the agent calls it once at the start of every update, so every forward of an update
   (losses, next-state actions) uses the same route, and acting in the environment between updates
   uses the route of the last update (one route is drawn at construction for acting before the
   first update). ``module.eval()`` switches to the argmax route (evaluation); with the initial
   all-zero logits argmax picks module 0 in every layer for every task.
3. Reward: per (member, task), minus the mean of this network's per-row loss over that task's rows
   of the batch (the agent passes the detached rows: weighted squared TD error for a Q-function,
   ``w (alpha log pi - Q)`` for the policy). Tasks absent from the batch get no update.
4. Baseline: an exponential moving average of the reward per (member, task) with decay
   ``cfg.baseline_decay``, set to the first reward seen (so the first advantage is 0), updated after
   the advantage is computed.
5. Advantage scale: the advantage is divided by its running RMS (an exponential moving average of
   its square, same decay, bias-corrected as in Adam), so its scale is about 1 whatever the loss
   scale. The router's logits are clipped together with the network's weights (global norm 1.0);
   raw Meta-World losses in the hundreds would otherwise make the router's gradient dominate that
   norm and shrink the network's step. The loss is ``-sum_e mean_t A_hat[e,t] log p(route[e,t])``
   over the tasks present in the batch, and only reaches the router logits.
6. Target network: the agent deep-copies the Q network as its target and soft-updates ALL of its
   parameters, router logits included. The sampled routes live in a holder that ``copy.deepcopy``
   shares instead of copying, so the target (in training mode) uses the online network's current
   sampled routes: the TD target of route r is computed by the Polyak-averaged modules of the same
   route r. The target's own logits are a lagged copy of the online ones and are used only if the
   target is put in eval mode (argmax); its baseline buffers are unused copies.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import pairwise
from typing import cast

import torch
from torch import nn

from softmod.config import HardRoutingNetConfig
from softmod.nets.layers import GroupedLinear, StackedLinear, TaskGroups, grouped_linear
from softmod.nets.protocol import TaskNetwork
from softmod.precision import lowp


class _SharedRoutes:
    """The current sampled routes; ``copy.deepcopy`` shares this holder (choice 6 above)."""

    def __init__(self, routes: torch.Tensor) -> None:
        self.value = routes

    def __deepcopy__(self, memo: dict) -> _SharedRoutes:
        return self


class HardRoutingNet(TaskNetwork):
    """``layers x modules`` module layers, exactly one module per layer per task; ``members``
    stacked copies, each with its own router (see the module docstring for every choice).

    Protocol (:mod:`softmod.nets.protocol`): routes are resampled in :meth:`before_update`, the
    REINFORCE loss is :meth:`extra_loss`, the sampled routes are the checkpoint's
    :meth:`extra_state`; the router logits ``(E, T, L, n)`` are task-specific. Not graph-safe
    (grouping rows by task reads group sizes on the host)."""

    task_specific = ("router_logits",)
    has_extra_loss = True

    baseline: torch.Tensor  # buffers (registered in __init__)
    adv_sq: torch.Tensor
    updates: torch.Tensor

    def __init__(
        self,
        cfg: HardRoutingNetConfig,
        in_dim: int,
        out_dim: int,
        num_tasks: int,
        members: int = 1,
    ) -> None:
        super().__init__()
        if cfg.layers < 1 or cfg.modules < 1:
            raise ValueError("Hard Routing needs at least one module layer and one module")
        self.num_tasks, self.members = num_tasks, members
        self.num_layers, self.num_modules = cfg.layers, cfg.modules
        self.decay = cfg.baseline_decay
        self.encoder = nn.ModuleList(
            [
                StackedLinear(members, in_dim, cfg.base_dim),
                StackedLinear(members, cfg.base_dim, cfg.base_dim),
            ]
        )
        dims = (cfg.base_dim,) + (cfg.module_dim,) * cfg.layers
        self.module_layers = nn.ModuleList(
            GroupedLinear(members, cfg.modules, a, b) for a, b in pairwise(dims)
        )
        self.out = StackedLinear(members, cfg.module_dim, out_dim, output=True)
        self.router_logits = nn.Parameter(torch.zeros(members, num_tasks, cfg.layers, cfg.modules))
        zeros = torch.zeros(members, num_tasks)
        self.register_buffer("baseline", zeros.clone())  # EMA of the reward per (member, task)
        self.register_buffer("adv_sq", zeros.clone())  # EMA of the squared advantage
        self.register_buffer("updates", zeros.clone())  # REINFORCE updates per (member, task)
        self._routes = _SharedRoutes(self._sample())

    def _sample(self) -> torch.Tensor:
        """One route per (member, task) from softmax(logits), by the Gumbel-max trick: (E, T, L)."""
        with torch.no_grad():
            logits = self.router_logits.detach()
            gumbel = -torch.empty_like(logits).exponential_().log()
            return (logits + gumbel).argmax(-1)

    def resample(self) -> None:
        """Draw a new route per (member, task) and keep it until the next call (training mode)."""
        self._routes.value = self._sample()

    def before_update(self) -> None:
        """Protocol hook: a new route per (member, task) for this update (:meth:`resample`)."""
        self.resample()

    def extra_state(self) -> dict[str, torch.Tensor]:
        """The sampled routes (held outside the ``state_dict``, shared with a deep copy)."""
        return {"routes": self._routes.value.cpu()}

    def load_extra_state(self, state: dict[str, torch.Tensor]) -> None:
        """Restore :meth:`extra_state`."""
        self._routes.value = state["routes"].to(self.router_logits.device)

    def routes(self) -> torch.Tensor:
        """The route the forward pass uses now, ``(E, T, L)`` module indices: the sampled one in
        training mode, the argmax of the logits in eval mode."""
        if not self.training:
            return self.router_logits.detach().argmax(-1)
        routes = self._routes.value
        if routes.device != self.router_logits.device:  # the net was moved after sampling
            routes = self._routes.value = routes.to(self.router_logits.device)
        return routes

    def route_probs(self) -> torch.Tensor:
        """The router's probabilities per (member, task, layer): ``(E, T, L, n)``."""
        return torch.softmax(self.router_logits.detach(), dim=-1)

    def forward(self, x: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        """``x: (B, in)`` or ``(E, B, in)``, ``task: (B,)`` -> ``(E, B, out)``."""
        f = self.encoder[1](torch.relu(self.encoder[0](x)))
        groups = TaskGroups(task, self.num_tasks)
        h = groups.group(torch.relu(f))  # (E, T, m, D)
        routes = self.routes()  # (E, T, L)
        # flat index e * n + module of each (member, task, layer); index_select's backward is a
        # cheap index_add, so only the chosen modules receive gradient
        member = torch.arange(self.members, device=routes.device)[:, None, None]
        flat = (member * self.num_modules + routes).flatten(0, 1)  # (E*T, L)
        for layer_idx, layer in enumerate(cast("Iterable[GroupedLinear]", self.module_layers)):
            idx = flat[:, layer_idx]
            w = lowp(layer.weight).flatten(0, 1).index_select(0, idx).unflatten(0, routes.shape[:2])
            b = lowp(layer.bias).flatten(0, 1).index_select(0, idx).unflatten(0, routes.shape[:2])
            h = torch.relu(grouped_linear(h, w, b))  # (E, T, m, d)
        return self.out(groups.ungroup(h))

    def extra_loss(self, row_loss: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        """REINFORCE loss of the routes sampled by the last :meth:`resample`.

        ``row_loss (E, B)``: this network's detached per-row losses (lower is better). Updates the
        running baseline and advantage scale; the returned loss only reaches the router logits.
        """
        row_loss = row_loss.detach()
        e, t = self.members, self.num_tasks
        sums = row_loss.new_zeros(e, t).index_add_(1, task, row_loss)
        counts = torch.bincount(task, minlength=t).to(row_loss.dtype)
        present = (counts > 0).expand(e, t)
        reward = -sums / counts.clamp(min=1)
        with torch.no_grad():
            first = present & (self.updates == 0)
            baseline = torch.where(first, reward, self.baseline)
            adv = torch.where(present, reward - baseline, torch.zeros_like(reward))
            d = self.decay
            self.updates.add_(present.to(self.updates.dtype))
            self.adv_sq.copy_(
                torch.where(present, d * self.adv_sq + (1 - d) * adv.pow(2), self.adv_sq)
            )
            corrected = self.adv_sq / (1 - d**self.updates).clamp(min=1e-12)
            adv_hat = adv / (corrected.sqrt() + 1e-8)
            self.baseline.copy_(torch.where(present, d * baseline + (1 - d) * reward, baseline))
        log_p = torch.log_softmax(self.router_logits, dim=-1)
        route_log_p = log_p.gather(-1, self._routes.value.to(log_p.device)[..., None])
        route_log_p = route_log_p.squeeze(-1).sum(-1)  # (E, T): log p(route | task)
        n_present = present[0].sum().clamp(min=1)
        return -(adv_hat * route_log_p).sum() / n_present
