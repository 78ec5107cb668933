#!/usr/bin/env bash
# After scripts/train_embedded.sh: ship the exports as the `embedded` set and make the README's evidence.
#
#   scripts/evaluate_embedded.sh
#
# Embeds runs/embedded/*/export into the package, refreshes the CI baseline from the embedded default run
# (timed), reruns the default (timed) and checks it against the baseline, runs the default with a steps sweep,
# prints the quality bar, and draws docs/embedded_{pd_tradeoff,convergence,contact_sheet}.png.
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH=${BENCH:-.venv/bin/lpmrf-bench}
PY=${PYTHON:-.venv/bin/python}
RUNS=${RUNS:-runs/embedded}
$PY scripts/embed_weights.py "$RUNS"
rm -rf reports/baseline runs/embedded-default runs/embedded-sweep
/usr/bin/time -f "baseline (default) run: %e s wall" $BENCH run --out reports/baseline --no-progress
rm -rf reports/baseline/{images,errors,perf}.parquet reports/baseline/.parts
/usr/bin/time -f "default run: %e s wall" $BENCH run --out runs/embedded-default --no-progress
$BENCH report runs/embedded-default --baseline reports/baseline && echo "report vs baseline: exit 0"
$BENCH run --sweep steps=1,2,5,10,25 --out runs/embedded-sweep --no-progress
$PY scripts/embedded_quality.py runs/embedded-sweep --steps 25
$BENCH plot pd-tradeoff runs/embedded-sweep --y fd_mobilenet --out docs/embedded_pd_tradeoff.png
$BENCH plot convergence "$RUNS/pmrf" "$RUNS/latent-pmrf" --metric fd_mobilenet --out docs/embedded_convergence.png
$BENCH speedup "$RUNS/pmrf" "$RUNS/latent-pmrf" --metric fd_mobilenet
$PY scripts/embedded_contact_sheet.py --out docs/embedded_contact_sheet.png
