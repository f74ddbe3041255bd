"""Soft modularization (Yang et al., 2020), as in the authors' released code (DESIGN §2).

Where this implementation departs from the paper's equations 5-9 (each spot is marked in the code
with ``# departure (k)``); every departure follows the authors' code on purpose:

1. A gating MLP sits between ``f * h`` and the routing output layers ``W_d``: the routing input is
   ``g = Linear(256, 256)(ReLU(Linear(D, 256)(ReLU(f * h))))`` (eq. 5/6 feed ``f * h`` straight
   to ``W_d``), and every later routing layer multiplies by ``g`` instead of ``f * h``.
2. The first module layer receives ``ReLU(f)`` while the routing uses the pre-ReLU ``f``; the
   paper feeds the same ``f(s_t)`` to both.
3. Each routing layer conditions on ALL previous routing matrices, ``W_u`` applied to
   ``concat(P_1 .. P_l)`` (post-softmax), not only on ``p^l`` as in eq. 5.
4. The weighted sum mixes the modules' PRE-activations and the ReLU comes after it,
   ``ReLU(sum_k P[j, k] o_k)``, where eq. 8 sums ``ReLU(W_j g_j)``.
5. A final n-way routing vector ``w_last`` mixes the last module layer, followed by ONE shared
   output layer ``Linear(d, out)``, where eq. 9 sums per-module output layers ``W_j^L``.
6. The task balance weights use ``softmax(-log α)`` where the paper's eq. 10 writes
   ``softmax(-α)``; they live in :func:`softmod.sac.losses.balance_weights`, not in this file.

Precision: fp32 as the paper; with ``--precision bf16`` (issue 17, a departure from the paper and
the authors' code) the products here run in bf16 except the routing and final output layers
(see ``softmod/precision.py``).

The "w/o obs" ablation (paper Fig. 6b, ``route_obs=False``) routes from ``h`` alone instead of
``f * h``. Every layer holds ``members`` independent stacked copies (policy: 1, twin Q: 2), each
with its own base AND routing network; the ``n`` modules of a layer run in one batched product.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from softmod.config import SoftModularNetConfig
from softmod.nets.layers import StackedLinear, StackedModuleLayer
from softmod.nets.protocol import TaskNetwork
from softmod.precision import lowp


class RoutingProbs(NamedTuple):
    """Routing probabilities of one forward pass, per member and row.

    ``layers[l]``: ``(E, B, n, n)``, ``P_{l+1}`` with rows = destination module ``j`` of layer
    ``l + 2`` and a softmax over the source modules ``k`` of layer ``l + 1``; ``final``:
    ``(E, B, n)``, the weights of the last module layer's outputs.
    """

    layers: tuple[torch.Tensor, ...]
    final: torch.Tensor

    def flat(self) -> torch.Tensor:
        """All probabilities as one vector per row: ``(E, B, (L-1)*n*n + n)`` (for t-SNE)."""
        parts = [p.flatten(start_dim=2) for p in self.layers]
        return torch.cat([*parts, self.final], dim=-1)


def _check(cfg: SoftModularNetConfig) -> None:
    if cfg.layers < 2:
        raise ValueError(f"soft-modular layers must be >= 2 (L-1 routing layers), got {cfg.layers}")
    if cfg.modules < 1:
        raise ValueError(f"soft-modular modules must be >= 1 per layer, got {cfg.modules}")
    for name in ("module_dim", "base_dim", "gate_dim"):
        if getattr(cfg, name) < 1:
            raise ValueError(f"soft-modular {name} must be >= 1, got {getattr(cfg, name)}")


class SoftModularNet(TaskNetwork):
    """Base network of ``L x n`` modules, softly re-wired per task and state by a routing network.

    ``forward(x, task)``: ``x`` ``(B, in)`` (shared by every member) or ``(E, B, in)``, ``task``
    ``(B,)`` long -> ``(E, B, out)``; with ``return_routing=True`` also the :class:`RoutingProbs`
    of the same pass (also :meth:`routing`). Task-specific parameters: the task embedding's rows
    (``task_embed.weight``, the one-hot's columns of ``Linear(T, D)``).
    """

    graph_safe = True
    task_specific = ("task_embed.weight",)
    has_routing = True

    def __init__(
        self,
        cfg: SoftModularNetConfig,
        in_dim: int,
        out_dim: int,
        num_tasks: int,
        members: int = 1,
    ) -> None:
        super().__init__()
        _check(cfg)
        E, L, n = members, cfg.layers, cfg.modules
        d, D, G = cfg.module_dim, cfg.base_dim, cfg.gate_dim
        self.cfg, self.members, self.num_tasks = cfg, members, num_tasks
        self.layers, self.n = L, n
        # state encoder f: Linear(in, D) -> ReLU -> Linear(D, D), no final activation
        self.enc1 = StackedLinear(E, in_dim, D)
        self.enc2 = StackedLinear(E, D, D)
        # task embedding h = Linear(T, D)(onehot): its weight rows are looked up, plus the bias
        self.task_embed = StackedLinear(E, num_tasks, D)
        # departure (1): a 2-layer gating MLP between f * h and the routing output layers
        self.gate1 = StackedLinear(E, D, G)
        self.gate2 = StackedLinear(E, G, G)
        self.route_first = StackedLinear(E, G, n * n, output=True)  # W_d^1
        # departure (3): routing layer l+1 reads concat(P_1 .. P_l), (l * n * n) inputs
        self.route_cond = nn.ModuleList(StackedLinear(E, k * n * n, G) for k in range(1, L - 1))
        self.route_out = nn.ModuleList(
            StackedLinear(E, G, n * n, output=True) for _ in range(1, L - 1)
        )
        # departure (5): a final n-way routing vector over the last module layer
        self.route_cond_last = StackedLinear(E, (L - 1) * n * n, G)
        self.route_last = StackedLinear(E, G, n, output=True)
        # base network: L layers of n modules, each module ONE Linear
        self.module_layers = nn.ModuleList(
            StackedModuleLayer(E, n, D if layer == 0 else d, d) for layer in range(L)
        )
        # departure (5): one shared output layer instead of per-module output layers
        self.out = StackedLinear(E, d, out_dim, output=True)

    def _routing(self, f: torch.Tensor, h: torch.Tensor) -> RoutingProbs:
        """The routing cascade: ``P_1 .. P_{L-1}`` ``(E, B, n, n)`` and ``w_last`` ``(E, B, n)``."""
        e = f * h if self.cfg.route_obs else h  # "w/o obs" ablation: the task embedding alone
        g = self.gate2(torch.relu(self.gate1(torch.relu(e))))  # departure (1); no final act
        shape = (*g.shape[:-1], self.n, self.n)
        probs = [torch.softmax(self.route_first(torch.relu(g)).view(shape), dim=-1)]
        flats = [probs[0].flatten(start_dim=2)]
        for cond_fc, out_fc in zip(self.route_cond, self.route_out, strict=True):
            c = cond_fc(torch.cat(flats, dim=-1))  # departure (3): all previous P
            p = torch.softmax(out_fc(torch.relu(c * g)).view(shape), dim=-1)
            probs.append(p)
            flats.append(p.flatten(start_dim=2))
        c = self.route_cond_last(torch.cat(flats, dim=-1))  # departure (3)
        final = torch.softmax(self.route_last(torch.relu(c * g)), dim=-1)  # departure (5)
        return RoutingProbs(tuple(probs), final)

    def forward(  # type: ignore[override]  # the protocol's call, plus an optional extra output
        self, x: torch.Tensor, task: torch.Tensor, return_routing: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, RoutingProbs]:
        """``(B, in)`` or ``(E, B, in)`` and ``task (B,)`` -> ``(E, B, out)`` [, routing]."""
        f = self.enc2(torch.relu(self.enc1(x)))  # pre-ReLU state representation
        # = Linear(T, D)(onehot); bf16 runs: in bf16 like f, so f * h stays bf16
        h = lowp(self.task_embed.weight)[:, task] + lowp(self.task_embed.bias)
        routing = self._routing(f, h)

        o = self.module_layers[0](torch.relu(f))  # departure (2): modules receive ReLU(f)
        for layer, p in zip(self.module_layers[1:], routing.layers, strict=True):
            # mixed[e, j, b] = sum_k P[e, b, j, k] o[e, k, b], for every member, row and module
            # (bf16 runs: in bf16; measured fwd+bwd 9 ms against 24 ms in fp32, 1 thread)
            mix = torch.einsum("ebjk,ekbd->ejbd", p, o)
            o = layer(torch.relu(mix))  # departure (4): ReLU after the weighted sum
        last = torch.einsum("ebk,ekbd->ebd", routing.final, o)  # departure (5): w_last
        y = self.out(torch.relu(last))  # departures (4) and (5): ReLU, one shared output layer
        return (y, routing) if return_routing else y

    def routing(self, x: torch.Tensor, task: torch.Tensor) -> RoutingProbs:
        """The routing probabilities of a batch: ``forward(x, task, return_routing=True)[1]``."""
        return self(x, task, return_routing=True)[1]
