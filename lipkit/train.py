"""Training: ``fit``, the training loop with exact resume and DDP, and the ``train`` CLI.

The config lives in ``lipkit.train_config``, checkpoint files and RNG states in ``lipkit.checkpoint``,
the process group in ``lipkit.distributed``, data order and augmentation seeds in ``lipkit.train_data``;
their public names are re-exported here.

Design (what makes resume exact and multi-process training equal to one process):

- **Data order** is a pure function of ``(seed, epoch)``: a ``randperm`` of the training items cut
  into global batches of ``batch_size`` (last partial batch dropped). Under DDP rank ``r`` of ``W``
  takes the ``r``-th contiguous slice of each global batch (``batch_size / W`` items), so the
  union over ranks is exactly the single-process batch.
- **Augmentation** of item ``i`` in epoch ``e`` runs under RNGs (python, numpy, torch) seeded from
  ``(seed, e, i)`` and restored afterwards, so it does not depend on workers, ranks or history.
- **Model randomness** (dropout) uses the global torch RNG reseeded from ``(seed, step, rank)``
  before every step.
- A checkpoint stores the step; resuming rebuilds the epoch's order and skips the batches already
  done, restores model/optimiser/scheduler (and, for completeness, the RNG states), and truncates
  ``metrics.jsonl`` to its length at that checkpoint, so the log continues with the same lines.
- **Checkpoints** are written to a temporary file and moved into place with ``os.replace``; a
  checkpoint is only written when every parameter is finite, and a non-finite loss stops training
  with ``NonFiniteLossError`` before the update, so ``last.pt`` always holds the last good state.
- **Loss normalisation under DDP**: each rank's loss is a mean over its own valid (non-255)
  pixels; DDP averages gradients over ranks. Each rank's loss is multiplied by
  ``W * valid_rank / valid_total`` (one scalar all-reduce), which makes the averaged gradient that
  of the mean over all valid pixels of the global batch, i.e. the single-process gradient, with
  ignore pixels anywhere.
- **BatchNorm**: ``model.freeze_bn`` (default: on for ImageNet-initialised backbones, as DeepLab
  does with small batches) keeps BN layers in eval mode with their affine parameters fixed, which
  also makes per-rank batches equivalent to the full batch. With trainable BN under DDP on CUDA the
  layers become ``SyncBatchNorm``; on CPU (gloo) torch has no SyncBatchNorm, so per-rank batch
  statistics are used and a warning says so.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: F401  (kept for users patching the loss)
from torch import nn
from tqdm.auto import tqdm

from lipkit import paths
from lipkit.checkpoint import (
    CHECKPOINT_FORMAT,
    atomic_write_bytes,
    atomic_write_text,
    load_checkpoint_file,
    load_model_from_checkpoint,
    load_model_weights,
    remove_temp_files,
    rng_state,
    set_rng_state,
)
from lipkit.distributed import DistContext, resolve_device, setup_distributed
from lipkit.evaluate import accumulate, summarise
from lipkit.labels import get_label_set
from lipkit.train_config import (
    SCHEDULES,
    SSL_MODES,
    DataConfig,
    EvalConfig,
    ModelConfig,
    OptimConfig,
    SSLConfig,
    TrainConfig,
    build_model_from_config,
)
from lipkit.train_data import EpochBatchSampler, Subset, TrainItems, derive_seed, epoch_permutation


# ================================================================================================
# Helpers: paths, schedules, BatchNorm (data order and seeds: lipkit.train_data)


def _resolve_path(text: str) -> Path:
    path = Path(text).expanduser()
    return path if path.is_absolute() else paths.REPO_ROOT / path


class LRFactor:
    """Multiplier of the base learning rates at a step.

    constant: 1; poly: ``(1 - step/total)^power``; onecycle: linear from 1/25 to 1 over the first
    ``warmup`` share of the steps, then half a cosine down to 0 at ``total``.
    """

    def __init__(self, schedule: str, total_steps: int, power: float = 0.9, warmup: float = 0.1) -> None:
        self.schedule, self.total_steps, self.power, self.warmup = schedule, total_steps, power, warmup

    def __call__(self, step: int) -> float:
        if self.schedule == "constant":
            return 1.0
        if self.schedule == "onecycle":
            ramp = self.warmup * self.total_steps
            if step < ramp:
                return 0.04 + 0.96 * step / ramp
            return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (step - ramp) / max(self.total_steps - ramp, 1e-9))))
        return max(0.0, 1.0 - step / self.total_steps) ** self.power


class NonFiniteLossError(FloatingPointError):
    """Training stopped on a non-finite loss (or parameters); ``last.pt`` holds the last good state."""

    def __init__(self, message: str, step: int, parts: dict[str, float]) -> None:
        super().__init__(message)
        self.step, self.parts = step, parts


def _set_bn_eval(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()


def _freeze_bn_params(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            for p in m.parameters():
                p.requires_grad_(False)


# ================================================================================================
# fit


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
        return _Trainer(config, ctx, device).run(resume, stop_after)
    finally:
        ctx.close()


class _Trainer:
    def __init__(self, config: TrainConfig, ctx: DistContext, device: torch.device) -> None:
        self.config, self.ctx, self.device = config, ctx, device
        if not config.out_dir:
            raise ValueError("out_dir is empty: set out_dir in the config (or --set out_dir=runs/NAME)")
        self.out_dir = _resolve_path(config.out_dir)
        self.label_set = get_label_set(config.data.label_set)
        if config.threads:
            torch.set_num_threads(config.threads)
        if config.batch_size % ctx.world_size:
            raise ValueError(f"batch_size={config.batch_size} must be divisible by the number of processes ({ctx.world_size})")
        self.amp = config.bf16 and device.type == "cuda"
        self.channels_last = config.channels_last and device.type == "cuda"

    # ---- set-up ------------------------------------------------------------------------------
    def _datasets(self) -> None:
        from lipkit.data import LIPDataset
        from lipkit.data.transforms import train_transform

        c = self.config.data
        root = _resolve_path(c.root) if c.root else paths.synthlip_root()
        train = Subset(LIPDataset(root, c.train_split, label_set=self.label_set), c.max_train_images)
        transform = train_transform(self.label_set, crop_size=c.crop_size, scale_range=tuple(c.scale_range), flip=c.flip)
        self.train_items = TrainItems(train, transform, self.config.seed)
        self.num_train = len(train)
        self.steps_per_epoch = self.num_train // self.config.batch_size
        if self.steps_per_epoch == 0:
            raise ValueError(f"{root} split {c.train_split!r} has {self.num_train} images (after max_train_images), "
                             f"fewer than batch_size={self.config.batch_size}")
        self.total_steps = self.config.iterations or self.config.epochs * self.steps_per_epoch
        self.val = Subset(LIPDataset(root, c.val_split, label_set=self.label_set), c.max_val_images) if c.val_split else None

    def _model(self) -> None:
        config = self.config
        torch.manual_seed(derive_seed(config.seed, 3))  # the same initial weights on every run and rank
        model = build_model_from_config(config)
        if config.init_checkpoint:
            load_model_weights(model, _resolve_path(config.init_checkpoint))
        if config.bn_frozen:
            _freeze_bn_params(model)
        elif self.ctx.active:
            if self.device.type == "cuda":
                model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
            elif any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()):
                warnings.warn("DDP on CPU with trainable BatchNorm: torch has no CPU SyncBatchNorm, so each "
                              "process normalises with its own batch statistics (set model.freeze_bn=true to avoid)")
        model.to(self.device)
        if self.channels_last:
            model.to(memory_format=torch.channels_last)
        self.model = model
        cls_ids = {id(p) for p in model.classifier_parameters()}
        base = [p for p in model.parameters() if p.requires_grad and id(p) not in cls_ids]
        head = [p for p in model.classifier_parameters() if p.requires_grad]
        o = config.optim
        groups = [{"params": base, "lr": o.lr}, {"params": head, "lr": o.lr * o.classifier_lr_mult}]
        if o.name == "adamw":
            self.optimizer: torch.optim.Optimizer = torch.optim.AdamW(groups, lr=o.lr, weight_decay=o.weight_decay)
        else:
            self.optimizer = torch.optim.SGD(groups, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, LRFactor(o.schedule, self.total_steps, o.poly_power, o.warmup))
        if self.ctx.active:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.ddp = nn.parallel.DistributedDataParallel(model, device_ids=ids)
        else:
            self.ddp = model
        kwargs: dict[str, Any] = {"mode": config.ssl.mode, "sigma": config.ssl.sigma,
                                  "ignore_index": self.label_set.ignore_index,
                                  "normalize_weights": config.ssl.normalize_weights, "ce_on": config.ssl.ce_on}
        groups = config.ssl.groups or _joint_groups(self.label_set)
        if groups:
            kwargs["groups"] = groups
        if config.ssl.weight is not None:
            kwargs["soft_weight"] = config.ssl.weight
        import lipkit.ssl

        self.loss_fn = lipkit.ssl.StructureSensitiveLoss(**kwargs)

    # ---- checkpoints -------------------------------------------------------------------------
    def _checkpoint(self) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "rng": rng_state(),
            "step": self.step,
            "epoch": self.step // self.steps_per_epoch,
            "data_state": {"epoch": self.step // self.steps_per_epoch, "batch_in_epoch": self.step % self.steps_per_epoch,
                           "steps_per_epoch": self.steps_per_epoch, "num_train": self.num_train,
                           "batch_size": self.config.batch_size, "seed": self.config.seed},
            "log_state": dict(self.acc),
            "metrics_offset": self.metrics_offset,
            "best": dict(self.best),
            "last_val": self.last_val,
            "last_train": self.last_train,
            "config": self.config.to_dict(),
            "world_size": self.ctx.world_size,
        }

    def _params_finite(self) -> bool:
        return all(bool(torch.isfinite(p).all()) for p in self.model.parameters())

    def _save(self, name: str) -> None:
        """Atomically write ``<out_dir>/<name>`` (rank 0), only if every parameter is finite."""
        if not self._params_finite():
            raise NonFiniteLossError(
                f"parameters became non-finite after step {self.step}; {name} not written, "
                f"{self.out_dir / 'last.pt'} keeps the last good state (lower optim.lr?)", self.step, {})
        if self.ctx.is_main:
            ckpt = self._checkpoint()
            atomic_write_bytes(self.out_dir / name, lambda fh: torch.save(ckpt, fh))

    def _restore(self, ckpt: dict[str, Any]) -> None:
        ds = ckpt["data_state"]
        if ds["num_train"] != self.num_train or ds["batch_size"] != self.config.batch_size or ds["seed"] != self.config.seed:
            raise ValueError(
                f"cannot resume {self.out_dir / 'last.pt'}: it was trained with {ds['num_train']} images, batch_size "
                f"{ds['batch_size']}, seed {ds['seed']}; the config now gives {self.num_train}, "
                f"{self.config.batch_size}, {self.config.seed}")
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        self.scheduler.lr_lambdas[0].total_steps = self.total_steps  # epochs may have been extended
        set_rng_state(ckpt["rng"])
        self.step = int(ckpt["step"])
        self.acc = dict(ckpt["log_state"])
        self.best = dict(ckpt["best"])
        self.last_val = ckpt["last_val"]
        self.last_train = ckpt["last_train"]
        self.metrics_offset = int(ckpt["metrics_offset"])

    # ---- logging -----------------------------------------------------------------------------
    def _log(self, record: dict[str, Any]) -> None:
        if not self.ctx.is_main:
            return
        line = (json.dumps(record) + "\n").encode()
        with open(self.out_dir / "metrics.jsonl", "ab") as fh:
            fh.write(line)
            fh.flush()
        self.metrics_offset += len(line)

    # ---- validation --------------------------------------------------------------------------
    def _validate(self) -> dict[str, Any]:
        c = self.config.eval
        indices = range(self.ctx.rank, len(self.val), self.ctx.world_size)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
            state = accumulate(self.model, self.val, indices, label_set=self.label_set, scales=c.scales,
                               flip=c.flip, device=self.device, joint_grid=c.joint_grid, joint_sigma=self.config.ssl.sigma,
                               progress=self.config.progress and self.ctx.is_main)
        if self.ctx.active:
            state.all_reduce()
        return summarise(state, self.label_set)

    # ---- the loop ----------------------------------------------------------------------------
    def _train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        x = batch["image"].to(self.device, non_blocking=True)
        y = batch["label"].to(self.device, non_blocking=True).long()
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        torch.manual_seed(derive_seed(self.config.seed, 1, self.step, self.ctx.rank))
        self.ddp.train()
        if self.config.bn_frozen:
            _set_bn_eval(self.ddp)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
            out = self.ddp(x)
        outputs = [out["out"]] + list(out.get("scales", ())) if isinstance(out, dict) else [out]
        results = [self.loss_fn(o.float(), y) for o in outputs]
        loss = sum(r.loss for r in results)
        parts = {"loss": float(loss.detach()), "ce": float(sum(float(r.ce) for r in results)),
                 "joint_error": float(results[0].joint_error)}
        if len(results) > 1:
            parts.update({f"loss_{i}": float(r.loss.detach()) for i, r in enumerate(results)})
        scale = 1.0
        finite = math.isfinite(parts["loss"])
        if self.ctx.active:  # DDP: rescale to the global batch's valid-pixel mean; stop if any rank is non-finite
            valid = (self.loss_fn.ce_target(y, outputs[0].shape[-2:]) != self.label_set.ignore_index).sum().double()
            scale, finite = self.ctx.loss_scale(valid, finite, self.device)
        if not finite:
            detail = ", ".join(f"{k}={v:.6g}" for k, v in parts.items())
            raise NonFiniteLossError(
                f"non-finite loss at step {self.step + 1} (epoch {self.step // self.steps_per_epoch}): {detail}; "
                f"training stopped before the update; {self.out_dir / 'last.pt'} holds the last good checkpoint "
                f"(lower optim.lr, check the data)", self.step + 1, parts)
        self.optimizer.zero_grad(set_to_none=True)
        (loss * scale).backward()
        self.optimizer.step()
        self.scheduler.step()
        return parts

    def run(self, resume: bool, stop_after: int | None = None) -> dict:
        config, ctx = self.config, self.ctx
        self._datasets()
        self._model()
        if ctx.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            remove_temp_files(self.out_dir)  # left by a process killed while writing
        self.step, self.metrics_offset = 0, 0
        self.acc: dict[str, float] = {"loss": 0.0, "ce": 0.0, "joint_error": 0.0, "n": 0}
        self.best: dict[str, Any] = {"mean_iou": None, "step": None, "epoch": None}
        self.last_val: dict[str, Any] | None = None
        self.last_train: dict[str, Any] | None = None
        last = self.out_dir / "last.pt"
        if resume and last.is_file():
            self._restore(load_checkpoint_file(last))
        if ctx.is_main:
            atomic_write_text(self.out_dir / "config.yaml", config.to_yaml())
            log = self.out_dir / "metrics.jsonl"
            with open(log, "ab") as fh:  # drop lines written after the checkpoint we resume from
                fh.truncate(self.metrics_offset)
        if self.step >= self.total_steps:  # a finished run: report its scores, rewrite nothing
            scores_path = self.out_dir / "scores.json"
            if scores_path.is_file():
                final = json.loads(scores_path.read_text()).get("final")
                return self._finish(final_val=final, write=False)
            return self._finish(final_val=self.last_val)

        pbar = tqdm(total=self.total_steps, initial=self.step, desc="train", disable=not (config.progress and ctx.is_main))
        t0, images0 = time.perf_counter(), self.step * config.batch_size
        final_val = None
        try:
            while self.step < self.total_steps:
                epoch, start = divmod(self.step, self.steps_per_epoch)
                stop = min(self.steps_per_epoch, start + self.total_steps - self.step)
                sampler = EpochBatchSampler(self.num_train, config.batch_size, config.seed, epoch, start, stop,
                                            ctx.rank, ctx.world_size)
                loader = torch.utils.data.DataLoader(
                    self.train_items, batch_sampler=sampler, num_workers=config.data.workers,
                    pin_memory=self.device.type == "cuda", generator=torch.Generator().manual_seed(0),
                    persistent_workers=False)
                for batch in loader:
                    parts = self._train_step(batch)
                    self.step += 1
                    for k in ("loss", "ce", "joint_error"):
                        self.acc[k] += parts[k]
                    self.acc["n"] += 1
                    pbar.update(1)
                    end_of_epoch = self.step % self.steps_per_epoch == 0
                    done = self.step >= self.total_steps
                    if self.step % config.log_every == 0 or done:
                        n = self.acc["n"]
                        means = self.ctx.reduce_mean([self.acc[k] / n for k in ("loss", "ce", "joint_error")], self.device)
                        elapsed = time.perf_counter() - t0
                        record = {"kind": "train", "step": self.step, "epoch": self.step / self.steps_per_epoch,
                                  "lr": self.optimizer.param_groups[0]["lr"], "loss": means[0], "ce": means[1],
                                  "joint_error": means[2], "images": self.step * config.batch_size,
                                  "img_per_s": (self.step * config.batch_size - images0) / max(elapsed, 1e-9),
                                  "elapsed_s": elapsed}
                        self._log(record)
                        self.last_train = record
                        pbar.set_postfix(loss=f"{means[0]:.4f}")
                        self.acc = {"loss": 0.0, "ce": 0.0, "joint_error": 0.0, "n": 0}
                    if end_of_epoch or done:
                        ep = math.ceil(self.step / self.steps_per_epoch)
                        if self.val is not None and (done or (config.eval.every and ep % config.eval.every == 0)):
                            scores = self._validate()
                            self._on_validation(scores, ep)
                            if done:
                                final_val = scores
                    if end_of_epoch or done or (config.checkpoint_every and self.step % config.checkpoint_every == 0):
                        self._save("last.pt")
                    if done:
                        break
                    if stop_after is not None and self.step >= stop_after:
                        return self._finish(final_val=None, write=False)
        finally:
            pbar.close()
        return self._finish(final_val=final_val)

    def _on_validation(self, scores: dict[str, Any], epoch: int) -> None:
        record = {"kind": "val", "step": self.step, "epoch": epoch,
                  **{k: scores[k] for k in ("pixel_accuracy", "mean_accuracy", "mean_iou", "frequency_weighted_iou")},
                  "mean_iou_absent_zero": scores["absent_zero"]["mean_iou"], "joint_error": scores["joint_error"],
                  "left_right_confusion": float(np.nanmean([v for v in scores["left_right_confusion"].values() if v is not None]))
                  if any(v is not None for v in scores["left_right_confusion"].values()) else None,
                  "num_images": scores["num_images"]}
        self._log(record)
        self.last_val = {k: v for k, v in scores.items() if k != "confusion_matrix"} | {"step": self.step, "epoch": epoch}
        miou = scores["mean_iou"]
        miou = -math.inf if miou is None or not math.isfinite(miou) else miou
        best = -math.inf if self.best["mean_iou"] is None else self.best["mean_iou"]
        if miou > best or self.best["step"] is None:
            self.best = {"mean_iou": None if miou == -math.inf else miou, "step": self.step, "epoch": epoch}
            self._save("best.pt")

    def _finish(self, final_val: dict | None, write: bool = True) -> dict:
        if self.ctx.is_main and write:
            if self.best["step"] is None:  # no validation ran: the final weights are the best we know
                self._save("best.pt")
            val = final_val if final_val is not None else self.last_val
            scores = {"step": self.step, "epoch": self.step / self.steps_per_epoch, "final": val, "best": self.best,
                      "config": self.config.to_dict()}
            atomic_write_text(self.out_dir / "scores.json", json.dumps(scores, indent=1))
        return {"step": self.step, "epoch": self.step / self.steps_per_epoch, "train": self.last_train,
                "val": final_val if final_val is not None else self.last_val, "best": dict(self.best),
                "out_dir": str(self.out_dir)}


def _joint_groups(label_set: Any) -> Any:
    from lipkit.evaluate import joint_groups_for

    try:
        return joint_groups_for(label_set)
    except AttributeError:
        return None


# ================================================================================================
# CLI


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``python -m lipkit train`` (also under ``torchrun --nproc_per_node N -m lipkit train``)."""
    parser.add_argument("--config", default=None, help="a YAML or JSON TrainConfig (see configs/)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set optim.lr=0.001 --set data.root=data/synthlip")
    parser.add_argument("--resume", action="store_true", help="continue from <out_dir>/last.pt if it exists")
    parser.add_argument("--print-config", action="store_true", help="print the resolved config and exit")


