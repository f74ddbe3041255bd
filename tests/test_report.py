"""``softmod report`` on real toy runs (2 methods x 2 seeds): rows, numbers, images, routing, HTML.

The runs are trained once per module. MT-SAC is a tiny MLP that need not learn (it fills the table
and the curves); soft-shallow has shrunk widths and a higher learning rate so that it learns the
toy tasks in 6k steps (measured: seed 0 75 %, seed 1 100 % final success; ~12 s per run on an idle
2-core CPU), since the t-SNE test asks for a learned agent.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.stats import trim_mean

from softmod.cli import ReportArgs, main
from softmod.config import EnvConfig, MLPNetConfig, SACConfig, SoftModularNetConfig
from softmod.evaluate import evaluate_run, write_eval_json
from softmod.loop import train
from softmod.report.build import build_report
from softmod.report.collect import Skipped, load_run
from softmod.report.routing import knn_task_accuracy
from softmod.report.stats import aggregate_curves, iqm, iqm_bootstrap_ci, mean_std

from .conftest import toy_config

# its module-scoped fixture is built once: under pytest-xdist the module stays on one worker
pytestmark = pytest.mark.xdist_group("test_report")

SEEDS = (0, 1)
MLP = MLPNetConfig(hidden=(64, 64))
SOFT = SoftModularNetConfig(layers=2, modules=2, module_dim=64, base_dim=64, gate_dim=64)


def _toy(method: str, seed: int) -> dict:
    soft = method == "soft-shallow"
    lr = 1e-3 if soft else 3e-4
    return dict(
        env=EnvConfig(benchmark="toy", horizon=30, toy_tasks=4),
        sac=SACConfig(
            batch_per_task=16, warmup_per_task=250, balance=soft, lr_policy=lr, lr_q=lr, lr_alpha=lr
        ),
        policy_net=SOFT if soft else MLP,
        q_net=SOFT if soft else MLP,
        method=method,
        total_steps=6000 if soft else 3000,
        eval_interval=1000,
        eval_episodes=2,
        log_interval=1000,
        seed=seed,
        torch_threads=1,
    )


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sweep directory: 2 methods x 2 seeds, one run re-evaluated by `softmod eval`'s code,
    and one unfinished run (config.json only)."""
    root = tmp_path_factory.mktemp("sweep")
    torch.set_num_threads(1)
    for method in ("mt-sac", "soft-shallow"):
        for seed in SEEDS:
            train(toy_config(**_toy(method, seed)), root / method / f"s{seed}", progress=False)
    protocol, result = evaluate_run(root / "mt-sac" / "s0", episodes=3)
    write_eval_json(root / "mt-sac" / "s0" / "eval_3ep.json", protocol, result)
    unfinished = root / "mt-sac" / "s2-crashed"
    unfinished.mkdir()
    cfg = json.loads((root / "mt-sac" / "s0" / "config.json").read_text())
    (unfinished / "config.json").write_text(json.dumps({**cfg, "seed": 2}))
    return root


