"""The training loop: ``fit(config)``, read top to bottom as ``fit`` -> ``train_one_epoch`` -> ``train_step``.

What makes resume exact and multi-process training equal to one process:

- **Data order** is a pure function of ``(seed, epoch)`` and augmentation of ``(seed, epoch, item)``
  (``lipkit.training.data_order``); under DDP each rank takes its slice of every global batch.
- **Model randomness** (dropout) uses the global torch RNG reseeded from ``(seed, step, rank)``
  before every step.
- A checkpoint stores the :class:`TrainState` (step, running log sums, best and last scores, the
  log file's length); resuming rebuilds the epoch's order and skips the batches already done,
  restores model/optimiser/scheduler (and the RNG states), and truncates ``metrics.jsonl`` to its
  length at that checkpoint, so the log continues with the same lines.
- **Checkpoints** are written atomically (``lipkit.training.checkpoint``) and only when every
  parameter is finite; a non-finite loss stops training with :class:`NonFiniteLossError` before the
  update, so ``last.pt`` always holds the last good state.
- **Loss normalisation under DDP**: each rank's loss is a mean over its own valid (non-255) pixels
  and DDP averages gradients over ranks, so each rank's loss is multiplied by
  ``W * valid_rank / valid_total`` (``DistContext.loss_scale``): the averaged gradient is then that
  of the mean over all valid pixels of the global batch, the single-process gradient.
"""

from __future__ import annotations

import json
import math
import resource
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from lipkit import paths
from lipkit.evaluate import accumulate, summarise
from lipkit.labels import LabelSet, get_label_set
from lipkit.metrics import mean_left_right_confusion
from lipkit.ssl import StructureSensitiveLoss, multi_output_loss
from lipkit.training.build import (TrainData, build_data, build_loss, build_optimizer, build_scheduler,
                                   build_training_model, set_bn_eval, wrap_ddp)
from lipkit.training.checkpoint import (CHECKPOINT_FORMAT, atomic_write_bytes, atomic_write_text, load_checkpoint_file,
                                        remove_temp_files, rng_state, set_rng_state)
from lipkit.training.config import TrainConfig
from lipkit.training.data_order import EpochBatchSampler, derive_seed
from lipkit.training.distributed import DistContext, setup_distributed

LOGGED = ("loss", "ce", "joint_error")  # the per-step values averaged into each train log line
VAL_LOGGED = ("pixel_accuracy", "mean_accuracy", "mean_iou", "frequency_weighted_iou")


class NonFiniteLossError(FloatingPointError):
    """Training stopped on a non-finite loss (or parameters); ``last.pt`` holds the last good state."""

    def __init__(self, message: str, step: int, parts: dict[str, float]) -> None:
        super().__init__(message)
        self.step, self.parts = step, parts


def _zero_sums() -> dict[str, float]:
    return {"loss": 0.0, "ce": 0.0, "joint_error": 0.0, "n": 0}


@dataclass
class TrainState:
    """Everything that changes while training; saved in every checkpoint, restored on resume."""

    step: int = 0
    sums: dict[str, float] = field(default_factory=_zero_sums)  # LOGGED sums since the last train line
    best: dict[str, Any] = field(default_factory=lambda: {"mean_iou": None, "step": None, "epoch": None})
    last_val: dict[str, Any] | None = None
    last_train: dict[str, Any] | None = None
    metrics_offset: int = 0  # bytes of metrics.jsonl written so far


@dataclass
class Trainer:
    """What stays fixed during a run: config, process group, data, model, optimiser, loss."""

    config: TrainConfig
    ctx: DistContext
    device: torch.device
    out_dir: Path
    label_set: LabelSet
    data: TrainData
    model: nn.Module  # the bare model (saved in checkpoints)
    ddp_model: nn.Module  # what the step calls: DistributedDataParallel(model) or the model itself
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    loss_fn: StructureSensitiveLoss
    amp: bool
    channels_last: bool

    @property
    def is_main(self) -> bool:
        return self.ctx.is_main


