"""One GIF of several tasks side by side, from the per-task GIFs of ``softmod eval --video``.

Usage::

    python benchmarks/learning/montage.py RUN_DIR/videos OUT.gif [--tasks T...] [--columns 5]
        [--tile 128] [--every 2]

Each tile is one task's GIF (``<task>.gif``, captioned by ``softmod eval`` with the task, step and
success flag), scaled to ``--tile`` pixels; every ``--every``-th frame is kept; tasks in the
order of ``videos.json`` unless ``--tasks`` names them. A shorter GIF holds its last frame. A
missing videos directory or task is a one-line error (exit 2) before anything is written.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from PIL import Image, ImageSequence

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import die


def frames(path: Path, tile: int, every: int) -> list[Image.Image]:
    """The frames of one GIF, every ``every``-th, as RGB tiles of ``tile`` x ``tile`` pixels."""
    with Image.open(path) as gif:
        out = [f.convert("RGB").resize((tile, tile), Image.LANCZOS)
               for i, f in enumerate(ImageSequence.Iterator(gif)) if i % every == 0]  # fmt: skip
        duration = int(gif.info.get("duration", 60))
    out[0].info["duration"] = duration
    return out


def montage(videos: Path, out: Path, tasks: list[str] | None = None, columns: int = 5,
            tile: int = 128, every: int = 2) -> Path:  # fmt: skip
    """Write the grid GIF of ``tasks`` (all of ``videos.json`` by default) to ``out``."""
    meta = videos / "videos.json"
    if not meta.is_file():
        die("montage.py", f"{videos}: no videos.json (make it with softmod eval --video N)")
    known = list(json.loads(meta.read_text())["tasks"])
    tasks = tasks or known
    missing = [t for t in tasks if t not in known or not (videos / f"{t}.gif").is_file()]
    if missing:
        die("montage.py", f"no GIF of {missing[0]!r} in {videos}; there: {', '.join(known)}")
    if columns < 1 or tile < 16 or every < 1:
        die("montage.py", f"need --columns >= 1, --tile >= 16, --every >= 1; got "
                          f"{columns}, {tile}, {every}")  # fmt: skip
    clips = [frames(videos / f"{t}.gif", tile, every) for t in tasks]
    rows = -(-len(clips) // columns)
    cols = min(columns, len(clips))
    length = max(len(c) for c in clips)
    sheets = []
    for i in range(length):
        sheet = Image.new("RGB", (cols * tile, rows * tile), "white")
        for k, clip in enumerate(clips):
            sheet.paste(clip[min(i, len(clip) - 1)], ((k % cols) * tile, (k // cols) * tile))
        sheets.append(sheet.quantize(colors=64, method=Image.Quantize.MEDIANCUT))
    out.parent.mkdir(parents=True, exist_ok=True)
    duration = clips[0][0].info["duration"] * every
    sheets[0].save(out, save_all=True, append_images=sheets[1:], duration=duration, loop=0,
                   optimize=True)  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> Path:
    """Command line: ``montage.py VIDEOS OUT [--tasks ...]``."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("videos", type=Path, help="RUN_DIR/videos of softmod eval --video")
    p.add_argument("out", type=Path, help="the GIF to write")
    p.add_argument("--tasks", nargs="+", help="tasks in tile order (default: all)")
    p.add_argument("--columns", type=int, default=5)
    p.add_argument("--tile", type=int, default=128, help="pixels per tile side")
    p.add_argument("--every", type=int, default=2, help="keep every N-th frame")
    a = p.parse_args(argv)
    out = montage(a.videos, a.out, a.tasks, a.columns, a.tile, a.every)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB)")
    return out


if __name__ == "__main__":
    main()
