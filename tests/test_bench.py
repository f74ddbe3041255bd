"""`softmod bench` smoke test at tiny sizes, and the authors'-style reference's equivalence."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from softmod.bench import BenchArgs, run_bench
from softmod.bench.reference import ReferenceSoftModularNet, load_from_softmod
from softmod.bench.updates import count_update_flops
from softmod.config import SoftModularNetConfig
from softmod.nets.soft_modules import SoftModularNet


@pytest.mark.parametrize("layers,modules,route_obs", [(2, 2, True), (4, 4, True), (3, 2, False)])
def test_reference_network_computes_the_same_function(
    layers: int, modules: int, route_obs: bool
) -> None:
    cfg = SoftModularNetConfig(layers=layers, modules=modules, module_dim=16, base_dim=24,
                               gate_dim=12, route_obs=route_obs)  # fmt: skip
    torch.manual_seed(0)
    net = SoftModularNet(cfg, 7, 3, 5, members=2)
    x, task = torch.randn(11, 7), torch.randint(0, 5, (11,))
    ours = net(x, task)
    for e in range(2):
        ref = ReferenceSoftModularNet(cfg, 7, 3, 5)
        load_from_softmod(ref, net, e)
        assert torch.allclose(ref(x, task), ours[e], atol=1e-5)


def test_update_flops_scale_linearly_with_the_batch() -> None:
    a, b = count_update_flops("soft-shallow", 2, 16), count_update_flops("soft-shallow", 2, 32)
    assert a > 0 and b == 2 * a


@pytest.mark.slow  # a whole `softmod bench --quick`: minutes, far longer on a loaded machine
def test_bench_quick_prints_the_tables_and_writes_json(tmp_path: Path, capsys) -> None:
    args = BenchArgs(quick=True, sections=("updates", "reference", "memory"), mt50=False,
                     methods=("soft-shallow",), out=tmp_path, device="cpu")  # fmt: skip
    res = run_bench(args)
    data = json.loads(Path(res["path"]).read_text())
    assert data["machine"]["cpus"] >= 1 and "loadavg_end" in data["machine"]
    assert data["summary"]["bytes_per_transition"] == 336  # 2 x 39 obs + 4 action + 2 scalars
    assert 0 < data["summary"]["mt10_soft_shallow_matmul_fraction"]
    assert data["reference"]["mt10 soft-deep twin-Q fwd+bwd, batch 10"]["ratio"] > 0
    out = capsys.readouterr().out
    assert "SAC update" in out and "speed-up" in out


def test_bench_rejects_unknown_sections_and_methods(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="sections"):
        run_bench(BenchArgs(sections=("nope",), out=tmp_path))
    with pytest.raises(ValueError, match="unknown method"):
        run_bench(BenchArgs(methods=("nope",), out=tmp_path))


def test_the_bf16_speedup_target_follows_the_cpus_bf16_units() -> None:
    """Issue 17: 3x with AMX, 1.5x with AVX512-BF16 alone; the printed line names the goal."""
    from softmod.bench import bf16_speedup_target
    from softmod.bench.report import bf16_target_lines

    assert bf16_speedup_target({"amx_bf16": True, "avx512_bf16": True}) == 3.0
    assert bf16_speedup_target({"amx_bf16": False, "avx512_bf16": True}) == 1.5
    assert bf16_speedup_target({"amx_bf16": False, "avx512_bf16": False}) == 3.0
    s = {"mt10_soft_shallow_bf16_speedup": 1.8, "mt10_soft_shallow_bf16_speedup_target": 1.5}
    assert bf16_target_lines(s, rich=False) == [
        "MT10 soft-shallow update bf16 vs fp32: 1.80x (target >= 1.5x: met)"
    ]


def test_the_bf16_targets_state_what_the_hardware_allows() -> None:
    """Issue 17: the MT50 update and end-to-end targets are printed next to the floor that the
    run's own bf16 matmul rate sets (the update's FLOPs at that rate), so a target this CPU cannot
    reach reads as such."""
    from softmod.bench import summarize
    from softmod.bench.report import bf16_target_lines

    def upd(flops: float, ms: float) -> dict:
        return {"flops": flops, "ms_min": ms, "cpu_ms_min": 2 * ms, "precision": "bf16"}

    res = {
        "updates": {
            "matmul 2048^3 bf16": {"gflops": 400.0, "gflops_per_cpu_s": 200.0},
            "mt10 soft-shallow bf16": upd(28e9, 170.0),
            "mt50 soft-shallow bf16": upd(140e9, 1200.0),
        },
        "e2e": {"mt10 soft-shallow 2 workers sync bf16": {"env_steps_per_s": 48.0,
                                                           "outside_update_share": 0.2}},
    }  # fmt: skip
    s = summarize(res, workers=2)
    assert s["mt50_soft_shallow_bf16_floor_ms"] == pytest.approx(350.0)
    assert s["mt10_soft_shallow_bf16_floor_ms"] == pytest.approx(70.0)
    assert s["e2e_bf16_env_steps_per_s_ceiling"] == pytest.approx(10 * 1000 / 70)
    lines = bf16_target_lines(s, rich=False)
    assert lines[0] == ("MT50 soft-shallow update bf16: 1200 ms (target <= 300 ms: missed); its "
                        "products alone take at least 350 ms at this run's bf16 matmul rate "
                        "(400 GFLOP/s)")  # fmt: skip
    assert lines[1].startswith("MT10 soft-shallow training bf16: 48 env-steps/s (target >= 150: "
                               "missed); at most 143 on this machine")  # fmt: skip


@pytest.mark.slow
def test_bench_compile_section_times_eager_against_compiled(tmp_path: Path, capsys) -> None:
    """Issue 17: `--sections compile` times one method's update eager and with torch.compile of
    its networks, in the same run, and prints the ratio; it is not in the default sections."""
    from softmod.bench import DEFAULT_SECTIONS

    assert "compile" not in DEFAULT_SECTIONS
    args = BenchArgs(quick=True, sections=("compile",), mt50=False, methods=("mt-sac",),
                     precisions=("fp32",), out=tmp_path, device="cpu")  # fmt: skip
    res = run_bench(args)
    v = json.loads(Path(res["path"]).read_text())["compile"]["mt10 mt-sac"]
    assert "skipped" not in v, v
    assert v["eager_ms_min"] > 0 and v["compiled_ms_min"] > 0 and v["compile_s"] > 0
    assert v["speedup"] == pytest.approx(v["eager_ms_min"] / v["compiled_ms_min"])
    assert "torch.compile" in capsys.readouterr().out