def make_trainer(config: TrainConfig, ctx: DistContext, device: torch.device) -> Trainer:
    """Build data, model, optimiser, schedule and loss from a validated config."""
    if not config.out_dir:
        raise ValueError("out_dir is empty: set out_dir in the config (or --set out_dir=runs/NAME)")
    if config.batch_size % ctx.world_size:
        raise ValueError(f"batch_size={config.batch_size} must be divisible by the number of processes ({ctx.world_size})")
    if config.threads:
        torch.set_num_threads(config.threads)
    label_set = get_label_set(config.data.label_set)
    channels_last = config.channels_last and device.type == "cuda"
    data = build_data(config, label_set)
    model = build_training_model(config, label_set, ctx, device, channels_last)
    optimizer = build_optimizer(model, config)
    return Trainer(config, ctx, device, paths.resolve(config.out_dir), label_set, data, model,
                   wrap_ddp(model, ctx, device), optimizer, build_scheduler(optimizer, config, data.total_steps),
                   build_loss(config, label_set), config.bf16 and device.type == "cuda", channels_last)


# ================================================================================================
# fit: the entry point


def fit(config: TrainConfig | dict, resume: bool = False, stop_after: int | None = None) -> dict:
    """Train ``config``; with ``resume=True`` continue from ``<out_dir>/last.pt`` when it exists.

    ``stop_after``: leave the loop after that many steps as if interrupted there (the schedule
    still spans the config's total steps; no final validation, no ``scores.json``). The
    provenance test of ``checkpoints/`` re-runs a shipped config's first steps this way.

    Writes ``<out_dir>/{config.yaml, metrics.jsonl, last.pt, best.pt, scores.json}`` (rank 0).
    Returns ``{"step", "epoch", "train", "val", "best", "out_dir"}``: the last train log line, the
    final validation scores (``lipkit.evaluate.summarise``) and the best validation so far.
    Raises ``NonFiniteLossError`` on a non-finite loss, leaving the last good ``last.pt`` in place.
    """
    if isinstance(config, dict):
        config = TrainConfig.from_dict(config)
    config.validate()
    ctx, device = setup_distributed(config.device)
    try:
        trainer = make_trainer(config, ctx, device)
        state = start(trainer, resume)
        if state.step >= trainer.data.total_steps:  # a finished run: report its scores, rewrite nothing
            return finished_result(trainer, state)
        final_val = None
        with tqdm(total=trainer.data.total_steps, initial=state.step, desc="train",
                  disable=not (config.progress and ctx.is_main)) as bar:
            clock = (time.perf_counter(), state.step * config.batch_size)  # start time, images seen before it
            while state.step < trainer.data.total_steps:
                final_val = train_one_epoch(trainer, state, bar, clock, stop_after)
                if stop_after is not None and state.step >= stop_after and state.step < trainer.data.total_steps:
                    return finish(trainer, state, None, write=False)
        return finish(trainer, state, final_val)
    finally:
        ctx.close()


def start(trainer: Trainer, resume: bool) -> TrainState:
    """A fresh state, or the one in ``last.pt`` when resuming; writes config.yaml and trims the log to it."""
    out = trainer.out_dir
    if trainer.is_main:
        out.mkdir(parents=True, exist_ok=True)
        remove_temp_files(out)  # left by a process killed while writing
    state = TrainState()
    reset_peak_rss()
    if resume and (out / "last.pt").is_file():
        state = restore(trainer, load_checkpoint_file(out / "last.pt"))
    if trainer.is_main:
        atomic_write_text(out / "config.yaml", trainer.config.to_yaml())
        with open(out / "metrics.jsonl", "ab") as fh:  # drop lines written after the checkpoint we resume from
            fh.truncate(state.metrics_offset)
    return state


# ================================================================================================
# One epoch, one step


