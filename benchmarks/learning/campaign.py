"""Keep a campaign of learning runs going, a few at a time, across sessions.

Usage (from the repository root)::

    python benchmarks/learning/campaign.py benchmarks/learning/issue18.json --status
    nohup python benchmarks/learning/campaign.py benchmarks/learning/issue18.json > c.log 2>&1 &
    kill -TERM <campaign pid>   # every run stops with a checkpoint, then is recorded (partial.py)
    python benchmarks/learning/campaign.py benchmarks/learning/issue18.json --record

A plan is a JSON file: ``{"about": "...", "defaults": {...}, "runs": [{...}, ...]}``. Each run
names ``method`` and ``seed``, and may set ``benchmark``, ``goals``, ``task``, ``precision``,
``horizon``, ``budget`` (env steps) and ``args`` (more ``run.py`` options for a new run, such as
``["--keep-checkpoints", "12"]``); ``defaults`` gives any of them to every run. The runs are listed
in order of priority. Each is matched to a run directory of ``--runs-dir`` by its config (benchmark,
goals, task, method, seed, precision, horizon; the one that got furthest if several match) and is:

- ``done``: its record ``benchmarks/results/learning/<name>.json`` exists (``run.py`` writes it
  after the final evaluation);
- ``running``: a process trains its directory (softmod's lock on the run directory names it);
- ``resume``: its directory has not reached the budget: ``run.py --resume DIR``;
- ``extend``: its directory finished a smaller budget (that record exists): ``run.py --resume DIR
  --budget B``, as run 2 of issue 18 takes the 1M runs on to 3M;
- ``wait``: its directory has a smaller budget, not finished yet (that plan entry comes first);
- ``passed``: its directory was taken past this budget before finishing it;
- ``new``: no directory yet: ``run.py --method ... --budget B``; also a larger budget whose
  smaller one is recorded but whose directory is gone (the machine was not kept): it trains again
  from step 0 to the larger budget, since a run cannot be extended without its checkpoint;
- ``failed``: its process ended with an error in this campaign (see its log); not restarted.

The campaign starts the first ``resume`` / ``extend`` / ``new`` runs until ``--slots`` run at once
(runs trained by other processes count), each ``run.py`` with one PyTorch thread and its output
appended to ``RUNS_DIR-logs/<name>.log`` (beside ``RUNS_DIR``: not taken for a run); when one
ends the next starts; it exits when nothing is left to start or run. SIGTERM or SIGINT stops
every run it started (one SIGTERM each: they save a
checkpoint; a run in its final evaluation is finished by the next ``--resume``), then writes a
``partial.py`` record of every unfinished run of the plan: ``<name>-<date>-partial.{json,md,png}``.
While it runs, it also rewrites those records of the running runs every ``--record-every`` seconds
(default 3600; 0: only at the stop), so that a session that ends without the signal still leaves
what its runs measured in the checkout. A bad plan is a one-line error (exit 2) before anything
starts.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import partial
from run import RESULTS, ROOT, die, new_run_config, parser, read_curve, read_meta, run_name

from softmod.checkpoint import latest_checkpoint_step
from softmod.config import RunConfig, load_config
from softmod.training_support import training_pid

RUN = Path(__file__).resolve().parent / "run.py"
FIELDS = ("benchmark", "goals", "task", "method", "seed", "precision", "horizon", "budget", "args")
DEFAULTS = {"benchmark": "mt10", "goals": "fixed", "task": None, "precision": "fp32",
            "horizon": 150, "args": []}  # fmt: skip
STARTABLE = ("resume", "extend", "new")


@dataclass(frozen=True)
class Entry:
    """One run of a plan."""

    method: str
    seed: int
    budget: int
    benchmark: str = "mt10"
    goals: str = "fixed"
    task: str | None = None
    precision: str = "fp32"
    horizon: int = 150
    args: tuple[str, ...] = ()

    @property
    def key(self) -> tuple:
        """What a run directory must match (everything but the budget)."""
        return (self.benchmark, self.goals, self.task, self.method, self.seed, self.precision,
                self.horizon)  # fmt: skip

    def name_at(self, budget: int) -> str:
        """The run's name (and its record's) at ``budget``."""
        return run_name(self.benchmark, self.task, self.goals, self.method, self.horizon,
                        self.precision, budget, self.seed)  # fmt: skip

    @property
    def name(self) -> str:
        """The run's name at its budget."""
        return self.name_at(self.budget)

    def new_args(self) -> list[str]:
        """``run.py`` options that start this run."""
        args = ["--benchmark", self.benchmark, "--goals", self.goals, "--method", self.method,
                "--seed", str(self.seed), "--precision", self.precision, "--horizon",
                str(self.horizon), "--budget", str(self.budget)]  # fmt: skip
        return args + (["--task", self.task] if self.task else []) + list(self.args)


