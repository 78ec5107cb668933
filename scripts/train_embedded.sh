#!/usr/bin/env bash
# Train the four embedded 64 px models (issue 14) on synthetic-faces:train with `lpmrf-bench train`.
#
#   scripts/train_embedded.sh STAGE [--set KEY=VALUE ...]    STAGE: posterior-mean | vae | pmrf | latent-pmrf
#
# Run folders go to $RUNS (default runs/embedded); rerunning a stage continues from its last checkpoint.
# The shipped set was trained stage by stage, each on two threads of the 2-core machine. The flows need the
# posterior-mean export, the latent flow also the VAE export. THREADS overrides the thread count. The pixel and the
# latent flow get the same wall-clock budget on this CPU (35-41 min each, with the machine's speed): the latent
# flow 4000 steps of 16 images, the pixel flow, about twice as fast per step, 8000; both at lr 1e-3 and validated
# every 250 steps on the same 128 val images (fd_mobilenet and PSNR at 10 Euler steps).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-runs/embedded}
BENCH=${BENCH:-.venv/bin/lpmrf-bench}
stage=${1:-}
shift || true
export OMP_NUM_THREADS=${THREADS:-2} MKL_NUM_THREADS=${THREADS:-2}
common=(--set device=cpu --set progress=false --set log_every=10 --set batch_size=16 --set seed=0
        --set checkpoint_every=250 --set keep_checkpoints=2 --set val_batch_size=16 --set val_images=128
        --set warmup_steps=200 --set lr_schedule=cosine)
flow=(--set val_every=250 --set val_steps=10 --set val_metrics=fd_mobilenet,psnr --set ema_decay=0.999
      --set lr=1e-3)
case "$stage" in
  posterior-mean)
    $BENCH train posterior-mean --out "$RUNS/posterior-mean" "${common[@]}" --set arch=swinir_S --set steps=11000 \
      --set lr=7e-4 --set ema_decay=0.999 --set val_every=500 --set val_metrics=psnr "$@" ;;
  vae)
    $BENCH train vae --out "$RUNS/vae" "${common[@]}" --set block_out_channels=16,64 --set latent_channels=4 \
      --set layers_per_block=1 --set layers_mid_block=1 --set lpips_weight=0 --set steps=6000 --set lr=7e-4 \
      --set ema_decay=0.999 --set val_every=1000 --set val_metrics=psnr "$@" ;;
  pmrf)
    $BENCH train pmrf --out "$RUNS/pmrf" "${common[@]}" "${flow[@]}" --set arch=hdit_S --set steps=8000 \
      --set posterior_mean="$RUNS/posterior-mean/export" "$@" ;;
  latent-pmrf)
    $BENCH train latent-pmrf --out "$RUNS/latent-pmrf" "${common[@]}" "${flow[@]}" --set arch=latent_flow_S \
      --set steps=4000 --set posterior_mean="$RUNS/posterior-mean/export" --set vae="$RUNS/vae/export" "$@" ;;
  *) echo "usage: $0 posterior-mean|vae|pmrf|latent-pmrf" >&2; exit 2 ;;
esac
