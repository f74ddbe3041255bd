"""The ``softmod bench`` tables (rich) and the README's markdown table."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.table import Table


def _f(x: float | None, fmt: str = "{:.0f}") -> str:
    return "-" if x is None else fmt.format(x)


def _met(ok: bool) -> str:
    return "[green]met[/]" if ok else "[red]missed[/]"


def update_rows(res: dict[str, Any]) -> list[tuple[str, dict | None, dict | None]]:
    """The update measurements side by side: (benchmark and method, fp32 entry, bf16 entry)."""
    upd = res.get("updates", {})
    bases = dict.fromkeys(k.removesuffix(" bf16") for k in upd if not k.startswith("matmul"))
    return [(b, upd.get(b), upd.get(f"{b} bf16")) for b in bases]


def bf16_line(m: dict[str, Any]) -> str:
    """The bf16 instructions of a ``machine()`` dict, in one line."""
    feats = m.get("bf16_features") or {}
    have = [k for k, v in feats.items() if v]
    return (
        f"bf16 features: {', '.join(have) or 'none'} (cpu capability "
        f"{m.get('cpu_capability', '?')})"
    )


def print_tables(res: dict[str, Any], console: Console) -> None:
    """Print every measured section as a table, ratios included."""
    m = res["machine"]
    console.print(
        f"[bold]softmod bench[/] on {m['cpu']} ({m['cpus']} CPUs, torch {m['torch']}, "
        f"{m['torch_threads']} threads, device {res['device']}); load average "
        f"{m['loadavg_start'][0]:.1f} -> {m['loadavg_end'][0]:.1f} (above {m['cpus']}: noisy); "
        + bf16_line(m)
    )
    s = res["summary"]
    if "collection" in res:
        t = Table(title="Collection, random actions")
        for col in ("setup", "procs", "env-steps/s", "vs gym", "per CPU-s", "vs gym (CPU)",
                    "build s"):  # fmt: skip
            t.add_column(col, justify="right" if col != "setup" else "left")
        for name, v in res["collection"].items():
            ref = res["collection"].get(f"{name.split()[0]} gymnasium async")
            wall = v["env_steps_per_s"] / ref["env_steps_per_s"] if ref else None
            cpu = v["env_steps_per_cpu_s"] / ref["env_steps_per_cpu_s"] if ref else None
            t.add_row(name, str(v.get("processes", 0)), _f(v["env_steps_per_s"]),
                      _f(wall, "{:.2f}x"), _f(v["env_steps_per_cpu_s"]), _f(cpu, "{:.2f}x"),
                      _f(v["build_s"], "{:.1f}"))  # fmt: skip
        console.print(t)
    if "updates" in res:
        t = Table(
            title=f"SAC update, fp32 and bf16 side by side; matmul 2048^3 in this run: fp32 "
            f"{_f(s.get('matmul_gflops'))} GFLOP/s, bf16 {_f(s.get('matmul_gflops_bf16'))} GFLOP/s"
        )
        for col in ("benchmark / method", "GFLOP", "fp32 ms", "bf16 ms", "bf16 speed-up",
                    "fp32 of matmul", "bf16 of bf16 matmul", "fp32 1 thread",
                    "bf16 1 thread"):  # fmt: skip
            t.add_column(col, justify="left" if col.startswith("bench") else "right")
        for name, a, b in update_rows(res):
            v = a or b
            assert v is not None
            g = lambda e, k, fmt="{:.0%}": _f(None if e is None else e.get(k), fmt)  # noqa: E731
            ratio = a["ms_min"] / b["ms_min"] if a and b else None
            t.add_row(name, _f(v["flops"] / 1e9, "{:.1f}"), g(a, "ms_min", "{:.1f}"),
                      g(b, "ms_min", "{:.1f}"), _f(ratio, "{:.2f}x"), g(a, "matmul_fraction"),
                      g(b, "matmul_fraction"), g(a, "matmul_fraction_1_thread"),
                      g(b, "matmul_fraction_1_thread"))  # fmt: skip
        console.print(t)
    if "grad" in res:
        print_grad_table(res["grad"], console)
    jx = res.get("jax", {}).get("mt10 soft-shallow")
    if jx is not None:
        if "skipped" in jx:
            console.print(f"JAX reference skipped: {jx['skipped']}")
        else:
            t = Table(title="MT10 soft-shallow SAC update vs a jitted JAX one, same batch and run")
            for col in ("implementation", "ms (best)", "JAX / this"):
                t.add_column(col, justify="left" if col == "implementation" else "right")
            ref = jx["jax"]["ms_min"]
            t.add_row(f"JAX {jx['jax']['jax']} jit fp32 (compile {jx['jax']['compile_s']:.0f} s)",
                      _f(ref, "{:.0f}"), "1.00x")  # fmt: skip
            for k, v in jx.items():
                if k.startswith("softmod"):
                    t.add_row(k, _f(v["ms_min"], "{:.0f}"), _f(ref / v["ms_min"], "{:.2f}x"))
            console.print(t)
    if "compile" in res:
        t = Table(title="torch.compile (inductor) of the networks' forward passes, MT10 update")
        for col in ("method", "eager ms", "compiled ms", "speed-up", "compile s"):
            t.add_column(col, justify="left" if col == "method" else "right")
        for name, v in res["compile"].items():
            if "skipped" in v:
                t.add_row(name, "-", "-", "-", v["skipped"])
                continue
            t.add_row(name, _f(v["eager_ms_min"], "{:.0f}"), _f(v["compiled_ms_min"], "{:.0f}"),
                      _f(v.get("speedup"), "{:.2f}x"), _f(v["compile_s"]))  # fmt: skip
        console.print(t)
    if "reference" in res:
        t = Table(title="Soft-modular twin-Q forward+backward vs the authors'-style module loop")
        for col in ("network", "softmod ms", "reference ms", "speed-up"):
            t.add_column(col, justify="left" if col == "network" else "right")
        for name, v in res["reference"].items():
            t.add_row(name, _f(v["softmod_ms"], "{:.1f}"), _f(v["reference_ms"], "{:.1f}"),
                      _f(v["ratio"], "{:.2f}x"))  # fmt: skip
        console.print(t)
    if "e2e" in res:
        t = Table(title="End-to-end training (act, step, store, sample, update)")
        for col in ("setup", "env-steps/s", "ms / iteration", "outside update"):
            t.add_column(col, justify="left" if col == "setup" else "right")
        for name, v in res["e2e"].items():
            t.add_row(name, _f(v["env_steps_per_s"]), _f(v["ms_per_iteration"], "{:.0f}"),
                      _f(v["outside_update_share"], "{:.1%}"))  # fmt: skip
        console.print(t)
    if "bytes_per_transition" in s:
        line = (
            f"memory: {s['bytes_per_transition']} bytes per stored transition -> MT50 replay "
            f"(1e7) {s['mt50_replay_gib']:.2f} GiB"
        )
        if "mt50_replay_measured_gib" in s:
            line += (
                f" (allocated and written: {s['mt50_replay_measured_gib']:.2f} GiB resident; a "
                f"6400-row stratified batch in {s['mt50_sample_6400_ms']:.0f} ms)"
            )
        if "mt50_env_rss_gib" in s:
            line += (
                f"; 50 envs in workers {s['mt50_env_rss_gib']:.2f} GiB; MT50 training estimate "
                f"{s['mt50_training_estimate_gib']:.1f} GiB (train + eval envs, 1 GiB process) "
                "of 24 GiB"
            )
        console.print(line)
    for bm in ("mt10", "mt50"):
        if f"{bm}_collection_ratio" in s:
            r = s[f"{bm}_collection_ratio"]
            console.print(
                f"{bm} collection vs gymnasium async: {r:.2f}x env-steps/s (target >= 1.4x: "
                f"{_met(r >= 1.4)}); {s[f'{bm}_collection_ratio_cpu']:.2f}x per CPU second"
            )
    if "mt10_soft_shallow_matmul_fraction" in s:
        console.print(
            f"soft-shallow MT10 update: {s['mt10_soft_shallow_matmul_fraction']:.0%} of matmul "
            f"GFLOP/s, {s['mt10_soft_shallow_matmul_fraction_cpu']:.0%} per CPU second, "
            f"{s.get('mt10_soft_shallow_matmul_fraction_1_thread', float('nan')):.0%} per CPU "
            f"second with 1 thread (target >= 50%: "
            f"{_met(s['mt10_soft_shallow_matmul_fraction'] >= 0.5)})"
        )
    for name, v in res.get("e2e", {}).items():
        share = v["outside_update_share"]
        console.print(f"{name}: {share:.1%} outside the update (target < 10%: {_met(share < 0.1)})")
    for line in bf16_target_lines(s):
        console.print(line)


def grad_rows(grad: dict[str, Any]) -> tuple[list[str], dict[str, dict[str, dict]]]:
    """The gradient methods measured and, per network, each method's entry."""
    nets: dict[str, dict[str, dict]] = {}
    methods: list[str] = []
    for name, v in grad.items():
        net, method = name.rsplit(" ", 1)
        nets.setdefault(net, {})[method] = v
        if method not in methods:
            methods.append(method)
    return methods, nets


