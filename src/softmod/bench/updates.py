"""Update speed: milliseconds per SAC update, counted FLOPs, and achieved GFLOP/s.

Every method is timed at its real batch (128 rows per task) on a random stratified batch. FLOPs are
counted with ``torch.utils.flop_counter.FlopCounterMode`` over one update (matrix products only,
forward and backward) on a batch of 16 rows per task and scaled to the real batch (every counted
product is linear in the rows). The achieved rate is compared with one large matrix product
measured in the same run, the machine's practical peak for this BLAS.
"""

from __future__ import annotations

import os
import statistics
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch

from softmod.buffer import Batch, MultiTaskReplay
from softmod.config import EnvConfig, GradConfig, PlainGradConfig, RunConfig, SACConfig
from softmod.methods import get_method
from softmod.sac.agent import MultiTaskSAC

OBS_DIM, ACT_DIM = 39, 4


def make_agent(
    method: str,
    num_tasks: int,
    device: torch.device,
    precision: str = "fp32",
    grad: GradConfig | None = None,
) -> MultiTaskSAC:
    """The agent ``softmod train --method M --precision P --grad G`` builds (balance as the
    method's default; ``grad`` None: plain)."""
    spec = get_method(method)
    cfg = RunConfig(
        env=EnvConfig(),
        sac=SACConfig(balance=spec.balance),
        policy_net=spec.network,
        q_net=spec.network,
        method=method,
        precision=precision,  # type: ignore[arg-type]
        grad=grad or PlainGradConfig(),
    )
    return MultiTaskSAC(cfg, OBS_DIM, ACT_DIM, num_tasks, device)


def random_batch(num_tasks: int, per_task: int, device: torch.device, seed: int = 0) -> Batch:
    """A stratified batch of random rows, sorted by task like the replay's."""
    g = torch.Generator().manual_seed(seed)
    b = num_tasks * per_task

    def r(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=g).to(device)

    return Batch(
        obs=r(b, OBS_DIM),
        action=(torch.rand(b, ACT_DIM, generator=g) * 2 - 1).to(device),
        reward=r(b),
        next_obs=r(b, OBS_DIM),
        terminated=torch.zeros(b, device=device),
        task=torch.arange(num_tasks, device=device).repeat_interleave(per_task),
    )


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_fn(
    fn: Callable[[], object], reps: int, warmup: int, device: torch.device
) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds (all threads of this process) per call of ``fn``, for ``reps`` calls
    after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    _sync(device)
    wall, cpu = [], []
    for _ in range(reps):
        c0, start = time.process_time(), time.perf_counter()
        fn()
        _sync(device)
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - c0)
    return wall, cpu


def count_update_flops(method: str, num_tasks: int, per_task: int = 128) -> int:
    """Matrix-product FLOPs of one update at ``per_task`` rows per task (counted at 16, scaled)."""
    from torch.utils.flop_counter import FlopCounterMode

    cpu = torch.device("cpu")
    agent = make_agent(method, num_tasks, cpu)
    batch = random_batch(num_tasks, 16, cpu)
    with FlopCounterMode(display=False) as counter:
        agent.update(batch)
    return int(counter.get_total_flops() * per_task / 16)


def matmul_gflops(
    device: torch.device, size: int = 2048, reps: int = 5, precision: str = "fp32"
) -> dict[str, float]:
    """GFLOP/s of a ``size``-cubed matrix product in ``precision`` (fp32, or bf16 inputs as the
    bf16 update's products): per wall second (best of ``reps``) and per CPU second (best), the
    reference rate of the update's figures in that precision."""
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    a = torch.randn(size, size, device=device).to(dtype)
    b = torch.randn(size, size, device=device).to(dtype)
    wall, cpu = time_fn(lambda: a @ b, reps, 1, device)
    flops = 2 * size**3
    out = {"gflops": flops / min(wall) / 1e9, "gflops_per_cpu_s": flops / min(cpu) / 1e9}
    if device.type == "cpu":
        with threads(1):
            _, cpu1 = time_fn(lambda: a @ b, reps, 1, device)
        out["gflops_per_cpu_s_1_thread"] = flops / min(cpu1) / 1e9
    return out