def train_one_epoch(trainer: Trainer, state: TrainState, bar: tqdm, clock: tuple[float, int],
                    stop_after: int | None = None) -> dict | None:
    """Train from ``state.step`` to the end of its epoch (or of training, or ``stop_after``).

    Logs, validates and checkpoints on the way; returns the final validation when training ends here.
    """
    config, data = trainer.config, trainer.data
    epoch, first = divmod(state.step, data.steps_per_epoch)
    last = min(data.steps_per_epoch, first + data.total_steps - state.step)
    sampler = EpochBatchSampler(data.num_train, config.batch_size, config.seed, epoch, first, last,
                                trainer.ctx.rank, trainer.ctx.world_size)
    loader = torch.utils.data.DataLoader(data.train_items, batch_sampler=sampler, num_workers=config.data.workers,
                                         pin_memory=trainer.device.type == "cuda",
                                         generator=torch.Generator().manual_seed(0), persistent_workers=False)
    final_val = None
    for batch in loader:
        parts = train_step(trainer, state, batch)
        state.step += 1
        for k in LOGGED:
            state.sums[k] += parts[k]
        state.sums["n"] += 1
        bar.update(1)
        done = state.step >= data.total_steps
        end_of_epoch = state.step % data.steps_per_epoch == 0
        if state.step % config.log_every == 0 or done:
            bar.set_postfix(loss=f"{log_train_line(trainer, state, clock)['loss']:.4f}")
        if end_of_epoch or done:
            final_val = validate_if_due(trainer, state, done)
        if end_of_epoch or done or (config.checkpoint_every and state.step % config.checkpoint_every == 0):
            save(trainer, state, "last.pt")
        if done or (stop_after is not None and state.step >= stop_after):
            break
    return final_val


def train_step(trainer: Trainer, state: TrainState, batch: dict[str, torch.Tensor]) -> dict[str, float]:
    """One optimiser step on ``batch``; returns the step's ``loss``, ``ce`` and ``joint_error``.

    Raises :class:`NonFiniteLossError` (on every rank) before the update when any rank's loss is not finite.
    """
    config, device = trainer.config, trainer.device
    x = batch["image"].to(device, non_blocking=True)
    y = batch["label"].to(device, non_blocking=True).long()
    if trainer.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    torch.manual_seed(derive_seed(config.seed, 1, state.step, trainer.ctx.rank))
    trainer.ddp_model.train()
    if config.bn_frozen:
        set_bn_eval(trainer.ddp_model)
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=trainer.amp):
        outputs = trainer.ddp_model(x)
    result = multi_output_loss(trainer.loss_fn, outputs, y)
    parts = {"loss": float(result.loss.detach()), "ce": float(result.ce), "joint_error": float(result.joint_error)}
    scale, finite = ddp_loss_scale(trainer, outputs, y, math.isfinite(parts["loss"]))
    if not finite:
        detail = ", ".join(f"{k}={v:.6g}" for k, v in parts.items())
        raise NonFiniteLossError(
            f"non-finite loss at step {state.step + 1} (epoch {state.step // trainer.data.steps_per_epoch}): {detail}; "
            f"training stopped before the update; {trainer.out_dir / 'last.pt'} holds the last good checkpoint "
            f"(lower optim.lr, check the data)", state.step + 1, parts)
    trainer.optimizer.zero_grad(set_to_none=True)
    (result.loss * scale).backward()
    trainer.optimizer.step()
    trainer.scheduler.step()
    return parts


def ddp_loss_scale(trainer: Trainer, outputs: Any, target: torch.Tensor, finite: bool) -> tuple[float, bool]:
    """``(scale, every rank finite)``: the factor that turns this rank's loss into its share of the global mean."""
    if not trainer.ctx.active:
        return 1.0, finite
    fused = outputs["out"] if isinstance(outputs, dict) else outputs
    ce_target = trainer.loss_fn.ce_target(target, fused.shape[-2:])
    valid = (ce_target != trainer.label_set.ignore_index).sum().double()
    return trainer.ctx.loss_scale(valid, finite, trainer.device)


# ================================================================================================
# Logging and validation


def append_log(trainer: Trainer, state: TrainState, record: dict[str, Any]) -> None:
    """Append one JSON line to ``metrics.jsonl`` (rank 0) and remember the file's new length."""
    if not trainer.is_main:
        return
    line = (json.dumps(record) + "\n").encode()
    with open(trainer.out_dir / "metrics.jsonl", "ab") as fh:
        fh.write(line)
        fh.flush()
    state.metrics_offset += len(line)


