"""`lpmrf-bench weights list|fetch|verify`: the published weight files, their cache state and hashes.

Fetch on a connected machine, then carry the cache folder (LPMRF_BENCH_WEIGHTS) to offline ones.
"""
from __future__ import annotations

import sys

import click

from lpmrf_bench import weights as W
from lpmrf_bench.cli.listing import _table
from lpmrf_bench.metrics import METRICS
from lpmrf_bench.restorers import RESTORERS


def _catalog() -> dict[str, W.WeightFile]:
    """Import every method, metric, feature extractor and published reference so their files are registered."""
    from lpmrf_bench.metrics import references  # noqa: F401  (clean-fid's published statistics)
    from lpmrf_bench.metrics.extractors import EXTRACTORS

    for registry in (RESTORERS, METRICS, EXTRACTORS):
        for _ in registry.available():
            pass
    return W.catalog()


def _select(names: tuple[str, ...], everything: bool) -> list[W.WeightFile]:
    catalog = _catalog()
    if everything or not names:
        return list(catalog.values())
    chosen = []
    for name in names:
        hits = [wf for path, wf in catalog.items() if name in (path, wf.filename)]
        if not hits:
            raise click.ClickException(f"no weight file named {name!r}; see `lpmrf-bench weights list`")
        chosen += hits
    return chosen


@click.group("weights")
def weights_group() -> None:
    """Published weight files: list, fetch (download into the cache) and verify (sha256)."""


@weights_group.command("list")
@click.option("--weights-dir", default=None, envvar=W.CACHE_ENV)
def list_weights(weights_dir: str | None) -> None:
    cache = W.cache_dir(weights_dir)

    def known_hash(wf: W.WeightFile) -> str:
        if wf.sha256:
            return wf.sha256[:16]
        seen = W.expected_hash(wf, cache)
        return f"{seen[:16]} (seen)" if seen else "unpublished"

    rows = [{"file": wf.path, "status": W.status(wf, weights_dir), "source": W.public_url(wf),
             "sha256": known_hash(wf), "licence": wf.licence or "-"} for wf in _catalog().values()]
    click.echo(_table(rows))
    click.echo(f"cache: {W.cache_dir(weights_dir)}")


@weights_group.command("fetch")
@click.argument("names", nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Every file in the catalog.")
@click.option("--weights-dir", default=None, envvar=W.CACHE_ENV)
def fetch(names: tuple[str, ...], everything: bool, weights_dir: str | None) -> None:
    """Download files (by path or file name) into the cache and check their hashes."""
    failed = 0
    for wf in _select(names, everything):
        try:
            click.echo(f"ok       {W.resolve(wf, weights_dir=weights_dir)}")
        except W.WeightsError as exc:
            failed += 1
            click.echo(f"missing  {exc}", err=True)
    sys.exit(1 if failed else 0)


@weights_group.command("verify")
@click.argument("names", nargs=-1)
@click.option("--weights-dir", default=None, envvar=W.CACHE_ENV)
def verify(names: tuple[str, ...], weights_dir: str | None) -> None:
    """Check the sha256 of every cached file against the published (or first-seen) hash."""
    cache, bad = W.cache_dir(weights_dir), 0
    for wf in _select(names, False):
        path = cache / wf.path
        if not path.is_file():
            continue
        try:
            click.echo(f"ok   {wf.path}  {W.verify(wf, path, cache)}")
        except W.WeightsHashError as exc:
            bad += 1
            click.echo(f"BAD  {exc}", err=True)
    sys.exit(1 if bad else 0)