@contextmanager
def threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` PyTorch CPU threads."""
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def bench_update(
    method: str,
    num_tasks: int,
    reps: int,
    device: torch.device,
    warmup: int = 1,
    per_task: int = 128,
    one_thread: bool = False,
    precision: str = "fp32",
) -> dict[str, Any]:
    """Milliseconds per update (median and best of ``reps``) at ``per_task`` rows per task; on
    CUDA the update of a graph-safe method is a replayed CUDA graph (:mod:`softmod.sac.graphed`)."""
    from softmod.sac.graphed import maybe_graph

    agent = make_agent(method, num_tasks, device, precision)
    batch = random_batch(num_tasks, per_task, device)
    graph_error = None
    try:
        graphed = maybe_graph(agent, batch)  # CUDA + graph-safe networks only
    except Exception as err:  # a capture that fails is timed eagerly and says why
        graphed, graph_error = None, f"{type(err).__name__}: {err}"
    update = graphed or agent.update
    times, cpu = time_fn(lambda: update(batch), reps, warmup, device)
    out: dict[str, Any] = {
        "ms_median": 1e3 * statistics.median(times),
        "ms_min": 1e3 * min(times),
        "cpu_ms_min": 1e3 * min(cpu),
        "cuda_graph": graphed is not None,
    }
    if graph_error is not None:
        out["cuda_graph_error"] = graph_error[:300]
    if one_thread and device.type == "cpu":
        # CPU time of a 1-thread update: the arithmetic efficiency, free of the thread-pool
        # spinning that inflates CPU time when other jobs share the cores
        with threads(1):
            _, cpu1 = time_fn(lambda: update(batch), reps, 0, device)
        out["cpu_ms_min_1_thread"] = 1e3 * min(cpu1)
    return out


def bench_grad_update(
    method: str, grad: str, num_tasks: int, reps: int, device: torch.device, per_task: int = 128
) -> dict[str, float]:
    """Milliseconds per eager update (median and best of ``reps``, after one untimed) of a
    network with a gradient method (issue 21; ``--grad`` name), fp32."""
    from softmod.grad import GRAD_METHODS

    agent = make_agent(method, num_tasks, device, grad=GRAD_METHODS[grad]())
    batch = random_batch(num_tasks, per_task, device)
    times, _ = time_fn(lambda: agent.update(batch), reps, 1, device)
    return {"ms_median": 1e3 * statistics.median(times), "ms_min": 1e3 * min(times)}


def bench_compiled_update(
    method: str,
    num_tasks: int,
    reps: int,
    device: torch.device,
    per_task: int = 128,
    precision: str = "fp32",
) -> dict[str, float | str]:
    """Eager against ``torch.compile`` (inductor) of the networks' forward passes (policy, twin Q,
    target twin Q) in one agent's update: milliseconds (best of ``reps``) of each, and the
    seconds the first two compiled updates took (compilation, with whatever inductor cache the
    machine has). Training does not compile (README: Precision); this measures whether it should.
    Returns ``{"skipped": reason}`` when compilation fails (no C++ compiler, for example)."""
    import torch._dynamo

    agent = make_agent(method, num_tasks, device, precision)
    batch = random_batch(num_tasks, per_task, device)
    eager, _ = time_fn(lambda: agent.update(batch), reps, 1, device)
    torch._dynamo.reset()
    # the three networks share one forward code object, each with its grad-mode variants: more
    # than dynamo's default 8 cache entries, past which it would silently fall back to eager
    with torch._dynamo.config.patch(recompile_limit=64), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # inductor's own deprecation notices
        nets = {id(n): n for n in (agent.policy.net, agent.q.net, agent.q_target.net)}
        for net in nets.values():
            net.forward = torch.compile(net.forward)  # type: ignore[method-assign]
        try:
            start = time.perf_counter()
            agent.update(batch)
            agent.update(batch)
            _sync(device)
            compile_s = time.perf_counter() - start
            compiled, _ = time_fn(lambda: agent.update(batch), reps, 0, device)
        except Exception as e:  # inductor needs a working C++ toolchain on CPU
            return {"skipped": f"torch.compile failed: {type(e).__name__}: {e}".splitlines()[0]}
        finally:
            torch._dynamo.reset()
    return {"eager_ms_min": 1e3 * min(eager), "compiled_ms_min": 1e3 * min(compiled),
            "compile_s": compile_s, "precision": precision}  # fmt: skip


def bytes_per_transition(obs_dim: int = OBS_DIM, act_dim: int = ACT_DIM) -> int:
    """Bytes the replay stores per transition (all of its per-row tensors)."""
    replay = MultiTaskReplay(2, 8, obs_dim, act_dim)
    tensors = (replay.obs, replay.next_obs, replay.action, replay.reward, replay.terminated)
    return sum(t.numel() * t.element_size() for t in tensors) // 16


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def measure_mt50_replay(capacity_per_task: int = 200_000, tasks: int = 50) -> dict[str, float]:
    """Allocate the MT50 replay (50 x 2e5 = 1e7 transitions), write every row, and measure the
    memory it really takes (resident set growth) and the time to draw one 6400-row stratified
    batch from it. ``capacity_per_task`` smaller for a quick run (the per-row figure holds)."""
    import gc

    gc.collect()
    before = _rss_bytes()
    replay = MultiTaskReplay(tasks, capacity_per_task, OBS_DIM, ACT_DIM)
    for t in (replay.obs, replay.next_obs, replay.action, replay.reward, replay.terminated):
        t.fill_(0.5)  # touch every page: zeros from calloc would not be resident yet
    replay.size[:] = capacity_per_task
    grown = _rss_bytes() - before
    replay.sample(128 * tasks)
    start = time.perf_counter()
    for _ in range(10):
        replay.sample(128 * tasks)
    sample_ms = (time.perf_counter() - start) / 10 * 1e3
    rows = tasks * capacity_per_task
    del replay
    gc.collect()
    return {"transitions": rows, "rss_bytes": grown, "rss_bytes_per_transition": grown / rows,
            "sample_6400_ms": sample_ms}  # fmt: skip
