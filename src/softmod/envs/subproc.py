"""Meta-World task environments in worker processes, exchanging arrays through shared memory.

:class:`SubprocMultiTaskEnv` has the interface of :class:`~softmod.envs.base.MultiTaskVecEnv` and
gives exactly the transitions of the in-process :class:`~softmod.envs.metaworld_env.
MetaWorldMultiTaskEnv` for the same config, seed and stream: every worker builds its tasks'
environments with the same per-task seeds (``MetaWorldMultiTaskEnv(..., indices=...)``) and steps
them with the same arithmetic, so only *where* a task runs changes.

Design:

- **Shared memory.** Actions, observations, final observations, rewards, success flags, truncation
  flags and per-env fault counters live in ONE ``multiprocessing.shared_memory`` block, as NumPy
  views in both the main process and the workers; a step sends one byte per worker through a
  pipe and receives one byte back. Nothing is pickled on the step path.
- **Task → worker assignment.** Greedy longest-processing-time (LPT): tasks sorted by their
  per-step cost (a static table, :data:`TASK_STEP_COST_US`, measured once with
  ``benchmarks/collection.py``) go one by one to the least-loaded worker, so workers finish a
  vector step at about the same time.
- **Synchronous** (``step``): bit-reproducible, the default. **Overlapped** (``step_async`` then
  ``step_wait``): the caller does other work (the gradient update) while the workers step.
- **Faults.** Workers step their envs with the in-process step code itself, so its fault checks
  hold here too: an exception, a non-finite observation/reward or a MuJoCo instability in one env
  resets that env (the row is reported as ``truncated`` with reward 0 and ``final_obs`` = the
  observation the action was taken in) and counts a fault
  (:attr:`SubprocMultiTaskEnv.fault_counts`). A dead or silent worker raises
  :class:`EnvWorkerError` after ``timeout_s`` instead of blocking forever.
- **RNG state.** :meth:`get_state` / :meth:`set_state` read and write each task env's RNG stream
  and current configuration (see :func:`get_env_state`), in task order, so a state taken with any
  number of workers (or in-process) loads into any other.
"""

from __future__ import annotations

import multiprocessing as mp
import pickle
import signal
import time
import traceback
from collections.abc import Sequence
from multiprocessing.connection import Connection
from multiprocessing.shared_memory import SharedMemory
from typing import Any

import numpy as np

from softmod.config import EnvConfig
from softmod.envs.base import EnvWorkerError, MultiTaskVecEnv, StepResult

STEP, DONE = b"S", b"K"  # step command and its acknowledgement, sent as raw bytes
OBS_DIM, ACT_DIM = 39, 4  # every Meta-World v3 task (checked by each worker after building)


__all__ = ["EnvWorkerError", "SubprocMultiTaskEnv"]  # EnvWorkerError lives in envs/base.py

# Per-step cost of each Meta-World v3 task (microseconds, random actions, one 2-core AMD EPYC
# process; measured by `python -m benchmarks.collection --measure-costs`). Only the ratios matter.
TASK_STEP_COST_US: dict[str, float] = {
    "assembly-v3": 454, "basketball-v3": 406, "bin-picking-v3": 332, "box-close-v3": 441,
    "button-press-topdown-v3": 256, "button-press-topdown-wall-v3": 264,
    "button-press-v3": 344, "button-press-wall-v3": 175, "coffee-button-v3": 294,
    "coffee-pull-v3": 1092, "coffee-push-v3": 1012, "dial-turn-v3": 288,
    "disassemble-v3": 463, "door-close-v3": 481, "door-lock-v3": 262, "door-open-v3": 482,
    "door-unlock-v3": 350, "hand-insert-v3": 759, "drawer-close-v3": 280,
    "drawer-open-v3": 275, "faucet-open-v3": 566, "faucet-close-v3": 273,
    "hammer-v3": 496, "handle-press-side-v3": 257, "handle-press-v3": 260,
    "handle-pull-side-v3": 395, "handle-pull-v3": 290, "lever-pull-v3": 747,
    "pick-place-wall-v3": 1065, "pick-out-of-hole-v3": 373, "pick-place-v3": 957,
    "plate-slide-v3": 462, "plate-slide-side-v3": 470, "plate-slide-back-v3": 675,
    "plate-slide-back-side-v3": 461, "peg-insert-side-v3": 552, "peg-unplug-side-v3": 442,
    "soccer-v3": 968, "stick-push-v3": 1238, "stick-pull-v3": 1396, "push-v3": 966,
    "push-wall-v3": 961, "push-back-v3": 963, "reach-v3": 467, "reach-wall-v3": 463,
    "shelf-place-v3": 977, "sweep-into-v3": 965, "sweep-v3": 758, "window-open-v3": 266,
    "window-close-v3": 359,
}  # fmt: skip


