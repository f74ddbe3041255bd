"""PaCo: Parameter-Compositional multi-task RL (Sun, Zhang, Xu, Tomizuka, NeurIPS 2022).

Followed: TToTMooN/paco-mtrl ``paco/examples/metaworld_mt10_paco_conf.py`` (K=5, 3 x 400, the
tricks and their threshold) and ``paco/algorithms/paco_mtsac.py`` (``_convert_loss_into_task_loss``:
the mask-out; ``after_update``: the reset), with the layers of its ALF fork (TToTMooN/alf, branch
PaCo_ALF): ``alf/layers.py`` ``CompositionalFC``, ``alf/networks/encoding_networks.py``
``TaskEncodingNetwork``, ``alf/networks/critic_networks.py`` ``CriticCompositionalNetwork``;
cross-checked with rainx0r/metaworld-algorithms ``metaworld_algorithms/nn/paco.py`` (whose MT50
example uses K=20).

The network: a shared set of K parameter vectors ``theta_k`` (every layer's weights and biases,
``(K, in, out)`` per layer) and a compositional vector ``w_t`` per task (``W (T, K)``, a bias-free
``Linear(T, K)`` on the one-hot, initialised N(0, 1), no activation). Task t's network has the
weights ``sum_k w_t[k] theta_k``: an MLP on the state (policy) or [state, action] (critic), ReLU
hidden layers. As in ``CompositionalFC``, a layer computes every parameter set's output and mixes
them with ``w_t``, which equals the composed layer exactly (:meth:`PaCoNet.composed` builds the
composed weights, for tests and inspection). All K sets start identical (``kernel_identical_init``).

The two training tricks (``PaCoNetConfig``), both on by default as in the authors' config:

- **mask-out** (``mask_threshold``, 0 = off): a task whose mean loss over its rows of the batch
  exceeds the threshold (3e3) is masked: its rows contribute nothing to this update.
- **reset** (``reset``: ``interpolate`` | ``copy`` | ``off``): after an update that masked tasks,
  each masked task's ``w_t`` is replaced by a random convex combination of the unmasked tasks'
  vectors (``interpolate``) or by one unmasked task's vector (``copy``). ``masked_count`` counts
  the masks per task (the authors' ``extreme_task_count``), saved with the network.

The agent applies them through the network protocol (softmod/nets/protocol.py): ``row_mask``
(the mask-out, from the per-row total loss the agent passes) and ``after_update`` (the reset).

Departures from the paper and the reference code (each marked ``# departure (k)`` below):

1. Each network (the policy, and each of the two critics) holds its own compositional vectors;
   the reference shares one task-encoding network between the actor and the critics, trained by
   its own optimiser. Each PaCo network (policy, twin Q) decides the mask from the same per-row
   total loss with the same threshold, so they mask the same tasks, and resets its own vectors.
2. The per-task loss that decides the mask is the policy loss plus the sum of the two critics'
   squared TD errors per row, each task's rows averaged; the reference also adds the temperature
   loss, which softmod's SAC steps before the critic and policy losses (authors' order of the soft
   modularization code), so it is neither part of the decision nor masked.
3. The policy's output layer is uniform in ±0.3·sqrt(3/fan_in) (the reference's projection gain
   0.3 with a truncated normal); hidden layers uniform in ±1/sqrt(fan_in) and biases 0, the
   critic's output layer in ±3e-3, as the reference.
4. SAC itself is softmod's shared multi-task SAC (log-std clamped to [-20, 2], temperature
   learning rate 3e-4, 128 rows per task, no maximum on log alpha); the reference uses log-std in
   [-10, 2], temperature learning rate 1e-4, log alpha capped at 0 and batches of 1280.
5. ``--precision bf16`` (softmod's issue 17, not in the paper): hidden products in bf16, the
   output layer and the mix of its K outputs in fp32.
"""

from __future__ import annotations

import math
from itertools import pairwise
from typing import cast, get_args

import torch
from torch import nn

from softmod.config import PaCoNetConfig, PaCoReset
from softmod.nets.layers import ExpertLinear
from softmod.nets.protocol import TaskNetwork
from softmod.precision import fp32_einsum

RESETS: tuple[str, ...] = get_args(PaCoReset)
POLICY_OUTPUT_GAIN = 0.3  # reference: projection_output_init_gain
CRITIC_OUTPUT_INIT = 3e-3  # reference: last_kernel_initializer uniform(-0.003, 0.003)


