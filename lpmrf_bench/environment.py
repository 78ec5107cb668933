"""What a run records about where it ran: package versions, git commit, hardware."""
from __future__ import annotations

import os
import platform
import socket
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import torch

from lpmrf_bench.cpu_allocator import retaining_freed_memory

PACKAGES = ("lpmrf-bench", "torch", "torchvision", "numpy", "pandas", "pyarrow", "opencv-python-headless", "pillow",
            "lpips", "torchmetrics", "clean-fid", "pyiqa", "safetensors", "huggingface_hub")


def package_versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity, where the OS says), for sizing worker pools."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def git_commit(path: Path | None = None) -> str | None:
    """The commit of the lpmrf_bench source tree (None when installed from a wheel), '+dirty' if modified."""
    where = path or Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=5)
        if commit.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=where,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return commit.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def device_info(device: torch.device) -> dict[str, Any]:
    info: dict[str, Any] = {"device": str(device), "cpu": platform.processor() or platform.machine(),
                            "torch_threads": torch.get_num_threads(),
                            "float32_matmul_precision": torch.get_float32_matmul_precision(),  # "high" = TF32
                            "glibc_retains_freed_memory": retaining_freed_memory()}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(gpu=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 1),
                    cuda=torch.version.cuda, capability=f"{props.major}.{props.minor}")
    return info


def describe(device: torch.device) -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "host": socket.gethostname(),
        "packages": package_versions(),
        "git_commit": git_commit(),
        "hardware": device_info(device),
    }
