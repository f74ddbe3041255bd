"""MOORE: Mixture Of ORthogonal Experts (Hendawy, Peters, D'Eramo, ICLR 2024).

Followed: AhmedMagdyHendawy/MOORE ``moore/utils/networks_sac.py``
(``MetaworldSACMixtureMH{Actor,Critic}Network``), ``moore/utils/mixture_layers.py``
(``OrthogonalLayer1D``: Gram-Schmidt) and
``run/metaworld/run_metaworld_mt{10,50}_mhsac_mt_moore.sh``
(``--n_features 400 400 400 --activation Linear --agg_activation Linear Tanh --shared_mu_sigma``;
README: 4 experts on MT10, 6 on MT50); cross-checked with rainx0r/metaworld-algorithms
``metaworld_algorithms/nn/moore.py``.

The network: ``k`` expert MLPs on the input (the state, or [state, action] for a critic), each
``Linear -> ReLU -> Linear -> ReLU -> Linear`` (400 wide, the last layer linear); per row, the k
expert outputs are made orthonormal by Gram-Schmidt (expert order 1..k); a task weight vector
``w_t = W_task onehot(t)`` (``Linear(T, k)`` without bias) mixes them, ``tanh``, then the output
head of task t (``Linear(400, out)``, one per task).

Departures from the paper and the reference code (each marked ``# departure (k)`` below):

1. Gram-Schmidt is computed in closed form as CholeskyQR2, without a Python loop over the experts:
   with ``A`` the ``(d, k)`` matrix of a row's expert outputs, ``R = chol(AᵀA)ᵀ`` and
   ``Q = A R⁻¹`` (done twice for accuracy). This is exactly the Gram-Schmidt basis (QR with a
   positive diagonal), up to rounding; a jitter of 1e-6 x the Gram matrix's mean diagonal keeps a
   degenerate row finite where the reference divides by a zero norm (NaN).
2. The per-task heads are computed for every task and the row's task is gathered (the reference
   loops over the tasks present); the result is the same, without a host synchronisation, so the
   update can be captured as a CUDA graph.
3. SAC itself is softmod's shared multi-task SAC (log-std clamped to [-20, 2], temperature
   learning rate 3e-4, 128 rows per task); the reference run uses log-std in [-10, 2], temperature
   learning rate 1e-4 and its own replay schedule.
4. ``--precision bf16`` (softmod's issue 17, not in the paper): the expert MLPs multiply in bf16;
   the Gram-Schmidt, the task mix, the tanh and the heads run in fp32.
"""

from __future__ import annotations

import contextlib
import math
from itertools import pairwise
from typing import cast

import torch
from torch import nn

from softmod.config import MOORENetConfig
from softmod.nets.layers import ExpertLinear, torch_default_bias_, xavier_
from softmod.nets.protocol import TaskNetwork
from softmod.precision import bf16_active

RELU_GAIN = math.sqrt(2.0)  # nn.init.calculate_gain("relu")
JITTER = 1e-6  # departure (1): relative jitter of the Gram matrix


def gram_schmidt(a: torch.Tensor) -> torch.Tensor:
    """Orthonormalise the ``k`` vectors of each row, in order: ``a (..., k, d) -> (..., k, d)``,
    ``out[..., i]`` the Gram-Schmidt basis vector of ``a[..., i]`` given ``a[..., :i]``.

    departure (1): CholeskyQR2 instead of the reference's loop over the experts; computed in fp32.
    """
    dtype = a.dtype
    q = a.float().transpose(-1, -2)  # (..., d, k): columns are the vectors
    k = q.shape[-1]
    eye = torch.eye(k, device=a.device, dtype=q.dtype)
    for _ in range(2):  # CholeskyQR2: the second pass restores orthonormality to rounding level
        gram = q.transpose(-1, -2) @ q  # (..., k, k)
        scale = gram.diagonal(dim1=-2, dim2=-1).mean(-1)[..., None, None]
        lower, _ = torch.linalg.cholesky_ex(gram + JITTER * scale * eye)  # no host sync
        # Q = A R^-1 with R = Lᵀ, through the small (k, k) inverse L^-1: a triangular solve with
        # the (d, k) right-hand side directly is ~50x slower on the CPU (per-matrix overhead)
        inverse = torch.linalg.solve_triangular(lower, eye.expand_as(lower), upper=False)
        q = q @ inverse.transpose(-1, -2)
    return q.transpose(-1, -2).to(dtype)