class PaCoNet(TaskNetwork):
    """``(x, task) -> (E, B, out)`` for ``members`` stacked copies (policy 1, twin Q 2).

    Parameters: ``layers[i].weight (E, K, in, out)`` and ``.bias (E, K, 1, out)`` (the shared
    set) and ``task_weights (E, T, K)`` (the compositional vectors ``w_t``).
    """

    graph_safe = True  # the mask-out and the reset are tensor operations, no host sync
    task_specific = ("task_weights",)
    has_row_mask = True  # the mask-out (a no-op with mask_threshold 0)
    masked_count: torch.Tensor
    masked: torch.Tensor

    def __init__(
        self,
        cfg: PaCoNetConfig,
        in_dim: int,
        out_dim: int,
        num_tasks: int,
        members: int = 1,
    ) -> None:
        super().__init__()
        if cfg.param_sets < 1:
            raise ValueError(f"PaCo needs at least one parameter set, got {cfg.param_sets}")
        if len(cfg.hidden) < 1:
            raise ValueError("a PaCo network needs at least one hidden layer")
        if cfg.reset not in RESETS:
            raise ValueError(f"unknown PaCo reset {cfg.reset!r}; allowed: {', '.join(RESETS)}")
        e, k, dims = members, cfg.param_sets, (in_dim, *cfg.hidden, out_dim)
        self.cfg, self.members, self.num_sets, self.num_tasks = cfg, e, k, num_tasks
        n = len(dims) - 1
        self.layers = nn.ModuleList(
            ExpertLinear(e, k, a, b, output=i == n - 1) for i, (a, b) in enumerate(pairwise(dims))
        )
        policy = members == 1  # the policy has one member, the twin critic two
        with torch.no_grad():
            for i, layer in enumerate(self.expert_layers()):
                fan_in = layer.in_features
                if i < n - 1:
                    bound = 1.0 / math.sqrt(fan_in)
                elif policy:  # departure (3)
                    bound = POLICY_OUTPUT_GAIN * math.sqrt(3.0 / fan_in)
                else:
                    bound = CRITIC_OUTPUT_INIT
                first = torch.empty(e, 1, fan_in, layer.out_features).uniform_(-bound, bound)
                layer.weight.copy_(first.expand_as(layer.weight))  # identical sets
                layer.bias.zero_()
        # departure (1): one table of compositional vectors per member
        self.task_weights = nn.Parameter(torch.randn(e, num_tasks, k))
        self.register_buffer("masked_count", torch.zeros(num_tasks, dtype=torch.long))
        # this update's masked tasks (T,), set by row_mask, read by after_update; not saved
        self.register_buffer("masked", torch.zeros(num_tasks, dtype=torch.bool), persistent=False)

    def expert_layers(self) -> list[ExpertLinear]:
        """The layers, each ``(E, K, in, out)``: the K parameter sets."""
        return cast("list[ExpertLinear]", list(self.layers))

    def forward(self, x: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        """``x: (B, in)`` or ``(E, B, in)``, ``task: (B,)`` -> ``(E, B, out)``: each layer mixes
        its K parameter sets' outputs with ``w_t`` (= the composed layer of task t)."""
        w = self.task_weights[:, task]  # (E, B, K)
        h = x
        last = len(self.layers) - 1
        for i, layer in enumerate(self.expert_layers()):
            y = layer(h)  # (E, K, B, out)
            if i < last:
                h = torch.relu(torch.einsum("ebk,ekbo->ebo", w, y))  # bf16 runs: autocast
            else:  # the output layer's sets are fp32, and so is their mix
                h = fp32_einsum("ebk,ekbo->ebo", w, y)
        return h

    def composed(self, task: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Task ``task``'s own network: per layer ``(weight (E, in, out), bias (E, out))``, the
        combinations ``sum_k w_t[k] theta_k`` of the shared set."""
        w = self.task_weights[:, task]  # (E, K)
        return [
            (
                torch.einsum("ek,ekio->eio", w, layer.weight),
                torch.einsum("ek,eko->eo", w, layer.bias[:, :, 0]),
            )
            for layer in self.expert_layers()
        ]

    @torch.no_grad()
    def task_mask(self, row_loss: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        """The mask-out decision ``(T,)`` bool: True for a task whose mean ``row_loss`` over its
        rows exceeds ``cfg.mask_threshold`` (all False when it is 0: off). No host sync."""
        if self.cfg.mask_threshold <= 0:
            return torch.zeros(self.num_tasks, dtype=torch.bool, device=row_loss.device)
        loss = row_loss.float()
        total = torch.zeros(self.num_tasks, device=loss.device).index_add_(0, task, loss)
        # not torch.bincount: on CUDA it reads the largest index on the host (a sync that a
        # CUDA-graph capture refuses; found on the H200, benchmarks/results/gpu/)
        count = torch.zeros_like(total).index_add_(0, task, torch.ones_like(loss)).clamp_min(1)
        return total / count > self.cfg.mask_threshold

    def row_mask(self, row_loss: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        """The protocol's mask-out: remember this update's masked tasks (:meth:`task_mask`) and
        return the rows' weights, 0 for a masked task's rows."""
        self.masked.copy_(self.task_mask(row_loss, task))
        return (~self.masked)[task].to(row_loss.dtype)

    def after_update(self) -> None:
        """The protocol's hook after the optimiser steps: reset the masked tasks' vectors."""
        if self.cfg.mask_threshold > 0:
            self.reset_tasks(self.masked)

    @torch.no_grad()
    def reset_tasks(self, masked: torch.Tensor) -> None:
        """Replace the compositional vectors of the ``masked (T,)`` tasks (``cfg.reset``), count
        the masks; no host synchronisation (the update stays capturable as a CUDA graph)."""
        self.masked_count += masked.long()
        if self.cfg.reset == "off":
            return
        t = self.num_tasks
        keep = ~masked
        draw = torch.rand(t, t, device=masked.device) * keep  # rows: masked task, cols: sources
        if self.cfg.reset == "interpolate":  # random convex combination of the unmasked tasks
            mix = draw / draw.sum(1, keepdim=True).clamp_min(1e-12)
        else:  # "copy": one unmasked task's vector
            mix = nn.functional.one_hot(draw.argmax(1), t).to(draw.dtype)
        new = torch.einsum("ts,esk->etk", mix, self.task_weights)
        replace = (masked & keep.any())[None, :, None]  # all masked: nothing to copy from
        self.task_weights.copy_(torch.where(replace, new, self.task_weights))
