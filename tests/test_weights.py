"""The resolver: explicit path > cache > download, hashes checked, one clear message when missing."""
from __future__ import annotations

import hashlib
import json

import pytest

from lpmrf_bench import weights as W

WF = W.WeightFile(path="demo/net.pth", source="hf://someone/some-repo/net.pth", description="demo network")


def test_missing_offline_names_file_source_and_destination(tmp_path):
    with pytest.raises(W.WeightsMissingError) as info:
        W.resolve(WF, weights_dir=tmp_path)
    message = str(info.value)
    assert "'net.pth'" in message
    assert "https://huggingface.co/someone/some-repo/blob/main/net.pth" in message
    assert str(tmp_path / "demo" / "net.pth") in message
    assert "downloads are off" in message


def test_manual_source_message_gives_the_page(tmp_path, monkeypatch):
    monkeypatch.delenv("LPMRF_BENCH_OFFLINE")
    monkeypatch.delenv("HF_HUB_OFFLINE")
    wf = W.WeightFile(path="x/y.pth", source="manual:https://drive.example/file")
    with pytest.raises(W.WeightsMissingError, match="published at: https://drive.example/file"):
        W.resolve(wf, weights_dir=tmp_path)


def test_explicit_path_wins_and_cache_is_used(tmp_path):
    given = tmp_path / "mine.pth"
    given.write_bytes(b"abc")
    assert W.resolve(WF, explicit=given, weights_dir=tmp_path / "cache") == given
    cached = tmp_path / "cache" / "demo" / "net.pth"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"weights")
    assert W.resolve(WF, weights_dir=tmp_path / "cache") == cached
    with pytest.raises(W.WeightsMissingError, match="does not exist"):
        W.resolve(WF, explicit=tmp_path / "nope.pth")


def test_published_hash_is_enforced(tmp_path):
    good = hashlib.sha256(b"right").hexdigest()
    wf = W.WeightFile(path="h/w.bin", source="https://example.invalid/w.bin", sha256=good)
    path = tmp_path / "h" / "w.bin"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"wrong")
    with pytest.raises(W.WeightsHashError, match=good):
        W.resolve(wf, weights_dir=tmp_path)
    path.write_bytes(b"right")
    assert W.resolve(wf, weights_dir=tmp_path) == path


def _online(monkeypatch):
    monkeypatch.delenv("LPMRF_BENCH_OFFLINE")
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(W, "_reachable", lambda host, timeout=3.0: True)


def test_first_seen_hash_is_recorded_then_checked(tmp_path, monkeypatch):
    _online(monkeypatch)
    monkeypatch.setattr(W, "_download", lambda wf, target: (target.parent.mkdir(parents=True, exist_ok=True),
                                                          target.write_bytes(b"v1")))
    path = W.resolve(WF, weights_dir=tmp_path)
    book = json.loads((tmp_path / "hashes.json").read_text())
    assert book["demo/net.pth"] == hashlib.sha256(b"v1").hexdigest()
    path.write_bytes(b"tampered")
    with pytest.raises(W.WeightsHashError):
        W.resolve(WF, weights_dir=tmp_path)


def test_failed_download_is_one_clear_error(tmp_path, monkeypatch):
    _online(monkeypatch)

    def refuse(wf, target):
        raise ConnectionError("network unreachable")

    monkeypatch.setattr(W, "_download", refuse)
    with pytest.raises(W.WeightsMissingError, match="download failed .*network unreachable"):
        W.resolve(WF, weights_dir=tmp_path)


def test_unreachable_host_fails_at_once_with_the_page(tmp_path, monkeypatch):
    monkeypatch.delenv("LPMRF_BENCH_OFFLINE")
    monkeypatch.delenv("HF_HUB_OFFLINE")
    asked = []
    monkeypatch.setattr(W, "_reachable", lambda host, timeout=3.0: asked.append(host) or False)
    monkeypatch.setattr(W, "_download", lambda wf, target: pytest.fail("must not try to download"))
    with pytest.raises(W.WeightsMissingError) as info:
        W.resolve(WF, weights_dir=tmp_path)
    assert asked == ["huggingface.co"]
    assert "huggingface.co cannot be reached" in str(info.value)
    assert "https://huggingface.co/someone/some-repo/blob/main/net.pth" in str(info.value)