class MOORENet(TaskNetwork):
    """``(x, task) -> (E, B, out)`` for ``members`` stacked copies (policy 1, twin Q 2).

    Parameters (every one with the member axis first): the experts' layers ``(E, k, in, out)``,
    the task-weight table ``task_weights (E, T, k)`` (the reference's ``Linear(T, k, bias=False)``
    weight, transposed), the heads ``(E, T, d, out)`` and ``(E, T, out)``.
    """

    graph_safe = True  # Cholesky through cholesky_ex: no host sync
    task_specific = ("task_weights", "head_weight", "head_bias")

    def __init__(
        self,
        cfg: MOORENetConfig,
        in_dim: int,
        out_dim: int,
        num_tasks: int,
        members: int = 1,
    ) -> None:
        super().__init__()
        if cfg.experts < 1:
            raise ValueError(f"MOORE needs at least one expert, got {cfg.experts}")
        if len(cfg.hidden) < 1:
            raise ValueError("a MOORE expert needs at least one layer")
        e, k, dims = members, cfg.experts, (in_dim, *cfg.hidden)
        self.members, self.num_experts, self.num_tasks, self.out_dim = e, k, num_tasks, out_dim
        self.layers = nn.ModuleList(ExpertLinear(e, k, a, b) for a, b in pairwise(dims))
        for i, layer in enumerate(cast("list[ExpertLinear]", list(self.layers))):
            last = i == len(self.layers) - 1  # "--activation Linear": the last layer is linear
            xavier_(layer.weight, 1.0 if last else RELU_GAIN)
            torch_default_bias_(layer.bias, layer.in_features)
        # task encoder Linear(T, k, bias=False), xavier-uniform with the linear gain
        self.task_weights = nn.Parameter(torch.empty(e, num_tasks, k))
        xavier_(self.task_weights)
        d = cfg.hidden[-1]
        self.head_weight = nn.Parameter(torch.empty(e, num_tasks, d, out_dim))
        self.head_bias = nn.Parameter(torch.empty(e, num_tasks, out_dim))
        xavier_(self.head_weight)
        torch_default_bias_(self.head_bias, d)

    def experts(self, x: torch.Tensor) -> torch.Tensor:
        """The experts' raw outputs ``(E, k, B, d)`` (before Gram-Schmidt)."""
        h = x
        for i, layer in enumerate(self.layers):
            h = layer(h)
            if i < len(self.layers) - 1:
                h = torch.relu(h)
        return h

    def basis(self, x: torch.Tensor) -> torch.Tensor:
        """The orthonormal expert outputs ``(E, B, k, d)``: for each member and row, k
        orthonormal vectors (Gram-Schmidt of :meth:`experts` in expert order)."""
        return gram_schmidt(self.experts(x).transpose(1, 2))

    def forward(self, x: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        """``x: (B, in)`` or ``(E, B, in)``, ``task: (B,)`` -> ``(E, B, out)``."""
        basis = self.basis(x).float()  # departure (4): fp32 from here on
        w = self.task_weights[:, task].float()  # (E, B, k)
        fp32 = torch.autocast(x.device.type, enabled=False) if bf16_active(x) else None
        with fp32 or contextlib.nullcontext():
            features = torch.tanh(torch.einsum("ebk,ebkd->ebd", w, basis))
            # departure (2): every task's head, then the row's own
            heads = self.head_weight.float()  # (E, T, d, out)
            e, t, d, o = heads.shape
            flat = heads.permute(0, 2, 1, 3).reshape(e, d, t * o)
            every = torch.bmm(features, flat).view(e, -1, t, o)  # (E, B, T, out)
            index = task.view(1, -1, 1, 1).expand(e, -1, 1, o)
            y = every.gather(2, index).squeeze(2) + self.head_bias.float()[:, task]
        return y
