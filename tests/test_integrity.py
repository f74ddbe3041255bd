"""Issue 16 on the toy env: checkpoint digests, a really full disk (tmpfs), the way out of a run
that stopped before its first checkpoint, and the progress display without a terminal."""

from __future__ import annotations

import errno
import io
import os
import subprocess
import zipfile
from pathlib import Path

import pytest
import torch
from rich.console import Console

import softmod.loop as train_module
from softmod.checkpoint import CheckpointError, CheckpointWriteError, load_agent, load_file
from softmod.checkpoint import step_checkpoints as saved_steps
from softmod.cli import main
from softmod.config import save_config
from softmod.loop import train
from softmod.progress import TrainProgress
from softmod.resume import resume

from .test_resume import assert_same_run, small_config


def flip_a_byte_of_tensor_data(path: Path) -> None:
    """Flip one byte in the middle of the largest record of a torch zip file (tensor bytes, which
    ``torch.load`` reads without noticing)."""
    with zipfile.ZipFile(path) as z:
        storages = [i for i in z.infolist() if "/data/" in i.filename]  # not data.pkl
        info = max(storages, key=lambda i: i.file_size)
    with path.open("r+b") as f:
        f.seek(info.header_offset + 26)
        name_len, extra_len = (int.from_bytes(f.read(2), "little") for _ in range(2))
        at = info.header_offset + 30 + name_len + extra_len + info.file_size // 2
        f.seek(at)
        byte = f.read(1)
        f.seek(at)
        f.write(bytes([byte[0] ^ 0xFF]))


@pytest.mark.parametrize("kind", ["step", "replay"])
def test_a_flipped_byte_is_detected_and_resume_takes_the_previous_checkpoint(
    tmp_path: Path, kind: str, capsys
) -> None:
    cfg = small_config()
    train(cfg, tmp_path / "ref", progress=False)
    run = tmp_path / "run"
    with pytest.raises(train_module.RunInterrupted):
        train(cfg, run, progress=False, stop_at=450)
    step, path = saved_steps(run / "checkpoints")[-1]
    assert step == 452
    target = path if kind == "step" else run / "checkpoints" / f"replay-{step:012d}.pt"
    flip_a_byte_of_tensor_data(target)
    torch.load(target, weights_only=True)  # torch itself does not notice
    with pytest.raises(CheckpointError, match="corrupted"):
        load_file(target)
    resume(run, progress=False)  # falls back to step 400 and trains on from there
    assert "trying the previous checkpoint" in " ".join(capsys.readouterr().err.split())
    assert (run / "checkpoints" / f"step-{step:012d}.pt.bad").exists()
    assert_same_run(tmp_path / "ref", run)


@pytest.mark.parametrize("name", ["best.pt", "final.pt"])
def test_a_flipped_byte_in_the_weights_is_detected(tmp_path: Path, name: str) -> None:
    run = tmp_path / "run"
    train(small_config(), run, progress=False)
    flip_a_byte_of_tensor_data(run / "checkpoints" / name)
    with pytest.raises(CheckpointError, match=rf"{name}: corrupted"):
        load_agent(run, torch.device("cpu"), name)


