"""Evaluation videos (issue 22): ``softmod eval RUN_DIR --video N``.

:func:`render_videos` rolls out the run's deterministic policy for N episodes per task on an
environment of its own, built like the evaluation's (same config, seed and RNG stream
``FINAL_EVAL_STREAM``), so the videos show exactly the evaluation's first N episodes, and the
evaluation itself (its own env, rolled out before) is untouched: its success numbers are the same
with and without ``--video``. Deterministic actions draw no random numbers.

Per task it writes ``RUN_DIR/videos/<task>.mp4`` (full size, ``FPS`` frames per second) and
``<task>.gif`` (every 2nd frame at half size, the same speed), each frame with the task, episode,
step and the step's success flag drawn on it (green once the episode has succeeded). An episode of
horizon H has H + 1 frames: the reset state, then the state after each step (the last one rendered
just before the env resets itself, through ``MetaWorldMultiTaskEnv.before_reset``).

Two departures from Meta-World's own images, both visual only (the video env is not the
evaluation's): (1) the corner cameras render upside down through gymnasium's renderer
(Farama-Foundation/Metaworld issue #516: "the rendered image is upside down"), so their frames are
flipped vertically; (2) shadows and reflections are switched off (``light_castshadow``,
``mat_reflectance``): Mesa's software renderer is about 4x faster without them (0.27 s instead of
1.05 s per 320x320 frame on the busy 2-core test machine).

Rendering is MuJoCo's offscreen OpenGL, through gymnasium's renderer: ``MUJOCO_GL=egl`` (Mesa's
software EGL on a CPU-only machine) or ``osmesa``. :func:`gl_backend` picks one that works before
any evaluation starts (each tried in a subprocess, since a failed GL platform cannot be swapped
in-process) and otherwise returns one line naming the missing Debian package.
"""

from __future__ import annotations

import ctypes.util
import glob
import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np

# Meta-World v3's cameras (every task's model has them); `softmod eval --camera` takes one
Camera = Literal["corner", "corner2", "corner3", "corner4", "topview", "behindGripper",
                 "gripperPOV"]  # fmt: skip
CAMERAS: tuple[str, ...] = get_args(Camera)
FLIPPED = ("corner", "corner2", "corner3", "corner4")  # render upside down (see the module doc)
CAMERA = "corner"  # Meta-World's default view
SIZE = (320, 320)  # (width, height) of the MP4 frames: multiples of 16 (the codec's blocks)
GIF_STRIDE = 2  # every 2nd frame, at half the size
GIF_COLOURS = 64  # palette of the small GIF
FPS = 30  # MP4 frames per second (a 150-step episode: 5 s)
APT = "apt-get install libegl1 libegl-mesa0 libgl1-mesa-dri libopengl0 libosmesa6"
BACKENDS = ("egl", "osmesa")


def _find_library(name: str) -> str | None:
    return ctypes.util.find_library(name)


def _missing(backend: str) -> list[str]:
    """The Debian packages (or pip packages) ``backend`` needs that this machine lacks."""
    missing = []
    if importlib.util.find_spec("OpenGL") is None:
        missing.append("PyOpenGL (pip install PyOpenGL)")
    if backend == "osmesa":
        if _find_library("OSMesa") is None:
            missing.append("libosmesa6")
        return missing
    if _find_library("EGL") is None:
        missing.append("libegl1")
    if _find_library("OpenGL") is None and _find_library("GL") is None:
        missing.append("libopengl0")
    vendors = glob.glob("/usr/share/glvnd/egl_vendor.d/*.json")
    if _find_library("EGL") is not None and not vendors:
        missing.append("libegl-mesa0")
    if not glob.glob("/usr/lib/*/dri/swrast_dri.so") + glob.glob("/usr/lib/dri/swrast_dri.so"):
        missing.append("libgl1-mesa-dri")
    return missing


