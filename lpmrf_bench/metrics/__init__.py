"""Metrics by spec string, and the protocol presets that map metric names to specs.

The same name (`ssim`) means different numbers under different protocols, so the registry is keyed by the
protocol-pinned spec string and a protocol is a name -> spec table. `--metrics` picks names from the
run's protocol.
"""
from __future__ import annotations

from lpmrf_bench.metrics.base import MetricBatch, MetricSpec, SetValue
from lpmrf_bench.registry import Registry

METRICS: Registry[MetricSpec] = Registry("metric")
for _spec, _target in {
    "psnr/rgb-255-f64/pmrf-v1": "lpmrf_bench.metrics.fullref:PSNR",
    "ssim/rgb-gauss11-s1.5-valid-f64/pmrf-v1": "lpmrf_bench.metrics.fullref:SSIM",
    "psnr_y/ycbcr601-limited-f64/basicsr-v1": "lpmrf_bench.metrics.fullref:PSNR_Y",
    "ssim_y/ycbcr601-limited-gauss11-s1.5-valid-f64/basicsr-v1": "lpmrf_bench.metrics.fullref:SSIM_Y",
    "mse/rgb-255-f64/pmrf-v1": "lpmrf_bench.metrics.fullref:MSE",
    "lpips/vgg-v0.1/pmrf-v1": "lpmrf_bench.metrics.lpips:LPIPS_VGG",
    "lpips/alex-v0.1/pyiqa-v1": "lpmrf_bench.metrics.lpips:LPIPS_ALEX",
    "niqe/ycbcr601-limited-round-b96-matlab/pmrf-v1": "lpmrf_bench.metrics.niqe:NIQE",
    "niqe/yiq-y-round-b96-release-f64/pyiqa-v1": "lpmrf_bench.metrics.niqe:NIQE_PYIQA",
    "indrmse/rgb-255/pmrf-v1": "lpmrf_bench.metrics.indrmse:INDRMSE",
    "deg/arcface-r18/pmrf-v1": "lpmrf_bench.metrics.face:DEG",
    "lmd/fan-wflw98-4hg/pmrf-v1": "lpmrf_bench.metrics.face:LMD",
    "ssim/yiq-y-round-gauss11-s1.5-valid-relu-f64/pyiqa-v1": "lpmrf_bench.metrics.pyiqa_conventions:SSIM_YIQ",
    "psnr/rgb-01-eps1e-8/pyiqa-v1": "lpmrf_bench.metrics.pyiqa_conventions:PSNR_01",
    "psnr_y/yiq-01-eps1e-8/pyiqa-v1": "lpmrf_bench.metrics.pyiqa_conventions:PSNR_Y_YIQ",
    "musiq/koniq-rgb01/pyiqa-v1": "lpmrf_bench.metrics.pyiqa_nr:MUSIQ",
    "maniqa/koniq-crop224x20-seed0-rgb01/pyiqa-v1": "lpmrf_bench.metrics.pyiqa_nr:MANIQA",
    "clipiqa/rn50-rgb01/pyiqa-v1": "lpmrf_bench.metrics.pyiqa_nr:CLIPIQA",
    "topiq_nr-face/cgfiqa-res50-rgb01/pyiqa-v1": "lpmrf_bench.metrics.pyiqa_nr:TOPIQ_NR_FACE",
}.items():
    METRICS.add(_spec, _target)

PROTOCOLS: dict[str, dict[str, str]] = {
    "pmrf": {
        "psnr": "psnr/rgb-255-f64/pmrf-v1",
        "ssim": "ssim/rgb-gauss11-s1.5-valid-f64/pmrf-v1",
        "psnr_y": "psnr_y/ycbcr601-limited-f64/basicsr-v1",
        "ssim_y": "ssim_y/ycbcr601-limited-gauss11-s1.5-valid-f64/basicsr-v1",
        "mse": "mse/rgb-255-f64/pmrf-v1",
        "lpips": "lpips/vgg-v0.1/pmrf-v1",
        "niqe": "niqe/ycbcr601-limited-round-b96-matlab/pmrf-v1",
        "indrmse": "indrmse/rgb-255/pmrf-v1",
        "deg": "deg/arcface-r18/pmrf-v1",
        "lmd": "lmd/fan-wflw98-4hg/pmrf-v1",
    },
    "pyiqa": {
        "psnr": "psnr/rgb-01-eps1e-8/pyiqa-v1",
        "ssim": "ssim/yiq-y-round-gauss11-s1.5-valid-relu-f64/pyiqa-v1",
        "psnr_y": "psnr_y/yiq-01-eps1e-8/pyiqa-v1",
        "lpips": "lpips/alex-v0.1/pyiqa-v1",
        "niqe": "niqe/yiq-y-round-b96-release-f64/pyiqa-v1",
        "musiq": "musiq/koniq-rgb01/pyiqa-v1",
        "maniqa": "maniqa/koniq-crop224x20-seed0-rgb01/pyiqa-v1",
        "clipiqa": "clipiqa/rn50-rgb01/pyiqa-v1",
        "topiq_nr-face": "topiq_nr-face/cgfiqa-res50-rgb01/pyiqa-v1",
    },
}


def protocol(name: str) -> dict[str, str]:
    if name not in PROTOCOLS:
        raise KeyError(f"unknown protocol {name!r}; known: {', '.join(PROTOCOLS)}")
    return PROTOCOLS[name]


def find_metric(spec: str):
    """The registered metric of a stored spec string: a per-image `MetricSpec`, else a set-level metric
    (`fid`, `fd_mobilenet`, ...), else None (unknown here, or its plug-in failed to load)."""
    from lpmrf_bench.registry import UnavailableError

    try:
        return METRICS.get(spec)
    except (KeyError, UnavailableError):
        pass
    from lpmrf_bench.metrics.setlevel import SET_METRICS

    return next((m for m in SET_METRICS.values() if m.spec == spec), None)


__all__ = ["METRICS", "PROTOCOLS", "MetricBatch", "MetricSpec", "SetValue", "find_metric", "protocol"]
