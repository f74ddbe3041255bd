"""``softmod bench``: collection, update, reference and end-to-end speed, side by side in one run.

Everything is measured in the same process on the same machine, and printed as ratios where a
reference exists, because absolute figures on a shared machine drift. Results go to
``benchmarks/results/speed-<time>.json`` with a description of the machine (CPU, threads, BLAS,
load average before and after: a load above the core count means the figures are noisy).
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from softmod.methods import METHODS

if TYPE_CHECKING:
    import torch

SECTIONS = ("collection", "updates", "grad", "reference", "e2e", "memory", "jax", "compile")
# compile (torch.compile of every chosen method in each precision) takes minutes of compiling:
# asked for by name only
DEFAULT_SECTIONS = tuple(s for s in SECTIONS if s != "compile")
TARGETS = {
    "collection_ratio": 1.4,
    "soft_shallow_matmul_fraction": 0.5,
    "outside_update": 0.10,
    # issue 17: speed-up of the MT10 soft-shallow update over fp32 (3x on a CPU with AMX, 1.5x
    # with AVX512-BF16 alone: bf16_speedup_target picks by the machine's features),
    # end-to-end MT10 soft-shallow env-steps/s, the MT50 soft-shallow update in ms
    "bf16_speedup_mt10_soft_shallow": 3.0,
    "bf16_speedup_mt10_soft_shallow_avx512_bf16": 1.5,
    "bf16_e2e_env_steps_per_s": 150.0,
    "bf16_mt50_soft_shallow_ms": 300.0,
}


@dataclass
class BenchArgs:
    """Measure softmod's speed against the references, side by side, and write a JSON result."""

    quick: bool = False
    """Tiny sizes (smoke test, about a minute): fewer steps and repetitions, 16 rows per task."""
    sections: tuple[str, ...] = DEFAULT_SECTIONS
    """Which parts to run: collection, updates, grad (each gradient method's MT10 update time
    relative to plain, per network), reference, e2e, memory, jax (the jitted JAX soft-shallow
    update, needs the [bench-jax] extra), compile (each method's MT10 update eager against
    torch.compile, in each precision; not in the default: minutes of compiling)."""
    precisions: tuple[str, ...] = ("fp32", "bf16")
    """Precisions of the update and end-to-end figures, side by side (fp32, bf16)."""
    methods: tuple[str, ...] = tuple(METHODS)
    """Methods whose update is timed (default: all)."""
    mt50: bool = True
    """Also measure MT50 (collection: 50 envs; updates: batch 6400)."""
    workers: int = 0
    """Env worker processes for softmod's collection (0: one per CPU core)."""
    device: str = "auto"
    """Device of the update benchmarks: auto (CUDA when present), cpu or cuda."""
    threads: int = 0
    """PyTorch CPU threads (0: PyTorch's default)."""
    out: Path | None = None
    """Directory for the JSON result (default: benchmarks/results of the source checkout)."""
    gym_reference: bool = True
    """Also time Meta-World's gymnasium async vector env (the collection reference)."""