def load_plan(path: Path) -> list[Entry]:
    """The plan's runs, each checked as ``run.py`` would check it; a bad one ends here (exit 2)."""
    try:
        plan = json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        die("campaign.py", f"cannot read the plan {str(path)!r}: {err}")
    if not isinstance(plan, dict) or not isinstance(plan.get("runs"), list) or not plan["runs"]:
        die("campaign.py", f"{path}: a plan is an object with a non-empty list 'runs'")
    defaults = {**DEFAULTS, **plan.get("defaults", {})}
    entries: list[Entry] = []
    for i, run in enumerate(plan["runs"]):
        spec = {**defaults, **run}
        unknown = sorted(set(spec) - set(FIELDS))
        missing = [k for k in ("method", "seed", "budget") if k not in spec]
        if unknown or missing:
            what = f"unknown key {unknown[0]!r}" if unknown else f"no {missing[0]!r}"
            die("campaign.py", f"{path}: run {i + 1} has {what}; keys: {', '.join(FIELDS)}")
        entry = Entry(**{**spec, "args": tuple(spec["args"])})
        try:
            new_run_config(parser().parse_args(entry.new_args()))
        except (ValueError, SystemExit) as err:  # SystemExit: argparse said why on stderr
            die("campaign.py", f"{path}: run {i + 1} ({entry.name}): {err}")
        entries.append(entry)
    names = [e.name for e in entries]
    twice = next((n for n in names if names.count(n) > 1), None)
    if twice:
        die("campaign.py", f"{path}: the run {twice} is listed twice")
    return entries


@dataclass
class Found:
    """A run directory of the plan."""

    run_dir: Path
    cfg: RunConfig
    reached: int  # env steps of the last train.csv row (or of the newest checkpoint)
    rate: float | None  # env steps/s: the median of the last 12 rows of train.csv
    last_eval: dict[str, float] | None  # the last row of eval.csv


def _key(cfg: RunConfig) -> tuple:
    return (cfg.env.benchmark, cfg.env.goals, cfg.env.task, cfg.method, cfg.seed, cfg.precision,
            cfg.env.horizon)  # fmt: skip


