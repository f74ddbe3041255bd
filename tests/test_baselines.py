"""The paper's baseline networks: MT-MH-SAC, Mix-Expert, Hard Routing, single-task SAC.

Unit tests of each network's defining property, the parameter table, and (marked slow) a learning
test per method on the toy benchmark with a stated success threshold.
"""

from __future__ import annotations

import copy

import pytest
import torch

from softmod.buffer import Batch
from softmod.config import (
    HardRoutingNetConfig,
    MixExpertNetConfig,
    MultiHeadNetConfig,
    NetworkConfig,
    SingleTaskNetConfig,
)
from softmod.methods import METHODS
from softmod.nets import build_network
from softmod.nets.hard_routing import HardRoutingNet
from softmod.nets.layers import TaskGroups
from softmod.nets.moe import MixExpertNet
from softmod.nets.multihead import MultiHeadMLP
from softmod.nets.single_task import SingleTaskMLP
from softmod.params import method_parameter_counts, parameter_table
from softmod.sac.agent import MultiTaskSAC

from .conftest import toy_config

T = 4
UNSORTED = torch.tensor([2, 0, 2, 3, 0, 2, 2])  # unequal counts, task 1 absent
STRATIFIED = torch.arange(T).repeat_interleave(3)  # as the training batch: sorted, equal counts


def _x(rows: int, dim: int = 5, seed: int = 0) -> torch.Tensor:
    return torch.randn(rows, dim, generator=torch.Generator().manual_seed(seed))


# ----------------------------------------------------------------------------- grouping
@pytest.mark.parametrize("task", [UNSORTED, STRATIFIED, torch.tensor([1])], ids=str)
def test_task_groups_round_trip_and_group_contents(task: torch.Tensor) -> None:
    x = _x(len(task))
    groups = TaskGroups(task, T)
    g = groups.group(x)
    assert g.shape == (T, groups.size, 5)
    assert torch.equal(groups.ungroup(g), x)
    for t in range(T):  # group t holds task t's rows in batch order, then zero padding
        rows = x[task == t]
        assert torch.equal(g[t, : len(rows)], rows)
        assert torch.all(g[t, len(rows) :] == 0)


# ----------------------------------------------------------------------------- networks agree
NETS: list[NetworkConfig] = [
    MultiHeadNetConfig(hidden=(16, 16)),
    SingleTaskNetConfig(hidden=(16, 16)),
    MixExpertNetConfig(experts=3, hidden=(16, 16), gate_hidden=(8,)),
    HardRoutingNetConfig(layers=3, modules=3, module_dim=8, base_dim=12),
]


@pytest.mark.parametrize("cfg", NETS, ids=lambda c: type(c).__name__)
@pytest.mark.parametrize("members", [1, 2])
def test_rows_are_independent_of_batch_order_and_composition(
    cfg: NetworkConfig, members: int
) -> None:
    torch.manual_seed(0)
    net = build_network(cfg, 5, 3, T, members)
    x = _x(len(UNSORTED))
    y = net(x, UNSORTED)
    assert y.shape == (members, len(UNSORTED), 3)
    one_by_one = torch.cat([net(x[i : i + 1], UNSORTED[i : i + 1]) for i in range(len(x))], 1)
    assert torch.allclose(y, one_by_one, atol=1e-6)
    # a per-member input (E, B, in) equal to the shared one gives the same result
    assert torch.allclose(net(x.expand(members, -1, -1), UNSORTED), y, atol=1e-6)


# ----------------------------------------------------------------------------- MT-MH-SAC
def test_multihead_forward_is_trunk_then_own_task_head() -> None:
    torch.manual_seed(0)
    net = MultiHeadMLP(MultiHeadNetConfig(hidden=(16, 16)), 5, 3, T, members=2)
    x = _x(len(UNSORTED))
    h = net.trunk(x, UNSORTED)
    w, b = net.heads.weight[:, UNSORTED], net.heads.bias[:, UNSORTED, 0]  # (E, B, h, out)
    expected = torch.einsum("ebh,ebho->ebo", h, w) + b
    assert torch.allclose(net(x, UNSORTED), expected, atol=1e-6)


@pytest.mark.parametrize("task", [UNSORTED, STRATIFIED], ids=["unsorted", "stratified"])
def test_multihead_task_loss_reaches_its_head_only(task: torch.Tensor) -> None:
    torch.manual_seed(0)
    net = MultiHeadMLP(MultiHeadNetConfig(hidden=(16, 16)), 5, 3, T, members=2)
    x = _x(len(task))
    for t in task.unique().tolist():
        net.zero_grad(set_to_none=True)
        net(x, task)[:, task == t].pow(2).sum().backward()
        for grad in (net.heads.weight.grad, net.heads.bias.grad):
            assert torch.all(grad[:, t].flatten(1).abs().sum(1) > 0)  # each member's head t learns
            others = [s for s in range(T) if s != t]
            assert torch.all(grad[:, others] == 0)
        assert net.first.weight.grad.abs().sum() > 0  # the trunk is shared


