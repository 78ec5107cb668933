"""Set-level tables for reports: per dataset, configurations x metrics, value with its 95% interval.

The best value of each column is marked (direction from the metric registry), each header says which
direction is better, and each column's spec is given as a footnote. Cells keep the stored float so the HTML
carries it exactly (`data-value`) beside the rounded text.
"""
from __future__ import annotations

import html
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from lpmrf_bench import store
from lpmrf_bench.metrics import find_metric


@dataclass(frozen=True)
class Cell:
    value: float
    low: float
    high: float
    n: int
    best: bool

    @property
    def text(self) -> str:
        return f"{self.value:.4g} [{self.low:.4g}, {self.high:.4g}]"


@dataclass(frozen=True)
class SetTable:
    dataset: str  # "name:split"
    metrics: list[str]
    better: dict[str, str | None]  # metric -> "higher" / "lower" / None (unregistered spec)
    specs: dict[str, str]
    rows: list[tuple[str, dict[str, Cell]]]  # configuration label -> cells by metric


def _direction(spec: str) -> str | None:
    metric = find_metric(spec)
    return metric.direction if metric else None


def labelled_sets(run_dirs: Sequence[str | os.PathLike]) -> pd.DataFrame:
    """sets.parquet rows of the runs with a `config` label; a configuration found in several runs names its run."""
    sets = store.load_sets(run_dirs)
    store.check_single_spec(sets)
    sets["config"] = store.config_labels(sets)
    runs_per_config = sets.groupby("config")["run"].transform("nunique")
    sets.loc[runs_per_config > 1, "config"] = sets["config"] + " (" + sets["run"] + ")"
    return sets


def set_tables(sets: pd.DataFrame) -> list[SetTable]:
    tables = []
    for (dataset, split), rows in sets.groupby(["dataset", "split"], sort=True):
        metrics = sorted(rows["metric"].unique())
        specs = {m: rows.loc[rows["metric"] == m, "spec"].iloc[0] for m in metrics}
        better = {m: _direction(specs[m]) for m in metrics}
        best = {}
        for m in metrics:
            values = rows.loc[rows["metric"] == m, "value"].to_numpy(float)
            finite = values[np.isfinite(values)]
            if better[m] and finite.size > 1:
                best[m] = finite.max() if better[m] == "higher" else finite.min()
        cells: dict[str, dict[str, Cell]] = {}
        for r in rows.itertuples():
            cells.setdefault(r.config, {})[r.metric] = Cell(float(r.value), float(r.ci_low), float(r.ci_high), int(r.n),
                                                            best=best.get(r.metric) == r.value)
        tables.append(SetTable(f"{dataset}:{split}", metrics, better, specs, sorted(cells.items())))
    return tables


def _header(table: SetTable, metric: str) -> str:
    arrow = {"higher": " ↑", "lower": " ↓"}.get(table.better[metric] or "", " (direction unknown)")
    return f"{metric}{arrow}"


def markdown_table(table: SetTable) -> str:
    """A GitHub-flavoured table; the best cell of a column in bold, specs as numbered footnotes below."""
    head = ["configuration", "n", *[f"{_header(table, m)} [{i}]" for i, m in enumerate(table.metrics, 1)]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for config, cells in table.rows:
        n = max((c.n for c in cells.values()), default=0)
        shown = [(f"**{c.text}**" if c.best else c.text) if (c := cells.get(m)) else "-" for m in table.metrics]
        lines.append("| " + " | ".join([config.replace("|", "\\|"), str(n), *shown]) + " |")
    notes = [f"[{i}] `{table.specs[m]}`" for i, m in enumerate(table.metrics, 1)]
    return "\n".join(lines) + "\n\n" + "<br>".join(notes) + "<br>Bold: best of the column. Brackets: 95% bootstrap interval."


def html_table(table: SetTable) -> str:
    esc = html.escape
    head = "".join(f"<th>{esc(_header(table, m))}<sup>{i}</sup></th>" for i, m in enumerate(table.metrics, 1))
    body = []
    for config, cells in table.rows:
        n = max((c.n for c in cells.values()), default=0)
        tds = []
        for m in table.metrics:
            c = cells.get(m)
            if c is None:
                tds.append("<td>-</td>")
                continue
            mark = ' class="best"' if c.best else ""
            tds.append(f'<td{mark} data-metric="{esc(m)}" data-value="{c.value!r}">{esc(c.text)}</td>')
        body.append(f'<tr data-config="{esc(config)}"><th>{esc(config)}</th><td>{n}</td>{"".join(tds)}</tr>')
    notes = "".join(f"<li><code>{esc(table.specs[m])}</code></li>" for m in table.metrics)
    return (f'<table class="sets" data-dataset="{esc(table.dataset)}"><thead><tr><th>configuration</th><th>n</th>{head}'
            f'</tr></thead><tbody>{"".join(body)}</tbody></table><ol class="specs">{notes}</ol>'
            '<p class="note">Highlighted: best of the column. Brackets: 95% bootstrap interval.</p>')


def text_tables(run_dirs: Sequence[str | os.PathLike]) -> str:
    """Plain-text tables for the terminal (best marked with *)."""
    parts = []
    for table in set_tables(labelled_sets(run_dirs)):
        frame = pd.DataFrame([{"configuration": config, **{_header(table, m): (c.text + (" *" if c.best else ""))
                                                           if (c := cells.get(m)) else "-" for m in table.metrics}}
                              for config, cells in table.rows])
        specs = "\n".join(f"  {m}: {table.specs[m]}" for m in table.metrics)
        parts.append(f"{table.dataset}\n{frame.to_string(index=False)}\n{specs}")
    return "\n\n".join(parts) + "\n(* best of the column; brackets: 95% bootstrap interval)"
