"""The gradient seam (issue 19.5): ``plain`` is bit-identical to the update before the seam.

``reference_update`` below is a verbatim copy of ``MultiTaskSAC.update`` and ``_losses`` as they
were before the seam (main at f7bbc88, with the network protocol), run on a second agent built
from the same seed.
"""

from __future__ import annotations

import pytest
import torch

from softmod.buffer import Batch
from softmod.config import (
    EnvConfig,
    HardRoutingNetConfig,
    MLPNetConfig,
    SACConfig,
    SoftModularNetConfig,
)
from softmod.precision import autocast
from softmod.sac import losses
from softmod.sac.agent import MultiTaskSAC, clip_grad_norm_members

from .conftest import toy_config

T, OBS, ACT, PER_TASK = 4, 6, 3, 8


def reference_update(self: MultiTaskSAC, batch: Batch) -> None:
    """The update before the gradient seam (copy of main f7bbc88's code)."""
    s, task = self.cfg, batch.task
    for net in self._nets:
        net.before_update()
    with autocast(self.precision, self.log_alpha.device):
        new_action, log_prob = self.policy.sample(batch.obs, task)
        loss_alpha = losses.alpha_loss(self.log_alpha[task], log_prob, self.target_entropy)
        self.alpha_opt.zero_grad(set_to_none=True)
        loss_alpha.backward()
        self.alpha_opt.step()
        log_alpha = self.log_alpha.detach()
        alpha = log_alpha.exp()[task]
        if s.balance:
            weight = losses.balance_weights(log_alpha)[task]
        else:
            weight = torch.ones_like(alpha)
        with torch.no_grad():
            next_action, next_log_prob = self.policy.sample(batch.next_obs, task)
            next_q = self.q_target(batch.next_obs, next_action, task).min(0).values
            target = losses.q_target(
                batch.reward, batch.terminated, next_q, next_log_prob, alpha, s.gamma
            )
        q_pred = self.q(batch.obs, batch.action, task)
        loss_q = losses.critic_loss(q_pred, target, weight)
        self.q.requires_grad_(False)
        q_new = self.q(batch.obs, new_action, task).min(0).values
        self.q.requires_grad_(True)
        loss_pi = losses.policy_loss(q_new, log_prob, alpha, weight)
        total = loss_q + loss_pi
        if self._extra_loss_nets:
            rows = {
                id(self.policy.net): (weight * (alpha * log_prob - q_new)).detach()[None],
                id(self.q.net): ((q_pred - target).pow(2) * weight).detach(),
            }
            for net in self._extra_loss_nets:
                total = total + net.extra_loss(rows[id(net)], task)
    self.policy_opt.zero_grad(set_to_none=True)
    self.q_opt.zero_grad(set_to_none=True)
    total.backward()
    torch.nn.utils.clip_grad_norm_(self.policy.parameters(), s.grad_clip)
    clip_grad_norm_members(self._q_params, s.grad_clip, members=2)
    self.policy_opt.step()
    self.q_opt.step()
    with torch.no_grad():
        torch._foreach_lerp_(self._q_target_params, self._q_params, s.tau)


def make_batch(seed: int) -> Batch:
    """A stratified batch (rows sorted by task) of random transitions."""
    g = torch.Generator().manual_seed(seed)
    b = T * PER_TASK
    return Batch(
        obs=torch.randn(b, OBS, generator=g),
        action=torch.rand(b, ACT, generator=g) * 2 - 1,
        reward=torch.randn(b, generator=g),
        next_obs=torch.randn(b, OBS, generator=g),
        terminated=torch.zeros(b),
        task=torch.arange(T).repeat_interleave(PER_TASK),
    )


def make_agent(net, balance: bool, precision: str, **overrides) -> MultiTaskSAC:
    cfg = toy_config(
        env=EnvConfig(benchmark="toy", toy_tasks=T),
        sac=SACConfig(batch_per_task=PER_TASK, balance=balance),
        policy_net=net,
        q_net=net,
        precision=precision,
        **overrides,
    )
    torch.manual_seed(0)
    return MultiTaskSAC(cfg, OBS, ACT, T, torch.device("cpu"))


def agent_state(agent: MultiTaskSAC) -> dict[str, torch.Tensor]:
    out = dict(agent.state_dict())
    for name, opt in (("pi", agent.policy_opt), ("q", agent.q_opt), ("a", agent.alpha_opt)):
        for pid, st in opt.state_dict()["state"].items():
            out.update({f"{name}.{pid}.{k}": v for k, v in st.items()})
    return out


NETS = {
    "mlp": MLPNetConfig(hidden=(32, 32)),
    "soft-modules": SoftModularNetConfig(
        layers=2, modules=2, module_dim=16, base_dim=32, gate_dim=16
    ),
    "hard-routing": HardRoutingNetConfig(layers=2, modules=2, module_dim=16, base_dim=32),
}


@pytest.mark.parametrize(
    ("net", "balance", "precision"),
    [("mlp", False, "fp32"), ("soft-modules", True, "fp32"), ("hard-routing", False, "fp32"),
     ("soft-modules", True, "bf16")],
)  # fmt: skip
def test_plain_is_bit_identical_to_the_update_before_the_seam(net, balance, precision) -> None:
    new, old = (make_agent(NETS[net], balance, precision) for _ in range(2))
    start_new, start_old = new.state_dict(), old.state_dict()
    assert all(torch.equal(start_new[k], start_old[k]) for k in start_new)
    for step in range(6):
        batch = make_batch(step)
        torch.manual_seed(100 + step)
        new.update(batch)
        torch.manual_seed(100 + step)
        reference_update(old, batch)
    sa, sb = agent_state(new), agent_state(old)
    assert sa.keys() == sb.keys()
    different = [k for k in sa if not torch.equal(sa[k], sb[k])]
    assert not different, different
    start = make_agent(NETS[net], balance, precision).state_dict()
    moved = [k for k, v in start.items() if v.is_floating_point() and not torch.equal(v, sa[k])]
    assert moved  # the updates did change the agent (the comparison is not vacuous)
