"""Training: the config, the loop (``fit``), data order, checkpoints and the process group.

``config``       TrainConfig and its typed sections (file round trips, ``--set`` overrides, checks)
``build``        data, model (BatchNorm policy), optimiser, schedule and loss built from a config
``loop``         ``fit`` -> ``train_one_epoch`` -> ``train_step``; validation, logging, checkpoints
``data_order``   epoch permutations and per-item augmentation seeds (what makes resume exact)
``checkpoint``   atomic files, checkpoint reading, shipped fp16 models, RNG states
``distributed``  devices, the torchrun process group and the cross-rank reductions
"""

from lipkit.training.build import LRFactor
from lipkit.training.checkpoint import (CHECKPOINT_FORMAT, SHIPPED_FORMAT, CheckpointError, atomic_write_bytes, atomic_write_text,
                                        load_checkpoint_file, load_model_from_checkpoint, load_model_weights,
                                        train_image_height,
                                        save_shipped)
from lipkit.training.config import (DataConfig, EvalConfig, ModelConfig, OptimConfig, SSLConfig, TrainConfig,
                                    build_model_from_config)
from lipkit.training.data_order import EpochBatchSampler, FirstN, TrainItems, derive_seed, epoch_permutation
from lipkit.training.distributed import resolve_device
from lipkit.training.loop import NonFiniteLossError, TrainState, fit

__all__ = [
    "CHECKPOINT_FORMAT", "CheckpointError", "DataConfig", "EpochBatchSampler", "EvalConfig", "FirstN", "LRFactor", "ModelConfig",
    "NonFiniteLossError", "OptimConfig", "SHIPPED_FORMAT", "SSLConfig", "TrainConfig", "TrainItems", "TrainState",
    "atomic_write_bytes", "atomic_write_text", "build_model_from_config", "derive_seed", "epoch_permutation", "fit",
    "load_checkpoint_file", "load_model_from_checkpoint", "load_model_weights", "resolve_device", "save_shipped",
    "train_image_height",
]
