"""The README's contact sheet of the embedded models: LQ | posterior mean | pmrf | latent-pmrf | GT.

    python scripts/embedded_contact_sheet.py [--n 8] [--steps 25] [--out docs/embedded_contact_sheet.png]

Rows are the first N images of synthetic-faces:test restored with the `embedded` weights and the seeds
`lpmrf-bench run --seed 0` uses, rounded to 8 bit as the engine does; pixels are repeated 2x for viewing.
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

from lpmrf_bench.data import open_dataset
from lpmrf_bench.data.loading import to_tensor
from lpmrf_bench.engine import quantize
from lpmrf_bench.imageio import write_png
from lpmrf_bench.restorers import RestoreBatch, get_restorer, image_seed

COLUMNS = ("posterior-mean", "pmrf", "latent-pmrf")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--out", default="docs/embedded_contact_sheet.png")
    args = parser.parse_args()
    data = open_dataset("synthetic-faces:test")
    samples = [data.load(i) for i in list(data.image_ids())[:args.n]]
    lq8, gt8 = to_tensor([s.lq for s in samples], "cpu"), to_tensor([s.gt for s in samples], "cpu")
    ids = [s.image_id for s in samples]
    batch = RestoreBatch(lq=lq8.float() / 255, image_ids=ids, gt=gt8.float() / 255,
                         seeds=[image_seed(0, data.name, i, 0) for i in ids])
    columns = [lq8]
    for method in COLUMNS:
        spec = get_restorer(method)
        knobs = {**spec.default_knobs(), **({"steps": args.steps} if "steps" in spec.default_knobs() else {})}
        with torch.inference_mode():
            columns.append(quantize(spec.load("embedded", torch.device("cpu"))(batch, knobs)))
    columns.append(gt8)
    gap = torch.full((args.n, 3, lq8.shape[2], 2), 255, dtype=torch.uint8)
    rows = torch.cat([c for col in columns for c in (col, gap)][:-1], dim=3)  # [N, 3, H, W_total]
    sheet = torch.cat(list(rows), dim=1).permute(1, 2, 0).numpy()
    sheet = np.repeat(np.repeat(sheet, 2, axis=0), 2, axis=1)
    write_png(args.out, np.ascontiguousarray(sheet))
    print(f"wrote {args.out}: columns LQ | {' | '.join(COLUMNS)} | GT, {args.n} rows, K = {args.steps}")


if __name__ == "__main__":
    main()