def _sizes(quick: bool) -> dict[str, int]:
    if quick:
        return dict(coll10=40, coll50=10, reps10=1, reps50=1, per_task=16, ref_reps=2, iters=3)
    return dict(coll10=300, coll50=60, reps10=3, reps50=1, per_task=128, ref_reps=5, iters=20)


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    import torch

    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    from softmod.bench.collection import cpu_count
    from softmod.precision import bf16_support

    info: dict[str, Any] = {
        "cpu": cpu,
        "cpus": cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "blas": "mkl" if torch.backends.mkl.is_available() else "other",
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "bf16_features": bf16_support("cpu"),  # /proc/cpuinfo flags amx_bf16, avx512_bf16
        "python": platform.python_version(),
        "platform": platform.platform(),
        "loadavg_start": os.getloadavg(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def default_out() -> Path:
    """``benchmarks/results`` of the source checkout, else of the working directory."""
    root = Path(__file__).resolve().parents[3]
    base = root if (root / "benchmarks").is_dir() else Path.cwd()
    return base / "benchmarks" / "results"


def run_bench(args: BenchArgs, console: Console | None = None) -> dict[str, Any]:
    """Run the chosen sections, print the tables, write the JSON; return the result dict."""
    import torch

    from softmod.bench import collection
    from softmod.bench.report import markdown, print_tables

    console = console or Console()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    bad = set(args.sections) - set(SECTIONS)
    if bad:
        raise ValueError(f"unknown bench sections {sorted(bad)}; valid: {', '.join(SECTIONS)}")
    for p in args.precisions:
        if p not in ("fp32", "bf16"):
            raise ValueError(f"unknown precision {p!r}; valid: fp32, bf16")
    for m in args.methods:
        if m not in METHODS:
            raise ValueError(f"unknown method {m!r}; valid methods: {', '.join(METHODS)}")
    device = torch.device(
        ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    )
    size = _sizes(args.quick)
    workers = args.workers or collection.cpu_count()
    benches = ["mt10", "mt50"] if args.mt50 else ["mt10"]
    res: dict[str, Any] = {"machine": machine(), "args": _jsonable(asdict(args)), "sizes": size}
    res["device"] = str(device)
    res["time"] = time.strftime("%Y-%m-%d %H:%M")
    started = time.perf_counter()

    jobs = _jobs(args, size, workers, benches, device)
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("bench", total=len(jobs))
        for section, name, fn in jobs:
            bar.update(task, description=f"{section}: {name}")
            res.setdefault(section, {})[name] = fn()
            bar.advance(task)
    res["machine"]["loadavg_end"] = os.getloadavg()
    res["wall_s"] = time.perf_counter() - started
    res["summary"] = summarize(res, workers)
    print_tables(res, console)
    out = args.out or default_out()
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"speed-{time.strftime('%Y%m%d-%H%M%S')}.json"
    res["markdown"] = markdown(res)
    path.write_text(json.dumps(res, indent=2, default=str) + "\n")
    console.print(f"wrote {path}")
    res["path"] = str(path)
    return res


Job = tuple[str, str, Callable[[], Any]]


def _jobs(
    args: BenchArgs, size: dict[str, int], workers: int, benches: list[str], device: torch.device
) -> list[Job]:
    """Every measurement to make, in order: (section, name, function)."""
    from softmod.bench import collection, endtoend, reference, updates
    from softmod.config import SoftModularNetConfig

    per_task = size["per_task"]
    jobs: list[Job] = []
    if "collection" in args.sections:
        for b in benches:
            steps = size["coll10"] if b == "mt10" else size["coll50"]
            jobs.append(("collection", f"{b} softmod {workers} workers",
                         partial(collection.softmod_rate, b, steps, workers)))  # fmt: skip
            jobs.append(("collection", f"{b} softmod in-process",
                         partial(collection.softmod_rate, b, steps, 0)))  # fmt: skip
            if args.gym_reference:
                jobs.append(("collection", f"{b} gymnasium async",
                             partial(collection.gymnasium_async_rate, b, steps)))  # fmt: skip
    precs = args.precisions
    if "updates" in args.sections:  # every method in each precision, one after the other
        for p in precs:
            jobs.append(("updates", f"matmul 2048^3{_tag(p)}",
                         partial(updates.matmul_gflops, device, precision=p)))  # fmt: skip
        for b in benches:
            t = 10 if b == "mt10" else 50
            reps = size["reps10"] if b == "mt10" else size["reps50"]
            for m in args.methods:
                for p in precs:
                    job = partial(_update_job, m, t, reps, device, per_task, p)
                    jobs.append(("updates", f"{b} {m}{_tag(p)}", job))
        for p in precs:
            jobs.append(("updates", f"matmul 2048^3{_tag(p)} (after)",
                         partial(updates.matmul_gflops, device, precision=p)))  # fmt: skip
    if "grad" in args.sections:  # issue 21: every gradient method, MT10, fp32, eager updates
        from softmod.grad import GRAD_METHODS

        for m in args.methods:
            for g in GRAD_METHODS:
                job = partial(updates.bench_grad_update, m, g, 10, size["reps10"], device, per_task)
                jobs.append(("grad", f"mt10 {m} {g}", job))
    if "reference" in args.sections:
        for name in ("soft-shallow", "soft-deep"):
            net_cfg = METHODS[name].network
            assert isinstance(net_cfg, SoftModularNetConfig)
            for rows in (per_task, 1):  # the training batch, and 1 row per task (overhead-bound)
                reps = size["ref_reps"] * (1 if rows > 1 else 20)
                jobs.append(("reference", f"mt10 {name} twin-Q fwd+bwd, batch {10 * rows}",
                             partial(reference.bench_forward_backward, net_cfg, 10, rows, reps,
                                     device)))  # fmt: skip
    if "e2e" in args.sections:
        for overlap in (False, True):
            mode = "overlapped" if overlap else "synchronous"
            for p in precs:
                jobs.append(("e2e", f"mt10 soft-shallow {workers} workers {mode}{_tag(p)}",
                             partial(endtoend.bench_training, "mt10", "soft-shallow",
                                     size["iters"], workers, overlap, per_task=per_task,
                                     precision=p, device=device)))  # fmt: skip
    if "jax" in args.sections:
        jobs.append(("jax", "mt10 soft-shallow",
                     partial(_jax_job, per_task, size["ref_reps"], device, precs)))  # fmt: skip
    if "compile" in args.sections:  # issue 17: is torch.compile worth it on this machine?
        for m in args.methods:
            for p in precs:
                job = partial(updates.bench_compiled_update, m, 10, size["reps10"], device,
                              per_task, p)  # fmt: skip
                jobs.append(("compile", f"mt10 {m}{_tag(p)}", job))
    if "memory" in args.sections:
        jobs.append(("memory", "replay", _memory_job))
        cap = 2_000 if args.quick else 200_000
        jobs.append(("memory", "mt50 replay allocated",
                     partial(updates.measure_mt50_replay, cap)))  # fmt: skip
    return jobs


def _tag(precision: str) -> str:
    """Name suffix of a measurement in ``precision``: none for fp32 (the names of earlier runs)."""
    return "" if precision == "fp32" else f" {precision}"


def _update_job(
    method: str, tasks: int, reps: int, device: torch.device, per_task: int, precision: str
) -> dict[str, Any]:
    from softmod.bench import updates

    out = updates.bench_update(method, tasks, reps, device, per_task=per_task,
                               one_thread=tasks == 10, precision=precision)  # fmt: skip
    flops = updates.count_update_flops(method, tasks, per_task)
    return {**out, "flops": flops, "precision": precision}


def _jax_job(
    per_task: int, reps: int, device: torch.device, precisions: tuple[str, ...]
) -> dict[str, Any]:
    """The jitted JAX soft-shallow MT10 update and softmod's, on the same batch, back to back."""
    from softmod.bench import updates
    from softmod.bench.jax_ref import JAX_HINT, bench_jax_update, jax_available

    if not jax_available():
        return {"skipped": f"jax is not installed: {JAX_HINT}"}
    batch = updates.random_batch(10, per_task, device)
    out: dict[str, Any] = {"jax": bench_jax_update(batch, 10, updates.OBS_DIM, updates.ACT_DIM,
                                                   max(reps, 3))}  # fmt: skip
    for p in precisions:  # softmod's update as the updates section times it (graphed on CUDA)
        timed = updates.bench_update("soft-shallow", 10, max(reps, 3), device, per_task=per_task,
                                     precision=p)  # fmt: skip
        out[f"softmod {p}"] = {"ms_min": timed["ms_min"], "cuda_graph": timed["cuda_graph"]}
    return out


def _memory_job() -> dict[str, int]:
    from softmod.bench import updates

    return {"bytes_per_transition": updates.bytes_per_transition()}


def _jsonable(d: dict[str, Any]) -> dict[str, Any]:
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in d.items()}


def summarize(res: dict[str, Any], workers: int) -> dict[str, Any]:
    """Ratios and target checks from the raw measurements."""
    s: dict[str, Any] = {}
    coll = res.get("collection", {})
    for b in ("mt10", "mt50"):
        ours = coll.get(f"{b} softmod {workers} workers")
        ref = coll.get(f"{b} gymnasium async")
        if ours and ref:
            s[f"{b}_collection_ratio"] = ours["env_steps_per_s"] / ref["env_steps_per_s"]
            s[f"{b}_collection_ratio_cpu"] = (
                ours["env_steps_per_cpu_s"] / ref["env_steps_per_cpu_s"]
            )
    upd = res.get("updates", {})
    for prec in ("fp32", "bf16"):  # each update against the matmul of its own precision
        peaks = [v for k, v in upd.items() if k.startswith("matmul") and _prec(k) == prec]
        if not peaks:
            continue
        peak = max(p["gflops"] for p in peaks)
        peak_cpu = max(p["gflops_per_cpu_s"] for p in peaks)
        key = "matmul_gflops" + _tag(prec).replace(" ", "_")
        s[key], s[key + "_per_cpu_s"] = peak, peak_cpu
        if prec == "fp32":
            s["matmul_gflops_per_cpu_s"] = peak_cpu
        peak_1t = max((p.get("gflops_per_cpu_s_1_thread", 0.0) for p in peaks), default=0.0)
        for name, v in upd.items():
            if not name.startswith("matmul") and v.get("precision", "fp32") == prec:
                v["gflops"] = v["flops"] / (v["ms_min"] * 1e-3) / 1e9
                v["matmul_fraction"] = v["gflops"] / peak
                v["gflops_per_cpu_s"] = v["flops"] / (v["cpu_ms_min"] * 1e-3) / 1e9
                v["matmul_fraction_cpu"] = v["gflops_per_cpu_s"] / peak_cpu
                if "cpu_ms_min_1_thread" in v and peak_1t:
                    rate = v["flops"] / (v["cpu_ms_min_1_thread"] * 1e-3) / 1e9
                    v["matmul_fraction_1_thread"] = rate / peak_1t
    _summarize_bf16(res, s)
    if "matmul_fraction" in upd.get("mt10 soft-shallow", {}):
        v = upd["mt10 soft-shallow"]
        s["mt10_soft_shallow_matmul_fraction"] = v["matmul_fraction"]
        s["mt10_soft_shallow_matmul_fraction_cpu"] = v["matmul_fraction_cpu"]
        if "matmul_fraction_1_thread" in v:
            s["mt10_soft_shallow_matmul_fraction_1_thread"] = v["matmul_fraction_1_thread"]
    grad = res.get("grad", {})  # each gradient method's update time over plain's, per network
    for name, v in grad.items():
        net = name.rsplit(" ", 1)[0]
        plain = grad.get(f"{net} plain")
        if plain:
            v["vs_plain"] = v["ms_min"] / plain["ms_min"]
    for v in res.get("compile", {}).values():
        if "compiled_ms_min" in v:
            v["speedup"] = v["eager_ms_min"] / v["compiled_ms_min"]
    e2e = res.get("e2e", {})
    for name, v in e2e.items():
        s[f"e2e {name} outside_update_share"] = v["outside_update_share"]
    mem = res.get("memory", {}).get("replay")
    if mem:
        bpt = mem["bytes_per_transition"]
        s["bytes_per_transition"] = bpt
        s["mt50_replay_gib"] = 1e7 * bpt / 2**30
        measured = res.get("memory", {}).get("mt50 replay allocated")
        if measured:  # the replay really allocated and written, scaled to 1e7 if quick
            s["mt50_replay_measured_gib"] = 1e7 * measured["rss_bytes_per_transition"] / 2**30
            s["mt50_sample_6400_ms"] = measured["sample_6400_ms"]
        rss = coll.get(f"mt50 softmod {workers} workers", {}).get("env_rss_bytes")
        if rss:
            s["mt50_env_rss_gib"] = rss / 2**30
            # training holds a train and an eval vector (two sets of envs) and the process itself
            replay = s.get("mt50_replay_measured_gib", s["mt50_replay_gib"])
            s["mt50_training_estimate_gib"] = replay + 2 * rss / 2**30 + 1.0
    s["targets"] = TARGETS
    return s


def _prec(name: str) -> str:
    return "bf16" if " bf16" in name else "fp32"


def bf16_speedup_target(features: dict[str, bool]) -> float:
    """Issue 17's target for the MT10 soft-shallow bf16 speed-up on a machine with these bf16
    features: 3x with AMX, 1.5x with AVX512-BF16 alone (and on GPUs or CPUs without either,
    where the issue sets none, the AMX figure is kept as the reference)."""
    if features.get("avx512_bf16") and not features.get("amx_bf16"):
        return TARGETS["bf16_speedup_mt10_soft_shallow_avx512_bf16"]
    return TARGETS["bf16_speedup_mt10_soft_shallow"]


def _summarize_bf16(res: dict[str, Any], s: dict[str, Any]) -> None:
    """bf16 against fp32 in the same run: update speed-ups, end-to-end rates, JAX ratios."""
    upd = res.get("updates", {})
    speedup = {
        name: v["ms_min"] / upd[f"{name} bf16"]["ms_min"]
        for name, v in upd.items()
        if not name.startswith("matmul") and f"{name} bf16" in upd
    }
    if speedup:
        s["bf16_speedup"] = speedup
    if "mt10 soft-shallow" in speedup:
        s["mt10_soft_shallow_bf16_speedup"] = speedup["mt10 soft-shallow"]
        s["mt10_soft_shallow_bf16_speedup_target"] = bf16_speedup_target(
            res.get("machine", {}).get("bf16_features", {})
        )
    if "mt50 soft-shallow bf16" in upd:
        s["mt50_soft_shallow_bf16_ms"] = upd["mt50 soft-shallow bf16"]["ms_min"]
    peak = s.get("matmul_gflops_bf16")
    if peak:  # what the hardware allows: the update's products at the best bf16 matmul rate
        for bench, key in (("mt50", "mt50_soft_shallow_bf16_floor_ms"),
                           ("mt10", "mt10_soft_shallow_bf16_floor_ms")):  # fmt: skip
            v = upd.get(f"{bench} soft-shallow bf16")
            if v and "flops" in v:
                s[key] = v["flops"] / (peak * 1e9) * 1e3
        if "mt10_soft_shallow_bf16_floor_ms" in s:  # one update per vector step of 10 envs
            s["e2e_bf16_env_steps_per_s_ceiling"] = 10 * 1e3 / s["mt10_soft_shallow_bf16_floor_ms"]
    e2e = [v["env_steps_per_s"] for k, v in res.get("e2e", {}).items() if k.endswith(" bf16")]
    if e2e:
        s["e2e_bf16_env_steps_per_s"] = max(e2e)
    jx = res.get("jax", {}).get("mt10 soft-shallow", {})
    if "jax" in jx:
        for p in ("fp32", "bf16"):
            if f"softmod {p}" in jx:
                s[f"jax_over_softmod_{p}"] = jx["jax"]["ms_min"] / jx[f"softmod {p}"]["ms_min"]
