"""The CUDA-graph update's host-side logic, checked on the CPU (no GPU on the CI machine).

What a CPU can check: the warm-up updates are undone exactly (parameters, targets, temperatures
and Adam's state), the fallback to eager updates, and that training picks the eager update on CPU.
The capture and replay themselves need a GPU (``softmod bench`` on CUDA).
"""

from __future__ import annotations

import copy

import pytest
import torch

from softmod.buffer import Batch
from softmod.cli import TrainArgs
from softmod.sac import graphed
from softmod.sac.agent import MultiTaskSAC
from softmod.sac.graphed import _restore, _snapshot, graph_safe, graphed_update, update_fn

OBS, ACT, TASKS, B = 6, 2, 3, 24


def _agent(method: str = "soft-shallow") -> MultiTaskSAC:
    cfg = TrainArgs(benchmark="toy", method=method, toy_tasks=TASKS).to_config()
    torch.manual_seed(0)
    return MultiTaskSAC(cfg, OBS, ACT, TASKS, torch.device("cpu"))


def _batch(seed: int) -> Batch:
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
    task = torch.arange(TASKS).repeat_interleave(B // TASKS)
    return Batch(r(B, OBS), r(B, ACT).tanh(), r(B), r(B, OBS), torch.zeros(B), task)


def _state(agent: MultiTaskSAC) -> list[torch.Tensor]:
    opt = [v for o in (agent.policy_opt, agent.q_opt, agent.alpha_opt)
           for st in o.state.values() for v in st.values() if torch.is_tensor(v)]  # fmt: skip
    return [p.detach().clone() for p in agent.parameters()] + [v.clone() for v in opt]


@pytest.mark.parametrize("stepped", [False, True], ids=["fresh-adam", "after-updates"])
def test_warmup_is_undone_exactly(stepped: bool) -> None:
    a = _agent()
    if stepped:  # optimiser state already exists (a resumed or running run)
        for i in range(2):
            a.update(_batch(10 + i))
    b = copy.deepcopy(a)
    saved = _snapshot(a)
    for i in range(3):  # what GraphedUpdate's warm-up does to the live agent
        a.update(_batch(20 + i))
    assert not all(torch.equal(x, y) for x, y in zip(_state(a), _state(b), strict=False))
    _restore(a, saved)
    torch.manual_seed(5)
    a.update(_batch(1))
    torch.manual_seed(5)
    b.update(_batch(1))  # the same first update without any warm-up
    sa, sb = _state(a), _state(b)
    assert len(sa) == len(sb) and len(sa) > len(list(a.parameters()))
    for x, y in zip(sa, sb, strict=True):
        assert torch.equal(x, y)


def test_cpu_trains_eagerly_and_capture_failure_falls_back() -> None:
    a = _agent()
    assert graph_safe(a) and not graph_safe(_agent("mt-mh-sac"))
    assert update_fn(a, _batch(0), True, lambda m: None) == a.update  # CPU: never a graph
    before, warnings = _state(a), []
    fn = graphed_update(a, _batch(0), warnings.append)  # capture refuses a CPU agent
    assert fn == a.update
    assert len(warnings) == 1 and "capture failed" in warnings[0] and "eagerly" in warnings[0]
    for x, y in zip(before, _state(a), strict=True):  # nothing was updated by the attempt
        assert torch.equal(x, y)


_REAL = graphed.GraphedUpdate


class _FakeGraph:
    """Stands in for a captured CUDA graph: replay() runs ``fn`` (or nothing: a broken graph)."""

    def __init__(self, fn=None) -> None:
        self.fn = fn

    def replay(self) -> None:
        if self.fn is not None:
            self.fn()


def _fake_graphed(agent: MultiTaskSAC, works: bool) -> graphed.GraphedUpdate:
    g = object.__new__(_REAL)
    g.agent, g.static, g.checked = agent, _batch(0), False
    box: dict = {}
    g.graph = _FakeGraph((lambda: box.update(m=agent.update(g.static))) if works else None)
    g.metrics = {"loss/q": torch.zeros(())}
    return g


def test_first_replay_check_and_eager_fallback(monkeypatch) -> None:
    a = _agent()
    b = copy.deepcopy(a)
    working = _fake_graphed(a, works=True)
    working(_batch(3))  # the live parameters moved: accepted
    assert working.checked
    broken = lambda agent, example: _fake_graphed(agent, False)  # noqa: E731
    monkeypatch.setattr(graphed, "GraphedUpdate", broken)
    warnings: list[str] = []
    fn = graphed_update(b, _batch(0), warnings.append)
    before = _state(b)
    metrics = fn(_batch(3))  # the broken graph changed nothing: this update runs eagerly
    assert "loss/q" in metrics and len(warnings) == 1 and "did not update" in warnings[0]
    assert not torch.equal(before[0], _state(b)[0])
    fn(_batch(4))  # from now on eager, no new warning
    assert len(warnings) == 1
