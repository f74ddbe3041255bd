"""CARE: Contextual Attention-based REpresentation learning (Sodhani, Zhang, Pineau, ICML 2021).

Followed: facebookresearch/mtrl ``mtrl/agent/components/encoder.py`` (``MixtureofExpertsEncoder``),
``mtrl/agent/components/moe_layer.py`` (``AttentionBasedExperts``, ``FeedForward``),
``mtrl/agent/components/task_encoder.py`` (``TaskEncoder``), ``mtrl/agent/components/actor.py``
(``encode``: concatenation with the task encoding), ``mtrl/agent/utils.py`` (``build_mlp``,
``weight_init``) and ``config/agent/components/metaworld_encoder.yaml`` (widths 50, temperature
1); cross-checked with rainx0r/metaworld-algorithms ``metaworld_algorithms/nn/care.py`` (6
encoders on MT10, 10 on MT50, from the CARE paper).

The network, for a row of task t with input x (the state, or [state, action] for a critic):

- task encoding ``z_t = trunk(ReLU(e_t))``, ``trunk = Linear(50,50) ReLU Linear(50,50) ReLU
  Linear(50,50)``; ``e_t`` a learned embedding (the default), or, from a context file, ``e_t =
  ReLU(Linear(100,50)(ReLU(Linear(C,100)(ReLU(c_t)))))`` of a frozen per-task context row ``c_t``
  (the reference's pretrained-embedding projection);
- attention ``a_t = softmax(MLP_att(z_t) / temperature)`` over the k encoders,
  ``MLP_att = Linear(50,50) ReLU Linear(50,50) ReLU Linear(50,k)``;
- mixture of encoders ``h = sum_j a_t[j] enc_j(x)``, ``enc_j = Linear(in,50) ReLU Linear(50,50)``;
- output ``MLP([h, z_t])``, hidden layers ``cfg.hidden`` (3 x 400) with ReLU, then the output.

Weights are Xavier-uniform with zero biases (the reference's ``weight_init``); the learned task
embedding is N(0, 1) (``nn.Embedding``'s default, which ``weight_init`` leaves alone). The task
encoding and the attention depend on the task alone: they are computed once for the T tasks and
gathered per row.

Departures from the paper and the reference code (each marked ``# departure (k)`` below):

1. The task context: the paper embeds each task's description with a pretrained language model
   (RoBERTa); that model cannot be downloaded here, so the default is a learned task embedding,
   and ``--task-context FILE`` accepts any per-task vectors (softmod/task_context.py), e.g. the
   reference's own ``metadata/task_embedding/roberta_small/metaworld-mt10.json``.
2. Each network (the policy, each of the two critics) has its own encoders and task encoder; the
   reference ties the actor's encoder to the critic's, trains it with the critic loss only
   (the actor reads it detached) and shares one task encoder between them.
3. A critic's encoders read [state, action]; the reference's critic encodes the state and appends
   the action after the encoder.
4. SAC itself is softmod's shared multi-task SAC (log-std clamped to [-20, 2], initial temperature
   1, every update steps the actor and the critic, tau 0.005); the reference squashes log-std by
   tanh into [-20, 2], starts the temperature at 0.1, updates the actor and target every 2 steps
   with tau 0.01 (encoder tau 0.05) and normalises rewards.
5. ``--precision bf16`` (softmod's issue 17, not in the paper): hidden products in bf16; the
   output layer in fp32; the attention softmax in fp32 (autocast's rule for softmax).
"""

from __future__ import annotations

from itertools import pairwise
from typing import cast

import torch
from torch import nn

from softmod.config import CARENetConfig
from softmod.nets.layers import ExpertLinear, StackedLinear, xavier_
from softmod.nets.protocol import TaskNetwork


def _mlp(members: int, dims: tuple[int, ...], output: bool = False) -> nn.ModuleList:
    """``Linear`` layers through ``dims`` for ``members`` copies (ReLU between them, applied by
    :func:`_run`); the last one is an output layer when ``output``."""
    n = len(dims) - 1
    layers = nn.ModuleList(
        StackedLinear(members, a, b, output=output and i == n - 1)
        for i, (a, b) in enumerate(pairwise(dims))
    )
    with torch.no_grad():  # the reference's weight_init: Xavier-uniform weights, zero biases
        for layer in cast("list[StackedLinear]", list(layers)):
            xavier_(layer.weight)
            layer.bias.zero_()
    return layers


