"""benchmarks/learning/montage.py: per-task GIFs of ``softmod eval --video`` side by side."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageSequence

from .test_learning_scripts import _load

MONTAGE = _load("montage")
COLOURS = {"reach-v3": (200, 30, 30), "push-v3": (30, 200, 30), "door-open-v3": (30, 30, 200)}


def _videos(root: Path, lengths: dict[str, int]) -> Path:
    """A videos directory like softmod eval's: one GIF per task (solid colour, frames brighter
    by 4 each), and videos.json listing the tasks."""
    videos = root / "videos"
    videos.mkdir()
    for task, n in lengths.items():
        frames = [Image.new("RGB", (80, 80), tuple(min(255, c + 4 * i) for c in COLOURS[task]))
                  for i in range(n)]  # fmt: skip
        frames[0].save(videos / f"{task}.gif", save_all=True, append_images=frames[1:],
                       duration=50, loop=0)  # fmt: skip
    (videos / "videos.json").write_text(json.dumps({"tasks": {t: {} for t in lengths}}))
    return videos


def test_tiles_keep_every_nth_frame_and_a_short_clip_holds_its_last(tmp_path: Path) -> None:
    videos = _videos(tmp_path, {"reach-v3": 10, "push-v3": 4, "door-open-v3": 10})
    out = MONTAGE.main([str(videos), str(tmp_path / "m.gif"), "--columns", "2", "--tile", "32",
                        "--every", "2"])  # fmt: skip
    with Image.open(out) as gif:
        frames = [np.asarray(f.convert("RGB"), np.int16) for f in ImageSequence.Iterator(gif)]
        duration = gif.info["duration"]
    assert len(frames) == 5 and frames[0].shape == (64, 64, 3)  # 2 x 2 tiles of 32, 10 / 2 frames
    assert duration == 100  # every 2nd frame of a 50 ms GIF: the same speed

    def tile(frame: np.ndarray, k: int) -> np.ndarray:
        r, c = divmod(k, 2)
        return frame[32 * r + 8 : 32 * r + 24, 32 * c + 8 : 32 * c + 24].reshape(-1, 3).mean(0)

    for i, frame in enumerate(frames):
        reach, push, door = tile(frame, 0), tile(frame, 1), tile(frame, 2)
        assert np.abs(reach - (200 + 8 * i, 30 + 8 * i, 30 + 8 * i)).max() < 12  # frame 2i
        last = min(2 * i, 2)  # push has frames 0..3: kept 0 and 2, then holds frame 2
        assert np.abs(push - (30 + 4 * last, 200 + 4 * last, 30 + 4 * last)).max() < 12
        assert door[2] > door[0] + 100  # blue
        assert np.abs(frame[40:, 40:].reshape(-1, 3).mean(0) - 255).max() < 12  # empty: white


def test_tasks_pick_the_tiles_in_order_and_a_missing_one_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    videos = _videos(tmp_path, {"reach-v3": 2, "push-v3": 2, "door-open-v3": 2})
    out = MONTAGE.main([str(videos), str(tmp_path / "two.gif"), "--tasks", "door-open-v3",
                        "reach-v3", "--tile", "32", "--every", "1"])  # fmt: skip
    with Image.open(out) as gif:
        first = np.asarray(gif.convert("RGB"), np.int16)
    assert first.shape == (32, 64, 3)
    assert first[16, 16, 2] > 150 and first[16, 48, 0] > 150  # door-open (blue), then reach (red)
    with pytest.raises(SystemExit) as exc:
        MONTAGE.main([str(videos), str(tmp_path / "bad.gif"), "--tasks", "pick-place-v3"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"montage.py: error: no GIF of 'pick-place-v3' in {videos}; there: reach-v3, "
                   "push-v3, door-open-v3")  # fmt: skip
    assert not (tmp_path / "bad.gif").exists()
