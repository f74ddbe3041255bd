"""The network protocol (softmod/nets/protocol.py): what every network declares, and that a NEW
network is picked up end to end after the three edits of docs/adding-a-network.md."""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from torch import nn

import softmod.config as config
import softmod.nets as nets
from softmod.config import (
    CARENetConfig,
    EnvConfig,
    HardRoutingNetConfig,
    MixExpertNetConfig,
    MLPNetConfig,
    MOORENetConfig,
    MultiHeadNetConfig,
    PaCoNetConfig,
    SingleTaskNetConfig,
    SoftModularNetConfig,
    config_from_dict,
    load_config,
    network_types,
    to_dict,
)
from softmod.loop import RunInterrupted, train
from softmod.methods import METHODS, MethodSpec
from softmod.nets import TaskNetwork, build_actor_critic, build_network, count_parameters
from softmod.nets.layers import StackedLinear
from softmod.params import method_parameter_counts
from softmod.resume import resume
from softmod.runstate import learner_state, load_learner_state
from softmod.sac.agent import MultiTaskSAC
from softmod.sac.graphed import graph_safe
from softmod.validation import ConfigError

from .test_resume import assert_same_run, full_state, small_config

SMALL = [  # one small config per network type of the union
    MLPNetConfig(hidden=(16, 16)),
    MultiHeadNetConfig(hidden=(16, 16)),
    MixExpertNetConfig(experts=3, hidden=(16, 16), gate_hidden=(8,)),
    HardRoutingNetConfig(layers=3, modules=3, module_dim=8, base_dim=12),
    SingleTaskNetConfig(hidden=(16, 16)),
    SoftModularNetConfig(layers=3, modules=2, module_dim=8, base_dim=12, gate_dim=8),
    MOORENetConfig(experts=3, hidden=(16, 16)),
    PaCoNetConfig(param_sets=3, hidden=(16, 16)),
    CARENetConfig(experts=3, hidden=(16, 16), encoder_hidden=8, embed_dim=8),
]
GRAPH_SAFE = {  # no host sync in forward
    MLPNetConfig,
    MixExpertNetConfig,
    SoftModularNetConfig,
    MOORENetConfig,
    PaCoNetConfig,
    CARENetConfig,
}


def test_the_union_is_the_one_list_of_network_types() -> None:
    union = typing.get_args(config.NetworkConfig)
    assert list(network_types().values()) == list(union)
    assert {type(c) for c in SMALL} == set(union)
    assert {type(spec.network) for spec in METHODS.values()} == set(union)  # each has a method
    for cfg in SMALL:  # a saved config names its type and is read back as that type
        run = dataclasses.replace(small_config(), policy_net=cfg, q_net=cfg)
        assert config_from_dict(to_dict(run)) == run
    data = to_dict(small_config())
    data["q_net"]["type"] = "NoSuchNetConfig"
    with pytest.raises(ValueError, match="unknown network config type 'NoSuchNetConfig'"):
        config_from_dict(data)


@pytest.mark.parametrize("cfg", SMALL, ids=lambda c: type(c).__name__)
def test_every_network_declares_the_protocol(cfg) -> None:
    torch.manual_seed(0)
    net = build_network(cfg, 5, 3, 4, members=2)
    assert isinstance(net, TaskNetwork)
    assert net.graph_safe == (type(cfg) in GRAPH_SAFE)
    names = [n for n, _ in net.named_parameters()]
    for prefix in net.task_specific:  # every declared name exists
        assert any(n == prefix or n.startswith(prefix + ".") for n in names), prefix
    shared, specific = net.shared_parameters(), net.task_specific_parameters()
    assert len(shared) + len(specific) == len(names) and specific
    # task-specific: each task's loss reaches only its own slice; shared: tasks overlap
    x = torch.randn(8, 5)
    grads = []
    for t in (0, 1):
        net.zero_grad()
        net(x, torch.full((8,), t)).pow(2).sum().backward()
        grads.append({n: (p.grad if p.grad is not None else torch.zeros_like(p)) for n, p in
                      net.named_parameters()})  # fmt: skip
    for name in names:
        overlap = (grads[0][name] * grads[1][name]).abs().sum()
        if net.is_task_specific(name):
            assert overlap == 0, name
    assert any((grads[0][n] * grads[1][n]).abs().sum() > 0 for n in names) == bool(shared)


def test_extra_state_round_trips_hard_routing_routes() -> None:
    net = build_network(SMALL[3], 5, 3, 4, members=2)
    assert net.has_extra_loss and not nets.build_network(SMALL[0], 5, 3, 4).extra_state()
    routes = net.extra_state()["routes"].clone()
    for _ in range(20):  # a different route eventually (4 tasks x 3 layers x 3 modules)
        net.before_update()
        if not torch.equal(net.extra_state()["routes"], routes):
            break
    assert not torch.equal(net.extra_state()["routes"], routes)
    net.load_extra_state({"routes": routes})
    assert torch.equal(net.routes(), routes)
    with pytest.raises(ValueError, match="holds no extra state"):
        build_network(SMALL[0], 5, 3, 4).load_extra_state({"routes": routes})


def test_checkpoints_hold_extra_state_and_old_route_checkpoints_still_load() -> None:
    cfg = small_config(policy_net=SMALL[3], q_net=SMALL[3])
    torch.manual_seed(0)
    agent = MultiTaskSAC(cfg, 5, 2, 4, torch.device("cpu"))
    agent.policy.net.before_update()
    state = learner_state(agent)
    assert set(state["net_state"]) == {"policy.net", "q.net", "q_target.net"}
    old = {k: v for k, v in state.items() if k != "net_state"}  # the format before the protocol
    old["routes"] = {name: d["routes"] for name, d in state["net_state"].items()}
    for saved in (state, old):
        torch.manual_seed(1)
        fresh = MultiTaskSAC(cfg, 5, 2, 4, torch.device("cpu"))
        assert not torch.equal(fresh.policy.net.routes(), agent.policy.net.routes())
        load_learner_state(fresh, saved)
        assert torch.equal(fresh.policy.net.routes(), agent.policy.net.routes())
        assert torch.equal(fresh.q.net.routes(), agent.q.net.routes())