def log_train_line(trainer: Trainer, state: TrainState, clock: tuple[float, int]) -> dict[str, Any]:
    """Write the mean of the LOGGED values since the last line (averaged over ranks) and reset the sums."""
    config, spe = trainer.config, trainer.data.steps_per_epoch
    means = trainer.ctx.reduce_mean([state.sums[k] / state.sums["n"] for k in LOGGED], trainer.device)
    elapsed = time.perf_counter() - clock[0]
    record = {"kind": "train", "step": state.step, "epoch": state.step / spe,
              "lr": trainer.optimizer.param_groups[0]["lr"], **dict(zip(LOGGED, means)),
              "images": state.step * config.batch_size,
              "img_per_s": (state.step * config.batch_size - clock[1]) / max(elapsed, 1e-9), "elapsed_s": elapsed,
              "peak_rss_mb": peak_rss_mb()}
    append_log(trainer, state, record)
    state.last_train = record
    state.sums = _zero_sums()
    return record


def peak_rss_mb() -> float:
    """Peak resident memory of this process since :func:`reset_peak_rss` (or its start), MB.

    Linux's VmHWM: unlike getrusage's maximum, it does not carry the RSS of the parent a kernel was
    forked from across exec. Elsewhere getrusage's maximum.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            return round(next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:")) / 1024, 1)
    except (OSError, StopIteration, ValueError):
        return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # Linux: kilobytes


def reset_peak_rss() -> None:
    """Start a new peak (Linux: writing 5 to /proc/self/clear_refs resets VmHWM), so each run logs its own."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")
    except OSError:
        pass


def validate_if_due(trainer: Trainer, state: TrainState, done: bool) -> dict | None:
    """At an epoch's end: validate when ``eval.every`` says so (always at the end); returns the scores."""
    epoch = math.ceil(state.step / trainer.data.steps_per_epoch)
    every = trainer.config.eval.every
    if trainer.data.val is None or not (done or (every and epoch % every == 0)):
        return None
    scores = validate(trainer)
    record_validation(trainer, state, scores, epoch)
    return scores


def validate(trainer: Trainer) -> dict[str, Any]:
    """Score the model on the validation split (each rank a share, summed): ``lipkit.evaluate.summarise``'s dict.

    The joint error uses ``eval.joint_sigma`` (the stated protocol, 1), not the ``ssl.sigma`` a run
    trains with, so runs of different sigmas are measured with one ruler.
    """
    c, ctx, val = trainer.config.eval, trainer.ctx, trainer.data.val
    with torch.autocast(trainer.device.type, dtype=torch.bfloat16, enabled=trainer.amp):
        matrix_state = accumulate(trainer.model, val, range(ctx.rank, len(val), ctx.world_size),
                                  label_set=trainer.label_set, scales=c.scales, flip=c.flip, device=trainer.device,
                                  joint_grid=c.joint_grid, joint_sigma=c.joint_sigma,
                                  progress=trainer.config.progress and ctx.is_main)
    if ctx.active:
        matrix_state.all_reduce()
    return summarise(matrix_state, trainer.label_set)


def record_validation(trainer: Trainer, state: TrainState, scores: dict[str, Any], epoch: int) -> None:
    """Log a validation line, keep it as ``last_val``, and save ``best.pt`` when the mIoU improved."""
    lr = mean_left_right_confusion(scores["left_right_confusion"])
    append_log(trainer, state, {
        "kind": "val", "step": state.step, "epoch": epoch, **{k: scores[k] for k in VAL_LOGGED},
        "mean_iou_absent_zero": scores["absent_zero"]["mean_iou"], "joint_error": scores["joint_error"],
        "left_right_confusion": None if math.isnan(lr) else lr, "num_images": scores["num_images"]})
    state.last_val = {k: v for k, v in scores.items() if k != "confusion_matrix"} | {"step": state.step, "epoch": epoch}
    miou = scores["mean_iou"]
    miou = -math.inf if miou is None or not math.isfinite(miou) else miou
    best = -math.inf if state.best["mean_iou"] is None else state.best["mean_iou"]
    if miou > best or state.best["step"] is None:
        state.best = {"mean_iou": None if miou == -math.inf else miou, "step": state.step, "epoch": epoch}
        save(trainer, state, "best.pt")


# ================================================================================================
# Checkpoints and the end of a run


