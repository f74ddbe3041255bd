"""A straightforward soft-modular network in the style of the authors' released code.

The authors' ``ModularGatedCascadeCondNet`` (``torchrl/networks/nets.py``) keeps every module as its
own ``nn.Linear`` in Python lists, loops over the modules of each layer, concatenates the one-hot
task id as a tensor, and builds Q1 and Q2 as two separate networks. This module reproduces that
structure (same function as :class:`softmod.nets.soft_modules.SoftModularNet`, checked by
:func:`load_from_softmod`) so the benchmark can time softmod's batched version against it.
"""

from __future__ import annotations

from typing import Any, cast

import torch
from torch import nn
from torch.nn import functional as F

from softmod.config import SoftModularNetConfig


class ReferenceSoftModularNet(nn.Module):
    """One member of a soft-modular network, modules as separate Linears, loops as the authors'."""

    def __init__(
        self, cfg: SoftModularNetConfig, in_dim: int, out_dim: int, num_tasks: int
    ) -> None:
        super().__init__()
        L, n, d, D, G = cfg.layers, cfg.modules, cfg.module_dim, cfg.base_dim, cfg.gate_dim
        self.cfg, self.L, self.n, self.num_tasks = cfg, L, n, num_tasks
        self.base = nn.ModuleList([nn.Linear(in_dim, D), nn.Linear(D, D)])
        self.em = nn.Linear(num_tasks, D)
        self.gating = nn.ModuleList([nn.Linear(D, G), nn.Linear(G, G)])
        self.gating_weight_fc_0 = nn.Linear(G, n * n)
        self.gating_weight_cond_fcs = nn.ModuleList(
            nn.Linear(k * n * n, G) for k in range(1, L - 1)
        )
        self.gating_weight_fcs = nn.ModuleList(nn.Linear(G, n * n) for _ in range(1, L - 1))
        self.gating_weight_cond_last = nn.Linear((L - 1) * n * n, G)
        self.gating_weight_last = nn.Linear(G, n)
        self.layer_modules = nn.ModuleList(
            nn.ModuleList(nn.Linear(D if layer == 0 else d, d) for _ in range(n))
            for layer in range(L)
        )
        self.last = nn.Linear(d, out_dim)

    def forward(self, x: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        """``x (B, in)``, ``task (B,)`` -> ``(B, out)``."""
        onehot = F.one_hot(task, self.num_tasks).to(x.dtype)
        out = self.base[1](F.relu(self.base[0](x)))
        embedding = self.em(onehot)
        emb = out * embedding if self.cfg.route_obs else embedding
        emb = self.gating[1](F.relu(self.gating[0](F.relu(emb))))
        n = self.n
        weights, flatten_weights = [], []
        raw = self.gating_weight_fc_0(F.relu(emb)).view(-1, n, n)
        weights.append(F.softmax(raw, dim=-1))
        flatten_weights.append(weights[-1].view(-1, n * n))
        for cond_fc, fc in zip(self.gating_weight_cond_fcs, self.gating_weight_fcs, strict=True):
            cond = cond_fc(torch.cat(flatten_weights, dim=-1))
            raw = fc(F.relu(cond * emb)).view(-1, n, n)
            weights.append(F.softmax(raw, dim=-1))
            flatten_weights.append(weights[-1].view(-1, n * n))
        cond = self.gating_weight_cond_last(torch.cat(flatten_weights, dim=-1))
        last_weight = F.softmax(self.gating_weight_last(F.relu(cond * emb)), dim=-1)

        layers = [cast(nn.ModuleList, layer) for layer in self.layer_modules]
        module_outputs = torch.stack([m(F.relu(out)) for m in layers[0]], dim=-2)
        for i in range(self.L - 1):
            new_outputs = []
            for j, module in enumerate(layers[i + 1]):
                module_input = (module_outputs * weights[i][..., j, :].unsqueeze(-1)).sum(dim=-2)
                new_outputs.append(module(F.relu(module_input)))
            module_outputs = torch.stack(new_outputs, dim=-2)
        out = (module_outputs * last_weight.unsqueeze(-1)).sum(-2)
        return self.last(F.relu(out))


def _copy(dst: Any, weight: torch.Tensor, bias: torch.Tensor) -> None:
    with torch.no_grad():
        dst.weight.copy_(weight.T)
        dst.bias.copy_(bias.reshape(-1))


def load_from_softmod(ref: Any, net: Any, member: int = 0) -> None:
    """Copy member ``member`` of a :class:`~softmod.nets.soft_modules.SoftModularNet` to ``ref``."""
    e = member

    def lin(dst: Any, src: Any) -> None:
        _copy(dst, src.weight[e], src.bias[e])

    lin(ref.base[0], net.enc1)
    lin(ref.base[1], net.enc2)
    lin(ref.em, net.task_embed)
    lin(ref.gating[0], net.gate1)
    lin(ref.gating[1], net.gate2)
    lin(ref.gating_weight_fc_0, net.route_first)
    for dst, src in zip(ref.gating_weight_cond_fcs, net.route_cond, strict=True):
        lin(dst, src)
    for dst, src in zip(ref.gating_weight_fcs, net.route_out, strict=True):
        lin(dst, src)
    lin(ref.gating_weight_cond_last, net.route_cond_last)
    lin(ref.gating_weight_last, net.route_last)
    for layer, src in zip(ref.layer_modules, net.module_layers, strict=True):
        for j, module in enumerate(layer):
            _copy(module, src.weight[e, j], src.bias[e, j])
    lin(ref.last, net.out)


def bench_forward_backward(
    cfg: SoftModularNetConfig, num_tasks: int, per_task: int, reps: int, device: torch.device
) -> dict[str, float]:
    """Forward+backward of a twin Q-function: softmod's stacked net against two reference nets.

    Both compute ``sum(Q1) + sum(Q2)`` on the same batch and back-propagate to every parameter;
    returns milliseconds (median) for each and the ratio reference / softmod.
    """
    from softmod.bench.updates import ACT_DIM, OBS_DIM, random_batch, time_fn
    from softmod.nets.soft_modules import SoftModularNet

    in_dim = OBS_DIM + ACT_DIM
    net = SoftModularNet(cfg, in_dim, 1, num_tasks, members=2).to(device)
    refs = [ReferenceSoftModularNet(cfg, in_dim, 1, num_tasks).to(device) for _ in range(2)]
    for e, ref in enumerate(refs):
        load_from_softmod(ref, net, e)
    batch = random_batch(num_tasks, per_task, device)
    x = torch.cat([batch.obs, batch.action], dim=-1)

    def ours() -> None:
        net.zero_grad(set_to_none=True)
        net(x, batch.task).sum().backward()

    def theirs() -> None:
        for ref in refs:
            ref.zero_grad(set_to_none=True)
        sum(ref(x, batch.task).sum() for ref in refs).backward()

    ms = {}
    for name, fn in (("softmod", ours), ("reference", theirs), ("softmod2", ours)):
        times, _ = time_fn(fn, reps, 1, device)
        ms[name] = 1e3 * sorted(times)[len(times) // 2]
    soft = min(ms.pop("softmod"), ms.pop("softmod2"))  # timed before and after: less drift
    return {"softmod_ms": soft, "reference_ms": ms["reference"], "ratio": ms["reference"] / soft}
