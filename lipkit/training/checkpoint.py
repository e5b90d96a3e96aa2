"""Persisting and restoring training state: atomic files, checkpoint reading, model weights, RNG states.

Files are written to ``.<name>.tmp<pid>`` next to the target and moved into place with
``os.replace``, so a reader (or a resumed run) never sees a half-written file;
``remove_temp_files`` drops the leftovers of a process killed while writing.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from lipkit.training.config import TrainConfig, build_model_from_config

CHECKPOINT_FORMAT = "lipkit-checkpoint-1"  # a training checkpoint: model, optimiser, RNG, data state
SHIPPED_FORMAT = "lipkit-shipped-1"  # a shipped model (checkpoints/): fp16 weights and the config


# ================================================================================================
# Atomic files


def atomic_write_bytes(path: Path, write: Any) -> None:
    """Call ``write(fh)`` on a temporary file, fsync it, then move it to ``path`` in one step."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as fh:
        write(fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, lambda fh: fh.write(text.encode()))


def remove_temp_files(folder: Path) -> None:
    """Delete the temporary files ``atomic_write_bytes`` leaves when its process is killed mid-write."""
    for stale in folder.glob(".*.tmp*"):
        stale.unlink(missing_ok=True)


# ================================================================================================
# Checkpoints and model weights


def _strip_module(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}


class CheckpointError(RuntimeError):
    """A checkpoint file that cannot be used (truncated, foreign, or not this model's); names the file."""


def load_checkpoint_file(path: str | Path, map_location: Any = "cpu") -> dict[str, Any]:
    """``torch.load`` (weights only) with errors naming the file for missing, truncated or foreign files."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # truncated or foreign files
        reason = str(exc).split(". ")[0].strip()  # torch's first sentence; the rest is advice about torch.save
        raise CheckpointError(f"checkpoint {path} cannot be read ({type(exc).__name__}: {reason}); "
                              "it may be truncated or not a lipkit/torch checkpoint") from None


def load_model_weights(model: nn.Module, path: str | Path) -> None:
    """Load model weights only (a lipkit checkpoint's ``model`` or a plain state dict), strictly."""
    ckpt = load_checkpoint_file(path)
    state = ckpt["model"] if isinstance(ckpt, dict) and "model" in ckpt else ckpt
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint {path} holds no state dict")
    try:
        model.load_state_dict(_strip_module(state), strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"checkpoint {path} does not fit the configured model: {exc}") from None


def train_image_height(path: str | Path) -> int | None:
    """The median height of the training images a shipped model records (None when it records none)."""
    ckpt = load_checkpoint_file(path)
    value = ckpt.get("train_image_height") if isinstance(ckpt, dict) else None
    return int(value) if value else None


def load_model_from_checkpoint(path: str | Path, device: torch.device | str = "cpu") -> tuple[nn.Module, TrainConfig]:
    """Rebuild the model a training checkpoint or a shipped model was trained with, load its weights (fp32), eval mode."""
    ckpt = load_checkpoint_file(path)
    if not isinstance(ckpt, dict) or ckpt.get("format") not in (CHECKPOINT_FORMAT, SHIPPED_FORMAT):
        raise CheckpointError(f"checkpoint {path} is not a lipkit checkpoint (no '{CHECKPOINT_FORMAT}' or "
                           f"'{SHIPPED_FORMAT}' format tag)")
    config = TrainConfig.from_dict(ckpt["config"])
    config.model.pretrained = None  # the checkpoint already holds the weights
    model = build_model_from_config(config)
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in ckpt["model"].items()}, strict=True)
    return model.to(device).eval(), config


def save_shipped(checkpoint: str | Path, path: Path, extra: dict[str, Any] | None = None) -> None:
    """Write ``path``: a training checkpoint's weights in fp16 with its config and step (atomically).

    ``extra`` adds plain entries a user of the file needs, e.g. ``train_image_height`` (what ``predict``
    resizes a photo to by default: the median height of the training images).
    """
    ckpt = load_checkpoint_file(checkpoint)
    state = {k: v.half() if v.is_floating_point() else v for k, v in ckpt["model"].items()}
    config = TrainConfig.from_dict(ckpt["config"]).to_dict()  # every current key, defaults where it predates one
    payload = {**(extra or {}), "format": SHIPPED_FORMAT, "model": state, "config": config, "step": int(ckpt["step"])}
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, lambda fh: torch.save(payload, fh))


# ================================================================================================
# RNG states


def rng_state() -> dict[str, Any]:
    """The python, numpy, torch (and initialised CUDA) RNG states, as ``weights_only`` loading accepts."""
    np_state = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": (np_state[0], torch.from_numpy(np_state[1].copy()), int(np_state[2]), int(np_state[3]), float(np_state[4])),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what ``rng_state`` captured."""
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


__all__ = [
    "CheckpointError", "train_image_height",
    "CHECKPOINT_FORMAT", "SHIPPED_FORMAT", "atomic_write_bytes", "atomic_write_text", "load_checkpoint_file", "load_model_from_checkpoint",
    "load_model_weights", "remove_temp_files", "rng_state", "save_shipped", "set_rng_state",
]
