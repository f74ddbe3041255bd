"""The report's videos (issue 22): the GIFs ``softmod eval --video N`` wrote, per method.

For every group (setting x method row) the run shown is the best one, by mean final success,
among the group's runs that have ``videos/*.gif``; its GIFs are copied to ``--out``/videos/ so
the page stays self-contained.
"""

from __future__ import annotations

import html
import json
import os
import shutil
from pathlib import Path

from softmod.report.collect import GroupKey, Run, setting_label, slug
from softmod.report.html import Section


def best_video_runs(groups: dict[GroupKey, list[Run]]) -> dict[GroupKey, Run]:
    """Per group, its best run (mean final success; the lower seed on a tie) with GIFs."""
    best = {}
    for key, runs in groups.items():
        with_gifs = [r for r in runs if any((r.path / "videos").glob("*.gif"))]
        if with_gifs:
            best[key] = max(with_gifs, key=lambda r: (float(r.success.mean()), -r.seed))
    return best


def _made_from(run_dir: Path) -> str:
    """What the videos show: ``videos of step-000000680000.pt, camera corner3`` (videos.json)."""
    try:
        meta = json.loads((run_dir / "videos" / "videos.json").read_text())
    except (OSError, json.JSONDecodeError):
        return "videos of an unknown checkpoint (no videos.json)"
    return f"videos of {meta.get('checkpoint', '?')}, camera {meta.get('camera', '?')}"


def video_section(
    groups: dict[GroupKey, list[Run]], out: Path
) -> tuple[Section | None, list[Path]]:
    """The "Videos" section and the GIFs copied under ``out/videos``; (None, []) without any."""
    best = best_video_runs(groups)
    if not best:
        return None, []
    copied: list[Path] = []
    text = [
        "Deterministic evaluation episodes (<code>softmod eval RUN_DIR --video N</code>) of the "
        "best run of each method that has videos; each frame shows the task, the step and the "
        "step's success flag (green once the episode has succeeded)."
    ]
    for key, run in best.items():
        label = f"{key[2]}, {setting_label(*key[:2])}, seed {run.seed}"
        cells = []
        for gif in sorted((run.path / "videos").glob("*.gif")):
            target = out / "videos" / f"{slug(*key)}-{gif.name}"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(gif, target)
            copied.append(target)
            src = html.escape(Path(os.path.relpath(target, out)).as_posix())
            cells.append(
                f'<figure style="display:inline-block;margin:.3em"><img src="{src}" '
                f'alt="{html.escape(gif.stem)}"><figcaption>{html.escape(gif.stem)}'
                "</figcaption></figure>"
            )
        mean = f"mean success {float(run.success.mean()):.1%}"
        text.append(f"<b>{html.escape(label)}</b> ({mean}; {html.escape(_made_from(run.path))}; "
                    f"{html.escape(str(run.path))})<br>")  # fmt: skip
        text.append("".join(cells))
    return Section("Videos", "videos", text=text), copied
