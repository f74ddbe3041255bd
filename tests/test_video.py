"""Evaluation videos (issue 22): ``softmod eval RUN_DIR --video N`` on MT1 reach-v3, rendered
offscreen on this CPU-only machine (MUJOCO_GL=egl or osmesa, Mesa's software renderer)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import softmod
from softmod import video
from softmod.cli import main
from softmod.config import EnvConfig

from .test_resume import small_config

# its module-scoped fixture is built once: under pytest-xdist the module stays on one worker
pytestmark = pytest.mark.xdist_group("test_video")

HORIZON = 20


def _softmod(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    return subprocess.run(
        [sys.executable, "-m", "softmod", *args], capture_output=True, text=True, env=env,
        timeout=600,
    )  # fmt: skip


@pytest.fixture(scope="module")
def reach_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny MT1 reach-v3 run (60 steps, small networks)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    env = EnvConfig(benchmark="mt1", task="reach-v3", horizon=HORIZON)
    cfg = small_config(env=env, total_steps=60, eval_interval=60, checkpoint_interval=60)
    run = softmod.train(cfg, tmp_path_factory.mktemp("video") / "reach", progress=False)
    torch.set_num_threads(threads)
    return run


@pytest.fixture(scope="module")
def reach_videos(reach_run: Path) -> Path:
    """``softmod eval RUN --episodes 2 --video 2`` on the reach-v3 run (a fresh process)."""
    out = _softmod("eval", str(reach_run), "--episodes", "2", "--video", "2", "--device", "cpu")
    assert out.returncode == 0, out.stderr[-3000:]
    return reach_run


@pytest.mark.slow
def test_eval_video_writes_mp4_and_gif_per_task(reach_videos: Path) -> None:
    import imageio.v3 as iio
    from PIL import Image

    reach_run = reach_videos
    mp4, gif = reach_run / "videos" / "reach-v3.mp4", reach_run / "videos" / "reach-v3.gif"
    frames = iio.imread(mp4)
    # 2 episodes x (the reset state + one frame per step)
    assert frames.shape == (2 * (HORIZON + 1), *video.SIZE[::-1], 3)
    scene = frames[:, 40:].astype(np.int16)  # below the caption band
    assert np.abs(scene[HORIZON] - scene[0]).mean() > 0.5  # the arm moved during episode 1
    assert frames.std() > 10  # not a blank image
    with Image.open(gif) as img:
        assert img.size == (video.SIZE[0] // 2, video.SIZE[1] // 2)
        assert img.n_frames == HORIZON + 1  # every 2nd of 42 frames
    summary = json.loads((reach_run / "videos" / "videos.json").read_text())
    assert summary["frames_per_task"] == 2 * (HORIZON + 1)
    shown = summary["tasks"]["reach-v3"]["success"]
    # the videos are the evaluation's first episodes; the evaluation is the same without them
    with_video = json.loads((reach_run / "eval_2ep.json").read_text())
    assert with_video["tasks"]["reach-v3"]["success"] == np.mean(shown)
    plain = reach_run / "plain.json"
    out = _softmod("eval", str(reach_run), "--episodes", "2", "--out", str(plain))
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads(plain.read_text())["tasks"] == with_video["tasks"]


@pytest.mark.slow
def test_a_machine_that_cannot_render_says_what_is_missing_and_still_evaluates(
    reach_run: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """No libOSMesa (as on a machine without libosmesa6): one line naming it, then the evaluation
    runs and writes its JSON; no video is written."""
    real = video._find_library
    monkeypatch.setattr(video, "_find_library", lambda n: None if n == "OSMesa" else real(n))
    monkeypatch.setenv("MUJOCO_GL", "osmesa")
    out = tmp_path / "eval.json"
    before = sorted((reach_run / "videos").glob("*")) if (reach_run / "videos").exists() else []
    main(["eval", str(reach_run), "--episodes", "1", "--video", "1", "--out", str(out)])
    err = capsys.readouterr().err
    line = next(ln for ln in err.splitlines() if "video skipped" in ln)
    assert "MUJOCO_GL=osmesa needs libosmesa6" in line and "apt-get install" in line
    assert json.loads(out.read_text())["tasks"]["reach-v3"]["successes"] in (0, 1)
    after = sorted((reach_run / "videos").glob("*")) if (reach_run / "videos").exists() else []
    assert after == before


def test_video_of_a_toy_run_or_a_bad_count_is_refused_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = softmod.train(small_config(total_steps=100, eval_interval=100), tmp_path / "toy",
                        progress=False)  # fmt: skip
    capsys.readouterr()
    for args, message in [
        (["--video", "1"], "--video: the toy benchmark has no images; allowed: runs on mt1"),
        (["--video", "-1"], "--video -1: allowed: N >= 1 episodes per task"),
    ]:
        with pytest.raises(SystemExit) as exit_:
            main(["eval", str(run), "--episodes", "1", *args])
        assert exit_.value.code == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"softmod: error: {message}"), lines
    assert not (run / "eval_1ep.json").exists()


@pytest.mark.slow
def test_the_report_shows_the_gifs_of_the_best_run_with_videos(
    reach_videos: Path, tmp_path: Path
) -> None:
    from softmod.report.build import build_report

    report = build_report([reach_videos], tmp_path / "report", routing=False, progress=False)
    # a 20-step horizon is not Meta-World's 150: the row is "mt-sac [h20]", the file name clean
    gif = tmp_path / "report" / "videos" / "mt1-reach-v3-fixed-mt-sac_h20-reach-v3.gif"
    assert (
        gif in report.files
        and gif.read_bytes() == (reach_videos / "videos/reach-v3.gif").read_bytes()
    )
    page = (tmp_path / "report" / "index.html").read_text()
    assert (
        'id="videos"' in page and 'src="videos/mt1-reach-v3-fixed-mt-sac_h20-reach-v3.gif"' in page
    )
    assert "videos of final.pt, camera corner;" in page  # what the GIFs show
    bare = build_report([reach_videos], tmp_path / "bare", routing=False, progress=False,
                        videos=False)  # fmt: skip
    assert not (tmp_path / "bare" / "videos").exists() and not any(
        f.suffix == ".gif" for f in bare.files
    )
    assert 'id="videos"' not in (tmp_path / "bare" / "index.html").read_text()


_CONTEXTS = """
import numpy as np
from softmod.video import gl_backend
backend, problem = gl_backend()
assert backend, problem
from softmod.config import EnvConfig
from softmod.envs.metaworld_env import MetaWorldMultiTaskEnv
env = MetaWorldMultiTaskEnv(EnvConfig(benchmark="mt10", goals="fixed"), 0, 0,
                            render=("corner3", 64, 64))
