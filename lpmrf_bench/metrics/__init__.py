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
}.items():
    METRICS.add(_spec, _target)

PROTOCOLS: dict[str, dict[str, str]] = {
    "pmrf": {
        "psnr": "psnr/rgb-255-f64/pmrf-v1",
        "ssim": "ssim/rgb-gauss11-s1.5-valid-f64/pmrf-v1",
        "psnr_y": "psnr_y/ycbcr601-limited-f64/basicsr-v1",
        "ssim_y": "ssim_y/ycbcr601-limited-gauss11-s1.5-valid-f64/basicsr-v1",
        "mse": "mse/rgb-255-f64/pmrf-v1",
    },
    "pyiqa": {
        "psnr": "psnr/rgb-255-f64/pmrf-v1",
    },
}


def protocol(name: str) -> dict[str, str]:
    if name not in PROTOCOLS:
        raise KeyError(f"unknown protocol {name!r}; known: {', '.join(PROTOCOLS)}")
    return PROTOCOLS[name]


__all__ = ["METRICS", "PROTOCOLS", "MetricBatch", "MetricSpec", "SetValue", "protocol"]
