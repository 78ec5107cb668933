"""Plain-text tables for `list` and `weights list` that fit the terminal: long cells wrap inside their column."""
from __future__ import annotations

import textwrap

MAX_WIDTH = 100
GAP = "  "
MIN_COLUMN = 8


def _fit(widths: dict[str, int], limit: int) -> dict[str, int]:
    """Narrow the widest columns, one character at a time, until the row fits in `limit` (or cannot shrink)."""
    widths = dict(widths)
    while sum(widths.values()) + len(GAP) * (len(widths) - 1) > limit:
        widest = max(widths, key=widths.get)
        if widths[widest] <= MIN_COLUMN:
            break
        widths[widest] -= 1
    return widths


def render(rows: list[dict[str, str]], columns: list[str] | None = None, width: int | None = MAX_WIDTH) -> str:
    """`columns` (default: every key of the first row) as an aligned table; `width=None` never wraps."""
    if not rows:
        return "(none)"
    cols = columns or list(rows[0])
    natural = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in cols}
    widths = natural if width is None else _fit(natural, width)

    def lines_of(cells: dict[str, str]) -> list[str]:
        wrapped = {c: textwrap.wrap(str(cells.get(c, "")), widths[c], break_on_hyphens=False) or [""] for c in cols}
        height = max(len(w) for w in wrapped.values())
        return [GAP.join((wrapped[c][i] if i < len(wrapped[c]) else "").ljust(widths[c]) for c in cols).rstrip()
                for i in range(height)]

    out = lines_of({c: c for c in cols}) + [GAP.join("-" * widths[c] for c in cols)]
    for row in rows:
        out += lines_of(row)
    return "\n".join(out)
