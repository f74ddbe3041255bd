"""Pieces around the training loop: stop requests (signals), non-finite guards, the progress bar,
and the hold of a run directory by one training process."""

from __future__ import annotations

import fcntl
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from softmod.sac.agent import MultiTaskSAC
from softmod.validation import ConfigError

PID_FILE = "train.pid"  # names the process training a run directory, while it does


class RunInterrupted(Exception):
    """The run stopped early on request (SIGINT, SIGTERM or ``stop_at``) after a checkpoint."""

    def __init__(self, step: int, checkpoint: Path, run_dir: Path, signum: int | None) -> None:
        self.step, self.checkpoint, self.run_dir, self.signum = step, checkpoint, run_dir, signum
        by = f" by {signal.Signals(signum).name}" if signum is not None else ""
        super().__init__(
            f"interrupted{by} at step {step:,}: checkpoint saved to {checkpoint}; "
            f"continue with softmod train --resume {run_dir}"
        )

    @property
    def exit_code(self) -> int:
        """128 + the signal number, as a shell reports a process ended by that signal."""
        return 128 + (self.signum if self.signum is not None else signal.SIGINT)


class DivergenceError(RuntimeError):
    """A non-finite loss, Q-value, gradient or parameter; no checkpoint was written after it."""

    def __init__(self, step: int, what: str, last_checkpoint: Path | None, run_dir: Path) -> None:
        self.step, self.what, self.last_checkpoint = step, what, last_checkpoint
        if last_checkpoint is None:
            kept = "no checkpoint had been written yet"
        else:
            kept = (
                f"the last good checkpoint {last_checkpoint} is intact (continue with softmod "
                f"train --resume {run_dir}, e.g. with --on-nonfinite skip)"
            )
        super().__init__(f"non-finite {what} at step {step:,}: the run stopped; {kept}")


class SkippedUpdate(Exception):
    """Raised inside an update whose gradients are not finite (``on_nonfinite="skip"``)."""

    def __init__(self, quantity: str) -> None:
        super().__init__(quantity)
        self.quantity = quantity


def _grads(opt: torch.optim.Optimizer) -> list[torch.Tensor]:
    return [p.grad for group in opt.param_groups for p in group["params"] if p.grad is not None]


def _all_finite(grads: list[torch.Tensor]) -> bool:
    if not grads:
        return True
    return bool(torch.isfinite(torch.stack(torch._foreach_norm(grads))).all())


class SkipGuard:
    """Optimiser pre-step hooks that refuse a step on non-finite gradients.

    The temperatures step first in an update: non-finite temperature gradients skip the whole
    update. The policy and Q steps are refused together (the Q gradients exist by then), and so is
    the soft target update that follows them. The raised :class:`SkippedUpdate` leaves the update.
    """

    def __init__(self, agent: MultiTaskSAC) -> None:
        self.agent = agent
        agent.alpha_opt.register_step_pre_hook(self._check_alpha)
        agent.policy_opt.register_step_pre_hook(self._check_policy_and_q)

    def _check_alpha(self, opt: torch.optim.Optimizer, args: tuple, kwargs: dict) -> None:
        if not _all_finite(_grads(opt)):
            raise SkippedUpdate("temperature gradient")

    def _check_policy_and_q(self, opt: torch.optim.Optimizer, args: tuple, kwargs: dict) -> None:
        if not _all_finite(_grads(opt)):
            raise SkippedUpdate("policy gradient")
        if not _all_finite(_grads(self.agent.q_opt)):
            raise SkippedUpdate("Q-function gradient")


class StopRequest:
    """The signal that asked the run to stop, if any."""

    signum: int | None = None


@contextmanager
def stop_requests() -> Iterator[StopRequest]:
    """While inside, SIGINT / SIGTERM only set ``signum`` (the loop stops after the current step
    with a checkpoint); a second signal raises KeyboardInterrupt at once. Main thread only."""
    stop = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(signum: int, frame: object) -> None:
        if stop.signum is not None:
            raise KeyboardInterrupt
        stop.signum = signum

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def progress_bar(console: Console, enabled: bool) -> Progress:
    """The training progress bar: steps, steps/s, mean success, ETA."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("env steps · {task.fields[sps]} steps/s · success {task.fields[success]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        disable=not enabled,
        refresh_per_second=4,
    )


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


def training_pid(run_dir: Path) -> int | None:
    """The process training ``run_dir`` now (``softmod train``, ``--resume``, a sweep trial, the
    learning scripts): its pid, 0 when it is held by a process whose pid file is unreadable, None
    when no process is training it."""
    fd = os.open(run_dir, os.O_RDONLY)
    try:
        if _try_lock(fd):
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        try:
            return int((Path(run_dir) / PID_FILE).read_text())
        except (OSError, ValueError):
            return 0
    finally:
        os.close(fd)


@contextmanager
def hold_run_dir(run_dir: Path) -> Iterator[None]:
    """Train ``run_dir`` alone: an exclusive ``flock`` on the directory while inside, so a second
    process resuming the same run (a resume typed twice, a sweep retry while the first attempt
    still runs) is a one-line ConfigError before it writes anything. The kernel drops the lock when
    the process dies, so a killed run never leaves a stale one; ``RUN_DIR/train.pid`` names the
    holder."""
    fd = os.open(run_dir, os.O_RDONLY)
    if not _try_lock(fd):
        os.close(fd)
        pid = training_pid(run_dir)
        who = f"process {pid}" if pid else "another process"
        raise ConfigError(
            f"run directory {str(run_dir)!r} is being trained by {who}; wait for it to finish, "
            f"or stop it first (kill -TERM {pid or '<pid>'}: it saves a checkpoint)"
        )
    pid_file = Path(run_dir) / PID_FILE
    try:
        pid_file.write_text(f"{os.getpid()}\n")
        yield
    finally:
        pid_file.unlink(missing_ok=True)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