# ----------------------------------------------------------------------------- a new network
@dataclass(frozen=True)
class TinyNetConfig:
    """A test network: one hidden layer on the state, plus a per-task output bias."""

    hidden: int = 16


class TinyNet(TaskNetwork):
    """``out(relu(body(x))) + bias[task]``; counts its updates in an extra (checkpointed) state."""

    graph_safe = True
    task_specific = ("task_bias",)

    def __init__(
        self, cfg: TinyNetConfig, in_dim: int, out_dim: int, num_tasks: int, members: int = 1
    ) -> None:
        super().__init__()
        self.body = StackedLinear(members, in_dim, cfg.hidden)
        self.out = StackedLinear(members, cfg.hidden, out_dim, output=True)
        self.task_bias = nn.Parameter(torch.zeros(members, num_tasks, out_dim))
        self.updates = torch.zeros((), dtype=torch.long)

    def forward(self, x: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        """``(B, in)`` or ``(E, B, in)``, ``task (B,)`` -> ``(E, B, out)``."""
        return self.out(torch.relu(self.body(x))) + self.task_bias[:, task]

    def before_update(self) -> None:
        """Count the agent's updates."""
        self.updates += 1

    def extra_state(self) -> dict[str, torch.Tensor]:
        """The update count (outside the state_dict on purpose: only a checkpoint keeps it)."""
        return {"updates": self.updates.clone()}

    def load_extra_state(self, state: dict[str, torch.Tensor]) -> None:
        """Restore the update count."""
        self.updates = state["updates"].clone()


@pytest.fixture
def tiny_network(monkeypatch: pytest.MonkeyPatch) -> TinyNetConfig:
    """The three edits of docs/adding-a-network.md, made by the test instead of in the files."""
    # 1. config.py: the config dataclass, added to the NetworkConfig union
    monkeypatch.setattr(config, "NetworkConfig", config.NetworkConfig | TinyNetConfig)
    # 2. nets/: the network's file, and its `case` in build_network
    real = nets.build_network

    def build_with_tiny(cfg, in_dim: int, out_dim: int, num_tasks: int, members: int = 1):
        match cfg:
            case TinyNetConfig():
                return TinyNet(cfg, in_dim, out_dim, num_tasks, members)
            case _:
                return real(cfg, in_dim, out_dim, num_tasks, members)

    monkeypatch.setattr(nets, "build_network", build_with_tiny)
    # 3. methods.py: one method entry
    spec = MethodSpec(TinyNetConfig(), balance=False, paper_steps={}, summary="Tiny: a test net")
    monkeypatch.setitem(METHODS, "tiny", spec)
    return spec.network


def test_a_new_network_is_built_and_counted(tiny_network) -> None:
    tiny = tiny_network
    policy, q = build_actor_critic(tiny, tiny, 39, 4, 10)
    assert isinstance(policy.net, TinyNet) and isinstance(q.net, TinyNet)
    # softmod params: policy 39->16->8 + 10x8 task biases; one Q-function 43->16->1 + 10x1
    counts = {"policy": 39 * 16 + 16 + 16 * 8 + 8 + 80, "q": 43 * 16 + 16 + 16 + 1 + 10}
    assert method_parameter_counts("tiny", 10) == counts
    assert count_parameters(policy) == counts["policy"]
    agent = MultiTaskSAC(small_config(policy_net=tiny, q_net=tiny), 5, 2, 4, torch.device("cpu"))
    assert graph_safe(agent)  # the CUDA-graph update would capture it (on CUDA)


def test_a_network_left_out_of_the_union_is_refused_before_training(tmp_path: Path) -> None:
    cfg = small_config(policy_net=TinyNetConfig(), q_net=TinyNetConfig())
    with pytest.raises(ConfigError, match="policy network config TinyNetConfig is not a Netw"):
        train(cfg, tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_a_new_network_trains_and_resumes_bit_identically(tiny_network, tmp_path: Path) -> None:
    tiny = tiny_network
    env = EnvConfig(benchmark="toy", horizon=30, toy_tasks=4, goals="conditioned")
    cfg = small_config(method="tiny", policy_net=tiny, q_net=tiny, env=env, total_steps=400)
    done = train(cfg, tmp_path / "a", progress=False)
    assert load_config(tmp_path / "a" / "config.json") == cfg  # the saved type reads back
    with pytest.raises(RunInterrupted):
        train(cfg, tmp_path / "b", progress=False, stop_at=150)
    resumed = resume(tmp_path / "b", progress=False)
    assert_same_run(tmp_path / "a", tmp_path / "b")  # bit-identical, extra state included
    state = full_state(tmp_path / "b")
    assert done.updates == resumed.updates > 0
    assert int(state["net_state.policy.net.updates"]) == resumed.updates  # survived the resume
    assert int(state["net_state.q.net.updates"]) == resumed.updates
    assert state["agent.policy.net.task_bias"].abs().sum() > 0  # trained: per-task biases moved


def test_the_network_list_covers_every_network_type() -> None:
    from softmod.config import network_types
    from softmod.methods import METHODS

    from .conftest import NETWORK_METHODS

    covered = {type(METHODS[m].network) for m in NETWORK_METHODS}
    assert covered == set(network_types().values())