# ---------------------------------------------------------------------------- a full disk
@pytest.fixture
def small_disk(tmp_path: Path):
    """A 48 MB tmpfs (as root, which CI is), and a way to fill it up."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    mnt = tmp_path / "disk"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(mnt)], check=True)

    def fill() -> Path:
        filler = mnt / "filler"
        with filler.open("wb") as f:
            try:
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()
            except OSError as err:
                assert err.errno == errno.ENOSPC
        return filler

    yield mnt, fill
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def _fill_at(monkeypatch, fill, steps: set[int], free_after: bool) -> None:
    """Fill the disk just before the full checkpoints of ``steps`` (freed after if asked)."""
    real_save = train_module.Trainer.save

    def save(self, envs: bool = True):
        if self.step not in steps:
            return real_save(self, envs)
        filler = fill()
        try:
            return real_save(self, envs)
        finally:
            if free_after:
                filler.unlink()

    monkeypatch.setattr(train_module.Trainer, "save", save)


def test_a_full_disk_at_a_periodic_save_warns_and_retries(
    tmp_path: Path, small_disk, monkeypatch, capsys
) -> None:
    mnt, fill = small_disk
    cfg = small_config()
    train(cfg, tmp_path / "ref", progress=False)
    _fill_at(monkeypatch, fill, {400}, free_after=True)
    run = mnt / "run"
    train(cfg, run, progress=False, console=Console(stderr=True, width=1000))
    err = capsys.readouterr().err
    warning = [line for line in err.splitlines() if "cannot write the checkpoint" in line]
    assert len(warning) == 1 and "step 400" in warning[0] and "retrying" in warning[0]
    assert "No space left on device" in warning[0]
    assert "Traceback" not in err
    assert [s for s, _ in saved_steps(run / "checkpoints")] == [200, 600]
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == [
        "best.pt", "final.pt", "replay-000000000200.pt", "replay-000000000600.pt",
        "step-000000000200.pt", "step-000000000600.pt",
    ]  # fmt: skip
    assert_same_run(tmp_path / "ref", run)


def test_a_full_disk_at_the_end_is_one_line_and_loses_nothing(
    tmp_path: Path, small_disk, monkeypatch, capsys
) -> None:
    mnt, fill = small_disk
    cfg = small_config()
    train(cfg, tmp_path / "ref", progress=False)
    _fill_at(monkeypatch, fill, {600}, free_after=False)
    run = mnt / "run"
    with pytest.raises(CheckpointWriteError) as info:
        train(cfg, run, progress=False)
    message = str(info.value)
    assert "\n" not in message and "step 600" in message and f"--resume {run}" in message
    assert [s for s, _ in saved_steps(run / "checkpoints")] == [200, 400]
    assert not list((run / "checkpoints").glob("*.tmp"))
    assert not (run / "checkpoints" / "replay-000000000600.pt").exists()  # no orphan
    load_agent(run, torch.device("cpu"), "step-000000000400.pt")  # intact
    (mnt / "filler").unlink()
    monkeypatch.undo()
    resume(run, progress=False)
    assert_same_run(tmp_path / "ref", run)


# ------------------------------------------------------------ stopped before any checkpoint
def test_a_run_without_a_checkpoint_names_the_way_out(tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    run.mkdir()
    save_config(small_config(), run / "config.json")  # killed before its first checkpoint
    for argv in (["train", "--resume", str(run)], ["train", "--run-dir", str(run)]):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 2
        line = capsys.readouterr().err.strip()
        assert "\n" not in line and f"rm -r {run}" in line
    assert "nothing to resume" in _last_error(main, ["train", "--resume", str(run)], capsys)


def _last_error(entry, argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit):
        entry(argv)
    return capsys.readouterr().err


# ------------------------------------------------------------------------- the progress line
def test_progress_without_a_terminal_prints_whole_lines_with_speed_and_eta(monkeypatch) -> None:
    now = [100.0]
    monkeypatch.setattr("softmod.progress.time.perf_counter", lambda: now[0])
    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=40)  # narrower than a line
    with TrainProgress(console, True, total=40_000, completed=0, line_every_s=0) as bar:
        for t, step, warm in [(101, 10_000, False), (102, 20_000, False), (103, 20_100, True)]:
            now[0] = t
            bar.update(step, warm)
        now[0] = 104
        bar.update(20_200, True, success=0.1)
    lines = out.getvalue().splitlines()
    assert len(lines) == 5  # one per update and a last one, never wrapped or cut
    assert lines[0].startswith("10,000/40,000 env steps (25%) · 10,000 steps/s · success -")
    assert lines[1].endswith("ETA after warm-up")  # warm-up steps are fast random steps
    assert "- steps/s" in lines[2]  # the speed of training steps only, from the warm-up's end
    assert "20,200/40,000 env steps (50%) · 100 steps/s · success 10%" in lines[3]
    assert lines[3].endswith("ETA 0:03:18")  # 19,800 steps at 100 steps/s
    assert lines[4] == lines[3]
