"""Throughput of the synthetic-face training data (generation + DifFace degradation) on this machine's CPUs.

    python benchmarks/synthetic_faces.py                    # 64 and 256 px, 1 process and 2 workers
    python benchmarks/synthetic_faces.py --previews docs    # also write the README's contact sheets

Training a small model at 64 px consumes a few hundred images per second; this says whether the stream keeps
up. The numbers depend on what else runs on the machine: the 1-minute load average is printed beside them.
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import cv2
import numpy as np

from lpmrf_bench.data.synthetic_faces import SyntheticFaces, TrainingStream, generate_face


def images_per_second(size: int, workers: int, batch_size: int, seconds: float) -> tuple[float, float]:
    """Steady-state (wall-clock, this process's CPU-time) rates of `TrainingStream`; the first batches, which
    include process start-up, are skipped. On a shared machine the CPU-time rate of an in-process run is the
    one that does not depend on the load."""
    batches = TrainingStream(size=size, batch_size=batch_size, seed=0, workers=workers).iterate()
    for _ in range(max(1, 2 * workers)):
        next(batches)
    count, start, cpu = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - start < seconds:
        gt, _ = next(batches)
        count += gt.shape[0]
    rates = count / (time.perf_counter() - start), count / max(1e-9, time.process_time() - cpu)
    batches.close()
    return rates


def write_previews(folder: Path) -> list[Path]:
    """Per size, a grid of ground-truth faces of the train split, then a row of test LQ | GT pairs. The 64 px
    sheet shows variety (8 x 4, pixels doubled), the 256 px one detail (4 x 2 at full size, kept under ~1.5 MB)."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for size, cell, columns, rows in ((64, 128, 8, 4), (256, 256, 4, 2)):
        faces = [cv2.resize(generate_face(seed, size), (cell, cell), interpolation=cv2.INTER_NEAREST)
                 for seed in range(columns * rows)]
        grid = [np.concatenate(faces[r * columns:(r + 1) * columns], axis=1) for r in range(rows)]
        test = SyntheticFaces("test", size)
        pairs = [test.load(image_id) for image_id in test.image_ids()[:columns // 2]]
        tiles = [cv2.resize(np.concatenate([s.lq, s.gt], axis=1), (2 * cell, cell), interpolation=cv2.INTER_NEAREST)
                 for s in pairs]
        gap = np.full((cell // 8, columns * cell, 3), 255, np.uint8)
        sheet = np.concatenate([*grid, gap, np.concatenate(tiles, axis=1)], axis=0)
        path = folder / f"synthetic_faces_{size}.png"
        cv2.imwrite(str(path), sheet[..., ::-1], [cv2.IMWRITE_PNG_COMPRESSION, 9])
        written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="64,256")
    parser.add_argument("--workers", default="0,2", help="0 renders in this process")
    parser.add_argument("--batch-size", type=int, default=64, help="at 64 px; scaled down by area for larger sizes")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--previews", type=Path, help="write the contact sheets into this folder")
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} before the run")
    for size in (int(s) for s in args.sizes.split(",")):
        for workers in (int(w) for w in args.workers.split(",")):
            batch_size = max(4, args.batch_size * 64**2 // size**2)
            wall, cpu = images_per_second(size, workers, batch_size, args.seconds)
            per_core = f", {cpu:6.1f} per CPU-second" if workers == 0 else ""
            print(f"{size:4d} px  workers={workers}  {wall:7.1f} images/s{per_core}  (load {os.getloadavg()[0]:.2f})")
    if args.previews:
        for path in write_previews(args.previews):
            print(f"wrote {path}")


if __name__ == "__main__":
    main()
