"""The ``softmod bench`` tables (rich) and the README's markdown table."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table


def _f(x: float | None, fmt: str = "{:.0f}") -> str:
    return "-" if x is None else fmt.format(x)


def print_tables(res: dict[str, Any], console: Console) -> None:
    """Print every measured section as a table, ratios included."""
    m = res["machine"]
    console.print(
        f"[bold]softmod bench[/] on {m['cpu']} ({m['cpus']} CPUs, torch {m['torch']}, "
        f"{m['torch_threads']} threads, device {res['device']}); load average "
        f"{m['loadavg_start'][0]:.1f} -> {m['loadavg_end'][0]:.1f} (above {m['cpus']}: noisy)"
    )
    s = res["summary"]
    if "collection" in res:
        t = Table(title="Collection, random actions (env-steps/s)")
        for col in ("setup", "env-steps/s", "build s", "vs gymnasium async"):
            t.add_column(col, justify="right" if col != "setup" else "left")
        for name, v in res["collection"].items():
            bench = name.split()[0]
            ref = res["collection"].get(f"{bench} gymnasium async")
            ratio = v["env_steps_per_s"] / ref["env_steps_per_s"] if ref else None
            t.add_row(name, _f(v["env_steps_per_s"]), _f(v["build_s"], "{:.1f}"),
                      _f(ratio, "{:.2f}x"))  # fmt: skip
        console.print(t)
    if "updates" in res:
        peak = s.get("matmul_gflops")
        t = Table(title=f"SAC update (matmul peak in this run: {_f(peak)} GFLOP/s)")
        for col in ("benchmark / method", "ms (median)", "ms (best)", "GFLOP", "GFLOP/s",
                    "of matmul"):  # fmt: skip
            t.add_column(col, justify="left" if col.startswith("bench") else "right")
        for name, v in res["updates"].items():
            if not isinstance(v, dict):
                continue
            t.add_row(name, _f(v["ms_median"], "{:.1f}"), _f(v["ms_min"], "{:.1f}"),
                      _f(v["flops"] / 1e9, "{:.1f}"), _f(v.get("gflops")),
                      _f(v.get("matmul_fraction"), "{:.0%}"))  # fmt: skip
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
        if "mt50_env_rss_gib" in s:
            line += (
                f"; 50 envs in workers {s['mt50_env_rss_gib']:.2f} GiB; MT50 training estimate "
                f"{s['mt50_training_estimate_gib']:.1f} GiB (train + eval envs, 1 GiB process) "
                "of 24 GiB"
            )
        console.print(line)
    for key in ("mt10_collection_ratio", "mt50_collection_ratio"):
        if key in s:
            console.print(f"{key}: {s[key]:.2f}x (target >= 1.4x)")
    if "mt10_soft_shallow_matmul_fraction" in s:
        console.print(
            f"soft-shallow MT10 update: {s['mt10_soft_shallow_matmul_fraction']:.0%} of matmul "
            "GFLOP/s (target >= 50%)"
        )
