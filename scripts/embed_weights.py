"""Copy the final EMA exports of scripts/train_embedded.sh into the package as the `embedded` weight set.

    python scripts/embed_weights.py [RUNS]        # RUNS: the run folders' parent (default runs/embedded)

Each method's folder under lpmrf_bench/embedded/ is replaced by its run's `export/` plus the run's
`convergence.parquet` and `config.toml`; manifest.json is rewritten with the sha256 of every exported file.
"""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from lpmrf_bench.embedded_weights import METHODS, package_folder
from lpmrf_bench.weights import sha256_of

RUN_OF = {"posterior-mean": "posterior-mean", "pmrf": "pmrf", "latent-pmrf": "latent-pmrf", "vae-recon": "vae"}
LOGS = ("convergence.parquet", "config.toml")  # shipped beside the weights, not weights themselves


def main() -> None:
    runs = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/embedded")
    target = package_folder()
    manifest = {}
    for method in METHODS:
        run = runs / RUN_OF[method]
        if not (run / "export").is_dir():
            sys.exit(f"{run / 'export'} does not exist: finish `scripts/train_embedded.sh {RUN_OF[method]}` first")
        folder = target / method
        shutil.rmtree(folder, ignore_errors=True)
        shutil.copytree(run / "export", folder)
        files = sorted(p for p in folder.rglob("*") if p.is_file())
        manifest[method] = {p.relative_to(folder).as_posix(): sha256_of(p) for p in files}
        for name in LOGS:
            shutil.copyfile(run / name, folder / name)
    (target / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    total = sum(p.stat().st_size for p in target.rglob("*") if p.is_file())
    print(f"wrote {target} ({total / 2**20:.1f} MiB)")


if __name__ == "__main__":
    main()