def run(args: argparse.Namespace) -> int:
    """Run ``fit`` from the CLI; exit 1 with the message on a config error or a non-finite loss."""
    try:
        config = TrainConfig.from_file(args.config) if args.config else TrainConfig()
        config = config.with_overrides(args.overrides)
    except (ValueError, FileNotFoundError) as exc:
        print(f"train: {exc}")
        return 2
    if args.print_config:
        print(config.to_yaml())
        return 0
    try:
        result = fit(config, resume=args.resume)
    except NonFiniteLossError as exc:
        print(f"train: {exc}")
        return 1
    if int(os.environ.get("RANK", "0")) == 0:
        val = result["val"] or {}
        print(f"done: step {result['step']}, val mIoU {val.get('mean_iou')}, best {result['best']}, out {result['out_dir']}")
    return 0


__all__ = [
    "DataConfig", "EpochBatchSampler", "EvalConfig", "LRFactor", "ModelConfig", "NonFiniteLossError", "OptimConfig",
    "SSLConfig", "TrainConfig", "TrainItems", "derive_seed", "epoch_permutation", "fit", "load_model_from_checkpoint",
    "load_model_weights", "resolve_device", "add_arguments", "run",
    # moved to lipkit.train_config / lipkit.checkpoint / lipkit.train_data, re-exported for existing imports
    "CHECKPOINT_FORMAT", "SCHEDULES", "SSL_MODES", "build_model_from_config",
]
