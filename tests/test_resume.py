"""Checkpoints and resume: exact continuation, rotation, signals (in process and of the CLI)."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import tyro

import softmod.loop as train_module
from softmod.checkpoint import load_agent, load_file, step_checkpoints
from softmod.cli import TrainArgs
from softmod.config import EnvConfig, HardRoutingNetConfig, MLPNetConfig, SACConfig
from softmod.evaluate import eval_json_path, evaluate_run, write_eval_json
from softmod.loop import RunInterrupted, train
from softmod.report.collect import load_run
from softmod.resume import resume
from softmod.training_support import PID_FILE, hold_run_dir, training_pid
from softmod.validation import ConfigError

from .conftest import toy_config

SRC = str(Path(__file__).resolve().parents[1] / "src")


def small_config(**overrides):
    """A toy run of 600 env steps with small networks: a few seconds on one CPU thread."""
    base = dict(
        sac=SACConfig(batch_per_task=8, warmup_per_task=25),
        policy_net=MLPNetConfig(hidden=(32, 32)),
        q_net=MLPNetConfig(hidden=(32, 32)),
        total_steps=600,
        log_interval=100,
        eval_interval=200,
        eval_episodes=1,
        checkpoint_interval=200,
        torch_threads=1,
    )
    base.update(overrides)
    return toy_config(**base)


def full_state(run_dir: Path) -> dict[str, torch.Tensor]:
    """Every tensor of the newest full checkpoint: networks, targets, optimisers, extra state."""
    _, path = step_checkpoints(run_dir / "checkpoints")[-1]
    state = load_file(path)
    out = {f"agent.{k}": v for k, v in state["agent"].items()}
    for name, opt in state["optim"].items():
        for pid, s in opt["state"].items():
            out.update({f"optim.{name}.{pid}.{k}": v for k, v in s.items()})
    nets = state["net_state"].items()
    out.update({f"net_state.{k}.{key}": v for k, d in nets for key, v in d.items()})
    return out


def csv_rows(path: Path) -> list[dict[str, str]]:
    """Rows without the wall-clock columns."""
    rows = list(csv.DictReader(path.open()))
    return [{k: v for k, v in r.items() if k not in ("time_s", "train/steps_per_s")} for r in rows]


def tb_steps(run_dir: Path, tag: str) -> list[int]:
    """The steps TensorBoard shows for a scalar (purged events left out)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir / "tb"))
    acc.Reload()
    return [e.step for e in acc.Scalars(tag)]


def assert_same_run(a: Path, b: Path) -> None:
    """Bit-identical parameters and optimiser state; the same log rows and TensorBoard steps."""
    sa, sb = full_state(a), full_state(b)
    assert sa.keys() == sb.keys()
    assert all(torch.equal(sa[k], sb[k]) for k in sa), [
        k for k in sa if not torch.equal(sa[k], sb[k])
    ]
    for name in ("train.csv", "eval.csv"):
        assert csv_rows(a / name) == csv_rows(b / name), name
    for tag in ("loss/q", "eval/mean_success"):
        assert tb_steps(a, tag) == tb_steps(b, tag), tag


@pytest.mark.parametrize(
    "net",
    [
        MLPNetConfig(hidden=(32, 32)),
        HardRoutingNetConfig(layers=2, modules=2, module_dim=16, base_dim=32),
    ],
    ids=["mlp", "hard-routing"],
)
def test_stop_and_resume_is_bit_identical_to_an_uninterrupted_run(tmp_path: Path, net) -> None:
    env = EnvConfig(benchmark="toy", horizon=30, toy_tasks=4, goals="conditioned")
    cfg = small_config(policy_net=net, q_net=net, env=env)
    train(cfg, tmp_path / "a", progress=False)
    # stop mid log interval and mid checkpoint interval (the partial sums must survive), twice
    with pytest.raises(RunInterrupted, match="interrupted at step 152") as info:
        train(cfg, tmp_path / "b", progress=False, stop_at=150)
    assert info.value.checkpoint.name == "step-000000000152.pt"
    with pytest.raises(RunInterrupted):
        resume(tmp_path / "b", progress=False, stop_at=350)
    resume(tmp_path / "b", progress=False)
    assert_same_run(tmp_path / "a", tmp_path / "b")
    rows = csv_rows(tmp_path / "b" / "train.csv")
    assert [int(r["step"]) for r in rows] == [100, 200, 300, 400, 500, 600]


