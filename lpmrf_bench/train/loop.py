"""The training loop shared by every recipe: DDP, accumulation, bf16, clipping, EMA, checkpoints, validation.

One process, or one per device under `torchrun` (DDP; gloo on CPU, nccl on GPU). Rank 0 alone writes the
run folder: `config.toml` (the resolved config), `checkpoints/`, `loss.parquet` (per-step loss),
`convergence.parquet` (validation), `samples/` (grids) and `export/` (the final EMA weights).
Logs are rewritten whole at each checkpoint and cut at the checkpoint's step when a run resumes, so a killed
run neither loses nor duplicates rows of the steps it keeps.
"""
from __future__ import annotations

import contextlib
import copy
import logging
import math
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch
from torch import nn
from tqdm import tqdm

from lpmrf_bench import store
from lpmrf_bench.data import open_dataset
from lpmrf_bench.distributed import Ranks, device_for, from_environment
from lpmrf_bench.models.sampler import stratified_uniform
from lpmrf_bench.plan import stable_hash
from lpmrf_bench.restorers import RestoreBatch, image_seed
from lpmrf_bench.train import state
from lpmrf_bench.train.config import RUNTIME_FIELDS, ConfigError, TrainConfig, to_dict
from lpmrf_bench.train.pairs import PairLoader, PairSource, default_validation, micro_indices, open_pairs
from lpmrf_bench.train.recipes import Task, build_task
from lpmrf_bench.train.validate import Validator, build_metrics

log = logging.getLogger(__name__)

LOSS_LOG, CONVERGENCE = "loss.parquet", "convergence.parquet"
SEED_SPACE = "train"  # the `dataset` part of training images' seeds


@dataclass
class TrainResult:
    run_dir: Path
    progress: state.Progress
    resumed_from: int | None
    export_dir: Path | None
    method: str  # the restorer that loads the export (`--weights METHOD=DIR`)
    notes: list[str] = field(default_factory=list)
    last_loss: float | None = None


def run_id(recipe: str, cfg: TrainConfig) -> str:
    """Stable across resumes: a hash of the recipe and the settings that decide the result."""
    identity = {k: v for k, v in to_dict(cfg).items() if k not in RUNTIME_FIELDS}
    return f"train-{recipe}-{stable_hash(identity, 12)}"


