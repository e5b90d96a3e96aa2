"""Devices and DDP: joining the torchrun process group, rank/world size, and the cross-rank reductions.

``setup_distributed`` joins the group the environment describes (``WORLD_SIZE``, ``RANK``,
``LOCAL_RANK``, as torchrun or a test sets them) and returns a ``DistContext``; one process
without a group gets the single-rank context, and every method then works without communicating.
``loss_scale`` is what makes the DDP-averaged gradient equal to the single-process one: each
rank's loss (a mean over its own valid pixels) is multiplied by ``W * valid_rank / valid_total``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` -> cuda when available, else cpu."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device={name!r} but CUDA is not available; use device=auto or cpu")
    return device


@dataclass
class DistContext:
    """This process's place in the group; ``owns_group`` when ``setup_distributed`` created the group."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    owns_group: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    def comm_device(self, device: torch.device) -> torch.device:
        """Where tensors to all-reduce live: ``device`` under nccl, the CPU under gloo."""
        return device if dist.get_backend() == "nccl" else torch.device("cpu")

    def reduce_mean(self, values: list[float], device: torch.device) -> list[float]:
        """The mean of ``values`` over ranks (``values`` itself with one process)."""
        if not self.active:
            return values
        t = torch.tensor(values, dtype=torch.float64, device=self.comm_device(device))
        dist.all_reduce(t)
        return (t / self.world_size).tolist()

    def loss_scale(self, valid: torch.Tensor, finite: bool, device: torch.device) -> tuple[float, bool]:
        """``(W * valid / sum of valid over ranks, every rank's loss finite)`` in one all-reduce.

        ``valid`` is this rank's count of non-ignored pixels (a float64 scalar tensor); with one
        process the answer is ``(1.0, finite)``.
        """
        if not self.active:
            return 1.0, finite
        t = torch.stack([valid, torch.tensor(0.0 if finite else 1.0, dtype=torch.float64, device=valid.device)])
        t = t.to(self.comm_device(device))
        dist.all_reduce(t)
        total_valid, bad_ranks = float(t[0]), float(t[1])
        scale = float(valid) * self.world_size / total_valid if total_valid > 0 else 1.0
        return scale, bad_ranks == 0

    def close(self) -> None:
        """Destroy the process group if this context created it."""
        if self.owns_group:
            dist.destroy_process_group()


def setup_distributed(device_name: str = "auto") -> tuple[DistContext, torch.device]:
    """Join the process group torchrun (or a test) describes in the environment, if any.

    Returns the context and the device to train on (``cuda:LOCAL_RANK`` for ``auto``/``cuda`` under DDP).
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    device = resolve_device(device_name)
    if world <= 1 and not (dist.is_available() and dist.is_initialized()):
        return DistContext(), device
    owns = False
    local_rank = int(os.environ.get("LOCAL_RANK", os.environ.get("RANK", "0")))
    if device.type == "cuda" and device_name in ("auto", "cuda"):
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        owns = True
    return DistContext(dist.get_rank(), dist.get_world_size(), local_rank, owns), device


__all__ = ["DistContext", "resolve_device", "setup_distributed"]