def training_rate(train: list[dict]) -> float | None:
    """Env steps/s while updating: the median of the last 12 logged intervals that were past the
    warm-up (whose start already had updates); ``None`` before that. Warm-up intervals run 15x
    faster, and a paused interval is an outlier, hence the median."""
    rates = [r["train/steps_per_s"] for prev, r in pairwise(train)
             if prev.get("train/updates", 0) > 0 and "train/steps_per_s" in r]  # fmt: skip
    rates = sorted(rates[-12:])
    return rates[len(rates) // 2] if rates else None


def find_runs(runs_dir: Path) -> dict[tuple, Found]:
    """Run directories under ``runs_dir`` by key; the furthest one where several match."""
    found: dict[tuple, Found] = {}
    for cfg_path in sorted(Path(runs_dir).glob("*/config.json")):
        run_dir = cfg_path.parent
        try:
            cfg = load_config(cfg_path)
        except Exception:  # not a run of this softmod: not part of any plan
            continue
        train = read_curve(run_dir / "train.csv") if (run_dir / "train.csv").exists() else []
        reached = max(int(train[-1]["step"]) if train else 0,
                      latest_checkpoint_step(run_dir) or 0)  # fmt: skip
        rate = training_rate(train)
        evals = read_curve(run_dir / "eval.csv") if (run_dir / "eval.csv").exists() else []
        here = Found(run_dir, cfg, reached, rate, evals[-1] if evals else None)
        if _key(cfg) not in found or reached > found[_key(cfg)].reached:
            found[_key(cfg)] = here
    return found


@dataclass
class State:
    """Where a plan entry stands, and the ``run.py`` options that take it on."""

    entry: Entry
    state: str
    found: Found | None = None
    pid: int | None = None
    args: list[str] = field(default_factory=list)
    record: dict | None = None  # a done entry's record (``run.py``'s JSON), what its row shows


def assess(entry: Entry, first: int, found: dict[tuple, Found], out: Path,
           children: dict[str, subprocess.Popen], failed: set[str]) -> State:  # fmt: skip
    """The state of one entry (see the module docstring); ``first``: the smallest budget of the
    plan's entries with the same key (a larger one continues that run, never starts its own)."""
    run = found.get(entry.key)
    if entry.name in children:
        return State(entry, "running", run, children[entry.name].pid)
    if (out / f"{entry.name}.json").exists():
        # not ``run``: the directory of this key may be a larger budget's (extended, or trained
        # again when this one's directory went with its machine), and its row would show that
        return State(entry, "done", record=read_record(out / f"{entry.name}.json"))
    if entry.name in failed:
        return State(entry, "failed", run)
    if run is None:
        if entry.budget > first and not (out / f"{entry.name_at(first)}.json").exists():
            return State(entry, "wait")
        # no directory: a new run, or (the smaller budget's record exists but its directory is
        # gone, on a machine that was not kept) the larger budget trained again from step 0
        return State(entry, "new", None, None, entry.new_args())
    pid = training_pid(run.run_dir)
    budget = run.cfg.total_steps
    if budget > entry.budget:
        return State(entry, "passed", run)
    if budget < entry.budget and not (out / f"{entry.name_at(budget)}.json").exists():
        return State(entry, "wait", run, pid)
    if pid is not None:
        return State(entry, "running", run, pid)
    if budget == entry.budget:
        return State(entry, "resume", run, None, ["--resume", str(run.run_dir)])
    return State(entry, "extend", run, None,
                 ["--resume", str(run.run_dir), "--budget", str(entry.budget)])  # fmt: skip


def read_record(path: Path) -> dict:
    """A finished run's record, ``{}`` if it cannot be read (the table then shows dashes)."""
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def _done_row(st: State) -> str:
    """A done entry's row from its record: its budget, its final evaluation, the record."""
    r = st.record or {}
    reached = f"{r['env_steps']:,}" if isinstance(r.get("env_steps"), int) else "–"
    final, last = r.get("final_eval") or {}, "–"
    if isinstance(final.get("mean_success"), float) and isinstance(final.get("tasks"), dict):
        ret = sum(t["return"] for t in final["tasks"].values()) / max(len(final["tasks"]), 1)
        last = (f"{100 * final['mean_success']:.0f}% / {ret:.0f}, final "
                f"({final.get('episodes_per_task', '?')} episodes/task)")  # fmt: skip
    return f"| {st.entry.name} | done | {reached} | – | – | {last} | record {st.entry.name}.json |"


def status_table(states: list[State]) -> str:
    """The plan as a Markdown table: state, steps reached, speed and time left, run directory
    (for a done entry: its record's budget and final evaluation)."""
    lines = ["| run | state | reached | env steps/s | left at that speed | last evaluation "
             "(success / return) | run directory |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for st in states:
        if st.state == "done":
            lines.append(_done_row(st))
            continue
        e, f = st.entry, st.found
        reached = f"{f.reached:,}" if f else "–"
        rate = f"{f.rate:.0f}" if f and f.rate else "–"
        left = "–"
        if f and f.rate and st.state in ("running", "resume", "extend", "wait"):
            left = f"{max(e.budget - f.reached, 0) / f.rate / 3600:.1f} h"
        state = st.state + (f" (pid {st.pid})" if st.pid else "")
        where = f.run_dir.name if f else "–"
        last = "–"
        if f and f.last_eval:
            ev = f.last_eval
            last = (f"{100 * ev['eval/mean_success']:.0f}% / {ev['eval/mean_return']:.0f} at "
                    f"{int(ev['step']):,}")  # fmt: skip
        lines.append(f"| {e.name} | {state} | {reached} | {rate} | {left} | {last} | {where} |")
    return "\n".join(lines)


def partial_name(run_dir: Path, cfg: RunConfig) -> str:
    """A record name for an unfinished run: its current name and the date it started
    (``mt10-fixed-soft-shallow-bf16-1000k-s0-20261203-partial``)."""
    date = run_dir.name.rsplit("-", 2)[-2] if run_dir.name.count("-") >= 2 else "undated"
    return f"{read_meta(run_dir, cfg)['name']}-{date}-partial"


def say(message: str) -> None:
    """One line of the campaign's log, written at once (the log is a file under nohup)."""
    print(f"campaign: {message}", flush=True)


def record_unfinished(states: list[State], out: Path) -> list[Path]:
    """``partial.py`` records of the plan's run directories that have no final record yet (a run
    finished at its budget and waiting to be extended has one)."""
    written, seen = [], set()
    for st in states:
        f = st.found
        if f is None or st.state in ("done", "passed", "extend") or f.run_dir in seen:
            continue
        seen.add(f.run_dir)
        try:
            written.append(partial.main(partial_name(f.run_dir, f.cfg), [f.run_dir], out))
        except SystemExit:  # no evaluation yet: partial.py said why
            say(f"no partial record of {f.run_dir.name} (no evaluation yet)")
    return written


class Campaign:
    """The plan's runs, started in order, ``slots`` at a time, until none is left."""

    def __init__(self, entries: list[Entry], slots: int, runs_dir: Path, out: Path,
                 record_every: float = 0.0) -> None:  # fmt: skip
        self.entries, self.slots, self.runs_dir, self.out = entries, slots, runs_dir, out
        self.record_every = record_every
        self.children: dict[str, subprocess.Popen] = {}
        self.failed: set[str] = set()
        self.stop: int | None = None

    def states(self) -> list[State]:
        """Every entry's state now."""
        found = find_runs(self.runs_dir)
        first = {}
        for e in self.entries:
            first[e.key] = min(first.get(e.key, e.budget), e.budget)
        return [assess(e, first[e.key], found, self.out, self.children, self.failed)
                for e in self.entries]  # fmt: skip

    def start(self, st: State) -> None:
        """Start ``run.py`` for an entry, one PyTorch thread, output appended to its log."""
        logs = self.runs_dir.with_name(self.runs_dir.name + "-logs")
        logs.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, str(RUN), *st.args, "--runs-dir", str(self.runs_dir), "--out",
               str(self.out)]  # fmt: skip
        with (logs / f"{st.entry.name}.log").open("a") as log:
            log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(cmd)}\n")
            log.flush()
            env = {**os.environ, "OMP_NUM_THREADS": "1"}
            self.children[st.entry.name] = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT,
                start_new_session=True,  # a Ctrl-C reaches the campaign only, which sends one TERM
            )  # fmt: skip
        say(f"{st.state} {st.entry.name} (pid {self.children[st.entry.name].pid})")

    def reap(self) -> None:
        """Forget the runs that ended; a failed one is not started again."""
        for name, proc in list(self.children.items()):
            if proc.poll() is not None:
                del self.children[name]
                if proc.returncode != 0 and self.stop is None:
                    self.failed.add(name)
                    say(f"{name} failed (exit {proc.returncode}), see its log")
                else:
                    say(f"{name} ended (exit {proc.returncode})")

    def fill(self) -> list[State]:
        """Start runs until ``slots`` run; return the states."""
        states = self.states()
        running = {st.found.run_dir if st.found else st.entry.name
                   for st in states if st.state == "running"}  # fmt: skip
        busy = len(running)
        for st in states:
            if busy >= self.slots:
                break
            if st.state in STARTABLE:
                self.start(st)
                busy += 1
        return self.states()

    def run(self, poll: float = 30.0) -> list[State]:
        """Keep the slots busy until nothing is left or a signal asks to stop; then stop the runs
        it started (a checkpoint each) and record the unfinished ones."""

        def on_signal(signum: int, frame: object) -> None:
            self.stop = signum

        old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        next_record = time.monotonic() + self.record_every
        try:
            while self.stop is None:
                self.reap()
                states = self.fill()
                if not self.children and not any(s.state == "running" for s in states):
                    break  # nothing of ours runs and nothing more can start
                if self.record_every > 0 and time.monotonic() >= next_record:
                    # a session that ends without the signal still leaves its runs' records
                    running = [st for st in states if st.state == "running"]
                    for png in record_unfinished(running, self.out):
                        say(f"recorded {png.with_suffix('')}.* (every {self.record_every:g} s)")
                    next_record = time.monotonic() + self.record_every
                deadline = time.monotonic() + poll
                while self.stop is None and time.monotonic() < deadline:
                    if any(p.poll() is not None for p in self.children.values()):
                        break
                    time.sleep(min(0.5, poll))
            if self.stop is not None:
                say(f"stopping {len(self.children)} run(s)")
                for proc in self.children.values():
                    proc.send_signal(signal.SIGTERM)
                for proc in self.children.values():
                    proc.wait()
                self.reap()
        finally:
            for s, h in old.items():
                signal.signal(s, h)
        states = self.states()
        if self.stop is not None:
            for png in record_unfinished(states, self.out):
                say(f"recorded {png.with_suffix('')}.*")
        return states