def print_grad_table(grad: dict[str, Any], console: Console) -> None:
    """Each gradient method's update time relative to plain, one row per network (issue 21)."""
    methods, nets = grad_rows(grad)
    t = Table(title="SAC update with each gradient method (--grad), MT10 fp32, eager: ms and "
              "time relative to plain")  # fmt: skip
    t.add_column("benchmark / method")
    for g in methods:
        t.add_column(g, justify="right")
    for net, entries in nets.items():
        cells = []
        for g in methods:
            v = entries.get(g)
            if v is None:
                cells.append("")
            elif g == "plain" or "vs_plain" not in v:
                cells.append(_f(v["ms_min"], "{:.1f} ms"))
            else:
                cells.append(f"{v['ms_min']:.1f} ms ({v['vs_plain']:.2f}x)")
        t.add_row(net, *cells)
    console.print(t)


def _floor(s: dict[str, Any], key: str) -> str:
    """The hardware's lower bound on an update's time, when the run measured it."""
    if key not in s:
        return ""
    return (f"; its products alone take at least {s[key]:.0f} ms at this run's bf16 matmul rate "
            f"({s['matmul_gflops_bf16']:.0f} GFLOP/s)")  # fmt: skip


def bf16_target_lines(s: dict[str, Any], rich: bool = True) -> list[str]:
    """The issue-17 targets, met or missed (rich markup, or plain text for the markdown)."""
    met = _met if rich else (lambda ok: "met" if ok else "missed")
    out = []
    if "mt10_soft_shallow_bf16_speedup" in s:
        r = s["mt10_soft_shallow_bf16_speedup"]
        from softmod.bench import TARGETS  # here: softmod.bench imports this module

        goal = s.get("mt10_soft_shallow_bf16_speedup_target",
                     TARGETS["bf16_speedup_mt10_soft_shallow"])  # fmt: skip
        out.append(f"MT10 soft-shallow update bf16 vs fp32: {r:.2f}x (target >= {goal:g}x: "
                   f"{met(r >= goal)})")  # fmt: skip
    if "mt50_soft_shallow_bf16_ms" in s:
        ms = s["mt50_soft_shallow_bf16_ms"]
        out.append(f"MT50 soft-shallow update bf16: {ms:.0f} ms (target <= 300 ms: "
                   f"{met(ms <= 300)}){_floor(s, 'mt50_soft_shallow_bf16_floor_ms')}")  # fmt: skip
    if "e2e_bf16_env_steps_per_s" in s:
        r = s["e2e_bf16_env_steps_per_s"]
        cap = s.get("e2e_bf16_env_steps_per_s_ceiling")
        bound = "" if cap is None else (
            f"; at most {cap:.0f} on this machine: one update per vector step takes at least "
            f"{s['mt10_soft_shallow_bf16_floor_ms']:.0f} ms at the bf16 matmul rate")  # fmt: skip
        out.append(f"MT10 soft-shallow training bf16: {r:.0f} env-steps/s (target >= 150: "
                   f"{met(r >= 150)}){bound}")  # fmt: skip
    if "jax_over_softmod_bf16" in s:
        r = s["jax_over_softmod_bf16"]
        out.append(f"MT10 soft-shallow update bf16 vs jitted JAX: {r:.2f}x faster (target > 1: "
                   f"{met(r > 1)})")  # fmt: skip
    return out