def lr_factor(step: int, warmup: int, steps: int, schedule: str) -> float:
    """The multiple of `lr` used by optimiser step `step` (0-based): linear warm-up, then constant or a cosine to
    0 at `steps`. Cosine depends on `steps`, so raising `steps` when resuming stretches the remaining decay."""
    if step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    progress = min(1.0, (step - warmup) / max(1, steps - warmup))
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def update_ema(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * model for parameters; buffers copied."""
    with torch.no_grad():
        ema_params, params = list(ema.parameters()), list(model.parameters())
        torch._foreach_lerp_(ema_params, params, 1.0 - decay)
        for e, b in zip(ema.buffers(), model.buffers()):
            e.copy_(b)


def read_log(path: Path, upto_step: int) -> list[dict]:
    """The rows of a log file with step <= upto_step (rows after the resumed checkpoint are replayed)."""
    if not path.exists():
        return []
    frame = pd.read_parquet(path)
    return frame[frame["step"] <= upto_step].to_dict("records")


def write_log(path: Path, rows: list[dict]) -> None:
    if rows:
        store.write_parquet(path, pd.DataFrame(rows))


class Trainer:
    def __init__(self, recipe: str, cfg: TrainConfig, run_dir: Path, data_root: str | None = None):
        self.recipe, self.cfg, self.run_dir = recipe, cfg, run_dir
        device_name = None if cfg.device == "auto" else cfg.device
        if device_name and device_name.startswith("cuda") and not torch.cuda.is_available():
            raise ConfigError("device: cuda was asked for but torch sees no CUDA device")
        on_cuda = device_name.startswith("cuda") if device_name else torch.cuda.is_available()
        self.ranks: Ranks = from_environment("cuda" if on_cuda else "cpu")
        self.device = device_for(device_name, self.ranks)
        if cfg.batch_size % (self.ranks.world_size * cfg.grad_accum):
            raise ConfigError(f"batch_size {cfg.batch_size} must split evenly over {self.ranks.world_size} rank(s) x "
                              f"grad_accum {cfg.grad_accum}")
        self.pairs: PairSource = open_pairs(cfg.data, cfg.degradation, cfg.seed, data_root)
        self.loader = PairLoader(self.pairs, cfg.workers)
        self.task: Task = build_task(recipe, cfg, self.device, self.pairs.size)
        self.notes = list(self.task.notes)
        self.model = self.task.model
        self.ema = copy.deepcopy(self.model).eval().requires_grad_(False)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr, betas=cfg.betas,
                                           weight_decay=cfg.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: lr_factor(s, cfg.warmup_steps, cfg.steps, cfg.lr_schedule))
        self.forward = self.model
        if self.ranks.world_size > 1:
            self.forward = nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        if cfg.compile:
            self.forward = torch.compile(self.forward)
        self.validator = None
        if cfg.val_every and self.ranks.is_main:
            strict = cfg.val_metrics != TrainConfig.val_metrics  # named ones must run; defaults may be skipped
            val_data = cfg.val_data or default_validation(cfg.data)
            if val_data is None:
                raise ConfigError(f"val_data: give a paired validation set for data {cfg.data!r} (or val_every=0)")
            metrics, notes = build_metrics(cfg.val_metrics, self.device, open_dataset(val_data, data_root).name,
                                           strict)
            self.notes += notes
            self.validator = Validator.open(val_data, cfg.val_images, metrics, cfg.seed, cfg.val_batch_size,
                                            self.device, data_root)
        self.id = run_id(recipe, cfg)

    # one optimiser step -------------------------------------------------------------------------------------
    def _indices(self, step: int, micro: int) -> tuple[range, list[int]]:
        """This rank's positions in the global batch of (step, micro), and their global image indices."""
        cfg = self.cfg
        js = micro_indices(step, cfg.batch_size, self.ranks.rank, self.ranks.world_size, micro, cfg.grad_accum)
        return js, [step * cfg.batch_size + j for j in js]

    def _micro_batch(self, step: int, micro: int) -> tuple[RestoreBatch, torch.Tensor]:
        cfg = self.cfg
        js, indices = self._indices(step, micro)
        for ahead in (step, step + 1):  # keep workers one optimiser step ahead
            for m in range(cfg.grad_accum):
                self.loader.prefetch(self._indices(ahead, m)[1])
        gt, lq = self.loader.load(indices, self.device)
        seeds = [image_seed(cfg.seed, SEED_SPACE, str(g), 0) for g in indices]
        # the global batch's stratified times, drawn identically on every rank; this rank takes its block
        generator = torch.Generator().manual_seed(image_seed(cfg.seed, SEED_SPACE, f"times/{step}", 0))
        times = stratified_uniform(cfg.batch_size, generator)[js.start:js.stop].to(self.device)
        return RestoreBatch(lq=lq, image_ids=[str(g) for g in indices], seeds=seeds, gt=gt), times

    def step(self, step: int) -> dict[str, float]:
        cfg = self.cfg
        self.model.train()
        parts_sum: dict[str, float] = {}
        total = 0.0
        for micro in range(cfg.grad_accum):
            batch, times = self._micro_batch(step, micro)
            last = micro == cfg.grad_accum - 1
            sync = self.forward.no_sync() if (self.ranks.world_size > 1 and not last) else contextlib.nullcontext()
            with sync:
                with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16"):
                    loss, parts = self.task.loss(self.forward, batch, times)
                (loss.float() / cfg.grad_accum).backward()
            total += loss.item() / cfg.grad_accum
            for k, v in parts.items():
                parts_sum[k] = parts_sum.get(k, 0.0) + v / cfg.grad_accum
        if self.ranks.world_size > 1:  # log the global batch's loss, not this rank's share
            values = torch.tensor([total, *parts_sum.values()], dtype=torch.float64, device=self.device)
            torch.distributed.all_reduce(values)
            total, *rest = (values / self.ranks.world_size).tolist()
            parts_sum = dict(zip(parts_sum, rest))
        if cfg.grad_clip > 0:
            norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
            parts_sum["grad_norm"] = float(norm)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        update_ema(self.ema, self.model, cfg.ema_decay)
        return {"loss": total, **parts_sum}

    # the run ------------------------------------------------------------------------------------------------
    def train(self) -> TrainResult:
        cfg, main = self.cfg, self.ranks.is_main
        if main:
            state.sweep_temporary(self.run_dir)
        torch.manual_seed(cfg.seed)  # the global streams too (a fresh run's; a checkpoint restores its own)
        loaded = state.load_latest(self.run_dir, self.model, self.ema, self.optimizer, self.scheduler)
        progress = loaded or state.Progress()
        resumed_from = progress.step if loaded else None
        losses = read_log(self.run_dir / LOSS_LOG, progress.step) if main else []
        convergence = read_log(self.run_dir / CONVERGENCE, progress.step) if main else []
        bar = tqdm(total=cfg.steps, initial=progress.step, desc=f"train {self.recipe}", unit="step",
                   disable=not (cfg.progress and main), file=sys.stderr)
        start, start_wall, start_step = time.perf_counter(), progress.wall_s, progress.step
        last_loss = None
        try:
            while progress.step < cfg.steps:
                row = self.step(progress.step)
                progress.step += 1
                progress.images_seen += cfg.batch_size
                progress.wall_s = start_wall + time.perf_counter() - start
                last_loss = row["loss"]
                if main and progress.step % cfg.log_every == 0:
                    losses.append({"run_id": self.id, "step": progress.step, "wall_s": progress.wall_s,
                                   "images_seen": progress.images_seen, "lr": self.scheduler.get_last_lr()[0],
                                   "loss_spec": self.task.loss_spec, **row})
                rate = (progress.step - start_step) / max(time.perf_counter() - start, 1e-9)
                bar.set_postfix(loss=f"{row['loss']:.4g}", steps_s=f"{rate:.2f}", images_s=f"{rate * cfg.batch_size:.1f}")
                bar.update(1)
                done = progress.step == cfg.steps
                if self.validator is not None and (progress.step % cfg.val_every == 0 or done):
                    paused = time.perf_counter()
                    convergence += self.validate(progress)
                    start += time.perf_counter() - paused  # wall_s counts training, not validation
                self.ranks.barrier()
                if progress.step % cfg.checkpoint_every == 0 or done:
                    if main:
                        write_log(self.run_dir / LOSS_LOG, losses)
                        write_log(self.run_dir / CONVERGENCE, convergence)
                        state.save(self.run_dir, self.model, self.ema, self.optimizer, self.scheduler, progress,
                                   self.recipe, to_dict(cfg), cfg.keep_checkpoints)
                    self.ranks.barrier()
        finally:
            self.loader.close()
        bar.close()
        export = None
        if main:
            export = self.run_dir / "export"
            tmp = self.run_dir / ".export.tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            self.task.export(tmp, self.ema, True)
            shutil.rmtree(export, ignore_errors=True)
            tmp.rename(export)
        self.ranks.barrier()
        return TrainResult(self.run_dir, progress, resumed_from, export, self.task.restorer, self.notes, last_loss)

    def validate(self, progress: state.Progress) -> list[dict]:
        """Export the EMA weights to a scratch folder, score them, write the grid; the convergence rows."""
        scratch = self.run_dir / ".validation-export"
        shutil.rmtree(scratch, ignore_errors=True)
        self.task.export(scratch, self.ema, False)
        grid = self.run_dir / "samples" / f"step-{progress.step:08d}.png"
        try:
            values = self.validator.run(self.task.restorer, scratch, self.task.knobs, grid)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        return [{"run_id": self.id, "step": progress.step, "wall_s": progress.wall_s,
                 "images_seen": progress.images_seen, "metric": name, "spec": spec, "value": v.value, "n": v.n}
                for name, (spec, v) in values.items()]
