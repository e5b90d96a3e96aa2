"""DDP on CPU (gloo): 2 processes with half the batch each == 1 process with the full batch.

Equality needs (i) the same samples and augmentations: the data order is a function of
(seed, epoch) and each rank takes a contiguous half of every global batch; (ii) BatchNorm that does
not depend on the split: BN is frozen (``model.freeze_bn``), since torch has no SyncBatchNorm on CPU;
(iii) the same loss normalisation: every other training image is 70% 255 (plus crop padding), so
ranks hold different numbers of valid pixels, and ``fit`` rescales each rank's mean by its share of
the global valid pixels. Validation is sharded over ranks and the confusion matrices are summed.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

sys.path.insert(0, str(Path(__file__).parent))
from test_train import make_tiny_lip, tiny_config  # noqa: E402

pytestmark = pytest.mark.skipif(not dist.is_available(), reason="torch.distributed is not available")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _assert_near(x: torch.Tensor, ref: torch.Tensor, name: str) -> None:
    """Equal up to float32 summation-order rounding: max difference within 1e-3 of the tensor's scale."""
    x, ref = x.double(), ref.double()
    scale = float(ref.abs().max())
    diff = float((x - ref).abs().max())
    assert diff <= 1e-3 * scale + 1e-8, f"{name}: max difference {diff:.3g} at scale {scale:.3g}"


def _worker(rank: int, world: int, port: int, config_dict: dict) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    from lipkit.training import fit

    fit(config_dict)


def test_two_processes_half_batch_equal_one_process_full_batch(tmp_path: Path) -> None:
    root = make_tiny_lip(tmp_path / "data", n_train=8, n_val=3, ignore_top=0.7)
    over = dict(iterations=4, batch_size=4, model__freeze_bn=True, checkpoint_every=0, data__max_val_images=3,
                optim__lr=0.003, log_every=2)
    single = tiny_config(root, tmp_path / "single", **over)
    from lipkit.training import fit

    fit(single)
    double = tiny_config(root, tmp_path / "ddp", **over)
    mp.spawn(_worker, args=(2, _free_port(), double.to_dict()), nprocs=2, join=True)

    a = torch.load(tmp_path / "single" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "ddp" / "last.pt", weights_only=True)
    assert b["world_size"] == 2 and b["step"] == a["step"] == 4
    for k, va in a["model"].items():
        _assert_near(b["model"][k], va, k)
    # momentum buffers accumulate the (rank-averaged) gradients: equal, and not zero (training happened)
    buffers_a = [s["momentum_buffer"] for s in a["optimizer"]["state"].values()]
    buffers_b = [s["momentum_buffer"] for s in b["optimizer"]["state"].values()]
    assert len(buffers_a) == len(buffers_b) > 0
    for ma, mb in zip(buffers_a, buffers_b):
        _assert_near(mb, ma, "momentum buffer")
    assert sum(float(m.abs().sum()) for m in buffers_a) > 0
    # rank 0 alone writes; the validation merged the shards (2 + 1 images)
    val = [json.loads(x) for x in (tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines() if '"val"' in x]
    assert val and all(v["num_images"] == 3 for v in val)
    ref = [json.loads(x) for x in (tmp_path / "single" / "metrics.jsonl").read_text().splitlines() if '"val"' in x]
    assert [v["step"] for v in val] == [v["step"] for v in ref]
    for v, r in zip(val, ref):
        assert abs(v["pixel_accuracy"] - r["pixel_accuracy"]) < 1e-3
    train = [json.loads(x) for x in (tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines() if '"train"' in x]
    assert [t["step"] for t in train] == [2, 4]
