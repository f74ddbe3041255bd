"""MOORE, PaCo and CARE (issue 20): shapes, a hand-computed forward each, their defining properties,
gradients, PaCo's mask-out and reset, and CARE's context file. Learning and CLI runs are in
tests/test_new_nets_training.py."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from softmod.buffer import Batch
from softmod.config import CARENetConfig, MOORENetConfig, PaCoNetConfig
from softmod.methods import METHODS
from softmod.nets import build_network
from softmod.nets.moore import gram_schmidt
from softmod.sac.agent import MultiTaskSAC

from .conftest import toy_config
from .test_bad_input import _error

NEW = ["moore", "moore-mt50", "paco", "paco-mt50", "care", "care-mt50"]
OBS, ACT = 39, 4


@pytest.mark.parametrize("method", NEW)
@pytest.mark.parametrize("tasks", [10, 50])
def test_shapes_at_mt10_and_mt50_sizes(method: str, tasks: int) -> None:
    torch.manual_seed(0)
    cfg = METHODS[method].network
    policy = build_network(cfg, OBS, 2 * ACT, tasks, members=1)
    twin_q = build_network(cfg, OBS + ACT, 1, tasks, members=2)
    task = torch.arange(tasks).repeat_interleave(2)  # sorted, 2 rows per task
    obs = torch.randn(2 * tasks, OBS)
    with torch.no_grad():
        assert policy(obs, task).shape == (1, 2 * tasks, 2 * ACT)
        q = twin_q(torch.cat([obs, torch.randn(2 * tasks, ACT)], -1), task)
        shuffled = torch.randperm(2 * tasks)  # any row order: each row keeps its own output
        q2 = twin_q(torch.cat([obs, torch.zeros(2 * tasks, ACT)], -1)[shuffled], task[shuffled])
    assert q.shape == (2, 2 * tasks, 1) and torch.isfinite(q).all()
    with torch.no_grad():
        q1 = twin_q(torch.cat([obs, torch.zeros(2 * tasks, ACT)], -1), task)
    torch.testing.assert_close(q2, q1[:, shuffled])


def _init_all_(net: torch.nn.Module) -> None:
    """Random values in every parameter (biases too), so a hand computation checks them all."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.7)


