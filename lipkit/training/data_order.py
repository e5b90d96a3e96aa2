"""Training data order and augmentation seeds: what makes ``fit`` repeatable and resumable.

Everything here is a pure function of integers. The order of an epoch is a ``randperm`` seeded from
``(seed, epoch)``; under DDP each rank takes its contiguous slice of every global batch. Item ``i``
of epoch ``e`` is augmented under python/numpy/torch RNGs seeded from ``(seed, e, i)``, so an image's
crop and flip do not depend on DataLoader workers, ranks or how training was interrupted.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch


def derive_seed(*parts: int) -> int:
    """A 32-bit seed that is a pure function of the integers given (numpy SeedSequence)."""
    return int(np.random.SeedSequence([int(p) & 0xFFFFFFFF for p in parts]).generate_state(1, np.uint32)[0])


def epoch_permutation(num_items: int, seed: int, epoch: int) -> torch.Tensor:
    """The training order of an epoch: a pure function of ``(seed, epoch)``."""
    g = torch.Generator().manual_seed(derive_seed(seed, 0, epoch))
    return torch.randperm(num_items, generator=g)


class EpochBatchSampler:
    """Batches ``[(epoch, index), ...]`` of one epoch, from batch ``start`` to ``stop``, rank's share."""

    def __init__(self, num_items: int, batch_size: int, seed: int, epoch: int, start: int = 0,
                 stop: int | None = None, rank: int = 0, world_size: int = 1) -> None:
        if batch_size % world_size:
            raise ValueError(f"batch_size={batch_size} must be divisible by the number of processes ({world_size})")
        self.num_items, self.batch_size, self.seed, self.epoch = num_items, batch_size, seed, epoch
        self.steps_per_epoch = num_items // batch_size
        self.start, self.stop = start, self.steps_per_epoch if stop is None else min(stop, self.steps_per_epoch)
        self.rank, self.world_size = rank, world_size

    def __len__(self) -> int:
        return max(0, self.stop - self.start)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        perm = epoch_permutation(self.num_items, self.seed, self.epoch).tolist()
        per = self.batch_size // self.world_size
        for b in range(self.start, self.stop):
            first = b * self.batch_size + self.rank * per
            yield [(self.epoch, i) for i in perm[first:first + per]]


class SeededRNG:
    """Seed python/numpy/torch RNGs for a block and restore their previous states afterwards."""

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def __enter__(self) -> None:
        self.state = (random.getstate(), np.random.get_state(), torch.get_rng_state())
        random.seed(self.seed)
        np.random.seed(self.seed)
        torch.default_generator.manual_seed(self.seed)

    def __exit__(self, *exc: Any) -> None:
        random.setstate(self.state[0])
        np.random.set_state(self.state[1])
        torch.set_rng_state(self.state[2])


class TrainItems(torch.utils.data.Dataset):
    """Training view of a dataset: item ``(epoch, i)`` is ``transform(dataset[i])`` under a fixed seed."""

    def __init__(self, dataset: Any, transform: Any, seed: int) -> None:
        self.dataset, self.transform, self.seed = dataset, transform, seed

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> dict[str, torch.Tensor]:
        epoch, index = key
        item = self.dataset[index]
        with SeededRNG(derive_seed(self.seed, 2, epoch, index)):
            item = self.transform(item)
        return {"image": item["image"], "label": item["label"]}


class FirstN:
    """The first ``n`` items of a dataset (``max_train_images``/``max_val_images``; all when ``n`` is None)."""

    def __init__(self, dataset: Any, n: int | None) -> None:
        self.dataset = dataset
        self.n = len(dataset) if n is None else min(len(dataset), int(n))

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> Any:
        if not 0 <= i < self.n:
            raise IndexError(i)
        return self.dataset[i]


__all__ = ["EpochBatchSampler", "FirstN", "SeededRNG", "TrainItems", "derive_seed", "epoch_permutation"]
