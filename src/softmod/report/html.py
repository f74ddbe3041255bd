"""``index.html``: every table and figure of a report on one self-contained page (no network)."""

from __future__ import annotations

import html
import os
from dataclasses import dataclass, field
from pathlib import Path

from softmod.report.tables import Table

_CSS = """
body { font-family: system-ui, -apple-system, Segoe UI, Roboto, sans-serif; margin: 2em auto;
       max-width: 1200px; padding: 0 1em; color: #222; line-height: 1.4; }
h1 { font-size: 1.7em; }
h2 { border-bottom: 1px solid #ddd; padding-bottom: .2em; margin-top: 2em; }
table { border-collapse: collapse; margin: .6em 0 1.2em; font-size: .92em; }
th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f3f3f3; }
tr:nth-child(even) td { background: #fafafa; }
.caption { color: #555; font-size: .9em; max-width: 60em; }
figure { margin: 1em 0 2em; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #555; font-size: .9em; }
.warn { color: #8a5a00; } code { background: #f3f3f3; padding: 0 .25em; }
details { margin: .5em 0; } summary { cursor: pointer; font-weight: 600; }
"""


@dataclass
class Section:
    """A titled part of the page: tables, figures (path, caption) and free text lines."""

    title: str
    anchor: str
    text: list[str] = field(default_factory=list)  # already-escaped HTML fragments
    tables: list[Table] = field(default_factory=list)
    figures: list[tuple[Path, str]] = field(default_factory=list)
    collapsed: bool = False  # tables inside <details> (long per-task breakdowns)


def table_html(t: Table, collapsed: bool = False) -> str:
    """One table with its caption, as HTML (cells escaped)."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in t.header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in t.rows
    )
    caption = f'<p class="caption">{html.escape(t.caption)}</p>' if t.caption else ""
    inner = f'{caption}<table id="t-{html.escape(t.anchor)}"><tr>{head}</tr>{body}</table>'
    if collapsed:
        return f"<details><summary>{html.escape(t.title)}</summary>{inner}</details>"
    return f"<h3>{html.escape(t.title)}</h3>{inner}"


def _rel(path: Path, root: Path) -> str:
    return Path(os.path.relpath(path, root)).as_posix()


def write_index(out: Path, title: str, intro: list[str], sections: list[Section]) -> Path:
    """Write ``out/index.html``; every image and link is relative to ``out``."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        *(f"<p>{line}</p>" for line in intro),
        "<ul>",
        *(f'<li><a href="#{s.anchor}">{html.escape(s.title)}</a></li>' for s in sections),
        "</ul>",
    ]
    for s in sections:
        parts.append(f'<h2 id="{s.anchor}">{html.escape(s.title)}</h2>')
        parts += [f"<p>{line}</p>" for line in s.text]
        parts += [table_html(t, s.collapsed) for t in s.tables]
        for path, caption in s.figures:
            src = html.escape(_rel(path, out))
            parts.append(
                f'<figure><a href="{src}"><img src="{src}" alt="{html.escape(caption)}"></a>'
                f"<figcaption>{html.escape(caption)}</figcaption></figure>"
            )
    parts.append("</body></html>")
    path = out / "index.html"
    path.write_text("\n".join(parts) + "\n")
    return path