def _probe(backend: str) -> str | None:
    """None if MuJoCo makes an offscreen context with ``backend`` (in a subprocess), else why."""
    code = f"from mujoco.{backend} import GLContext as C; c = C(8, 8); c.make_current(); c.free()"
    env = {**os.environ, "MUJOCO_GL": backend}
    env.pop("PYOPENGL_PLATFORM", None)
    try:
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
        )
    except subprocess.TimeoutExpired:
        return "creating a context timed out"
    if out.returncode == 0:
        return None
    lines = [ln for ln in out.stderr.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else f"exit code {out.returncode}"


def gl_backend() -> tuple[str | None, str]:
    """An offscreen GL backend that works here (``MUJOCO_GL`` if set, else egl, then osmesa) and
    an empty string; or None and one line naming what is missing. The backend is set in
    ``MUJOCO_GL`` of this process (call this before MuJoCo renders)."""
    chosen = os.environ.get("MUJOCO_GL", "").strip().lower()
    candidates = (chosen,) if chosen else BACKENDS
    problems = []
    for backend in candidates:
        if backend not in BACKENDS:
            problems.append(f"MUJOCO_GL={backend} is not an offscreen backend (egl, osmesa)")
            continue
        missing = _missing(backend)
        if missing:
            problems.append(f"MUJOCO_GL={backend} needs {', '.join(missing)}")
            continue
        why = _probe(backend)
        if why is None:
            os.environ["MUJOCO_GL"] = backend
            return backend, ""
        problems.append(f"MUJOCO_GL={backend} failed: {why}")
    return None, (
        f"video skipped: MuJoCo cannot render offscreen here ({'; '.join(problems)}); "
        f"install the missing package ({APT})"
    )


# ----------------------------------------------------------------------------------- frames
def _font(height: int) -> Any:
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=max(10, height // 22))
    except (TypeError, OSError):  # an old Pillow or one without FreeType: the bitmap font
        return ImageFont.load_default()


def annotate(
    frame: np.ndarray, task: str, episode: str, step: str, flag: float, solved: bool, font: Any
) -> np.ndarray:
    """``frame`` with a caption band: task and episode; step and the step's success flag."""
    from PIL import Image, ImageDraw

    img = Image.fromarray(np.ascontiguousarray(frame))
    draw = ImageDraw.Draw(img)
    h = img.height
    band = max(24, h // 9)
    draw.rectangle((0, 0, img.width, band), fill=(0, 0, 0))
    colour = (90, 230, 90) if solved else (235, 235, 235)
    draw.text((4, 2), f"{task}  episode {episode}", fill=(235, 235, 235), font=font)
    draw.text((4, band // 2), f"step {step}  success {flag:.0f}", fill=colour, font=font)
    return np.asarray(img)


class _TaskVideo:
    """One task's MP4 (streamed) and GIF (kept at half size, written at the end)."""

    def __init__(self, out: Path, task: str, size: tuple[int, int]) -> None:
        import imageio.v2 as imageio

        self.task, self.size = task, size
        self.mp4 = out / f"{task}.mp4"
        self.gif = out / f"{task}.gif"
        self.writer = imageio.get_writer(
            self.mp4, fps=FPS, codec="libx264", quality=7, macro_block_size=16
        )
        self.font = _font(size[1])
        self.small: list[Any] = []
        self.frames = 0

    def add(self, frame: np.ndarray, episode: str, step: str, flag: float, solved: bool) -> None:
        from PIL import Image

        img = annotate(frame, self.task, episode, step, flag, solved, self.font)
        self.writer.append_data(img)
        if self.frames % GIF_STRIDE == 0:
            half = (self.size[0] // 2, self.size[1] // 2)
            small = Image.fromarray(img).resize(half, Image.Resampling.BILINEAR)
            self.small.append(small.quantize(GIF_COLOURS))
        self.frames += 1

    def close(self) -> None:
        self.writer.close()
        if self.small:
            self.small[0].save(
                self.gif,
                save_all=True,
                append_images=self.small[1:],
                duration=round(1000 * GIF_STRIDE / FPS),
                loop=0,
                optimize=True,
            )


def render_videos(
    run_dir: Path,
    episodes: int,
    device: Any = None,
    checkpoint: str = "final.pt",
    seed: int | None = None,
    precision: str | None = None,
    camera: str = CAMERA,
    size: tuple[int, int] = SIZE,
    horizon: int | None = None,
) -> dict[str, Any]:
    """Render ``episodes`` deterministic episodes per task of a Meta-World run to
    ``RUN_DIR/videos/<task>.mp4`` and ``.gif`` (see the module doc), episodes of ``horizon`` steps
    (default: the run's); returns a summary (files, frames per task, each episode's success), also
    written as ``videos/videos.json``."""
    import json
    from dataclasses import replace

    import torch

    from softmod.checkpoint import load_agent
    from softmod.envs.gym_view import check_camera
    from softmod.envs.metaworld_env import MetaWorldMultiTaskEnv
    from softmod.evaluate import FINAL_EVAL_STREAM
    from softmod.validation import ConfigError

    if episodes < 1:
        raise ConfigError(f"--video {episodes}: allowed: N >= 1 episodes per task")
    device = device or torch.device("cpu")
    cfg, agent = load_agent(run_dir, device, checkpoint)
    check_video_run(cfg)
    policy = agent.policy.eval()
    if precision is not None:
        policy.precision = precision
    seed = cfg.seed if seed is None else seed
    env_cfg = cfg.env if horizon is None else replace(cfg.env, horizon=horizon)
    env = MetaWorldMultiTaskEnv(env_cfg, seed, FINAL_EVAL_STREAM, render=(camera, *size))
    out = Path(run_dir) / "videos"
    out.mkdir(exist_ok=True)
    videos = [_TaskVideo(out, env.task_names[int(t)], size) for t in env.task_ids]
    for sim in env.envs:  # visual only: no shadows, no reflections (see the module doc)
        sim.model.light_castshadow[:] = 0
        sim.model.mat_reflectance[:] = 0
    flip = camera in FLIPPED

    def frame_of(i: int) -> np.ndarray:
        image = env.render(i)
        return image[::-1] if flip else image

    last: dict[int, np.ndarray] = {}
    env.before_reset = lambda i: last.__setitem__(i, frame_of(i))
    wins = np.zeros((len(videos), episodes), bool)
    try:
        check_camera(env.envs[0], camera)
        task = torch.as_tensor(env.task_ids, device=device)
        obs = env.reset()
        h = env.horizon
        for e in range(episodes):
            ep = f"{e + 1}/{episodes}"
            hit = np.zeros(len(videos), bool)
            for i, video in enumerate(videos):
                video.add(frame_of(i), ep, f"0/{h}", 0.0, False)
            for t in range(1, h + 1):
                with torch.no_grad():
                    act = policy.act(torch.as_tensor(obs, device=device), task, True)
                res = env.step(act.float().cpu().numpy())
                hit |= res.success > 0
                for i, video in enumerate(videos):
                    frame = last.pop(i, None)  # the last frame, before the reset
                    frame = frame_of(i) if frame is None else frame
                    video.add(frame, ep, f"{t}/{h}", float(res.success[i]), bool(hit[i]))
                obs = res.obs
            wins[:, e] = hit
    finally:
        for video in videos:
            video.close()
        env.close()
    summary = {
        "checkpoint": checkpoint,
        "seed": seed,
        "camera": camera,
        "horizon": env.horizon,
        "size": list(size),
        "fps": FPS,
        "episodes_per_task": episodes,
        "frames_per_task": episodes * (env.horizon + 1),
        "tasks": {
            v.task: {"mp4": v.mp4.name, "gif": v.gif.name, "success": wins[i].tolist()}
            for i, v in enumerate(videos)
        },
    }
    (out / "videos.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def check_video_run(cfg: Any) -> None:
    """Videos exist for Meta-World runs only (the toy benchmark has nothing to render)."""
    from softmod.validation import ConfigError

    if cfg.env.benchmark == "toy":
        raise ConfigError(
            "--video: the toy benchmark has no images; allowed: runs on mt1, mt10, mt50"
        )


def prepare_video(run_dir: Path, episodes: int) -> bool:
    """``softmod eval --video N``, before the evaluation: a bad N or a toy run is a ConfigError;
    True if this machine can render, else False after printing one line saying what is missing
    (the evaluation runs either way)."""
    from softmod.config import load_config
    from softmod.validation import ConfigError

    if episodes < 1:
        raise ConfigError(f"--video {episodes}: allowed: N >= 1 episodes per task (0: no video)")
    check_video_run(load_config(Path(run_dir) / "config.json"))
    backend, problem = gl_backend()
    if backend is None:
        print(f"softmod: {problem}", file=sys.stderr)
    return backend is not None