def markdown(res: dict[str, Any]) -> str:
    """The README's table: the headline figures of one run."""
    s, m = res["summary"], res["machine"]
    rows = [
        "| measure | softmod | reference | ratio |",
        "|---|---|---|---|",
    ]
    coll = res.get("collection", {})
    for bm in ("mt10", "mt50"):
        ours = next((v for k, v in coll.items() if k.startswith(f"{bm} softmod") and
                     "workers" in k), None)  # fmt: skip
        ref = coll.get(f"{bm} gymnasium async")
        if ours and ref:
            rows.append(
                f"| {bm.upper()} collection, env-steps/s (per CPU-s) | "
                f"{ours['env_steps_per_s']:.0f} ({ours['env_steps_per_cpu_s']:.0f}) | "
                f"{ref['env_steps_per_s']:.0f} "
                f"({ref['env_steps_per_cpu_s']:.0f}) gymnasium async | "
                f"{s[f'{bm}_collection_ratio']:.2f}x ({s[f'{bm}_collection_ratio_cpu']:.2f}x) |"
            )
    for name, a, b in update_rows(res):
        for v, peak in ((a, s.get("matmul_gflops")), (b, s.get("matmul_gflops_bf16"))):
            if v is None or peak is None:
                continue
            one = v.get("matmul_fraction_1_thread")
            one_s = "" if one is None else f", {one:.0%} 1 thread"
            prec = v.get("precision", "fp32")
            speed = f"; {a['ms_min'] / b['ms_min']:.2f}x fp32" if v is b and a else ""
            rows.append(
                f"| update {name} {prec}, ms (GFLOP) | {v['ms_min']:.0f} ({v['flops'] / 1e9:.1f})"
                f" | {prec} matmul {peak:.0f} GFLOP/s | {v['matmul_fraction']:.0%} "
                f"({v['matmul_fraction_cpu']:.0%} per CPU-s{one_s}){speed} |"
            )
    jx = res.get("jax", {}).get("mt10 soft-shallow", {})
    if "jax" in jx:
        for k, v in jx.items():
            if k.startswith("softmod"):
                rows.append(
                    f"| update mt10 soft-shallow, {k} vs jitted JAX fp32, ms | {v['ms_min']:.0f} "
                    f"| {jx['jax']['ms_min']:.0f} JAX {jx['jax']['jax']} | "
                    f"{jx['jax']['ms_min'] / v['ms_min']:.2f}x |"
                )
    for name, v in res.get("grad", {}).items():
        if "vs_plain" in v and not name.endswith(" plain"):
            rows.append(f"| update {name}, ms | {v['ms_min']:.0f} | plain | {v['vs_plain']:.2f}x |")
    for name, v in res.get("reference", {}).items():
        rows.append(
            f"| {name}, ms | {v['softmod_ms']:.0f} | {v['reference_ms']:.0f} module loop | "
            f"{v['ratio']:.2f}x |"
        )
    for name, v in res.get("e2e", {}).items():
        rows.append(
            f"| training {name}, env-steps/s | {v['env_steps_per_s']:.0f} | outside update "
            f"{v['outside_update_share']:.1%} | |"
        )
    if "bytes_per_transition" in s:
        measured = s.get("mt50_replay_measured_gib")
        rows.append(
            f"| bytes per stored transition | {s['bytes_per_transition']} | MT50 replay "
            f"{s['mt50_replay_gib']:.1f} GiB"
            + ("" if measured is None else f" ({measured:.1f} GiB resident, measured)")
            + " | |"
        )
        if "mt50_training_estimate_gib" in s:
            rows.append(
                f"| MT50 training memory (replay + 2 x 50 envs + process), GiB | "
                f"{s['mt50_training_estimate_gib']:.1f} | 24 GiB machine | |"
            )
    when = res.get("time") or time.strftime("%Y-%m-%d")
    head = (
        f"Measured {when} on {m['cpu']}, {m['cpus']} CPUs, torch "
        f"{m['torch']}, load average {m['loadavg_start'][0]:.1f} -> {m['loadavg_end'][0]:.1f}; "
        f"{bf16_line(m)}."
    )
    targets = "".join(f"- {line}\n" for line in bf16_target_lines(s, rich=False))
    return head + "\n\n" + "\n".join(rows) + "\n" + ("\n" + targets if targets else "")
