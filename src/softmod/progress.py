"""The training progress display: a live bar on a terminal, plain lines in a log file.

Both show the same text: steps done of the total, steps/s, the last mean success, elapsed time and
the ETA. Steps/s is measured live over the last minute (not only at ``--log-interval`` rows, which
are minutes apart on MT10). The ETA uses the speed since the warm-up ended: warm-up steps (random
actions, no gradient step) run 10-100x faster than training steps, so an ETA taken from them would
be far too short; during the warm-up it reads "after warm-up".

Without a terminal (``nohup``, a log file, CI) a rich bar would be rendered once at the end and cut
to the console width, so a plain line is printed instead every ``line_every_s`` seconds and at the
end.
"""

from __future__ import annotations

import time
from collections import deque
from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn

SPEED_WINDOW_S = 60.0  # steps/s over this many seconds


def _clock(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


class TrainProgress:
    """Progress of one training session; ``update`` after every vector step."""

    def __init__(
        self,
        console: Console,
        enabled: bool,
        total: int,
        completed: int,
        line_every_s: float = 60.0,
    ) -> None:
        self.console, self.enabled, self.total = console, enabled, total
        self.step, self.success, self.warm = completed, "-", False
        self.start = time.perf_counter()
        self.line_every_s, self.last_line = line_every_s, self.start
        self.samples: deque[tuple[float, int]] = deque([(self.start, completed)])
        self.live = enabled and console.is_terminal
        self.bar: Progress | None = None
        if self.live:
            self.bar = Progress(
                TextColumn("[bold]train"),
                BarColumn(),
                TextColumn("{task.fields[text]}"),
                console=console,
                refresh_per_second=4,
            )
            self.task = self.bar.add_task("train", total=total, completed=completed, text="")

    def __enter__(self) -> TrainProgress:
        if self.bar is not None:
            self.bar.__enter__()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        err: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.bar is not None:
            self.bar.__exit__(kind, err, tb)
        elif self.enabled and kind is None:
            self.console.print(self.text(), highlight=False, soft_wrap=True)

    def speed(self) -> float | None:
        """Environment steps per second over the last minute, None before two samples."""
        (t0, s0), (t1, s1) = self.samples[0], self.samples[-1]
        return (s1 - s0) / (t1 - t0) if t1 > t0 and s1 > s0 else None

    def text(self) -> str:
        """``40,000/100,000 env steps (40%) · 45 steps/s · success 10% · 0:14:48 · ETA ...``"""
        sps = self.speed()
        if not self.warm:
            eta = "after warm-up"
        elif sps is None:
            eta = "-"
        else:
            eta = _clock(max(self.total - self.step, 0) / sps)
        rate = "-" if sps is None else f"{sps:,.0f}"
        done = self.step / max(self.total, 1)
        return (
            f"{self.step:,}/{self.total:,} env steps ({done:.0%}) · {rate} steps/s · success "
            f"{self.success} · {_clock(time.perf_counter() - self.start)} · ETA {eta}"
        )

    def update(self, step: int, warm: bool, success: float | None = None) -> None:
        """Record the step count; ``warm``: the warm-up is over (gradient steps are being done)."""
        now = time.perf_counter()
        if warm and not self.warm:  # the speed of training steps only, from here on
            self.samples.clear()
        self.warm, self.step = warm, step
        if success is not None:
            self.success = f"{success:.0%}"
        self.samples.append((now, step))
        while len(self.samples) > 2 and now - self.samples[1][0] > SPEED_WINDOW_S:
            self.samples.popleft()
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.update(self.task, completed=step, text=self.text())
        elif now - self.last_line >= self.line_every_s:
            self.last_line = now
            self.console.print(self.text(), highlight=False, soft_wrap=True)