@pytest.fixture(scope="module")
def report(sweep: Path) -> Path:
    """The report of the sweep, made by the command line."""
    out = sweep.parent / f"{sweep.name}-report"
    done = subprocess.run(
        [sys.executable, "-m", "softmod", "report", str(sweep), "--out", str(out), "--no-progress"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "skipped" in done.stderr and "s2-crashed" in done.stderr  # a warning, not a crash
    return out


def _csv(path: Path) -> list[dict]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def _final(run: Path) -> dict:
    """The run's final per-task results, read directly: eval_3ep.json beats final_eval.json."""
    name = "eval_3ep.json" if (run / "eval_3ep.json").exists() else "final_eval.json"
    return json.loads((run / name).read_text())


# ----------------------------------------------------------------------------- tables
def test_report_has_one_row_per_method_with_both_seeds_and_skips_the_unfinished_run(
    report: Path,
) -> None:
    rows = _csv(report / "table1.csv")
    assert [(r["benchmark"], r["goals"], r["method"]) for r in rows] == [
        ("toy4", "fixed", "mt-sac"),
        ("toy4", "fixed", "soft-shallow"),
    ]
    assert all(r["n_seeds"] == "2" and r["seeds"] == "0 1" for r in rows)
    assert rows[0]["episodes_per_task"] == "3 2"  # seed 0 re-evaluated with 3 episodes
    data = json.loads((report / "report.json").read_text())
    (skipped,) = data["skipped"]
    assert skipped["run"].endswith("s2-crashed") and "unfinished" in skipped["reason"]
    md = (report / "table1.md").read_text()
    assert "| mt-sac |" in md and "| soft-shallow |" in md and "Toy4-Fixed" in md
    per_task = _csv(report / "per_task.csv")
    assert len(per_task) == 2 * 4  # 2 methods x 4 tasks


def test_report_numbers_equal_a_direct_computation_from_the_run_files(
    sweep: Path, report: Path
) -> None:
    table = {r["method"]: r for r in _csv(report / "table1.csv")}
    per_task = {(r["method"], r["task"]): r for r in _csv(report / "per_task.csv")}
    for method in ("mt-sac", "soft-shallow"):
        finals = [_final(sweep / method / f"s{s}") for s in SEEDS]
        tasks = list(finals[0]["tasks"])
        scores = np.array([[f["tasks"][t]["success"] for t in tasks] for f in finals])
        per_seed = scores.mean(axis=1)
        row = table[method]
        assert float(row["success_mean_pct"]) == pytest.approx(100 * per_seed.mean(), abs=1e-9)
        assert float(row["success_std_pct"]) == pytest.approx(
            100 * np.std(per_seed, ddof=1), abs=1e-9
        )
        assert float(row["iqm_pct"]) == pytest.approx(100 * trim_mean(scores.ravel(), 0.25))
        # the 95 % interval: 2,000 replicates resampling the seeds per task (seeded RNG)
        draws = np.random.default_rng(0).integers(0, 2, size=(2000, 2, len(tasks)))
        boot = [trim_mean(scores[d, np.arange(len(tasks))].ravel(), 0.25) for d in draws]
        lo, hi = np.quantile(boot, [0.025, 0.975])
        assert float(row["iqm_ci_low_pct"]) == pytest.approx(100 * lo)
        assert float(row["iqm_ci_high_pct"]) == pytest.approx(100 * hi)
        returns = np.array([[f["tasks"][t]["return"] for t in tasks] for f in finals])
        assert float(row["return_mean"]) == pytest.approx(returns.mean())
        assert float(row["return_std"]) == pytest.approx(np.std(returns.mean(axis=1), ddof=1))
        for i, t in enumerate(tasks):
            cell = per_task[(method, t)]
            assert float(cell["success_mean_pct"]) == pytest.approx(100 * scores[:, i].mean())
            assert float(cell["return_mean"]) == pytest.approx(returns[:, i].mean())
            assert float(cell["return_std"]) == pytest.approx(np.std(returns[:, i], ddof=1))
    assert "## Per-task return, Toy4-Fixed" in (report / "per_task.md").read_text()
    md = (report / "table1.md").read_text()
    soft = table["soft-shallow"]
    cell = f"{float(soft['success_mean_pct']):.1f} ± {float(soft['success_std_pct']):.1f} (2)"
    assert cell in md


def test_curves_are_the_mean_and_std_of_the_eval_csv_files(sweep: Path) -> None:
    runs = [sweep / "soft-shallow" / f"s{s}" for s in SEEDS]
    tables = [_csv(r / "eval.csv") for r in runs]
    curves = [
        (
            np.array([int(x["step"]) for x in t]),
            np.array([float(x["eval/mean_success"]) for x in t]),
        )
        for t in tables
    ]
    steps, mean, std = aggregate_curves(curves)
    values = np.stack([v for _, v in curves])
    assert np.array_equal(steps, curves[0][0]) and steps[-1] == 6000
    assert np.allclose(mean, values.mean(0)) and np.allclose(std, values.std(0, ddof=1))
    # Figure 5 task by task reads each task's column; the tasks average to the mean curve
    run = load_run(runs[0])
    assert not isinstance(run, Skipped) and run.curve_tasks.shape == (len(tables[0]), 4)
    for i, task in enumerate(run.tasks):
        column = [float(x[f"eval/{task}/success"]) for x in tables[0]]
        assert np.array_equal(run.curve_tasks[:, i], column)
    assert np.allclose(run.curve_tasks.mean(axis=1), run.curve_success)


# ----------------------------------------------------------------------------- figures
def _check_png(path: Path) -> None:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path
    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        rgb = np.asarray(im.convert("RGB"))
    h, w, _ = rgb.shape
    assert w >= 400 and h >= 250, (path.name, w, h)
    non_white = (rgb < 245).any(axis=2).mean()
    colours = len(np.unique(rgb.reshape(-1, 3), axis=0))
    assert non_white > 0.02 and colours > 50, (path.name, non_white, colours)


def test_every_png_is_a_valid_non_trivial_image(report: Path) -> None:
    pngs = sorted((report / "figures").glob("*.png"))
    names = {p.name for p in pngs}
    assert {
        "curves_fig5_toy4-fixed.png",
        "curves_fig5tasks_toy4-fixed.png",
        "tsne_toy4-fixed-soft-shallow-s0.png",
        "routing_toy4-fixed-soft-shallow-s0.png",
    } <= names
    assert not any("mt-sac" in n and n.startswith(("tsne", "routing")) for n in names)
    for p in pngs:
        _check_png(p)


def test_tsne_of_a_learned_soft_modular_agent_separates_the_tasks(
    sweep: Path, report: Path
) -> None:
    run = sweep / "soft-shallow" / "s0"
    assert json.loads((run / "final_eval.json").read_text())["mean_success"] >= 0.5  # learned
    (routing,) = json.loads((report / "report.json").read_text())["routing"]
    assert routing["chance"] == 0.25 and routing["points"] == 4 * 2 * 30
    assert routing["knn_accuracy_tsne"] >= 0.8  # far above chance (0.25)

    # the same measure on the embedding the report saved, and a control: with the task labels
    # shuffled it falls to chance
    with (report / routing["data"][0]).open(newline="") as f:
        points = list(csv.DictReader(f))
    emb = np.array([[float(p["x"]), float(p["y"])] for p in points])
    task = np.array([int(p["task_index"]) for p in points])
    assert np.bincount(task).tolist() == [60] * 4
    assert knn_task_accuracy(emb, task) == pytest.approx(routing["knn_accuracy_tsne"])
    assert knn_task_accuracy(emb, task) >= 0.8
    assert knn_task_accuracy(emb, np.random.default_rng(0).permutation(task)) < 0.5
    # the routing behind Figure 3: every row of every P and the final vector is a distribution
    mean = json.loads((report / routing["data"][1]).read_text())
    assert list(mean) == [f"toy-{t}" for t in range(4)]
    for per_task in mean.values():
        assert np.allclose(np.sum(per_task["layers"], axis=-1), 1)
        assert np.isclose(sum(per_task["final"]), 1)


# ----------------------------------------------------------------------------- html
def test_index_html_references_only_files_that_exist(report: Path) -> None:
    page = (report / "index.html").read_text()
    refs = re.findall(r'(?:src|href)="([^"]+)"', page)
    files = [r for r in refs if not r.startswith("#")]
    assert files, "index.html references nothing"
    for ref in files:
        assert "://" not in ref and not ref.startswith("/"), ref  # offline, relative
        assert (report / ref).is_file(), ref
    shown = {Path(r).name for r in files}
    assert {p.name for p in (report / "figures").glob("*.png")} <= shown  # every figure is shown
    assert "Table 1" in page and "s2-crashed" in page


# ----------------------------------------------------------------------------- --at STEP
def _success_at(run: Path, step: int) -> list[float]:
    """Per-task success of a run's periodic evaluation at ``step``, read from eval.csv."""
    row = next(r for r in _csv(run / "eval.csv") if int(float(r["step"])) == step)
    return [float(v) for k, v in row.items() if k.count("/") == 2 and k.endswith("/success")]


def test_report_at_a_step_compares_every_run_at_its_periodic_evaluation_there(
    sweep: Path, tmp_path: Path
) -> None:
    out = tmp_path / "at"
    rep = build_report([sweep], out, routing=False, progress=False, at=2000)
    assert rep.at == 2000 and len(rep.runs) == 4  # finished or not; the crashed one is skipped
    (skipped,) = rep.skipped
    assert skipped.path.name == "s2-crashed" and "at step 2,000" in skipped.reason
    table = {r["method"]: r for r in _csv(out / "table1.csv")}
    for method in ("mt-sac", "soft-shallow"):
        per_seed = [np.mean(_success_at(sweep / method / f"s{s}", 2000)) for s in SEEDS]
        assert len(per_seed) == 2 and all(0 <= x <= 1 for x in per_seed)
        got = float(table[method]["success_mean_pct"])
        assert got == pytest.approx(100 * np.mean(per_seed), abs=1e-9)
        assert table[method]["episodes_per_task"] == "2 2"  # the periodic eval, not eval_3ep
        rows = [next(r for r in _csv(sweep / method / f"s{s}" / "eval.csv")
                     if int(float(r["step"])) == 2000) for s in SEEDS]  # fmt: skip
        mean_return = np.mean([float(r["eval/mean_return"]) for r in rows])
        assert float(table[method]["return_mean"]) == pytest.approx(mean_return, rel=1e-5)
    data = json.loads((out / "report.json").read_text())
    assert data["at"] == 2000
    assert all(src == "eval.csv@2000" for g in data["groups"] for src in g["sources"])
    assert "at 2,000 env steps (equal samples)" in (out / "table1.md").read_text()
    assert "equal samples, 2,000 env steps" in (out / "index.html").read_text()


def test_report_at_skips_runs_short_of_the_step_and_common_is_the_last_shared_step(
    sweep: Path, tmp_path: Path
) -> None:
    rep = build_report([sweep], tmp_path / "late", routing=False, progress=False, at=5000)
    assert {r.row for r in rep.runs} == {"soft-shallow"}  # mt-sac ran 3,000 steps only
    short = [
        s for s in rep.skipped if s.path.parent.name == "mt-sac" and s.path.name != "s2-crashed"
    ]
    assert len(short) == 2 and all("3,000" in s.reason for s in short), short
    # out of the tables, but mt-sac still has its curve (to 3,000) in Figure 5
    curves = rep.curves[("toy4", "fixed", "mt-sac")]
    assert {0, 1} <= {r.seed for r in curves} and all(r.curve_steps[-1] < 5000 for r in curves)
    assert (
        rep.curves[("toy4", "fixed", "soft-shallow")]
        == rep.groups[("toy4", "fixed", "soft-shallow")]
    )
    common = build_report([sweep], tmp_path / "common", routing=False, progress=False, at="common")
    last = [
        max(int(float(r["step"])) for r in _csv(sweep / "mt-sac" / f"s{s}" / "eval.csv"))
        for s in SEEDS
    ]
    assert common.at == min(last) and len(common.runs) == 4


def test_report_at_draws_the_routing_of_the_checkpoint_of_that_step(
    sweep: Path, tmp_path: Path
) -> None:
    run = sweep / "soft-shallow" / "s0"
    steps = sorted(int(p.stem.split("-")[1]) for p in (run / "checkpoints").glob("step-*.pt"))
    kept = steps[-1]  # the run's last full checkpoint
    rep = build_report([run], tmp_path / "kept", progress=False, at=kept)
    (routing,) = rep.routing
    assert routing.points > 0 and routing.tsne.is_file()
    missing = next(s for s in range(1000, kept, 1000) if s not in steps)
    rep = build_report([run], tmp_path / "none", progress=False, at=missing)
    assert not rep.routing and len(rep.runs) == 1  # the table stands; a note says why
    notes = json.loads((tmp_path / "none" / "report.json").read_text())["notes"]
    assert len(notes) == 1 and f"step-{missing:012d}.pt" in notes[0]


def test_softmod_eval_of_a_step_checkpoint_keeps_the_final_numbers_and_feeds_report_at(
    sweep: Path, tmp_path: Path
) -> None:
    run = tmp_path / "s0"
    shutil.copytree(sweep / "mt-sac" / "s0", run)  # the fixture's runs stay as they are
    final = (run / "eval_3ep.json").read_bytes()
    step = max(int(p.stem.split("-")[1]) for p in (run / "checkpoints").glob("step-*.pt"))
    ckpt = f"step-{step:012d}.pt"
    main(["eval", str(run), "--checkpoint", ckpt, "--episodes", "4", "--device", "cpu"])
    written = run / f"eval_4ep_step-{step:012d}.json"
    assert written.is_file() and (run / "eval_3ep.json").read_bytes() == final  # not replaced
    assert not (run / "eval_4ep.json").exists()
    data = json.loads(written.read_text())
    assert data["checkpoint"] == ckpt and data["episodes_per_task"] == 4

    rep = build_report([run], tmp_path / "at", routing=False, progress=False, at=step)
    (got,) = rep.runs
    assert got.source == written.name and got.episodes == 4  # 4 episodes beat eval.csv's 2
    expect = [data["tasks"][t]["success"] for t in got.tasks]
    assert got.success.tolist() == pytest.approx(expect)
    (got,) = build_report([run], tmp_path / "final", routing=False, progress=False).runs
    assert got.source == "eval_3ep.json"  # the final report still reads the final weights' eval


def test_report_at_zero_is_a_one_line_error(
    sweep: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as done:
        main(["report", str(sweep), "--out", str(tmp_path / "o"), "--at", "0"])
    assert done.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "--at" in lines[0] and "'common'" in lines[0], lines
    assert not (tmp_path / "o").exists()


# ----------------------------------------------------------------------------- table 2
def _fake_run(
    root: Path,
    method: str,
    seed: int,
    success: list[float],
    params: int,
    precision: str = "fp32",
    horizon: int = 150,
) -> None:
    """A finished run directory as softmod train leaves it (no weights: routing is off)."""
    run = root / f"{method}-s{seed}-{precision}-h{horizon}"
    run.mkdir(parents=True)
    hidden = {"mt-mh-sac": [400] * 3, "mt-mh-sac-4": [400] * 4}.get(method)
    net = (
        {"type": "MultiHeadNetConfig", "hidden": hidden}
        if hidden
        else {"type": "SoftModularNetConfig", "layers": 4, "modules": 4}
    )
    cfg = {
        "env": {"benchmark": "mt50", "goals": "fixed", "horizon": horizon},
        "sac": {"balance": not hidden},
        "precision": precision,
        "policy_net": net,
        "method": method,
        "seed": seed,
        "eval_episodes": 3,
    }
    (run / "config.json").write_text(json.dumps(cfg))
    tasks = {f"task-{i}": {"success": s} for i, s in enumerate(success)}
    (run / "final_eval.json").write_text(json.dumps({"episodes_per_task": 10, "tasks": tasks}))
    (run / "params.json").write_text(json.dumps({"policy": params, "q": params}))
    lines = ["step,eval/mean_success", "1000,0.1", f"2000,{np.mean(success)}"]
    (run / "eval.csv").write_text("\n".join(lines) + "\n")


def test_table2_reports_success_and_parameters_relative_to_soft_deep(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    for seed in (0, 1):
        _fake_run(runs, "soft-deep", seed, [1.0, 0.5], 1000)
        _fake_run(runs, "mt-mh-sac", seed, [0.5, 0.0], 1200)
        _fake_run(runs, "mt-mh-sac-4", seed, [0.5, 0.5 * seed], 1600)
    rep = build_report([runs], tmp_path / "out", routing=False, progress=False)
    assert len(rep.groups) == 3 and not rep.skipped
    md = (tmp_path / "out" / "table2.md").read_text()
    assert "| mt-mh-sac | 25.0 ± 0.0 (2) | 1,200 | 1.2x | 3 | 400 |" in md
    assert "| mt-mh-sac-4 | 37.5 ± 17.7 (2) | 1,600 | 1.6x | 4 | 400 |" in md
    assert "| soft-deep | 75.0 ± 0.0 (2) | 1,000 | 1.0x | – | – |" in md
    assert (tmp_path / "out" / "figures" / "curves_fig6a_mt50-fixed.png").is_file()


def test_runs_in_bf16_or_at_another_horizon_are_rows_of_their_own(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    for seed in (0, 1):
        _fake_run(runs, "soft-deep", seed, [1.0, 0.5], 1000)
    _fake_run(runs, "soft-deep", 0, [0.0, 0.5], 1000, precision="bf16")
    _fake_run(runs, "soft-deep", 0, [0.5, 0.5], 1000, precision="bf16", horizon=500)
    rep = build_report([runs], tmp_path / "out", routing=False, progress=False)
    assert list(rep.stats) == [
        ("mt50", "fixed", "soft-deep"),
        ("mt50", "fixed", "soft-deep [bf16]"),
        ("mt50", "fixed", "soft-deep [bf16, h500]"),
    ]
    assert rep.stats[("mt50", "fixed", "soft-deep")].seeds == [0, 1]  # not mixed with bf16
    md = (tmp_path / "out" / "table1.md").read_text()
    assert "| soft-deep [bf16] | 25.0 (1) |" in md and "| soft-deep [bf16, h500] | 50.0 (1) |" in md
    published = md.split("Published reference rows")[1]
    assert (
        "MT50-Fixed soft-deep: 75.0 ± 0.0 (2); MT50-Fixed soft-deep [bf16]: 25.0 (1)" in published
    )
    assert (tmp_path / "out" / "figures" / "curves_fig5_mt50-fixed.png").is_file()


def test_a_soft_modular_run_without_weights_keeps_its_row_and_gets_a_warning(
    tmp_path: Path,
) -> None:
    _fake_run(tmp_path / "runs", "soft-deep", 0, [1.0, 0.0], 1000)
    rep = build_report([tmp_path / "runs"], tmp_path / "out", progress=False)
    assert list(rep.stats) == [("mt50", "fixed", "soft-deep")] and not rep.routing
    notes = json.loads((tmp_path / "out" / "report.json").read_text())["notes"]
    assert len(notes) == 1 and "no routing figures" in notes[0] and "final.pt" in notes[0]
    assert "no routing figures" in (tmp_path / "out" / "index.html").read_text()


# ----------------------------------------------------------------------------- cli, stats
def test_report_help_documents_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["report", "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    for field in dataclasses.fields(ReportArgs):
        if field.name != "paths":
            assert "--" + field.name.replace("_", "-") in out, field.name


@pytest.mark.parametrize("make", ["missing", "empty"])
def test_report_without_runs_is_a_one_line_error(
    tmp_path: Path, make: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "nothing"
    if make == "empty":
        path.mkdir()
    with pytest.raises(SystemExit) as done:
        main(["report", str(path), "--out", str(tmp_path / "o"), "--no-progress"])
    assert done.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("softmod: error:"), lines
    assert str(path) in lines[0]


def test_iqm_and_bootstrap_interval_follow_their_definitions() -> None:
    rng = np.random.default_rng(1)
    for m in (1, 3, 4, 7, 10, 21):
        x = rng.uniform(size=m)
        assert iqm(x) == pytest.approx(trim_mean(x, 0.25))
    scores = rng.uniform(size=(3, 10))
    lo, hi = iqm_bootstrap_ci(scores)
    assert lo <= iqm(scores) <= hi
    assert iqm_bootstrap_ci(scores) == (lo, hi)  # seeded: reproducible
    same = np.tile(scores[:1], (3, 1))  # identical runs: nothing to resample
    assert iqm_bootstrap_ci(same) == pytest.approx((iqm(same), iqm(same)))
    mean, std = mean_std(np.array([0.2, 0.4]))
    assert (mean, std) == pytest.approx((0.3, np.std([0.2, 0.4], ddof=1)))
    assert np.isnan(mean_std(np.array([0.5]))[1])


def test_curves_with_different_eval_steps_are_interpolated_up_to_the_shortest_run() -> None:
    a = (np.array([0, 10, 20]), np.array([0.0, 0.5, 1.0]))
    b = (np.array([0, 5, 15]), np.array([0.0, 0.5, 1.0]))
    steps, mean, _ = aggregate_curves([a, b])
    assert list(steps) == [0, 5, 10, 15]
    assert np.allclose(mean, [0.0, (0.25 + 0.5) / 2, (0.5 + 0.75) / 2, (0.75 + 1.0) / 2])
