"""Rendering report sections as one self-contained HTML file or as Markdown with image files beside it.

HTML: every image is a `data:` URI and the style is inline, so the file opens with no network and no other
file. Markdown: GitHub-flavoured, for a pull-request comment; images are written to `<name>_files/`.
"""
from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1200px;color:#222;
padding:0 1em}
h1{font-size:1.6em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:right}th{background:#f4f4f4}
tbody th{text-align:left}td.best{background:#dff3df;font-weight:bold}
tr.regression td,tr.regression th{background:#fbe0e0}tr.improvement td,tr.improvement th{background:#e3f0fb}
ol.specs{font-size:.8em;color:#555}p.note{font-size:.85em;color:#555}
img{max-width:100%;border:1px solid #eee}dl{display:grid;grid-template-columns:max-content auto;gap:.2em 1em;
font-size:.85em}dt{font-weight:bold}dd{margin:0;word-break:break-all}
"""


@dataclass(frozen=True)
class Image:
    name: str  # file name in the Markdown files folder
    png: bytes
    alt: str


@dataclass
class Section:
    title: str
    html: list[str | Image] = field(default_factory=list)
    markdown: list[str | Image] = field(default_factory=list)

    def add(self, html_text: str, markdown_text: str) -> None:
        self.html.append(html_text)
        self.markdown.append(markdown_text)

    def add_image(self, image: Image) -> None:
        self.html.append(image)
        self.markdown.append(image)


def render_html(title: str, sections: list[Section]) -> str:
    def block(item: str | Image) -> str:
        if isinstance(item, Image):
            data = base64.b64encode(item.png).decode("ascii")
            return f'<p><img alt="{html.escape(item.alt)}" src="data:image/png;base64,{data}"></p>'
        return item

    body = "".join(f"<h2>{html.escape(s.title)}</h2>" + "".join(block(b) for b in s.html) for s in sections)
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>{body}</body></html>\n")


def render_markdown(title: str, sections: list[Section], files_dir: Path) -> tuple[str, dict[Path, bytes]]:
    """The Markdown text and the image files it links to (relative to the Markdown file)."""
    files: dict[Path, bytes] = {}
    parts = [f"# {title}"]
    for section in sections:
        parts.append(f"## {section.title}")
        for item in section.markdown:
            if isinstance(item, Image):
                files[files_dir / item.name] = item.png
                parts.append(f"![{item.alt}]({files_dir.name}/{item.name})")
            else:
                parts.append(item)
    return "\n\n".join(parts) + "\n", files


def key_values_html(pairs: list[tuple[str, str]]) -> str:
    return "<dl>" + "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in pairs) + "</dl>"


def key_values_markdown(pairs: list[tuple[str, str]]) -> str:
    return "\n".join(f"- **{k}**: {v.replace('|', '/')}" for k, v in pairs)
