"""`lpmrf-bench weights list|fetch|verify`: the published weight files, their cache state and hashes.

Fetch on a connected machine, then carry the cache folder (LPMRF_BENCH_WEIGHTS) to offline ones.
"""
from __future__ import annotations

import sys

import click

from lpmrf_bench import weights as W
from lpmrf_bench.cli.common import UsageProblem
from lpmrf_bench.cli.tables import render


def _catalog() -> dict[str, W.WeightFile]:
    """The published files (`lpmrf_bench.published`) plus any that plug-in restorers register when imported."""
    import lpmrf_bench.published  # noqa: F401 (registers the built-in files)
    from lpmrf_bench.restorers import RESTORERS

    for _ in RESTORERS.available():
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
            raise UsageProblem(f"no weight file named {name!r}; `lpmrf-bench weights list` shows the catalog")
        chosen += hits
    return chosen


@click.group("weights")
def weights_group() -> None:
    """Published weight files: list, fetch (download into the cache) and verify (sha256)."""


@weights_group.command("list")
@click.option("--weights-dir", default=None, envvar=W.CACHE_ENV, help="Weight cache folder.")
@click.option("--wide", is_flag=True, help="Every column (full hash, licence), unwrapped.")
def list_weights(weights_dir: str | None, wide: bool) -> None:
    """Every file of the catalog: whether it is here, where it is published, its known sha256."""
    cache = W.cache_dir(weights_dir)

    def known_hash(wf: W.WeightFile) -> str:
        if wf.sha256:
            return wf.sha256 if wide else wf.sha256[:16]
        seen = W.expected_hash(wf, cache)
        return f"{seen if wide else seen[:16]} (first seen)" if seen else "none published"

    rows = [{"file": wf.path, "status": W.status(wf, weights_dir), "source": W.public_url(wf),
             "sha256": known_hash(wf), "licence": wf.licence or "-"} for wf in _catalog().values()]
    if wide:
        click.echo(render(rows, width=None))
    else:
        click.echo(render(rows, ["file", "status", "source", "sha256"]))
    click.echo(f"cache: {cache}")


@weights_group.command("fetch")
@click.argument("names", nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Every file in the catalog.")
@click.option("--weights-dir", default=None, envvar=W.CACHE_ENV, help="Weight cache folder.")
def fetch(names: tuple[str, ...], everything: bool, weights_dir: str | None) -> None:
    """Download files (by path or file name) into the cache and check their hashes."""
    if not names and not everything:
        raise UsageProblem("name the files to fetch (see `lpmrf-bench weights list`), or pass --all")
    cache, failed = W.cache_dir(weights_dir), 0
    for wf in _select(names, everything):
        was_here = W.status(wf, weights_dir) != "missing"
        try:
            path = W.resolve(wf, weights_dir=weights_dir)
        except W.WeightsError as exc:
            failed += 1
            click.echo(f"missing  {exc}", err=True)
            continue
        click.echo(f"{'present ' if was_here else 'fetched '} {path}  sha256 {W.sha256_of(path)[:16]}"
                   + ("" if wf.sha256 else " (no published hash; first seen recorded)" if not was_here else ""))
    click.echo(f"{failed} of {len(_select(names, everything))} file(s) could not be fetched into {cache}" if failed
               else f"all in {cache}")
    sys.exit(1 if failed else 0)


@weights_group.command("verify")
@click.argument("names", nargs=-1)
@click.option("--weights-dir", default=None, envvar=W.CACHE_ENV, help="Weight cache folder.")
def verify(names: tuple[str, ...], weights_dir: str | None) -> None:
    """Check the sha256 of every cached or embedded file against the published (or first-seen) hash.

    A file with no published hash and none recorded has its hash recorded now, and later runs check it.
    """
    cache, bad, checked, embedded = W.cache_dir(weights_dir), 0, 0, 0
    for wf in _select(names, False):
        path = W.stored_path(wf, cache)
        if not path.is_file():
            if names:
                click.echo(f"absent    {wf.path} (not in {cache})")
            continue
        checked += 1
        embedded += wf.source.startswith("embedded:")
        known = W.expected_hash(wf, cache)
        try:
            digest = W.verify(wf, path, cache)
        except W.WeightsHashError as exc:
            bad += 1
            click.echo(f"BAD       {exc}", err=True)
            continue
        if wf.sha256:
            pinned = "the hash pinned in the package" if wf.source.startswith("embedded:") else "the published hash"
            click.echo(f"ok        {wf.path}  {digest} ({pinned})")
        elif known:
            click.echo(f"same      {wf.path}  {digest} (the hash first seen here; none is published)")
        else:
            click.echo(f"recorded  {wf.path}  {digest} (none published; recorded in {cache / 'hashes.json'})")
    if checked == embedded:
        what = f"only the {embedded} embedded file(s) were checked" if embedded else "nothing verified"
        click.echo(f"no downloaded catalog file is cached in {cache}; {what}")
    sys.exit(1 if bad else 0)
