"""Soft modularization network: shapes, the DESIGN §2 formula by hand, gradients, stacked members,
balance weights, and learning on the toy environment."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from torch.nn import functional as F
from torch.overrides import TorchFunctionMode

from softmod.config import MLPNetConfig, SoftModularNetConfig
from softmod.nets import TanhGaussianPolicy, build_network
from softmod.nets.soft_modules import RoutingProbs, SoftModularNet
from softmod.sac import losses

SHALLOW = SoftModularNetConfig(layers=2, modules=2, module_dim=256)
DEEP = SoftModularNetConfig(layers=4, modules=4, module_dim=128)


# ----------------------------------------------------------------------------- shapes and init
@pytest.mark.parametrize("cfg", [SHALLOW, DEEP], ids=["shallow", "deep"])
@pytest.mark.parametrize(
    ("in_dim", "num_tasks", "members"),
    [(39, 10, 1), (43, 10, 2), (39, 50, 1), (43, 50, 2)],
    ids=["mt10-policy", "mt10-q", "mt50-policy", "mt50-q"],
)
def test_output_and_routing_shapes_and_near_uniform_init(
    cfg: SoftModularNetConfig, in_dim: int, num_tasks: int, members: int
) -> None:
    torch.manual_seed(0)
    net = SoftModularNet(cfg, in_dim, 8, num_tasks, members)
    batch, n, L = 7, cfg.modules, cfg.layers
    x, task = torch.randn(batch, in_dim), torch.randint(0, num_tasks, (batch,))
    out, routing = net(x, task, return_routing=True)
    assert out.shape == (members, batch, 8)
    assert torch.equal(net(x, task), out)  # same output with or without the routing
    assert isinstance(routing, RoutingProbs)
    assert len(routing.layers) == L - 1
    for p in routing.layers:
        assert p.shape == (members, batch, n, n)
        assert torch.allclose(p.sum(-1), torch.ones(members, batch, n))  # softmax over sources
    assert routing.final.shape == (members, batch, n)
    assert torch.allclose(routing.final.sum(-1), torch.ones(members, batch))
    flat = routing.flat()
    assert flat.shape == (members, batch, (L - 1) * n * n + n)
    # routing output layers start at ±3e-3: every probability is close to 1/n
    assert (flat - 1 / n).abs().max() < 0.05
    # a per-member input (E, B, in) gives the same result as a shared one
    assert torch.allclose(net(x.expand(members, -1, -1), task), out, atol=1e-6)


def test_build_network_dispatches_here_and_rejects_bad_sizes() -> None:
    assert isinstance(build_network(SHALLOW, 39, 8, 10), SoftModularNet)
    with pytest.raises(ValueError, match=r"layers must be >= 2.*got 1"):
        SoftModularNet(SoftModularNetConfig(layers=1), 4, 2, 3)
    with pytest.raises(ValueError, match=r"modules must be >= 1.*got 0"):
        SoftModularNet(SoftModularNetConfig(modules=0), 4, 2, 3)


def test_initialisation_follows_the_authors_code() -> None:
    net = SoftModularNet(DEEP, 39, 8, 10)
    hidden = [net.enc1, net.enc2, net.task_embed, net.gate1, net.gate2, net.route_cond_last]
    for layer in [*hidden, *net.route_cond, *net.module_layers]:
        bound = 1 / math.sqrt(layer.weight.shape[-1])  # fan = output width (authors' fanin_init)
        assert layer.weight.abs().max() <= bound
        assert torch.all(layer.bias == 0.1)
    for layer in [net.out, net.route_first, net.route_last, *net.route_out]:
        assert layer.weight.abs().max() <= 3e-3 and layer.bias.abs().max() <= 3e-3


def _count_torch_calls(net: SoftModularNet, x: torch.Tensor, task: torch.Tensor) -> int:
    class Count(TorchFunctionMode):
        calls = 0

        def __torch_function__(self, func, types, args=(), kwargs=None):
            Count.calls += 1
            return func(*args, **(kwargs or {}))

    with Count():
        net(x, task, return_routing=True)
    return Count.calls


def test_forward_has_no_loop_over_modules_or_members() -> None:
    """The number of torch calls in a forward pass does not grow with n or with the members."""
    x, task = torch.randn(5, 6), torch.tensor([0, 1, 2, 0, 1])
    # (StackedLinear takes a different, equally loop-free path for a single member: compare E >= 2)
    small = SoftModularNet(SoftModularNetConfig(layers=3, modules=2, module_dim=8), 6, 2, 3, 2)
    big = SoftModularNet(SoftModularNetConfig(layers=3, modules=6, module_dim=8), 6, 2, 3, 5)
    assert _count_torch_calls(small, x, task) == _count_torch_calls(big, x, task)


# ----------------------------------------------------------------------------- DESIGN §2 by hand
def _reference(net: SoftModularNet, x: torch.Tensor, task: torch.Tensor, member: int) -> tuple:
    """DESIGN §2 written out for one member and one row at a time (plain torch, explicit loops)."""

    def lin(layer: torch.nn.Module, v: torch.Tensor) -> torch.Tensor:
        return v @ layer.weight[member] + layer.bias[member, 0]

    def module(layer: torch.nn.Module, j: int, v: torch.Tensor) -> torch.Tensor:
        return v @ layer.weight[member, j] + layer.bias[member, j, 0]

    L, n = net.layers, net.n
    ys, all_p, finals = [], [], []
    for b in range(x.shape[0]):
        s, z = x[b], F.one_hot(task[b], net.num_tasks).to(x.dtype)
        f = lin(net.enc2, torch.relu(lin(net.enc1, s)))
        h = lin(net.task_embed, z)  # a Linear on the one-hot
        e = f * h if net.cfg.route_obs else h
        g = lin(net.gate2, torch.relu(lin(net.gate1, torch.relu(e))))
        p = [torch.softmax(lin(net.route_first, torch.relu(g)).view(n, n), dim=1)]
        for k in range(L - 2):
            c = lin(net.route_cond[k], torch.cat([q.flatten() for q in p]))
            p.append(torch.softmax(lin(net.route_out[k], torch.relu(c * g)).view(n, n), dim=1))
        c = lin(net.route_cond_last, torch.cat([q.flatten() for q in p]))
        w_last = torch.softmax(lin(net.route_last, torch.relu(c * g)), dim=0)
        o = [module(net.module_layers[0], j, torch.relu(f)) for j in range(n)]
        for layer in range(1, L):
            mixed = [sum(p[layer - 1][j, k] * o[k] for k in range(n)) for j in range(n)]
            o = [module(net.module_layers[layer], j, torch.relu(mixed[j])) for j in range(n)]
        ys.append(lin(net.out, torch.relu(sum(w_last[k] * o[k] for k in range(n)))))
        all_p.append(torch.stack(p))
        finals.append(w_last)
    return torch.stack(ys), torch.stack(all_p), torch.stack(finals)


@pytest.mark.parametrize(
    ("layers", "modules", "route_obs", "members"),
    [(2, 2, True, 1), (3, 2, True, 1), (3, 3, False, 1), (4, 3, True, 2)],
    ids=["L2", "L3-cascade", "L3-no-obs", "L4-two-members"],
)
def test_forward_matches_the_design_formula_by_hand(
    layers: int, modules: int, route_obs: bool, members: int
) -> None:
    torch.manual_seed(1)
    cfg = SoftModularNetConfig(layers, modules, 3, base_dim=5, gate_dim=4, route_obs=route_obs)
    net = SoftModularNet(cfg, in_dim=4, out_dim=2, num_tasks=3, members=members).double()
    with torch.no_grad():  # large random weights, so that routing is far from uniform
        for p in net.parameters():
            p.normal_(0.0, 0.8)
    x = torch.randn(members, 6, 4, dtype=torch.float64)
    task = torch.tensor([0, 1, 2, 2, 1, 0])
    out, routing = net(x, task, return_routing=True)
    for m in range(members):
        y, p, w_last = _reference(net, x[m], task, m)
        assert torch.allclose(out[m], y, atol=1e-10)
        assert torch.allclose(torch.stack(routing.layers, 2)[m], p, atol=1e-12)
        assert torch.allclose(routing.final[m], w_last, atol=1e-12)
    assert (routing.flat() - 1 / modules).abs().max() > 0.1  # the check is not a trivial one


# ----------------------------------------------------------------------------- gradients
@pytest.mark.parametrize("route_obs", [True, False], ids=["obs", "no-obs"])
def test_gradients_reach_every_parameter(route_obs: bool) -> None:
    torch.manual_seed(0)
    cfg = dataclasses.replace(DEEP, route_obs=route_obs)
    net = SoftModularNet(cfg, 43, 1, 10, members=2)
    task = torch.arange(10).repeat(2)
    net(torch.randn(20, 43), task).sum().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    for layer in net.module_layers:  # every module of every member, weight and bias
        assert (layer.weight.grad.abs().sum((2, 3)) > 0).all()
        assert (layer.bias.grad.abs().sum((2, 3)) > 0).all()
    assert (net.task_embed.weight.grad.abs().sum(-1) > 0).all()  # every task's embedding row


def test_stacked_members_are_independent() -> None:
    torch.manual_seed(0)
    net = SoftModularNet(DEEP, 43, 1, 10, members=2)
    x, task = torch.randn(12, 43), torch.randint(0, 10, (12,))
    before = net(x, task).detach()
    net(x, task)[0].sum().backward()
    for name, p in net.named_parameters():
        assert p.grad[0].abs().sum() > 0, name
        assert torch.all(p.grad[1] == 0), name
    with torch.no_grad():  # changing member 1 leaves member 0's output exactly as it was
        for p in net.parameters():
            p[1].add_(0.5)
    after = net(x, task).detach()
    assert torch.equal(after[0], before[0])
    assert not torch.allclose(after[1], before[1])


def test_policy_routing_method() -> None:
    torch.manual_seed(0)
    policy = TanhGaussianPolicy(SoftModularNet(DEEP, 39, 8, 10), act_dim=4)
    obs, task = torch.randn(5, 39), torch.arange(5)
    routing = policy.routing(obs, task)
    _, expected = policy.net(obs, task, return_routing=True)
    assert isinstance(routing, RoutingProbs)
    assert torch.equal(routing.flat(), expected.flat())
    mlp_policy = TanhGaussianPolicy(build_network(MLPNetConfig(), 39, 8, 10), act_dim=4)
    with pytest.raises(TypeError, match="no routing network"):
        mlp_policy.routing(obs, task)


# ----------------------------------------------------------------------------- balance weights
def test_balance_weights_weight_each_tasks_losses() -> None:
    log_alpha = torch.tensor([0.4, -0.7], requires_grad=True)  # two tasks, unequal temperatures
    w = losses.balance_weights(log_alpha)
    assert torch.allclose(w, 2 * torch.softmax(-log_alpha.detach(), dim=0))
    assert not w.requires_grad and w[1] > 1 > w[0]  # the colder task weighs more

    g = torch.Generator().manual_seed(3)
    task = torch.tensor([0, 1, 1, 0, 1, 0, 0, 1])
    q = torch.randn(2, 8, generator=g, requires_grad=True)
    target, log_prob = torch.randn(8, generator=g), torch.randn(8, generator=g)
    alpha = log_alpha.detach().exp()[task]  # as the agent: temperatures read after the α step
    loss_q = losses.critic_loss(q, target, w[task])
    loss_pi = losses.policy_loss(q.min(0).values, log_prob, alpha, w[task])
    # direct per-task computation: each task's summed terms times its weight, over all B rows
    direct_q = torch.zeros(())
    direct_pi = torch.zeros(())
    for t in range(2):
        rows = task == t
        sq = (q[:, rows] - target[rows]).pow(2).sum(1)  # per critic
        direct_q = direct_q + w[t] * sq.sum() / 8
        a_t = log_alpha[t].detach().exp()
        direct_pi = direct_pi + w[t] * (a_t * log_prob[rows] - q.min(0).values[rows]).sum() / 8
    assert torch.allclose(loss_q, direct_q)
    assert torch.allclose(loss_pi, direct_pi)
    (loss_q + loss_pi).backward()
    assert q.grad is not None
    assert log_alpha.grad is None  # the weights carry no gradient into the temperatures


# Learning on the toy tasks, and conflicting tasks routed apart: tests/test_learning.py.