def main(argv: list[str] | None = None) -> list[State]:
    """Parse the command line; show, record or run the campaign."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("plan", type=Path)
    ap.add_argument("--slots", type=int, default=2, help="runs at once (each one thread)")
    ap.add_argument("--status", action="store_true", help="print where each run stands, only")
    ap.add_argument("--record", action="store_true", help="partial records of unfinished runs")
    ap.add_argument("--runs-dir", type=Path, default=ROOT / "runs" / "learning")
    ap.add_argument("--out", type=Path, default=RESULTS, help="where the records are")
    ap.add_argument("--poll", type=float, default=30.0, help="seconds between checks")
    ap.add_argument(
        "--record-every",
        type=float,
        default=3600.0,
        help="seconds between records of running runs (0: at the stop only)",
    )
    a = ap.parse_args(argv)
    if a.slots < 1:
        die("campaign.py", f"--slots {a.slots}: must be at least 1")
    if a.record_every < 0:
        die("campaign.py", f"--record-every {a.record_every:g}: allowed: 0 (off) or seconds > 0")
    entries = load_plan(a.plan)
    camp = Campaign(entries, a.slots, a.runs_dir, a.out, a.record_every)
    if a.status or a.record:
        states = camp.states()
        if a.record:
            for png in record_unfinished(states, a.out):
                print(f"recorded {png.with_suffix('')}.*")
    else:
        states = camp.run(a.poll)
    print(status_table(states))
    return states


if __name__ == "__main__":
    main()
