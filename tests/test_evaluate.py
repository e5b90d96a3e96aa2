"""predict (original size, flip with mirror swap, multi-scale) and evaluate (scores, joint error), CLIs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from lipkit.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from lipkit.evaluate import evaluate, predict_logits
from lipkit.labels import LIP

K = LIP.num_classes
L_ARM, R_ARM = LIP.index("Left-arm"), LIP.index("Right-arm")


class PositionModel(nn.Module):
    """Ignores the pixels: 'Left-arm' on the image's left half, 'Right-arm' on its right half.

    The mirror of such a scene has a left arm on the right half, so a correct flip test (flip back
    AND swap the mirror channels) reproduces the plain logits exactly.
    """

    def forward(self, x: torch.Tensor) -> dict:
        n, _, h, w = x.shape
        out = torch.zeros(n, K, h, w)
        half = w // 2
        out[:, L_ARM, :, :half] = 1.0
        out[:, R_ARM, :, w - half:] = 1.0
        return {"out": out}


class RedToLeftArm(nn.Module):
    """Content-dependent and not mirror-symmetric: Left-arm score = red channel, nothing else."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(x.shape[0], K, *x.shape[-2:])
        out[:, L_ARM] = x[:, 0]
        return out


class StridedPointwise(nn.Module):
    """A stride-8 model (average pool + 1x1 conv), logits on a ceil(H/8) grid."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, K, 1)

    def forward(self, x: torch.Tensor) -> dict:
        return {"out": self.conv(nn.functional.avg_pool2d(x, 8, ceil_mode=True))}


class LabelReader(nn.Module):
    """A perfect model for images whose red value is 12 * label id: one-hot logits at full size."""

    def forward(self, x: torch.Tensor) -> dict:
        red = (x[:, 0] * IMAGENET_STD[0] + IMAGENET_MEAN[0]) * 255.0
        ids = torch.round(red / 12.0).long().clamp(0, K - 1)
        return {"out": nn.functional.one_hot(ids, K).permute(0, 3, 1, 2).float() * 5.0}


def test_flip_of_position_model_equals_plain_logits() -> None:
    x = torch.randn(2, 3, 9, 14)
    model = PositionModel()
    plain = predict_logits(model, x)
    flipped = predict_logits(model, x, flip=True)
    assert torch.equal(flipped, plain)
    # Sanity: without the channel swap the scene would not be reproduced (the test can fail).
    no_swap = (plain + model(x.flip(-1))["out"].flip(-1)) / 2
    assert not torch.equal(no_swap, plain)


def test_flip_swaps_mirror_channels_by_hand() -> None:
    x = torch.randn(3, 6, 7)
    out = predict_logits(RedToLeftArm(), x, flip=True)
    # Mirror: Left-arm score = mirrored red; mirrored back -> red at the original pixels; that score
    # is for what the mirror calls "left arm", i.e. the original's right arm. Average with the plain pass.
    expected = torch.zeros(K, 6, 7)
    expected[L_ARM] = x[0] / 2
    expected[R_ARM] = x[0] / 2
    torch.testing.assert_close(out, expected)


@pytest.mark.parametrize("shape", [(3, 37, 53), (2, 3, 37, 53), (1, 3, 8, 9)])
@pytest.mark.parametrize("scales, flip", [((1.0,), False), ((0.75, 1.0, 1.25), True)])
def test_output_at_original_size(shape: tuple, scales: tuple, flip: bool) -> None:
    x = torch.randn(*shape)
    out = predict_logits(StridedPointwise(), x, scales=scales, flip=flip)
    assert out.shape == (*shape[:-3], K, *shape[-2:])
    assert torch.isfinite(out).all()


def test_multiscale_of_pointwise_model_on_constant_image() -> None:
    # A constant image stays constant under bilinear resizing, so every scale gives W.c + b everywhere.
    conv = nn.Conv2d(3, K, 1)
    colour = torch.tensor([0.3, -1.2, 0.7])
    x = colour.view(3, 1, 1).expand(3, 11, 13).clone()
    out = predict_logits(conv, x, scales=(0.5, 1.0, 1.5), flip=False)
    expected = (conv.weight[:, :, 0, 0] @ colour + conv.bias).detach()
    torch.testing.assert_close(out, expected.view(K, 1, 1).expand(K, 11, 13))


def test_predict_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="scales"):
        predict_logits(PositionModel(), torch.zeros(3, 4, 4), scales=(0.0,))
    with pytest.raises(ValueError, match="image must be"):
        predict_logits(PositionModel(), torch.zeros(4, 4))


def _encoded_items(rng: np.random.Generator, n: int) -> list[dict]:
    """Items of different sizes whose image encodes the label (red = 12 * id), some 255 pixels."""
    items = []
    for i in range(n):
        h, w = 20 + 3 * i, 17 + 5 * i
        label = np.zeros((h, w), np.uint8)
        label[2:10, 3:9] = 13  # face
        label[10:, 3:9] = 5  # upper clothes
        label[10:, 9:12] = L_ARM
        label[10:, 0:3] = R_ARM
        label[0, :] = 255
        image = np.zeros((h, w, 3), np.uint8)
        image[..., 0] = np.where(label == 255, 0, label * 12)
        items.append({"image": image, "label": label, "id": f"im{i}"})
    return items


def test_evaluate_perfect_model() -> None:
    items = _encoded_items(np.random.default_rng(0), 3)
    scores = evaluate(LabelReader(), items, LIP, progress=False)
    assert scores["num_images"] == 3
    assert scores["pixel_accuracy"] == 1.0 and scores["mean_iou"] == 1.0 and scores["mean_accuracy"] == 1.0
    present = {0, 13, 5, L_ARM, R_ARM}
    assert scores["absent_zero"]["mean_iou"] == pytest.approx(len(present) / K)
    assert scores["joint_error"] == 0.0
    assert scores["left_right_confusion"]["Left-arm->Right-arm"] == 0.0
    assert scores["left_right_confusion"]["Left-leg->Right-leg"] is None  # no legs in the ground truth
    matrix = np.array(scores["confusion_matrix"])
    expected_pixels = sum(int((it["label"] != 255).sum()) for it in items)
    assert matrix.sum() == expected_pixels and np.count_nonzero(matrix - np.diag(np.diag(matrix))) == 0
    assert scores["iou"]["Hat"] is None and scores["iou"]["Face"] == 1.0


def test_evaluate_swapped_arms_by_hand() -> None:
    """A model that swaps left and right arms: hand-computed accuracy, confusion, and joint error > 0."""
    items = _encoded_items(np.random.default_rng(0), 2)

    class Swapper(LabelReader):
        def forward(self, x: torch.Tensor) -> dict:
            return {"out": super().forward(x)["out"][:, list(LIP.flip_permutation)]}

    scores = evaluate(Swapper(), items, LIP, progress=False, max_images=2)
    valid = sum(int((it["label"] != 255).sum()) for it in items)
    arms = sum(int(np.isin(it["label"], [L_ARM, R_ARM]).sum()) for it in items)
    assert scores["pixel_accuracy"] == pytest.approx((valid - arms) / valid)
    assert scores["iou"]["Left-arm"] == 0.0 and scores["iou"]["Right-arm"] == 0.0
    assert scores["left_right_confusion"]["Left-arm->Right-arm"] == 1.0
    assert scores["joint_error"] > 0.0


def test_evaluate_needs_labels() -> None:
    item = _encoded_items(np.random.default_rng(0), 1)[0]
    del item["label"]
    with pytest.raises(ValueError, match="no 'label'"):
        evaluate(LabelReader(), [item], LIP, progress=False)


# ---- CLIs on a checkpoint written by a one-step training run ----------------------------------------


def _tiny_lip(root: Path) -> Path:
    try:
        from lipkit.data.synth import make_synthlip
    except ImportError:
        make_synthlip = None
    if make_synthlip is not None:
        make_synthlip(root, n_train=4, n_val=2, seed=0, size_range=(40, 64), workers=1, progress=False)
        return root
    rng = np.random.default_rng(0)
    for split, n in (("train", 4), ("val", 2)):
        (root / f"{split}_images").mkdir(parents=True)
        (root / f"{split}_segmentations").mkdir(parents=True)
        for i, it in enumerate(_encoded_items(rng, n)):
            Image.fromarray(it["image"]).save(root / f"{split}_images" / f"{split}{i}.jpg")
            Image.fromarray(it["label"]).save(root / f"{split}_segmentations" / f"{split}{i}.png")
        (root / f"{split}_id.txt").write_text("".join(f"{split}{i}\n" for i in range(n)))
    return root


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from lipkit.training import TrainConfig, fit

    base = tmp_path_factory.mktemp("evalcli")
    root = _tiny_lip(base / "data")
    config = TrainConfig.from_dict({
        "data": {"root": str(root), "crop_size": 32, "val_split": ""},
        "model": {"backbone": "resnet18", "width": 0.125}, "iterations": 1, "batch_size": 2,
        "threads": 1, "progress": False, "out_dir": str(base / "run"),
    })
    fit(config)
    return base / "run" / "last.pt", root


def test_evaluate_cli(checkpoint: tuple[Path, Path], tmp_path: Path) -> None:
    from lipkit.cli import main

    ckpt, root = checkpoint
    out = tmp_path / "scores.json"
    rc = main(["evaluate", "--checkpoint", str(ckpt), "--data-root", str(root), "--split", "val", "--flip",
               "--scales", "0.75,1", "--device", "cpu", "--out", str(out), "--no-progress"])
    assert rc == 0
    scores = json.loads(out.read_text())
    assert scores["num_images"] == 2 and 0.0 <= scores["pixel_accuracy"] <= 1.0


def test_predict_cli_writes_palette_pngs_and_overlays(checkpoint: tuple[Path, Path], tmp_path: Path) -> None:
    from lipkit.cli import main

    ckpt, root = checkpoint
    images = sorted((root / "val_images").iterdir())
    rc = main(["predict", "--checkpoint", str(ckpt), *map(str, images), "--out", str(tmp_path / "pred"), "--device", "cpu"])
    assert rc == 0
    for path in images:
        size = Image.open(path).size
        labels = Image.open(tmp_path / "pred" / f"{path.stem}.png")
        assert labels.mode == "P" and labels.size == size
        assert np.asarray(labels).max() < K
        palette = np.asarray(labels.getpalette()[: 3 * K]).reshape(K, 3)
        assert np.array_equal(palette, LIP.palette_array)
        assert Image.open(tmp_path / "pred" / f"{path.stem}_overlay.png").size == size


def test_cli_scales_error() -> None:
    from lipkit.cli import main

    with pytest.raises(SystemExit):
        main(["evaluate", "--checkpoint", "x.pt", "--data-root", ".", "--scales", "1,-2"])


def test_kept_images_hold_each_images_own_matrix_and_joint_error():
    from lipkit.evaluate import add_image, joint_groups_or_none, new_state

    a_gt = np.zeros((8, 8), np.int64)
    a_gt[2:6, 2:6] = 13  # a face
    a_pred = a_gt.copy()
    a_pred[2:4, 2:6] = 0  # half of it missed
    b_gt = np.full((6, 6), 5, np.int64)  # upper clothes
    b_pred = b_gt.copy()
    b_pred[0, :] = 14  # a row called left arm
    groups = joint_groups_or_none(LIP)
    kept, plain = new_state(LIP, keep_images=True), new_state(LIP)
    errs = [add_image(kept, p, g, groups, name=n) for n, p, g in (("a", a_pred, a_gt), ("b", b_pred, b_gt))]
    for p, g in ((a_pred, a_gt), (b_pred, b_gt)):
        add_image(plain, p, g, groups)
    assert kept.image_ids == ["a", "b"] and kept.image_joint_errors == errs
    first, second = kept.image_confusions
    assert first[13, 13] == 8 and first[13, 0] == 8 and first[0, 0] == 48 and first.sum() == 64
    assert second[5, 5] == 30 and second[5, 14] == 6 and second.sum() == 36
    np.testing.assert_array_equal(first + second, kept.confusion.matrix)
    np.testing.assert_array_equal(kept.confusion.matrix, plain.confusion.matrix)
    assert plain.image_confusions == [] and kept.joint_error_sum == pytest.approx(sum(errs))


def test_predict_parses_at_the_training_height_by_default(checkpoint: tuple[Path, Path], tmp_path: Path) -> None:
    """A shipped model records its training images' median height; predict parses a photo at that height
    (the same as evaluate's multi-scale path at scale height / H) and maps the labels back to the photo."""
    from lipkit.cli import main
    from lipkit.evaluate import predict_labels
    from lipkit.training import load_model_from_checkpoint, save_shipped, train_image_height

    ckpt, root = checkpoint
    shipped = tmp_path / "model.pt"
    save_shipped(ckpt, shipped, {"train_image_height": 20})
    assert train_image_height(shipped) == 20 and train_image_height(ckpt) is None
    model, _ = load_model_from_checkpoint(shipped)
    image_path = sorted((root / "val_images").iterdir())[0]
    image = np.asarray(Image.open(image_path).convert("RGB"))
    for option, scale in (([], 20 / image.shape[0]), (["--input-height", "native"], 1.0),
                          (["--input-height", "48"], 48 / image.shape[0])):
        out = tmp_path / f"pred{len(option)}{scale:.3f}"
        assert main(["predict", "--checkpoint", str(shipped), str(image_path), "--out", str(out), "--device", "cpu",
                     *option]) == 0
        got = np.asarray(Image.open(out / f"{image_path.stem}.png"))
        assert got.shape == image.shape[:2]
        np.testing.assert_array_equal(got, predict_labels(model, image, scales=(scale,)))
    assert main(["predict", "--checkpoint", str(shipped), str(image_path), "--out", str(tmp_path / "x"),
                 "--input-height", "tall"]) == 2
