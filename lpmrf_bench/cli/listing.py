"""`lpmrf-bench list methods|datasets|metrics`: what is registered, how it is configured, whether it runs here."""
from __future__ import annotations

import click

from lpmrf_bench.data import DATASETS, DatasetError, DatasetSpec, data_root
from lpmrf_bench.metrics import METRICS, PROTOCOLS
from lpmrf_bench.metrics.base import unavailable_reason
from lpmrf_bench.restorers import RESTORERS
from lpmrf_bench.weights import status


def _table(rows: list[dict[str, str]]) -> str:
    if not rows:
        return "(none)"
    cols = list(rows[0])
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in cols}
    lines = ["  ".join(c.ljust(widths[c]) for c in cols), "  ".join("-" * widths[c] for c in cols)]
    lines += ["  ".join(str(r[c]).ljust(widths[c]) for c in cols) for r in rows]
    return "\n".join(lines)


def method_rows() -> list[dict[str, str]]:
    rows = []
    for name, spec, reason in RESTORERS.available():
        if spec is None:
            rows.append({"method": name, "knobs (*PD)": "", "weights": "", "licence": "", "available": reason})
            continue
        knobs = ", ".join(f"{'*' if k.pd else ''}{k.name}={k.default}" for k in spec.knobs) or "-"
        sets = ", ".join(f"{ws}({'ok' if all(status(w) != 'missing' for w in files) else 'missing'})"
                         for ws, files in spec.weight_sets.items()) or "-"
        rows.append({"method": name, "knobs (*PD)": knobs, "weights": sets, "licence": spec.licence or "-",
                     "available": "yes"})
    return rows


def _found(spec: DatasetSpec) -> str:
    """Whether the set opens here (on-disk sets need the data root), with the first sentence of why not."""
    try:
        spec.open(spec.default_split, data_root())
    except DatasetError as exc:
        return "no: " + str(exc).split(". ")[0]
    return "yes"


def dataset_rows() -> list[dict[str, str]]:
    rows = []
    for name, spec, reason in DATASETS.available():
        if spec is None:
            rows.append({"dataset": name, "splits": "", "paired": "", "size": "", "images": "", "source": "",
                         "available": reason})
            continue
        counts = ", ".join(f"{s}={spec.counts.get(s, '?')}" for s in spec.splits)
        rows.append({"dataset": name, "splits": ",".join(spec.splits), "paired": "yes" if spec.paired else "LQ only",
                     "size": str(spec.resolution or "any"), "images": counts, "source": spec.source or "-",
                     "available": _found(spec)})
    return rows


def metric_rows() -> list[dict[str, str]]:
    rows = []
    for proto, table in PROTOCOLS.items():
        for name, spec_id in table.items():
            try:
                m = METRICS.get(spec_id)
            except Exception as exc:  # a broken metric backend is shown, not raised
                rows.append({"protocol": proto, "metric": name, "kind": "", "better": "", "spec": spec_id,
                             "licence": "", "available": str(exc)})
                continue
            weights = [w.filename for w in m.weights if status(w) == "missing"]
            available = (unavailable_reason(m) or ("weights missing: " + ", ".join(weights) if weights else "yes"))
            rows.append({"protocol": proto, "metric": name, "kind": m.kind, "better": m.direction, "spec": m.spec,
                         "licence": m.licence or "-", "available": available})
    return rows + set_metric_rows()


def set_metric_rows() -> list[dict[str, str]]:
    """Set-level metrics (every protocol has them), available when their extractor's weights are."""
    from lpmrf_bench.metrics.extractors import EXTRACTORS
    from lpmrf_bench.metrics.setlevel import SET_METRICS

    rows = []
    for m in SET_METRICS.values():
        extractor = EXTRACTORS.get(m.extractor)
        weights = [w.filename for w in extractor.weights if status(w) == "missing"]
        rows.append({"protocol": "all", "metric": m.name, "kind": "set-level", "better": "higher" if m.higher_is_better
                     else "lower", "spec": m.spec, "licence": extractor.licence or "-",
                     "available": "weights missing: " + ", ".join(weights) if weights else "yes"})
    return rows


LISTINGS = {"methods": method_rows, "datasets": dataset_rows, "metrics": metric_rows}


@click.command("list")
@click.argument("what", type=click.Choice(sorted(LISTINGS)))
def list_command(what: str) -> None:
    """Show registered methods, datasets or metrics."""
    click.echo(_table(LISTINGS[what]()))