def test_checkpoints_keep_the_last_k_and_the_best(tmp_path: Path) -> None:
    run = tmp_path / "run"
    train(small_config(keep_checkpoints=2, checkpoint_interval=100), run, progress=False)
    ckpt = run / "checkpoints"
    assert [s for s, _ in step_checkpoints(ckpt)] == [500, 600]
    assert sorted(p.name for p in ckpt.glob("replay-*.pt")) == [
        "replay-000000000500.pt",
        "replay-000000000600.pt",
    ]
    assert not list(ckpt.glob("*.tmp"))
    best = load_file(ckpt / "best.pt")
    assert 0.0 <= best["success"] <= 1.0 and int(best["step"]) in (200, 400, 600)
    for name in ("best.pt", "final.pt", "step-000000000600.pt"):  # softmod eval loads any of them
        load_agent(run, torch.device("cpu"), name)
    state = load_file(ckpt / "step-000000000600.pt")
    assert set(state["rng"]) == {"python", "numpy", "torch", "cuda"}
    assert {"agent", "optim", "net_state", "loop", "env", "eval_env", "config"} <= set(state)


def test_extending_a_finished_run_with_more_steps(tmp_path: Path) -> None:
    cfg = small_config(total_steps=400)
    train(cfg, tmp_path / "a", progress=False)
    resume(tmp_path / "a", {"total_steps": 600}, progress=False)
    rows = csv_rows(tmp_path / "a" / "train.csv")
    assert [int(r["step"]) for r in rows] == [100, 200, 300, 400, 500, 600]


def test_extending_a_finished_run_keeps_the_evaluation_of_its_old_final_weights(
    tmp_path: Path,
) -> None:
    """softmod eval of final.pt is renamed to its step's name by the extension, where report --at
    finds it; the final report reads the new final weights' evaluation."""
    run = tmp_path / "a"
    train(small_config(total_steps=400), run, progress=False)
    protocol, result = evaluate_run(run, episodes=3)
    assert protocol["step"] == 400 and protocol["checkpoint"] == "final.pt"
    write_eval_json(eval_json_path(run, 3), protocol, result)
    written = (run / "eval_3ep.json").read_text()
    assert load_run(run, 400).source == "eval_3ep.json"  # the final evaluation, not eval.csv's
    resume(run, {"total_steps": 600}, progress=False)
    moved = run / "eval_3ep_step-000000000400.json"
    assert not (run / "eval_3ep.json").exists() and moved.read_text() == written
    at = load_run(run, 400)
    assert at.source == moved.name and at.episodes == 3
    assert at.success.tolist() == [result.success[i] for i in range(len(at.tasks))]
    assert load_run(run).source == "final_eval.json"
    assert json.loads((run / "final_eval.json").read_text())["step"] == 600


def _tree(run: Path) -> dict[str, tuple[int, int]]:
    """Every file and folder under ``run`` with its size and modification time."""
    return {
        str(p.relative_to(run)): (p.stat().st_size, p.stat().st_mtime_ns) for p in run.rglob("*")
    }