env.reset()
first, last = env.render(0), env.render(9)
again = env.render(0)  # after env 9 created its context
print(int(np.array_equal(first, again)), int(np.array_equal(first, last)), float(first.std()))
"""


@pytest.mark.slow
def test_every_env_of_a_multi_task_env_renders_with_its_own_gl_context() -> None:
    """Rendering env 0 after env 9 gives env 0's image (it drew garbage with env 9's context)."""
    out = subprocess.run([sys.executable, "-c", _CONTEXTS], capture_output=True, text=True,
                         timeout=600)  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    same, other, std = out.stdout.split()
    assert same == "1" and other == "0" and float(std) > 10


@pytest.mark.slow
def test_eval_camera_option_picks_the_view(reach_videos: Path, tmp_path: Path) -> None:
    import shutil

    import imageio.v3 as iio

    run = tmp_path / "reach"
    shutil.copytree(reach_videos, run, ignore=shutil.ignore_patterns("videos"))
    out = _softmod("eval", str(run), "--episodes", "1", "--video", "1", "--camera", "topview",
                   "--device", "cpu")  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads((run / "videos" / "videos.json").read_text())["camera"] == "topview"
    top = iio.imread(run / "videos" / "reach-v3.mp4")[0, 40:].astype(np.int16)
    corner = iio.imread(reach_videos / "videos" / "reach-v3.mp4")[0, 40:].astype(np.int16)
    assert top.std() > 10 and np.abs(top - corner).mean() > 10  # another view of the same state
