#!/usr/bin/env bash
# After scripts/train_embedded.sh: ship the exports as the `embedded` set and make the README's evidence.
#
#   scripts/evaluate_embedded.sh
#
# Embeds runs/embedded/*/export into the package; times the embedded default run (the README's first command,
# with an empty reference cache so it includes computing synthetic-faces:ref) into runs/embedded-default; prints
# the quality bar from it; refreshes the CI baseline (reports/baseline: sets and per-image values only); runs
# the default again with a steps sweep (into the same folder); draws docs/embedded_*.png and prints the
# latent flow's speedups (the charts' arrows, at its first validation; in training time at its last).
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH=${BENCH:-.venv/bin/lpmrf-bench}
PY=${PYTHON:-.venv/bin/python}
RUNS=${RUNS:-runs/embedded}
$PY scripts/embed_weights.py "$RUNS"
rm -rf runs/embedded-default reports/baseline
if [ -z "${LPMRF_BENCH_REFERENCES:-}" ]; then  # an empty reference cache, as on a fresh clone; removed at exit
  LPMRF_BENCH_REFERENCES=$(mktemp -d); trap 'rm -rf "$LPMRF_BENCH_REFERENCES"' EXIT; export LPMRF_BENCH_REFERENCES
fi
/usr/bin/time -f "default run: %e s wall" $BENCH run --out runs/embedded-default --no-progress
$PY scripts/embedded_quality.py runs/embedded-default --steps 25
mkdir -p reports/baseline
cp -r runs/embedded-default/{metrics,sets.parquet,manifest.json} reports/baseline/
# the sweep resumes the default run: its K = 25 configurations are stored already and are not recomputed
/usr/bin/time -f "sweep run: %e s wall" $BENCH run --sweep steps=1,2,5,10,25 --out runs/embedded-default --no-progress
$BENCH plot pd-tradeoff runs/embedded-default --y fd_mobilenet --out docs/embedded_pd_tradeoff.png
# each chart's arrow reads the latent flow's first validation, in steps and in training time
$BENCH plot convergence "$RUNS/pmrf" "$RUNS/latent-pmrf" --metric fd_mobilenet --out docs/embedded_convergence.png
$BENCH plot convergence "$RUNS/pmrf" "$RUNS/latent-pmrf" --metric fd_mobilenet --x wall \
  --out docs/embedded_convergence_wall.png
$BENCH speedup "$RUNS/pmrf" "$RUNS/latent-pmrf" --metric fd_mobilenet --x wall --at-step 4000  # its last
$PY scripts/embedded_contact_sheet.py --out docs/embedded_contact_sheet.png
