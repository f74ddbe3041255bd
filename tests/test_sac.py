"""Multi-task SAC: losses against hand-computed values, per-task temperatures, clipping."""

from __future__ import annotations

import pytest
import torch

from softmod.buffer import Batch
from softmod.sac import losses
from softmod.sac.agent import MultiTaskSAC, clip_grad_norm_members

from .conftest import toy_config


def test_q_target_bootstraps_unless_terminal() -> None:
    y = losses.q_target(
        reward=torch.tensor([1.0, 2.0]),
        terminated=torch.tensor([0.0, 1.0]),
        next_q_min=torch.tensor([10.0, 20.0]),
        next_log_prob=torch.tensor([-1.0, -2.0]),
        alpha=torch.tensor([0.5, 0.1]),
        gamma=0.9,
    )
    # 1 + 0.9 * (10 - 0.5 * -1) = 10.45 ; terminal row: just the reward
    assert torch.allclose(y, torch.tensor([10.45, 2.0]))


def test_critic_loss_is_the_weighted_mse_summed_over_critics() -> None:
    q = torch.tensor([[1.0, 2.0], [3.0, 4.0]])  # (critics, rows)
    loss = losses.critic_loss(q, torch.tensor([2.0, 2.0]), torch.tensor([1.0, 3.0]))
    # critic 1: mean(1*1, 3*0) = 0.5 ; critic 2: mean(1*1, 3*4) = 6.5
    assert loss.item() == pytest.approx(7.0)


def test_policy_loss_hand_computed() -> None:
    loss = losses.policy_loss(
        q_new_min=torch.tensor([1.0, 2.0]),
        log_prob=torch.tensor([-1.0, -2.0]),
        alpha=torch.tensor([0.5, 0.1]),
        weight=torch.tensor([1.0, 3.0]),
    )
    # mean(1 * (-0.5 - 1), 3 * (-0.2 - 2)) = mean(-1.5, -6.6)
    assert loss.item() == pytest.approx(-4.05)


def test_alpha_loss_hand_computed_and_detached_from_the_policy() -> None:
    log_prob = torch.tensor([-1.0, -5.0], requires_grad=True)
    log_alpha = torch.tensor([0.1, -0.2], requires_grad=True)
    loss = losses.alpha_loss(log_alpha, log_prob, target_entropy=-4.0)
    assert loss.item() == pytest.approx(-0.65)  # -mean(0.1 * -5, -0.2 * -9)
    loss.backward()
    assert log_prob.grad is None or torch.all(log_prob.grad == 0)
    assert torch.allclose(log_alpha.grad, torch.tensor([2.5, 4.5]))  # -(logp + H) / B


def test_balance_weights_are_T_softmax_of_minus_log_alpha_without_gradient() -> None:
    log_alpha = torch.tensor([0.0, -1.0, 0.5], requires_grad=True)
    w = losses.balance_weights(log_alpha)
    expected = 3 * torch.exp(-log_alpha.detach()) / torch.exp(-log_alpha.detach()).sum()
    assert torch.allclose(w, expected)
    assert not w.requires_grad
    assert w.sum().item() == pytest.approx(3.0)
    assert w[1] > w[0] > w[2]  # lower temperature -> larger weight


def _agent(num_tasks: int = 4) -> MultiTaskSAC:
    torch.manual_seed(0)
    return MultiTaskSAC(toy_config(), obs_dim=2, act_dim=2, num_tasks=num_tasks, device="cpu")


def _batch(task: list[int]) -> Batch:
    g = torch.Generator().manual_seed(1)
    n = len(task)
    return Batch(
        obs=torch.rand(n, 2, generator=g),
        action=torch.rand(n, 2, generator=g) * 2 - 1,
        reward=torch.rand(n, generator=g),
        next_obs=torch.rand(n, 2, generator=g),
        terminated=torch.zeros(n),
        task=torch.tensor(task),
    )


def test_each_task_has_its_own_temperature_moved_by_its_own_entropy() -> None:
    agent = _agent()
    batch = _batch([1] * 16)  # only task 1 rows
    before = agent.log_alpha.detach().clone()
    torch.manual_seed(7)
    with torch.no_grad():
        _, log_prob = agent.policy.sample(batch.obs, batch.task)  # the update's first sample
    torch.manual_seed(7)
    agent.update(batch)
    after = agent.log_alpha.detach()
    # tasks without rows keep their temperature exactly
    assert torch.equal(after[[0, 2, 3]], before[[0, 2, 3]])
    # Adam's first step moves log alpha_1 by lr * sign(mean(log pi + H)): up when entropy < target
    direction = torch.sign((log_prob + agent.target_entropy).mean())
    assert (after[1] - before[1]).item() == pytest.approx(direction.item() * 3e-4, rel=1e-3)


def test_update_changes_networks_and_moves_targets_by_tau() -> None:
    agent = _agent()
    q0 = [p.detach().clone() for p in agent.q.parameters()]
    t0 = [p.detach().clone() for p in agent.q_target.parameters()]
    agent.update(_batch([0, 1, 2, 3] * 4))
    q1 = list(agent.q.parameters())
    t1 = list(agent.q_target.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(q0, q1, strict=True))
    for a0, a1, tq in zip(t0, t1, q1, strict=True):  # target = (1 - tau) target + tau q
        assert torch.allclose(a1, a0 + 0.005 * (tq.detach() - a0), atol=1e-7)


def test_member_gradient_clipping_is_separate_per_critic() -> None:
    w = torch.nn.Parameter(torch.zeros(2, 3))
    b = torch.nn.Parameter(torch.zeros(2, 1))
    w.grad = torch.tensor([[3.0, 0.0, 0.0], [0.3, 0.0, 0.0]])
    b.grad = torch.tensor([[4.0], [0.4]])
    norms = clip_grad_norm_members([w, b], max_norm=1.0, members=2)
    assert torch.allclose(norms, torch.tensor([5.0, 0.5]))
    # member 0 scaled to norm 1, member 1 (norm 0.5 < 1) untouched
    assert torch.allclose(w.grad[0], torch.tensor([0.6, 0.0, 0.0]), atol=1e-6)
    assert torch.allclose(b.grad[0], torch.tensor([0.8]), atol=1e-6)
    assert torch.allclose(w.grad[1], torch.tensor([0.3, 0.0, 0.0]))
