"""`lpmrf-bench list methods|datasets|metrics`: what is registered, how it is configured, whether it runs here.

"available" is `yes` only when the thing would run now: a missing package says `unavailable: ...`, a weight
file that is not here says `weights missing: FILE`.
"""
from __future__ import annotations

import click

from lpmrf_bench.cli.tables import render


def _unavailable(reason: str) -> str:
    """The registry's "method 'x' is unavailable: WHY" as "unavailable: WHY" (the row already names it)."""
    return "unavailable: " + reason.split(" is unavailable: ", 1)[-1]


def _missing_files(files) -> list[str]:
    from lpmrf_bench.weights import status

    return [wf.filename for wf in files if status(wf) == "missing"]


def method_rows() -> list[dict[str, str]]:
    from lpmrf_bench.restorers import RESTORERS

    rows = []
    for name, spec, reason in RESTORERS.available():
        if spec is None:
            rows.append({"method": name, "available": _unavailable(reason)})
            continue
        knobs = ", ".join(f"{'*' if k.pd else ''}{k.name}={k.default}" for k in spec.knobs) or "-"
        sets = ", ".join(f"{ws} ({'missing' if _missing_files(files) else 'here'})"
                         for ws, files in spec.weight_sets.items())
        if spec.explicit_weights:
            sets = ", ".join(filter(None, [sets, "a path (--weights)"]))
        missing = _missing_files(spec.weight_sets.get(spec.default_weights or "", ()))
        if missing:
            available = "weights missing: " + ", ".join(missing)
        elif spec.explicit_weights and spec.default_weights is None:
            available = f"needs --weights {name}=PATH"
        else:
            available = "yes"
        rows.append({"method": name, "knobs (*PD)": knobs, "weights": sets or "none", "available": available,
                     "licence": spec.licence or "-", "description": spec.description or "-"})
    return rows


def _found(spec) -> str:
    """Whether the set opens here (on-disk sets need the data root), with the first sentence of why not."""
    from lpmrf_bench.data import DatasetError, data_root

    try:
        spec.open(spec.default_split, data_root())
    except DatasetError as exc:
        return "no: " + str(exc).split(". ")[0]
    return "yes"


def dataset_rows() -> list[dict[str, str]]:
    from lpmrf_bench.data import DATASETS

    rows = []
    for name, spec, reason in DATASETS.available():
        if spec is None:
            rows.append({"dataset": name, "available": _unavailable(reason)})
            continue
        counts = ", ".join(f"{s}={spec.counts.get(s, '?')}" for s in spec.splits)
        rows.append({"dataset": name, "paired": "yes" if spec.paired else "LQ only", "images": counts,
                     "available": _found(spec), "size": str(spec.resolution or "any"), "source": spec.source or "-"})
    return rows


def metric_rows() -> list[dict[str, str]]:
    from lpmrf_bench.metrics import METRICS, PROTOCOLS
    from lpmrf_bench.metrics.base import unavailable_reason
    from lpmrf_bench.registry import UnavailableError

    rows = []
    for proto, table in PROTOCOLS.items():
        for name, spec_id in table.items():
            try:
                m = METRICS.get(spec_id)
            except UnavailableError as exc:  # a broken metric backend is shown, not raised
                rows.append({"protocol": proto, "metric": name, "spec": spec_id, "available": _unavailable(str(exc))})
                continue
            missing = _missing_files(m.weights)
            reason = unavailable_reason(m)
            available = (f"unavailable: {reason}" if reason
                         else "weights missing: " + ", ".join(missing) if missing else "yes")
            rows.append({"protocol": proto, "metric": name, "spec": m.spec, "available": available,
                         "kind": m.kind, "better": m.direction, "licence": m.licence or "-"})
    return rows + set_metric_rows()


def set_metric_rows() -> list[dict[str, str]]:
    """Set-level metrics (every protocol has them), available when their extractor's weights are."""
    from lpmrf_bench.metrics.extractors import EXTRACTORS
    from lpmrf_bench.metrics.setlevel import SET_METRICS

    rows = []
    for m in SET_METRICS.values():
        extractor = EXTRACTORS.get(m.extractor)
        missing = _missing_files(extractor.weights)
        rows.append({"protocol": "all", "metric": m.name, "spec": m.spec,
                     "available": "weights missing: " + ", ".join(missing) if missing else "yes", "kind": "set-level",
                     "better": "higher" if m.higher_is_better else "lower", "licence": extractor.licence or "-"})
    return rows


LISTINGS = {"methods": method_rows, "datasets": dataset_rows, "metrics": metric_rows}
NARROW = {"methods": ["method", "knobs (*PD)", "weights", "available"],
          "datasets": ["dataset", "paired", "images", "available"],
          "metrics": ["protocol", "metric", "spec", "available"]}


@click.command("list")
@click.argument("what", type=click.Choice(sorted(LISTINGS)))
@click.option("--wide", is_flag=True, help="Every column (licence, description, source, ...), unwrapped.")
def list_command(what: str, wide: bool) -> None:
    """Show registered methods, datasets or metrics and whether each runs here."""
    rows = LISTINGS[what]()
    if wide:
        columns = list(dict.fromkeys(c for row in rows for c in row))
        click.echo(render(rows, columns, width=None))
    else:
        click.echo(render(rows, NARROW[what]))
