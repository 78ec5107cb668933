#!/usr/bin/env bash
# After scripts/train_embedded.sh: ship the exports as the `embedded` set and make the README's evidence.
#
#   scripts/evaluate_embedded.sh
#
# Embeds runs/embedded/*/export into the package, refreshes the CI baseline with the embedded default run
# (timed: it is the README's first command, written to reports/baseline), prints the quality bar from it, runs
# the default with a steps sweep on the first 100 test images, and draws docs/embedded_*.png.
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH=${BENCH:-.venv/bin/lpmrf-bench}
PY=${PYTHON:-.venv/bin/python}
RUNS=${RUNS:-runs/embedded}
$PY scripts/embed_weights.py "$RUNS"
rm -rf reports/baseline runs/embedded-sweep
/usr/bin/time -f "default run: %e s wall" $BENCH run --out reports/baseline --no-progress
rm -rf reports/baseline/{images,errors,perf}.parquet reports/baseline/.parts
$PY scripts/embedded_quality.py reports/baseline --steps 25
$BENCH run --sweep steps=1,2,5,10,25 --limit 100 --out runs/embedded-sweep --no-progress
$BENCH plot pd-tradeoff runs/embedded-sweep --y fd_mobilenet --out docs/embedded_pd_tradeoff.png
$BENCH plot convergence "$RUNS/pmrf" "$RUNS/latent-pmrf" --metric fd_mobilenet --out docs/embedded_convergence.png
$BENCH speedup "$RUNS/pmrf" "$RUNS/latent-pmrf" --metric fd_mobilenet
$PY scripts/embedded_contact_sheet.py --out docs/embedded_contact_sheet.png