def test_a_run_held_by_another_trainer_is_refused_before_anything_is_written(
    tmp_path: Path,
) -> None:
    run, fresh = tmp_path / "run", tmp_path / "fresh"
    with pytest.raises(RunInterrupted):
        train(small_config(total_steps=400), run, progress=False, stop_at=200)
    assert training_pid(run) is None and not (run / PID_FILE).exists()  # released at the stop
    before = _tree(run)
    fresh.mkdir()
    me = os.getpid()
    with hold_run_dir(run), hold_run_dir(fresh):  # flock: a second open conflicts, as a process
        assert training_pid(run) == me and (run / PID_FILE).read_text() == f"{me}\n"
        with pytest.raises(ConfigError, match=rf"being trained by process {me}; .*kill -TERM {me}"):
            resume(run, {"total_steps": 600}, progress=False)  # would rewrite config.json
        with pytest.raises(ConfigError, match="being trained by process"):
            train(small_config(), fresh, progress=False)
        assert not (fresh / "config.json").exists()
    assert _tree(run) == before  # nothing written or renamed (the pid file came and went)
    assert training_pid(run) is None
    resume(run, {"total_steps": 600}, progress=False)  # free again: the run continues
    assert [int(r["step"]) for r in csv_rows(run / "train.csv")][-1] == 600
    assert not (run / PID_FILE).exists()


def test_sigint_finishes_the_step_and_writes_a_checkpoint(tmp_path: Path, monkeypatch) -> None:
    calls = {"n": 0}
    real_make_env = train_module.make_env

    def make_env(*args, **kwargs):
        env = real_make_env(*args, **kwargs)
        step = env.step

        def step_and_signal(actions):
            calls["n"] += 1
            if calls["n"] == 30:  # a Ctrl-C arrives during the 30th vector step
                os.kill(os.getpid(), signal.SIGINT)
            return step(actions)

        env.step = step_and_signal
        return env

    monkeypatch.setattr(train_module, "make_env", make_env)
    # what was installed before (default_int_handler; SIG_IGN when pytest runs as a background job)
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    with pytest.raises(RunInterrupted, match="by SIGINT at step 120") as info:
        train(small_config(), tmp_path / "run", progress=False)
    assert info.value.exit_code == 130
    # the warm-up's checkpoint (step 100) and the stop's
    assert [s for s, _ in step_checkpoints(tmp_path / "run" / "checkpoints")] == [100, 120]
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before  # restored


# ------------------------------------------------------------------ a real `softmod train` process
CLI_ARGS = [
    "--benchmark", "toy", "--total-steps", "600", "--warmup-per-task", "25",
    "--batch-per-task", "8", "--log-interval", "100", "--eval-interval", "300",
    "--eval-episodes", "1", "--checkpoint-interval", "200", "--threads", "1", "--device", "cpu",
    "--no-progress", "--horizon", "30",
]  # fmt: skip