# ----------------------------------------------------------------------------- Mix-Expert
def test_mix_expert_gates_sum_to_one_and_output_is_their_mixture() -> None:
    torch.manual_seed(0)
    net = MixExpertNet(MixExpertNetConfig(experts=3, hidden=(16,), gate_hidden=(8,)), 5, 2, T, 2)
    x = _x(len(UNSORTED))
    y, gates = net(x, UNSORTED, return_gates=True)
    assert gates.shape == (2, len(UNSORTED), 3)
    assert torch.all(gates > 0)
    assert torch.allclose(gates.sum(-1), torch.ones(2, len(UNSORTED)))
    experts = net.experts(x, UNSORTED)  # (E, K, B, out)
    assert torch.allclose(y, (gates.permute(0, 2, 1)[..., None] * experts).sum(1), atol=1e-6)


def test_mix_expert_every_expert_and_the_gate_receive_gradient() -> None:
    torch.manual_seed(0)
    net = MixExpertNet(MixExpertNetConfig(experts=3, hidden=(16, 16), gate_hidden=(8,)), 5, 2, T, 2)
    net(_x(len(STRATIFIED)), STRATIFIED).pow(2).sum().backward()
    for layer in [net.first, *net.hidden, net.out]:
        per_expert = layer.weight.grad.abs().sum(dim=(2, 3))  # (E, K)
        assert torch.all(per_expert > 0)
    assert torch.all(net.task_rows.grad.abs().sum(dim=(2, 3)) > 0)
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.gate.parameters())


# ----------------------------------------------------------------------------- Hard Routing
def _hard(members: int = 2, layers: int = 3, modules: int = 3) -> HardRoutingNet:
    torch.manual_seed(0)
    cfg = HardRoutingNetConfig(layers=layers, modules=modules, module_dim=8, base_dim=12)
    return HardRoutingNet(cfg, 5, 2, T, members)


def _module_grads(net: HardRoutingNet) -> torch.Tensor:
    """Whether each (member, layer, module) got gradient: (E, L, n) bool."""
    return torch.stack(
        [layer.weight.grad.abs().sum(dim=(2, 3)) > 0 for layer in net.module_layers], 1
    )


def test_hard_routing_uses_exactly_one_module_per_layer_per_task() -> None:
    net = _hard()
    x = _x(len(STRATIFIED))
    for _ in range(3):
        net.resample()
        routes = net.routes()  # (E, T, L)
        assert routes.shape == (2, T, 3)
        for t in range(T):
            net.zero_grad(set_to_none=True)
            net(x, STRATIFIED)[:, STRATIFIED == t].pow(2).sum().backward()
            active = _module_grads(net)
            assert torch.all(active.sum(-1) == 1)  # one module per layer and member
            chosen = active.float().argmax(-1)  # (E, L)
            assert torch.equal(chosen, routes[:, t])
            assert net.router_logits.grad is None  # the forward pass never touches the router


def test_hard_routing_keeps_its_route_until_resampled_and_eval_uses_argmax() -> None:
    net = _hard()
    x = _x(len(STRATIFIED))
    y1, r1 = net(x, STRATIFIED), net.routes().clone()
    assert torch.equal(net(x, STRATIFIED), y1) and torch.equal(net.routes(), r1)
    with torch.no_grad():
        net.router_logits.normal_()
    net.eval()
    assert torch.equal(net.routes(), net.router_logits.argmax(-1))
    net.train()
    assert torch.equal(net.routes(), r1)  # training mode: the sampled route again


def test_hard_routing_target_copy_follows_the_online_routes() -> None:
    net = _hard()
    target = copy.deepcopy(net)
    for _ in range(3):
        net.resample()
        assert torch.equal(target.routes(), net.routes())
    assert target.router_logits is not net.router_logits  # the weights themselves are copies


def test_hard_routing_reinforce_raises_the_probability_of_the_better_route() -> None:
    """Row loss is 0 when a task's route uses module 1 in layer 0 and 1 otherwise (plus noise);
    REINFORCE must concentrate layer 0 on module 1 and leave the other layers near uniform."""
    torch.set_num_threads(1)  # tiny tensors: threads only add overhead
    net = _hard(members=2, layers=2, modules=3)
    opt = torch.optim.Adam([net.router_logits], lr=0.05)
    gen = torch.Generator().manual_seed(0)
    task = STRATIFIED
    start = net.route_probs()[:, :, 0, 1].clone()
    for _ in range(300):
        net.resample()
        good = (net.routes()[:, task, 0] == 1).float()  # (E, B)
        row_loss = 1.0 - good + 0.1 * torch.randn(good.shape, generator=gen)
        loss = net.extra_loss(row_loss, task)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        assert all(p.grad is None for n, p in net.named_parameters() if n != "router_logits")
        opt.step()
    probs = net.route_probs()
    assert torch.allclose(start, torch.full_like(start, 1 / 3))
    assert torch.all(probs[:, :, 0, 1] > 0.9), probs[:, :, 0]
    assert torch.all(probs[:, :, 1].max(-1).values < 0.8), probs[:, :, 1]  # no signal there
    net.eval()
    assert torch.all(net.routes()[:, :, 0] == 1)