def lpt_assign(costs: Sequence[float], workers: int) -> list[list[int]]:
    """Greedy longest-processing-time assignment of items (by cost) to ``workers`` bins.

    Items are taken in decreasing cost and each goes to the bin with the least total so far (ties:
    the lower bin index). Returns each bin's item indices, sorted; no bin is empty when there are
    at least as many items as bins.
    """
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    bins: list[list[int]] = [[] for _ in range(workers)]
    load = [0.0] * workers
    for i in sorted(range(len(costs)), key=lambda k: (-costs[k], k)):
        w = min(range(workers), key=lambda b: (load[b], b))
        bins[w].append(i)
        load[w] += float(costs[i])
    return [sorted(b) for b in bins]


def get_env_state(env: Any) -> list[dict[str, Any]]:
    """RNG state of an in-process Meta-World vector, one dict per env (in ``env.task_ids`` order).

    Holds each env's ``np_random`` bit-generator state (it draws conditioned configurations) and
    its current configuration ``_last_rand_vec``. The simulator state is not included: reset the
    env after :func:`set_env_state` to continue from the restored streams.
    """
    return [
        {
            "np_random": e.np_random.bit_generator.state,
            "last_rand_vec": np.asarray(e._last_rand_vec, np.float64).tolist(),
        }
        for e in env.envs
    ]


def set_env_state(env: Any, state: Sequence[dict[str, Any]]) -> None:
    """Restore what :func:`get_env_state` returned (same tasks, same order)."""
    if len(state) != len(env.envs):
        raise ValueError(f"state holds {len(state)} envs, this vector has {len(env.envs)}")
    for e, s in zip(env.envs, state, strict=True):
        e.np_random.bit_generator.state = s["np_random"]
        e._last_rand_vec = np.asarray(s["last_rand_vec"], np.float64)


# ----------------------------------------------------------------------------- shared arrays
_FIELDS = (  # name, dtype, per-row width (0: scalar per row)
    ("action", np.float32, "act"),
    ("obs", np.float32, "obs"),
    ("final_obs", np.float32, "obs"),
    ("reward", np.float32, 0),
    ("success", np.float32, 0),
    ("truncated", np.bool_, 0),
    ("faults", np.int64, 0),
)