# ----------------------------------------------------------------------------- MOORE
def test_moore_forward_by_hand() -> None:
    """k=2 experts of Linear(2,3) ReLU Linear(3,3), T=2 tasks, out 1, one member:
    h_j = W2_j relu(W1_j x + b1_j) + b2_j;  u_1 = h_1 / |h_1|;  v = h_2 - (h_2 . u_1) u_1;
    u_2 = v / |v|;  f = tanh(w_t1 u_1 + w_t2 u_2);  y = f . H_t + c_t."""
    net = build_network(MOORENetConfig(experts=2, hidden=(3, 3)), 2, 1, 2, members=1)
    _init_all_(net)
    x = torch.tensor([[0.3, -1.2], [2.0, 0.5], [-0.7, 0.1]])
    task = torch.tensor([1, 0, 1])
    (l1, l2) = net.layers
    for b in range(3):
        h = [l2.weight[0, j].T @ torch.relu(l1.weight[0, j].T @ x[b] + l1.bias[0, j, 0])
             + l2.bias[0, j, 0] for j in range(2)]  # fmt: skip
        u1 = h[0] / h[0].norm()
        v = h[1] - (h[1] @ u1) * u1
        u2 = v / v.norm()
        t = int(task[b])
        w = net.task_weights[0, t]
        f = torch.tanh(w[0] * u1 + w[1] * u2)
        y = f @ net.head_weight[0, t] + net.head_bias[0, t]
        torch.testing.assert_close(net(x, task)[0, b], y, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("method", ["moore", "moore-mt50"])
def test_moore_expert_outputs_are_orthonormal_per_state(method: str) -> None:
    torch.manual_seed(0)
    cfg = METHODS[method].network
    net = build_network(cfg, OBS + ACT, 1, 10, members=2)
    with torch.no_grad():
        basis = net.basis(torch.randn(64, OBS + ACT) * 3)  # (E, B, k, d)
    k = cfg.experts
    gram = basis @ basis.transpose(-1, -2)
    assert basis.shape == (2, 64, k, cfg.hidden[-1])
    assert (gram - torch.eye(k)).abs().max() < 1e-5


def test_closed_form_gram_schmidt_equals_the_reference_loop() -> None:
    """The reference's loop (MOORE ``OrthogonalLayer1D``) against our CholeskyQR2."""
    a = torch.randn(32, 6, 400, dtype=torch.float64).float()
    basis = a[:, :1] / a[:, :1].norm(dim=-1, keepdim=True)
    for i in range(1, 6):
        v = a[:, i : i + 1]
        w = v - (v @ basis.transpose(1, 2)) @ basis
        basis = torch.cat([basis, w / w.norm(dim=-1, keepdim=True)], dim=1)
    torch.testing.assert_close(gram_schmidt(a), basis, rtol=0, atol=2e-5)


# ----------------------------------------------------------------------------- PaCo
def test_paco_forward_by_hand() -> None:
    """K=2 parameter sets, Linear(2,3) ReLU Linear(3,1), T=2, one member: task t's network has
    A_t = w_t1 A_1 + w_t2 A_2 (and biases alike) in every layer: y = B_t relu(A_t x + a_t) + b_t."""
    net = build_network(PaCoNetConfig(param_sets=2, hidden=(3,)), 2, 1, 2, members=1)
    _init_all_(net)
    x = torch.tensor([[0.3, -1.2], [2.0, 0.5]])
    task = torch.tensor([1, 0])
    first, out = net.layers
    for b in range(2):
        w = net.task_weights[0, int(task[b])]
        a_t = w[0] * first.weight[0, 0] + w[1] * first.weight[0, 1]
        ab_t = w[0] * first.bias[0, 0, 0] + w[1] * first.bias[0, 1, 0]
        b_t = w[0] * out.weight[0, 0] + w[1] * out.weight[0, 1]
        bb_t = w[0] * out.bias[0, 0, 0] + w[1] * out.bias[0, 1, 0]
        y = torch.relu(x[b] @ a_t + ab_t) @ b_t + bb_t
        torch.testing.assert_close(net(x, task)[0, b], y, rtol=1e-5, atol=1e-6)


def test_paco_task_weights_are_the_combination_of_the_shared_set() -> None:
    torch.manual_seed(0)
    net = build_network(PaCoNetConfig(param_sets=5, hidden=(16, 16)), 6, 3, 4, members=2)
    _init_all_(net)
    x = torch.randn(7, 6)
    for t in range(4):
        composed = net.composed(t)
        for layer, (weight, bias) in zip(net.layers, composed, strict=True):
            w = net.task_weights[:, t]  # (E, K)
            expect = sum(w[:, k, None, None] * layer.weight[:, k] for k in range(5))
            torch.testing.assert_close(weight, expect)
            torch.testing.assert_close(
                bias, sum(w[:, k, None] * layer.bias[:, k, 0] for k in range(5))
            )
        h = x.expand(2, -1, -1)
        for i, (weight, bias) in enumerate(composed):  # a plain MLP with task t's weights
            h = torch.baddbmm(bias[:, None], h, weight)
            h = torch.relu(h) if i < len(composed) - 1 else h
        torch.testing.assert_close(net(x, torch.full((7,), t)), h, rtol=1e-5, atol=1e-5)


def test_paco_parameter_sets_start_identical() -> None:
    net = build_network(METHODS["paco"].network, OBS, 2 * ACT, 10, members=1)
    for layer in net.layers:
        assert torch.equal(layer.weight[:, :1].expand_as(layer.weight), layer.weight)


def _paco_agent(reset: str, tasks: int = 2) -> tuple[MultiTaskSAC, Batch]:
    torch.manual_seed(0)
    net = PaCoNetConfig(param_sets=3, hidden=(32, 32), reset=reset)
    cfg = toy_config(policy_net=net, q_net=net, method="paco")
    agent = MultiTaskSAC(cfg, 6, 2, tasks, torch.device("cpu"))
    rows = 8 * tasks
    task = torch.arange(tasks).repeat_interleave(8)
    reward = torch.where(task == 0, 1e4, 0.1)  # task 0's TD error is far above 3e3: masked
    batch = Batch(
        obs=torch.randn(rows, 6), action=torch.rand(rows, 2) * 2 - 1, reward=reward,
        next_obs=torch.randn(rows, 6), terminated=torch.zeros(rows), task=task,
    )  # fmt: skip
    return agent, batch


def test_paco_mask_out_stops_the_masked_tasks_gradient() -> None:
    agent, batch = _paco_agent("off")
    total = agent._losses(batch, batch.task)[0].total
    for net in (agent.policy.net, agent.q.net):  # the protocol's row_mask, in the agent's losses
        assert net.masked.tolist() == [True, False]
    total.backward()
    for net in (agent.policy.net, agent.q.net):
        grad = net.task_weights.grad  # (E, T, K): w_t is used by task t's rows only
        assert torch.all(grad[:, 0] == 0) and torch.all(grad[:, 1].abs().sum(-1) > 0)
        for layer in net.layers:  # the shared set still learns from task 1
            assert layer.weight.grad.abs().sum() > 0
    # without the mask-out, task 0 does send a gradient
    agent, batch = _paco_agent("off")
    for net in (agent.policy.net, agent.q.net):
        net.cfg = PaCoNetConfig(param_sets=3, hidden=(32, 32), mask_threshold=0)
    agent._losses(batch, batch.task)[0].total.backward()
    assert not agent.q.net.masked.any()
    assert torch.all(agent.q.net.task_weights.grad[:, 0].abs().sum(-1) > 0)


@pytest.mark.parametrize("reset", ["off", "interpolate", "copy"])
def test_paco_reset_of_a_masked_tasks_vector(reset: str) -> None:
    agent, batch = _paco_agent(reset)
    nets = (agent.policy.net, agent.q.net)
    before = {id(n): n.task_weights.detach().clone() for n in nets}
    agent.update(batch)  # the protocol's after_update resets the masked task
    for net in nets:
        w, old = net.task_weights.detach(), before[id(net)]
        assert net.masked_count.tolist() == [1, 0]
        assert not torch.equal(w[:, 1], old[:, 1])  # the unmasked task learned
        if reset == "off":  # masked: no gradient, Adam's first step leaves it exactly in place
            assert torch.equal(w[:, 0], old[:, 0])
        else:  # two tasks: the only convex combination / copy is the other task's vector
            assert torch.equal(w[:, 0], w[:, 1])


# ----------------------------------------------------------------------------- CARE
def test_care_forward_by_hand() -> None:
    """k=2 encoders Linear(2,3) ReLU Linear(3,2), embeddings of 2, T=2, MLP hidden (3,), out 1:
    z_t = T3 relu(T2 relu(T1 relu(e_t)));  a = softmax(A3 relu(A2 relu(A1 z_t)));
    h = sum_j a_j E2_j relu(E1_j x);  y = M2 relu(M1 [h, z_t]) (every layer with its bias)."""
    cfg = CARENetConfig(experts=2, hidden=(3,), encoder_hidden=3, embed_dim=2)
    net = build_network(cfg, 2, 1, 2, members=1)
    _init_all_(net)
    x = torch.tensor([[0.3, -1.2], [2.0, 0.5]])
    task = torch.tensor([1, 0])

    def lin(layer, v):
        return v @ layer.weight[0] + layer.bias[0, 0]

    def mlp3(layers, v):
        return lin(layers[2], torch.relu(lin(layers[1], torch.relu(lin(layers[0], v)))))

    e1, e2 = net.encoders
    for b in range(2):
        t = int(task[b])
        z = mlp3(net.task_trunk, torch.relu(net.embedding[0, t]))
        a = torch.softmax(mlp3(net.attention_mlp, z), -1)
        enc = [
            torch.relu(x[b] @ e1.weight[0, j] + e1.bias[0, j, 0]) @ e2.weight[0, j]
            + e2.bias[0, j, 0]
            for j in range(2)
        ]
        h = a[0] * enc[0] + a[1] * enc[1]
        y = lin(net.body[1], torch.relu(lin(net.body[0], torch.cat([h, z]))))
        torch.testing.assert_close(net(x, task)[0, b], y, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("method", ["care", "care-mt50"])
def test_care_attention_rows_sum_to_one(method: str) -> None:
    torch.manual_seed(0)
    net = build_network(METHODS[method].network, OBS + ACT, 1, 50, members=2)
    task = torch.randint(0, 50, (64,))
    att = net.row_attention(task)
    assert att.shape == (2, 64, METHODS[method].network.experts)
    assert (att >= 0).all()
    torch.testing.assert_close(att.sum(-1), torch.ones(2, 64))


def test_care_uses_a_context_file_frozen(tmp_path: Path) -> None:
    from softmod.task_context import with_task_context

    ctx = np.random.default_rng(0).normal(size=(4, 5))
    np.save(tmp_path / "c.npy", ctx)
    cfg = toy_config(
        policy_net=METHODS["care"].network, q_net=METHODS["care"].network, method="care"
    )
    cfg = with_task_context(cfg, tmp_path / "c.npy")
    assert cfg.policy_net.context_size == 5
    net = build_network(cfg.q_net, 8, 1, 4, members=2)
    torch.testing.assert_close(net.context, torch.tensor(ctx, dtype=torch.float32))
    assert "context" not in dict(net.named_parameters()) and net.embedding is None
    assert "context" in net.state_dict()  # saved with the checkpoint
    # the context decides the attention: another context, another attention
    a1 = net.row_attention(torch.arange(4))
    net.context.mul_(-3.0)
    a2 = net.row_attention(torch.arange(4))
    assert not torch.allclose(a1, a2)


# ----------------------------------------------------------------------------- all three
@pytest.mark.parametrize("method", ["moore", "paco", "care"])
def test_gradients_reach_every_parameter(method: str) -> None:
    torch.manual_seed(0)
    tasks = 10
    cfg = METHODS[method].network
    if method == "paco":  # the per-set gradients differ only through w: the sets start identical
        cfg = PaCoNetConfig(param_sets=5)
    for members, in_dim, out in [(1, OBS, 2 * ACT), (2, OBS + ACT, 1)]:
        net = build_network(cfg, in_dim, out, tasks, members=members)
        task = torch.arange(tasks).repeat(3)
        net(torch.randn(3 * tasks, in_dim), task).pow(2).sum().backward()
        k = cfg.param_sets if method == "paco" else cfg.experts
        for name, p in net.named_parameters():
            assert p.grad is not None, name
            per_member = p.grad.reshape(members, -1).abs().sum(1)
            assert torch.all(per_member > 0), f"{method}.{name} gets no gradient"
            if p.dim() >= 3 and p.shape[1] in (tasks, k):  # per task / expert / parameter set
                slices = p.grad.flatten(2).abs().sum(-1)
                assert torch.all(slices > 0), f"{method}.{name}: a task or expert gets none"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (np.zeros((9, 5)), "shape (9, 5), expected (10, C)"),
        ({"reach-v3": [1.0], "fly-v1": [2.0]}, "unknown task 'fly-v1'"),
        ({"reach-v1": [1.0]}, "no row for task(s) push-v3"),
        ([[1.0, float("nan")]] * 10, "finite"),
    ],
)
def test_bad_task_context_is_one_line_exit_2_before_any_env(
    content: object, message: str, tmp_path: Path, capsys
) -> None:
    path = tmp_path / ("c.npy" if isinstance(content, np.ndarray) else "c.json")
    if isinstance(content, np.ndarray):
        np.save(path, content)
    else:
        path.write_text(json.dumps(content))
    run = tmp_path / "run"
    argv = ["train", "--method", "care", "--task-context", str(path), "--run-dir", str(run)]
    assert message in _error(argv, capsys)
    assert not run.exists()  # nothing was started