def test_hard_routing_extra_loss_ignores_tasks_absent_from_the_batch() -> None:
    net = _hard()
    net.resample()
    loss = net.extra_loss(torch.rand(2, len(UNSORTED)), UNSORTED)
    loss = loss + net.extra_loss(torch.rand(2, len(UNSORTED)), UNSORTED)  # non-zero advantage
    loss.backward()
    assert torch.all(net.router_logits.grad[:, 1] == 0)  # task 1 has no rows
    assert torch.all(net.updates[:, 1] == 0) and torch.all(net.updates[:, 0] == 2)


# ----------------------------------------------------------------------------- single-task SAC
def test_single_task_update_leaves_every_other_task_unchanged() -> None:
    torch.manual_seed(0)
    net = SingleTaskNetConfig(hidden=(32, 32))
    cfg = toy_config(policy_net=net, q_net=net, method="single-task-sac")
    agent = MultiTaskSAC(cfg, obs_dim=2, act_dim=2, num_tasks=T, device="cpu")
    t, others = 2, [0, 1, 3]
    g = torch.Generator().manual_seed(1)
    n = 16
    batch = Batch(
        obs=torch.rand(n, 2, generator=g),
        action=torch.rand(n, 2, generator=g) * 2 - 1,
        reward=torch.rand(n, generator=g),
        next_obs=torch.rand(n, 2, generator=g),
        terminated=torch.zeros(n),
        task=torch.full((n,), t),
    )
    nets = {"policy": agent.policy.net, "q": agent.q.net, "q_target": agent.q_target.net}
    before = {k: {n: p.detach().clone() for n, p in m.named_parameters()} for k, m in nets.items()}
    agent.update(batch)
    for key, module in nets.items():
        assert isinstance(module, SingleTaskMLP)
        for name, p in module.named_parameters():  # every parameter is (E, T, ...)
            old = before[key][name]
            assert torch.equal(p[:, others], old[:, others]), f"{key}.{name} moved for other tasks"
            if key != "q_target":
                assert torch.all(p.grad[:, others] == 0), f"{key}.{name} has other-task gradient"
                assert not torch.equal(p[:, t], old[:, t]), f"{key}.{name} did not learn task {t}"


# ----------------------------------------------------------------------------- parameter table
def test_parameter_table_equals_a_direct_count_of_the_built_networks() -> None:
    rows = {r["method"]: r for r in parameter_table("mt10")}
    assert set(rows) == set(METHODS)
    for method, spec in METHODS.items():
        torch.manual_seed(0)
        agent = MultiTaskSAC(
            toy_config(policy_net=spec.network, q_net=spec.network), 39, 4, 10, "cpu"
        )
        policy = sum(p.numel() for p in agent.policy.parameters())
        q_twin = sum(p.numel() for p in agent.q.parameters())
        assert rows[method]["policy"] == policy, method
        assert rows[method]["q"] * 2 == q_twin, method
        ref = rows["soft-deep"]
        assert rows[method]["policy_rel"] == pytest.approx(policy / ref["policy"])
    # MT-MH-SAC by hand: [39 + 10] -> 400 -> 400 -> 400, then 10 heads 400 -> 8 (policy) / 1 (Q)
    trunk_policy = 49 * 400 + 400 + 2 * (400 * 400 + 400)
    assert rows["mt-mh-sac"]["policy"] == trunk_policy + 10 * (400 * 8 + 8)
    assert rows["mt-mh-sac"]["q"] == trunk_policy + 4 * 400 + 10 * (400 + 1)


def test_parameter_counts_grow_with_tasks_only_where_they_should() -> None:
    mh10, mh50 = method_parameter_counts("mt-mh-sac", 10), method_parameter_counts("mt-mh-sac", 50)
    assert mh50["policy"] - mh10["policy"] == 40 * 400 + 40 * (400 * 8 + 8)  # one-hot rows, heads
    st10 = method_parameter_counts("single-task-sac", 10)
    st50 = method_parameter_counts("single-task-sac", 50)
    assert st50["policy"] == 5 * st10["policy"]  # nothing shared across tasks


# Learning on the toy tasks: tests/test_learning.py (one table for every method).
