"""Weights & Biases, optional (issue 22): ``--wandb PROJECT`` in W&B's offline mode logs the
TensorBoard metric names, the config and the final table; without the package, a one-line hint."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

import softmod
from softmod.cli import main

from .test_resume import small_config


def _tensorboard_tags(tb_dir: Path) -> set[str]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tb_dir))
    acc.Reload()
    return set(acc.Tags()["scalars"])


@pytest.mark.slow
def test_wandb_offline_logs_the_tensorboard_metrics_config_and_final_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    cfg = small_config(total_steps=200, eval_interval=100, log_interval=100)
    run = softmod.train(cfg, tmp_path / "run", progress=False, wandb="softmod-test")
    offline = list((run / "wandb").glob("offline-run-*"))
    assert len(offline) == 1, list((run / "wandb").iterdir())
    # W&B's offline log is a record file of protobuf messages: keys are stored as UTF-8 bytes.
    # W&B's service process writes it; on a loaded machine (CI, 2026-12-03) its history records
    # were not in the file yet when finish() had returned, so wait for them (60 s at most).
    (log,) = offline[0].glob("run-*.wandb")
    tags = _tensorboard_tags(run / "tb")
    assert {"loss/q", "eval/mean_success", "alpha/toy-0", "eval/toy-3/success"} <= tags
    deadline = time.monotonic() + 60
    while True:
        logged = log.read_bytes()
        missing = sorted(t for t in tags if t.encode() not in logged)
        if not missing or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert not missing, f"TensorBoard names not logged to W&B: {missing}"
    assert b"final/mean_success" in logged and b"final/toy-3/success" in logged
    for key in ("batch_per_task", "policy_net", "reward_version"):  # the config
        assert key.encode() in logged
    (table_file,) = (offline[0] / "files" / "media" / "table").glob("final_eval_*.table.json")
    table = json.loads(table_file.read_text())
    final = json.loads((run / "final_eval.json").read_text())
    assert table["columns"] == ["task", "success", "return"]
    assert [row[0] for row in table["data"]] == ["toy-0", "toy-1", "toy-2", "toy-3"]
    assert [row[1] for row in table["data"]] == [
        final["tasks"][f"toy-{t}"]["success"] for t in range(4)
    ]


def test_without_the_package_wandb_is_a_one_line_install_hint_before_any_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "wandb", None)  # as if not installed: find_spec -> None
    run = tmp_path / "run"
    args = ["train", "--benchmark", "toy", "--wandb", "proj", "--run-dir", str(run)]
    with pytest.raises(SystemExit) as exit_:
        main(args)
    assert exit_.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [
        "softmod: error: --wandb needs the wandb package, which is not installed: "
        "pip install 'softmod[wandb]' (or pip install wandb)"
    ]
    assert not run.exists()  # nothing was started
    with pytest.raises(ValueError, match=r"--wandb 'a/b' is not a W&B project name"):
        softmod.train({"benchmark": "toy"}, wandb="a/b")