def test_task_context_for_another_method_is_refused(tmp_path: Path, capsys) -> None:
    np.save(tmp_path / "c.npy", np.zeros((10, 3)))
    argv = ["train", "--method", "moore", "--task-context", str(tmp_path / "c.npy")]
    assert "applies to CARE only" in _error([*argv, "--run-dir", str(tmp_path / "r")], capsys)


def test_published_reference_rows_sit_beside_our_results() -> None:
    from types import SimpleNamespace

    from softmod.report.published import published_table

    ours = {("mt10", "conditioned", "moore"): SimpleNamespace(mean=0.612, std=0.05, n=3)}
    table = published_table(ours)  # type: ignore[arg-type]
    md = table.to_markdown()
    rows = {(r[0], r[1], r[2]): r for r in table.rows}
    assert rows["MOORE", "MT10", "88.7"][3] == "MT10-Conditioned moore: 61.2 ± 5.0 (3)"
    assert "ICLR 2024" in rows["MOORE", "MT10", "88.7"][4]
    assert rows["MOORE", "MT10", "83.2"][3].startswith("MT10-Conditioned moore: 61.2")
    assert (
        "Meta-World+" in rows["PaCo", "MT50", "58.4"][4] and rows["PaCo", "MT50", "58.4"][3] == "–"
    )
    for published in ("84.9", "65.8", "72.9", "72.0", "73.6"):
        assert f"| {published} |" in md


@pytest.mark.parametrize("method", NEW)
def test_every_new_method_passes_the_option_checks(method: str) -> None:
    from softmod.validation import validate_network

    validate_network(METHODS[method].network, "policy")  # raises ConfigError on a bad field