def checkpoint_dict(trainer: Trainer, state: TrainState) -> dict[str, Any]:
    """What ``last.pt``/``best.pt`` hold: weights, optimiser, schedule, RNG, data position and the state."""
    config, spe = trainer.config, trainer.data.steps_per_epoch
    return {
        "format": CHECKPOINT_FORMAT, "model": trainer.model.state_dict(), "optimizer": trainer.optimizer.state_dict(),
        "scheduler": trainer.scheduler.state_dict(), "rng": rng_state(), "step": state.step, "epoch": state.step // spe,
        "data_state": {"epoch": state.step // spe, "batch_in_epoch": state.step % spe, "steps_per_epoch": spe,
                       "num_train": trainer.data.num_train, "batch_size": config.batch_size, "seed": config.seed},
        "log_state": dict(state.sums), "metrics_offset": state.metrics_offset, "best": dict(state.best),
        "last_val": state.last_val, "last_train": state.last_train, "config": config.to_dict(),
        "world_size": trainer.ctx.world_size,
    }


def save(trainer: Trainer, state: TrainState, name: str) -> None:
    """Atomically write ``<out_dir>/<name>`` (rank 0), only if every parameter is finite."""
    if not all(bool(torch.isfinite(p).all()) for p in trainer.model.parameters()):
        raise NonFiniteLossError(
            f"parameters became non-finite after step {state.step}; {name} not written, "
            f"{trainer.out_dir / 'last.pt'} keeps the last good state (lower optim.lr?)", state.step, {})
    if trainer.is_main:
        ckpt = checkpoint_dict(trainer, state)
        atomic_write_bytes(trainer.out_dir / name, lambda fh: torch.save(ckpt, fh))


def restore(trainer: Trainer, ckpt: dict[str, Any]) -> TrainState:
    """Load model, optimiser, schedule and RNG from a checkpoint of the same data and batch; its state."""
    ds, config, data = ckpt["data_state"], trainer.config, trainer.data
    if ds["num_train"] != data.num_train or ds["batch_size"] != config.batch_size or ds["seed"] != config.seed:
        raise ValueError(
            f"cannot resume {trainer.out_dir / 'last.pt'}: it was trained with {ds['num_train']} images, batch_size "
            f"{ds['batch_size']}, seed {ds['seed']}; the config now gives {data.num_train}, "
            f"{config.batch_size}, {config.seed}")
    trainer.model.load_state_dict(ckpt["model"])
    trainer.optimizer.load_state_dict(ckpt["optimizer"])
    trainer.scheduler.load_state_dict(ckpt["scheduler"])
    trainer.scheduler.lr_lambdas[0].total_steps = data.total_steps  # epochs may have been extended
    set_rng_state(ckpt["rng"])
    return TrainState(int(ckpt["step"]), dict(ckpt["log_state"]), dict(ckpt["best"]), ckpt["last_val"],
                      ckpt["last_train"], int(ckpt["metrics_offset"]))


def finished_result(trainer: Trainer, state: TrainState) -> dict:
    """The result of a run that had already finished: its stored final scores, nothing rewritten."""
    scores_path = trainer.out_dir / "scores.json"
    if scores_path.is_file():
        return finish(trainer, state, json.loads(scores_path.read_text()).get("final"), write=False)
    return finish(trainer, state, state.last_val)


def finish(trainer: Trainer, state: TrainState, final_val: dict | None, write: bool = True) -> dict:
    """Write ``scores.json`` (and ``best.pt`` when no validation ran) and return ``fit``'s result."""
    epoch = state.step / trainer.data.steps_per_epoch
    val = final_val if final_val is not None else state.last_val
    if trainer.is_main and write:
        if state.best["step"] is None:  # no validation ran: the final weights are the best we know
            save(trainer, state, "best.pt")
        scores = {"step": state.step, "epoch": epoch, "final": val, "best": state.best, "config": trainer.config.to_dict()}
        atomic_write_text(trainer.out_dir / "scores.json", json.dumps(scores, indent=1))
    return {"step": state.step, "epoch": epoch, "train": state.last_train, "val": val, "best": dict(state.best),
            "out_dir": str(trainer.out_dir)}


__all__ = ["NonFiniteLossError", "TrainState", "Trainer", "fit", "make_trainer", "train_one_epoch", "train_step",
           "validate"]