def _start(*args: str, code: str | None = None) -> subprocess.Popen:
    """``softmod train ARGS`` as a process (``code``: Python run before the CLI, e.g. a patch)."""
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1", "COLUMNS": "500"}
    main = "import sys; from softmod.cli import main; main(sys.argv[1:])"
    cmd = [sys.executable, "-c", f"{code}\n{main}"] if code else [sys.executable, "-m", "softmod"]
    return subprocess.Popen(
        [*cmd, "train", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _wait_for(predicate, proc: subprocess.Popen, timeout: float = 90.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        if proc.poll() is not None:
            raise AssertionError(f"softmod exited early: {proc.communicate()[1]}")
        if time.monotonic() > end:
            proc.kill()
            raise AssertionError("timed out")
        time.sleep(0.05)


def _steps(path: Path) -> list[int]:
    return [int(r["step"]) for r in csv.DictReader(path.open())] if path.exists() else []


@pytest.mark.slow
def test_sigterm_of_the_cli_then_resume_matches_an_uninterrupted_run(tmp_path: Path) -> None:
    run = tmp_path / "run"
    proc = _start(*CLI_ARGS, "--run-dir", str(run))
    _wait_for(lambda: len(_steps(run / "train.csv")) >= 1, proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    message = err.strip().splitlines()[-1]
    assert "interrupted by SIGTERM at step" in message and f"--resume {run}" in message
    stopped = step_checkpoints(run / "checkpoints")[-1][0]
    assert 100 <= stopped < 600

    proc = _start("--resume", str(run), "--no-progress")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert _steps(run / "train.csv") == list(range(100, 601, 100))

    # the same run in one go (in this process): bit-identical
    args = tyro.cli(TrainArgs, args=CLI_ARGS)
    train(args.to_config(), tmp_path / "ref", progress=False)
    assert_same_run(tmp_path / "ref", run)


@pytest.mark.slow
def test_sigkill_loses_only_the_steps_since_the_last_checkpoint(tmp_path: Path) -> None:
    run = tmp_path / "run"
    proc = _start(*CLI_ARGS, "--run-dir", str(run))
    _wait_for(lambda: len(step_checkpoints(run / "checkpoints")) >= 1, proc)
    _wait_for(lambda: max(_steps(run / "train.csv"), default=0) >= 300, proc)
    assert training_pid(run) == proc.pid  # held while it trains
    proc.kill()
    proc.wait()
    assert training_pid(run) is None  # the kernel dropped the lock: no stale one to clear
    saved = step_checkpoints(run / "checkpoints")[-1][0]
    assert saved >= 200 and max(_steps(run / "train.csv")) > saved  # rows after the checkpoint

    proc = _start("--resume", str(run), "--no-progress")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert f"from {run / 'checkpoints' / f'step-{saved:012d}.pt'}" in err.replace("\n", "")
    assert _steps(run / "train.csv") == list(range(100, 601, 100))  # no duplicated rows
    assert tb_steps(run, "loss/q") == list(range(100, 601, 100))


@pytest.mark.slow
def test_metaworld_env_state_restores_the_running_episodes_exactly() -> None:
    from softmod.envs import make_env

    cfg = EnvConfig(benchmark="mt10", goals="conditioned", horizon=20)
    a, b = make_env(cfg, seed=3), make_env(cfg, seed=3)
    rng = np.random.default_rng(0)
    a.reset()
    for _ in range(27):  # one episode ended (a new conditioned goal drawn), one is running
        a.step(rng.uniform(-1, 1, (10, 4)))
    state = a.get_state()
    b.set_state(load_roundtrip(state))
    for _ in range(25):
        action = rng.uniform(-1, 1, (10, 4))
        ra, rb = a.step(action), b.step(action)
        assert np.array_equal(ra.obs, rb.obs) and np.array_equal(ra.reward, rb.reward)
        assert np.array_equal(ra.final_obs, rb.final_obs)
    a.close()
    b.close()


def load_roundtrip(obj: dict) -> dict:
    """Through torch.save / torch.load(weights_only=True), as in a checkpoint."""
    import io

    buf = io.BytesIO()
    torch.save(obj, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


def test_a_segment_started_in_the_same_second_gets_an_event_file_that_sorts_last(
    tmp_path: Path,
) -> None:
    """TensorBoard reads event files in name order; in one second the pid/counter fields compare
    as strings, so without the wait a resumed segment's file could be read before the first's."""
    import socket

    from softmod.runlog import RunLogger

    tb = tmp_path / "tb"
    tb.mkdir()
    now = int(time.time())
    old = tb / f"events.out.tfevents.{now:010d}.{socket.gethostname()}.{os.getpid()}.99999"
    old.write_bytes(b"")
    log = RunLogger(tmp_path, ["a"], resume_step=0)
    log.close()
    names = sorted(f.name for f in tb.glob("events.out.tfevents.*"))
    assert len(names) == 2 and names[0] == old.name, names
    assert int(names[1].split(".")[3]) > now


def test_an_event_file_from_a_clock_far_ahead_is_not_waited_for(tmp_path: Path) -> None:
    """An event file stamped an hour ahead (another machine's clock) must not stall a resume."""
    from softmod.runlog import wait_for_new_event_second

    ahead = int(time.time()) + 3600
    (tmp_path / f"events.out.tfevents.{ahead:010d}.host.1.0").write_bytes(b"")
    t0 = time.monotonic()
    wait_for_new_event_second(tmp_path)
    assert time.monotonic() - t0 < 0.5
