"""`lpmrf-bench report`: one document with the set-level tables, charts, image grids, provenance and verdict.

Sections are built once and rendered twice (render.py): a self-contained HTML file or Markdown for a
pull-request comment. Tables come from `sets.parquet` unchanged; charts from plots.py and convergence_plot.py.
"""
from __future__ import annotations

import html
import io
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from lpmrf_bench.atomic import atomic_write
from lpmrf_bench.pd_axes import DISTORTION_DEFAULT
from lpmrf_bench.regression import Verdict, summary_line
from lpmrf_bench.report.grids import image_grids
from lpmrf_bench.report.provenance import provenance
from lpmrf_bench.report.render import (Image, Section, key_values_html, key_values_markdown, render_html,
                                       render_markdown)
from lpmrf_bench.report.tables import html_table, labelled_sets, markdown_table, set_tables

CONVERGENCE_PREFERENCE = ("fid", "fd_mobilenet")


@dataclass(frozen=True)
class ReportOptions:
    evaluation_dirs: list[Path]
    training_dirs: list[Path]
    out: Path  # .html or .md
    verdict: Verdict | None = None
    pd_x: str = DISTORTION_DEFAULT
    pd_y: str | None = None
    grid_metric: str = "psnr"
    data_root: str | None = None
    device: str = "cpu"


def figure_png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()


def _verdict_section(verdict: Verdict) -> Section:
    section = Section("Regression verdict")
    line = summary_line(verdict)
    section.add(f"<p><strong>{html.escape(line)}</strong></p>", f"**{line}**")
    head = ["configuration", "dataset", "metric", "baseline", "candidate", "change [95% interval]", "tolerance",
            "verdict", "how"]
    rows = [[c.config, f"{c.dataset}:{c.split}", f"{c.metric} {'↑' if c.higher_is_better else '↓'}", f"{c.baseline:.4g}",
             f"{c.candidate:.4g}", f"{c.change:+.4g} [{c.low:+.4g}, {c.high:+.4g}]", f"{c.tolerance:g}", c.verdict, c.how]
            for c in verdict.comparisons]
    html_rows = "".join(f'<tr class="{r[7]}">' + "".join(f"<td>{html.escape(v)}</td>" for v in r) + "</tr>" for r in rows)
    section.add(f"<table><thead><tr>{''.join(f'<th>{h}</th>' for h in head)}</tr></thead><tbody>{html_rows}</tbody></table>",
                "\n".join(["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
                          + ["| " + " | ".join((f"**{v}**" if r[7] == "regression" else v) for v in r) + " |" for r in rows]))
    if verdict.not_in_baseline:
        text = "Not in the baseline (not judged): " + "; ".join(verdict.not_in_baseline)
        section.add(f"<p>{html.escape(text)}</p>", text)
    return section


def _tables_section(sets: pd.DataFrame) -> Section:
    section = Section("Set-level values")
    for table in set_tables(sets):
        section.add(f"<h3>{html.escape(table.dataset)}</h3>{html_table(table)}", f"### {table.dataset}\n\n{markdown_table(table)}")
    return section


def _pd_section(sets: pd.DataFrame, x: str, y: str | None) -> Section:
    from lpmrf_bench.plots import pd_tradeoff

    section = Section("Perception-distortion")
    try:
        figure = pd_tradeoff(sets, x, y, "all")
    except ValueError as exc:
        section.add(f"<p>No chart: {html.escape(str(exc))}.</p>", f"No chart: {exc}.")
        return section
    section.add_image(Image("pd-tradeoff.png", figure_png(figure), "perception-distortion chart"))
    return section


def _convergence_section(training_dirs: list[Path]) -> Section:
    from lpmrf_bench.convergence import load_curve
    from lpmrf_bench.convergence_plot import convergence_chart

    section = Section("Convergence")
    logged = [set(pd.read_parquet(d / "convergence.parquet", columns=["metric"])["metric"]) for d in training_dirs]
    common = set.intersection(*logged)
    metric = next((m for m in CONVERGENCE_PREFERENCE if m in common), min(common) if common else None)
    if metric is None:
        section.add("<p>No chart: the training runs log no metric in common.</p>",
                    "No chart: the training runs log no metric in common.")
        return section
    try:
        figure, _ = convergence_chart({d.resolve().name: load_curve(d, metric) for d in training_dirs}, metric)
    except ValueError as exc:
        section.add(f"<p>No chart: {html.escape(str(exc))}.</p>", f"No chart: {exc}.")
        return section
    section.add_image(Image("convergence.png", figure_png(figure), f"convergence of {metric}"))
    return section


def _grids_section(options: ReportOptions, sets: pd.DataFrame) -> Section:
    section = Section(f"Images: best, median and worst by {options.grid_metric}")
    labels = {(run, config_id): label for run, config_id, label in zip(sets["run"], sets["config_id"], sets["config"])}
    grids = image_grids(options.evaluation_dirs, labels, options.grid_metric, options.data_root, options.device)
    if not grids:
        note = "No per-image values in the runs: no image grid."
        section.add(f"<p>{note}</p>", note)
    for i, grid in enumerate(grids):
        section.add(f"<h3>{html.escape(grid.dataset)}</h3>", f"### {grid.dataset}")
        if grid.png:
            section.add_image(Image(f"grid-{i}.png", grid.png, f"image grid of {grid.dataset}"))
        notes = "; ".join(grid.notes)
        section.add(f'<p class="note">{html.escape(notes)}</p>', notes)
    return section


def build_sections(options: ReportOptions) -> list[Section]:
    sections = [_verdict_section(options.verdict)] if options.verdict else []
    if options.evaluation_dirs:
        sets = labelled_sets(options.evaluation_dirs)
        sections += [_tables_section(sets), _pd_section(sets, options.pd_x, options.pd_y)]
    if options.training_dirs:
        sections.append(_convergence_section(options.training_dirs))
    if options.evaluation_dirs:
        sections.append(_grids_section(options, sets))
    prov = Section("Provenance")
    for run_dir in options.evaluation_dirs:
        pairs = provenance(run_dir)
        prov.add(f"<h3>{html.escape(run_dir.name)}</h3>{key_values_html(pairs)}",
                 f"### {run_dir.name}\n\n{key_values_markdown(pairs)}")
    sections.append(prov)
    return sections


def write_report(options: ReportOptions) -> list[Path]:
    """Write the report (and, for Markdown, its images beside it); returns the paths written."""
    title = "lpmrf-bench report: " + ", ".join(d.resolve().name for d in [*options.evaluation_dirs, *options.training_dirs])
    sections = build_sections(options)
    out = options.out
    if out.suffix.lower() == ".html":
        text = render_html(title, sections)
        return [atomic_write(out, lambda tmp: tmp.write_text(text, encoding="utf-8"))]
    text, files = render_markdown(title, sections, out.with_name(f"{out.stem}_files"))
    written = [atomic_write(path, lambda tmp, data=data: tmp.write_bytes(data)) for path, data in files.items()]
    return [atomic_write(out, lambda tmp: tmp.write_text(text, encoding="utf-8")), *written]