def _run(layers: nn.ModuleList, x: torch.Tensor, relu_last: bool = False) -> torch.Tensor:
    for i, layer in enumerate(layers):
        x = layer(x)
        if relu_last or i < len(layers) - 1:
            x = torch.relu(x)
    return x


class CARENet(TaskNetwork):
    """``(x, task) -> (E, B, out)`` for ``members`` stacked copies (policy 1, twin Q 2);
    :meth:`row_attention` gives the attention ``(E, B, k)`` of each row."""

    graph_safe = True
    task_specific = ("embedding",)  # the learned task embedding's rows (none with a context file)
    context: torch.Tensor | None
    project: nn.ModuleList | None
    embedding: nn.Parameter | None

    def __init__(
        self,
        cfg: CARENetConfig,
        in_dim: int,
        out_dim: int,
        num_tasks: int,
        members: int = 1,
    ) -> None:
        super().__init__()
        if cfg.experts < 1:
            raise ValueError(f"CARE needs at least one encoder, got {cfg.experts}")
        if len(cfg.hidden) < 1:
            raise ValueError("the CARE MLP needs at least one hidden layer")
        if cfg.temperature <= 0:
            raise ValueError(f"CARE attention temperature must be > 0, got {cfg.temperature}")
        e, k, d, he = members, cfg.experts, cfg.embed_dim, cfg.encoder_hidden
        self.cfg, self.members, self.num_tasks = cfg, e, num_tasks
        if cfg.context_size > 0:  # departure (1): a context file's rows, frozen
            if len(cfg.context) != num_tasks * cfg.context_size:
                raise ValueError(
                    f"CARE context has {len(cfg.context)} values, expected {num_tasks} tasks x "
                    f"{cfg.context_size}"
                )
            context = torch.tensor(cfg.context, dtype=torch.float32)
            self.register_buffer("context", context.view(num_tasks, cfg.context_size))
            self.project = _mlp(e, (cfg.context_size, 2 * d, d))
            self.embedding = None
        else:
            self.embedding = nn.Parameter(torch.randn(e, num_tasks, d))  # nn.Embedding's N(0,1)
            self.register_buffer("context", None)
            self.project = None
        self.task_trunk = _mlp(e, (d, d, d, d))
        self.attention_mlp = _mlp(e, (d, d, d, k))
        # departure (2), (3): this network's own k encoders on its whole input
        self.encoders = nn.ModuleList([ExpertLinear(e, k, in_dim, he), ExpertLinear(e, k, he, d)])
        for layer in cast("list[ExpertLinear]", list(self.encoders)):
            xavier_(layer.weight)
        self.body = _mlp(e, (2 * d, *cfg.hidden, out_dim), output=True)

    def task_encoding(self) -> torch.Tensor:
        """``z_t`` for every task: ``(E, T, d)``."""
        if self.embedding is not None:
            emb = torch.relu(self.embedding)
        else:
            # ReLU(c_t) -> Linear -> ReLU -> Linear -> ReLU, as the reference's projection
            assert self.project is not None and self.context is not None
            emb = _run(self.project, torch.relu(self.context), relu_last=True)
        return _run(self.task_trunk, emb)

    def attention(self, z: torch.Tensor) -> torch.Tensor:
        """Attention over the encoders for every task: ``(E, T, k)``, rows summing to 1."""
        logits = _run(self.attention_mlp, z).float()
        return torch.softmax(logits / self.cfg.temperature, dim=-1)

    def row_attention(self, task: torch.Tensor) -> torch.Tensor:
        """The attention over the encoders of each row's task: ``(E, B, k)``."""
        return self.attention(self.task_encoding())[:, task]

    def forward(self, x: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        """``x: (B, in)`` or ``(E, B, in)``, ``task: (B,)`` -> ``(E, B, out)``."""
        z_all = self.task_encoding()  # (E, T, d): once per task, then gathered per row
        att = self.attention(z_all)[:, task]  # (E, B, k)
        z = z_all[:, task]  # (E, B, d)
        enc = self.encoders[1](torch.relu(self.encoders[0](x)))  # (E, k, B, d)
        h = torch.einsum("ebk,ekbd->ebd", att.to(enc.dtype), enc)
        y = _run(self.body, torch.cat([h, z.to(h.dtype)], dim=-1))
        return y