def _layout(n: int, obs_dim: int, act_dim: int) -> tuple[list[tuple[str, Any, tuple, int]], int]:
    """Offsets of every shared array in one block (64-byte aligned) and the block size."""
    out, offset = [], 0
    for name, dtype, width in _FIELDS:
        w = {"act": act_dim, "obs": obs_dim}.get(width, 0) if isinstance(width, str) else 0
        shape = (n, w) if w else (n,)
        out.append((name, dtype, shape, offset))
        nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
        offset += -(-nbytes // 64) * 64
    return out, offset


def _views(buf: memoryview, n: int, obs_dim: int, act_dim: int) -> dict[str, np.ndarray]:
    layout, _ = _layout(n, obs_dim, act_dim)
    return {
        name: np.ndarray(shape, dtype=dtype, buffer=buf, offset=off)
        for name, dtype, shape, off in layout
    }


# ----------------------------------------------------------------------------- worker side
def _step_worker(env: Any, v: dict[str, np.ndarray], rows: np.ndarray) -> None:
    """Step this worker's envs with the in-process step itself (``MetaWorldMultiTaskEnv.step``:
    clipping, the horizon, and every fault check, MuJoCo instabilities included), then publish
    the rows through shared memory. One step code for both backends (issue 19)."""
    res = env.step(v["action"][rows])
    v["obs"][rows] = res.obs
    v["final_obs"][rows] = res.final_obs
    v["reward"][rows] = res.reward
    v["success"][rows] = res.success
    v["truncated"][rows] = res.truncated
    if res.fault is not None:
        v["faults"][rows] += res.fault


def _worker_main(
    conn: Connection,
    shm_name: str,
    n: int,
    cfg: EnvConfig,
    seed: int,
    stream: int,
    indices: list[int],
) -> None:
    """A worker: build the tasks' envs, then serve commands until ``close``."""
    # Ctrl-C (SIGINT) and job managers' SIGTERM reach the whole process group: the main process
    # handles them (a checkpoint, then exit 130/143) and closes us
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    shm: SharedMemory | None = None
    try:
        from softmod.envs.metaworld_env import MetaWorldMultiTaskEnv

        env = MetaWorldMultiTaskEnv(cfg, seed, stream, indices=indices)
        if (env.obs_dim, env.act_dim) != (OBS_DIM, ACT_DIM):
            raise ValueError(f"unexpected spaces {(env.obs_dim, env.act_dim)}")
        rows = env.task_ids
        # the block was created (and registered with the resource tracker) before this process
        # started, so attaching here neither leaks nor unlinks it at exit
        shm = SharedMemory(name=shm_name)
        assert shm.buf is not None  # attached: open until this worker exits
        views = _views(shm.buf, n, OBS_DIM, ACT_DIM)
        conn.send(("ok", None))
        while True:
            raw = conn.recv_bytes()
            if raw == STEP:  # the hot path: one byte each way, nothing pickled
                _step_worker(env, views, rows)
                conn.send_bytes(DONE)
                continue
            cmd, arg = pickle.loads(raw)
            if cmd == "reset":
                views["obs"][rows] = env.reset()
                conn.send(("ok", None))
            elif cmd == "get_state":
                conn.send(("ok", get_env_state(env)))
            elif cmd == "set_state":
                set_env_state(env, arg)
                conn.send(("ok", None))
            elif cmd == "configs":
                conn.send(("ok", env.current_configs()))
            elif cmd == "close":
                env.close()
                conn.send(("ok", None))
                break
            else:
                raise ValueError(f"unknown command {cmd!r}")
    except (EOFError, KeyboardInterrupt, BrokenPipeError):
        pass  # the main process went away
    except Exception:
        try:
            conn.send(("error", traceback.format_exc()))
        except (BrokenPipeError, OSError):
            pass
    finally:
        if shm is not None:
            views = {}
            shm.close()


# ----------------------------------------------------------------------------- main side
class SubprocMultiTaskEnv(MultiTaskVecEnv):
    """The tasks of a Meta-World benchmark spread over ``workers`` processes (LPT by step cost).

    Same interface and the same transitions as the in-process vector; ``step_async`` /
    ``step_wait`` split a step so the caller can work while the workers simulate.

    ``exact_state`` is False: :meth:`get_state` holds each env's RNG and goal configuration but not
    the simulator mid-episode, so a run resumed with ``--workers`` starts its episodes again (the
    in-process default resumes bit-identically).
    """

    exact_state = False

    def __init__(
        self,
        cfg: EnvConfig,
        seed: int,
        stream: int = 0,
        workers: int = 2,
        start_method: str | None = None,
        timeout_s: float = 120.0,
        task_costs: Sequence[float] | None = None,
    ) -> None:
        from softmod.envs.metaworld_env import benchmark_task_names

        names = benchmark_task_names(cfg)
        self.task_names = names
        self.task_ids = np.arange(len(names), dtype=np.int64)
        self.horizon = cfg.horizon
        self.timeout_s = timeout_s
        n = len(names)
        if task_costs is None:
            mean = float(np.mean(list(TASK_STEP_COST_US.values())))
            task_costs = [TASK_STEP_COST_US.get(name, mean) for name in names]
        self.assignment = [b for b in lpt_assign(task_costs, min(max(workers, 1), n)) if b]
        if start_method is None:
            start_method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
        ctx = mp.get_context(start_method)
        self._conns: list[Connection] = []
        self._procs: list[Any] = []
        self._pending = False
        self._last_faults = np.zeros(n, np.int64)  # fault counters at the last step
        self._closed = False
        self.obs_dim, self.act_dim = OBS_DIM, ACT_DIM
        _, size = _layout(n, OBS_DIM, ACT_DIM)
        self._shm: SharedMemory | None = SharedMemory(create=True, size=size)
        assert self._shm.buf is not None  # just created
        self._v = _views(self._shm.buf, n, OBS_DIM, ACT_DIM)
        for v in self._v.values():
            v.fill(0)
        try:
            for i, indices in enumerate(self.assignment):
                parent, child = ctx.Pipe()
                proc = ctx.Process(  # type: ignore[attr-defined]  # typeshed: BaseContext
                    target=_worker_main,
                    args=(child, self._shm.name, n, cfg, seed, stream, indices),
                    name=f"softmod-env-{i}",
                    daemon=True,
                )
                proc.start()
                child.close()
                self._conns.append(parent)
                self._procs.append(proc)
            self._gather()  # every worker built its envs and attached the shared block
        except BaseException:
            self.close()
            raise

    # -- plumbing
    def _broadcast(self, msg: tuple[str, Any]) -> None:
        for i, conn in enumerate(self._conns):
            try:
                conn.send(msg)
            except (BrokenPipeError, OSError) as err:
                raise self._dead(i) from err

    def _dead(self, i: int) -> EnvWorkerError:
        proc = self._procs[i]
        proc.join(timeout=0.1)
        return EnvWorkerError(
            f"environment worker {i} (tasks {self.assignment[i]}) died (exit code {proc.exitcode})"
        )

    def _recv(self, i: int) -> Any:
        conn, proc = self._conns[i], self._procs[i]
        deadline = time.monotonic() + self.timeout_s
        while not conn.poll(0.05):
            if not proc.is_alive() and not conn.poll(0):
                raise self._dead(i)
            if time.monotonic() > deadline:
                raise EnvWorkerError(
                    f"environment worker {i} did not answer within {self.timeout_s:.0f} s"
                )
        try:
            raw = conn.recv_bytes()
        except (EOFError, OSError) as err:
            raise self._dead(i) from err
        if raw == DONE:
            return None
        status, payload = pickle.loads(raw)
        if status == "error":
            raise EnvWorkerError(f"environment worker {i} raised:\n{payload}")
        return payload

    def _gather(self) -> list[Any]:
        return [self._recv(i) for i in range(len(self._conns))]

    def _call(self, cmd: str, arg: Any = None) -> list[Any]:
        if self._pending:
            raise RuntimeError("a step is in flight: call step_wait() first")
        self._broadcast((cmd, arg))
        return self._gather()

    # -- the vector-env interface
    def reset(self) -> np.ndarray:
        """Reset every task's environment."""
        self._call("reset")
        return self._v["obs"].copy()

    def step_async(self, actions: np.ndarray) -> None:
        """Hand actions ``(N, act_dim)`` to the workers and return at once."""
        if self._pending:
            raise RuntimeError("step_async() twice without step_wait()")
        actions = np.asarray(actions, np.float32)
        np.copyto(self._v["action"], actions.reshape(self._v["action"].shape))
        for i, conn in enumerate(self._conns):
            try:
                conn.send_bytes(STEP)
            except (BrokenPipeError, OSError) as err:
                raise self._dead(i) from err
        self._pending = True

    def step_wait(self) -> StepResult:
        """Wait for the step started by :meth:`step_async` and return its results."""
        if not self._pending:
            raise RuntimeError("step_wait() without step_async()")
        self._pending = False
        self._gather()
        v = self._v
        faults = v["faults"].copy()
        fault = faults != self._last_faults
        self._last_faults = faults
        return StepResult(
            obs=v["obs"].copy(),
            reward=v["reward"].copy(),
            terminated=np.zeros(self.num_envs, bool),  # Meta-World has no true terminals
            truncated=v["truncated"].copy(),
            success=v["success"].copy(),
            final_obs=v["final_obs"].copy(),
            task_ids=self.task_ids,
            fault=fault if fault.any() else None,
        )

    def step(self, actions: np.ndarray) -> StepResult:
        """Step every task's env once (synchronous, reproducible)."""
        self.step_async(actions)
        return self.step_wait()

    @property
    def fault_counts(self) -> np.ndarray:
        """Faults (exception or non-finite output, env reset) per env since construction."""
        return self._v["faults"].copy()

    def current_configs(self) -> list[np.ndarray]:
        """The object/goal configuration each env is running now, in task order."""
        return self._in_task_order(self._call("configs"))

    def get_state(self) -> list[dict[str, Any]]:
        """Every task env's RNG state (:func:`get_env_state`), in task order."""
        return self._in_task_order(self._call("get_state"))

    def set_state(self, state: Sequence[dict[str, Any]]) -> None:
        """Restore :meth:`get_state` output (taken with any worker count or in-process)."""
        if len(state) != self.num_envs:
            raise ValueError(f"state holds {len(state)} envs, this vector has {self.num_envs}")
        self._pending_check()
        for i, indices in enumerate(self.assignment):
            conn = self._conns[i]
            conn.send(("set_state", [state[k] for k in indices]))
        self._gather()

    def _pending_check(self) -> None:
        if self._pending:
            raise RuntimeError("a step is in flight: call step_wait() first")

    def _in_task_order(self, parts: list[list[Any]]) -> list[Any]:
        out: list[Any] = [None] * self.num_envs
        for indices, part in zip(self.assignment, parts, strict=True):
            for k, item in zip(indices, part, strict=True):
                out[k] = item
        return out

    def close(self) -> None:
        """Stop the workers (politely, then by force) and free the shared memory."""
        if self._closed:
            return
        self._closed = True
        if self._pending:
            try:
                self._gather()
            except EnvWorkerError:
                pass
        for conn, proc in zip(self._conns, self._procs, strict=True):
            if proc.is_alive():
                try:
                    conn.send(("close", None))
                    if conn.poll(5.0):
                        conn.recv()
                except (BrokenPipeError, EOFError, OSError):
                    pass
        for conn, proc in zip(self._conns, self._procs, strict=True):
            proc.join(timeout=5.0)
            if proc.is_alive():  # workers ignore SIGTERM: kill
                proc.kill()
                proc.join(timeout=5.0)
            conn.close()
        if self._shm is not None:
            self._v = {}
            self._shm.close()
            self._shm.unlink()
            self._shm = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass
