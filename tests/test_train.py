"""TrainConfig round trips and errors; fit: loss falls, exact resume, non-finite loss, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

import lipkit.ssl
from lipkit.labels import LIP
from lipkit.training import LRFactor, EpochBatchSampler, NonFiniteLossError, TrainConfig, epoch_permutation, fit
from lipkit.training import build, loop


def make_tiny_lip(root: Path, n_train: int = 8, n_val: int = 3, seed: int = 0, ignore_top: float = 0.0) -> Path:
    """A small LIP-format folder: colour-coded body parts of varying image sizes, a 255 strip.

    ``ignore_top``: every other image also has its top ``ignore_top`` fraction of rows set to 255,
    so batches differ a lot in their numbers of valid pixels.
    """
    rng = np.random.default_rng(seed)
    palette = LIP.palette_array.astype(np.int16)
    for split, n in (("train", n_train), ("val", n_val)):
        (root / f"{split}_images").mkdir(parents=True, exist_ok=True)
        (root / f"{split}_segmentations").mkdir(parents=True, exist_ok=True)
        for i in range(n):
            h, w = 64 + int(rng.integers(-8, 9)), 48 + int(rng.integers(-8, 9))
            lab = np.zeros((h, w), np.uint8)
            cx, top, u = w // 2 + int(rng.integers(-4, 5)), int(rng.integers(2, 6)), 5
            lab[top:top + 2 * u, cx - u:cx + u] = 13  # face
            lab[top + 2 * u:top + 5 * u, cx - 2 * u:cx + 2 * u] = 5  # upper clothes
            lab[top + 2 * u:top + 5 * u, cx + 2 * u:cx + 3 * u] = 14  # left arm
            lab[top + 2 * u:top + 5 * u, cx - 3 * u:cx - 2 * u] = 15  # right arm
            lab[top + 5 * u:top + 7 * u, cx - 2 * u:cx + 2 * u] = 9  # pants
            lab[top + 7 * u:top + 10 * u, cx:cx + 2 * u] = 16  # left leg
            lab[top + 7 * u:top + 10 * u, cx - 2 * u:cx] = 17  # right leg
            img = palette[lab] + rng.integers(-20, 21, (h, w, 3))
            lab[:, :2] = 255
            if i % 2:
                lab[: int(h * ignore_top)] = 255
            Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(root / f"{split}_images" / f"{split}{i:03d}.jpg", quality=95)
            Image.fromarray(lab).save(root / f"{split}_segmentations" / f"{split}{i:03d}.png")
        (root / f"{split}_id.txt").write_text("".join(f"{split}{i:03d}\n" for i in range(n)))
    return root


def make_data(root: Path, n_train: int = 8, n_val: int = 3) -> Path:
    """SynthLIP when its generator is installed, else the tiny Pillow folder."""
    try:
        from lipkit.data.synth import make_synthlip
    except ImportError:
        return make_tiny_lip(root, n_train, n_val)
    make_synthlip(root, n_train=n_train, n_val=n_val, seed=0, size_range=(56, 80), workers=1, progress=False)
    return root


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_data(tmp_path_factory.mktemp("lip") / "data")


def tiny_config(root: Path, out: Path, **over: object) -> TrainConfig:
    base = {
        "data": {"root": str(root), "crop_size": 48, "scale_range": [0.75, 1.25], "max_val_images": 2},
        "model": {"backbone": "resnet18", "width": 0.125},
        "optim": {"lr": 0.01},
        "iterations": 6, "batch_size": 2, "seed": 3, "threads": 1, "log_every": 1,
        "checkpoint_every": 2, "progress": False, "out_dir": str(out),
    }
    for key, value in over.items():
        node = base
        *parents, leaf = key.split("__")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return TrainConfig.from_dict(base)


# ---- config --------------------------------------------------------------------------------------


def test_config_round_trips(tmp_path: Path) -> None:
    config = TrainConfig().with_overrides(["optim.lr=0.05", "data.scale_range=[0.5, 2]", "iterations=7",
                                           "model.pretrained=imagenet", "ssl.mode=paper", "eval.flip=true"])
    assert config.optim.lr == 0.05 and config.data.scale_range == [0.5, 2.0] and config.iterations == 7
    assert config.model.pretrained == "imagenet" and config.ssl.mode == "paper" and config.eval.flip is True
    assert config.bn_frozen  # pretrained backbone -> BN frozen by default
    assert TrainConfig.from_dict(config.to_dict()) == config
    (tmp_path / "c.yaml").write_text(config.to_yaml())
    assert TrainConfig.from_yaml(tmp_path / "c.yaml") == config
    (tmp_path / "c.json").write_text(json.dumps(config.to_dict()))
    assert TrainConfig.from_file(tmp_path / "c.json") == config
    assert TrainConfig.from_dict({}) == TrainConfig()
    assert TrainConfig().with_overrides(["iterations=null"]).iterations is None


@pytest.mark.parametrize("override, message", [
    ("optim.lrr=1", "unknown key 'lrr' in optim; valid keys: name, lr, momentum"),
    ("nosuch=1", "unknown key 'nosuch' in the top level"),
    ("optim=1", "is a section"),
    ("epochs=abc", "epochs: expected an integer"),
    ("data.flip=3", "data.flip: expected true/false"),
    ("optim.lr=fast", "optim.lr: expected a number"),
    ("data.scale_range=[1, x]", r"data.scale_range\[1\]: expected a number"),
    ("ssl.mode=strong", "ssl.mode='strong'"),
    ("optim.schedule=step", "optim.schedule"),
    ("model.backbone=resnet7", "model.backbone"),
    ("batch_size=0", "batch_size=0"),
    ("ssl.groups=elbows", "ssl.groups=.elbows."),
    ("ssl.weighting=random", "ssl.weighting='random': expected one of"),
    ("ssl.weighting=batch_mean", "ssl.weighting='batch_mean'.*ssl.mode='none' has no per-image weights"),
    ("ssl.normalize_weights=true", "ssl.weighting='normalized'.*ssl.mode='none' has no per-image weights"),
    ("eval.joint_sigma=0", "eval.joint_sigma=0.0: must be > 0"),
    ("data.flip_swap=3", "data.flip_swap: expected true/false"),
    ("noequals", "expected key=value"),
])
def test_config_errors_name_the_key(override: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TrainConfig().with_overrides([override])


def test_study_settings_round_trip_and_old_configs_load(tmp_path: Path) -> None:
    config = TrainConfig().with_overrides(["ssl.mode=paper", "ssl.weighting=shuffled", "data.flip_swap=false",
                                           "eval.joint_sigma=2"])
    assert (config.ssl.weighting, config.ssl.effective_weighting, config.data.flip_swap, config.eval.joint_sigma) == \
        ("shuffled", "shuffled", False, 2.0)
    (tmp_path / "c.yaml").write_text(config.to_yaml())
    assert TrainConfig.from_yaml(tmp_path / "c.yaml") == config
    defaults = TrainConfig()
    assert (defaults.ssl.weighting, defaults.data.flip_swap, defaults.eval.joint_sigma) == ("image", True, 1.0)
    # configs written before these keys (normalize_weights only) load with the same behaviour
    old = {"ssl": {"mode": "paper", "sigma": 1.0, "weight": None, "normalize_weights": True, "groups": "", "ce_on": "crop"}}
    loaded = TrainConfig.from_dict(old)
    assert loaded.ssl.weighting == "image" and loaded.ssl.effective_weighting == "normalized"
    assert build.build_loss(loaded, LIP).weighting == "normalized"
    old["ssl"]["normalize_weights"] = False
    assert build.build_loss(TrainConfig.from_dict(old), LIP).weighting == "image"
    both = TrainConfig().with_overrides(["ssl.mode=released", "ssl.weighting=normalized", "ssl.normalize_weights=true"])
    assert build.build_loss(both, LIP).weighting == "normalized"  # consistent: accepted
    with pytest.raises(ValueError, match="ssl.normalize_weights=true means ssl.weighting 'normalized'"):
        both.with_overrides(["ssl.weighting=batch_mean"])
    for name in ("synthlip_deeplabv2", "synthlip_attention"):  # the shipped runs' configs
        shipped = TrainConfig.from_yaml(Path(__file__).resolve().parent.parent / "checkpoints" / name / "config.yaml")
        assert shipped.ssl.effective_weighting == "image" and shipped.data.flip_swap and shipped.eval.joint_sigma == 1.0


def test_config_file_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"optim": {"lr": 0.1, "momentun": 0.9}}))
    with pytest.raises(ValueError, match=r"bad.yaml: unknown key 'optim.momentun'|bad.yaml: unknown key 'momentun'"):
        TrainConfig.from_yaml(bad)
    with pytest.raises(FileNotFoundError, match="missing.yaml"):
        TrainConfig.from_yaml(tmp_path / "missing.yaml")


def test_shipped_configs_load() -> None:
    from lipkit.paths import CONFIGS_DIR

    files = sorted(CONFIGS_DIR.glob("*.yaml"))
    assert {f.name for f in files} >= {"paper_attention_vgg16.yaml", "paper_deeplabv2_resnet101.yaml",
                                       "paper_ssl_finetune.yaml", "cpu_small.yaml", "smoke.yaml"}
    for f in files:
        TrainConfig.from_yaml(f)


def test_build_passes_flip_swap_and_weighting(data_root: Path, tmp_path: Path) -> None:
    from lipkit.data.transforms import RandomHorizontalFlip

    for flip_swap in (True, False):
        config = tiny_config(data_root, tmp_path, data__flip_swap=flip_swap, ssl__mode="paper", ssl__weighting="batch_mean")
        steps = build.build_data(config, LIP).train_items.transform.transforms
        assert [t.swap for t in steps if isinstance(t, RandomHorizontalFlip)] == [flip_swap]
        assert build.build_loss(config, LIP).weighting == "batch_mean"


def test_validation_joint_error_uses_eval_joint_sigma_not_ssl_sigma(data_root: Path, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from lipkit.training.distributed import DistContext

    calls: list[float] = []
    real = loop.accumulate

    def spy(*args, **kwargs):
        calls.append(kwargs["joint_sigma"])
        return real(*args, **kwargs)

    monkeypatch.setattr(loop, "accumulate", spy)
    scores = {}
    for sigma, eval_sigma in ((1.0, 1.0), (2.0, 1.0), (2.0, 2.0)):  # same seed: the same initial weights
        config = tiny_config(data_root, tmp_path, ssl__mode="paper", ssl__sigma=sigma, eval__joint_sigma=eval_sigma)
        trainer = loop.make_trainer(config, DistContext(), torch.device("cpu"))
        scores[sigma, eval_sigma] = loop.validate(trainer)["joint_error"]
    assert calls == [1.0, 1.0, 2.0]
    assert scores[2.0, 1.0] == scores[1.0, 1.0]  # trained with sigma 2, measured with the stated sigma 1


# ---- data order ----------------------------------------------------------------------------------


def test_data_order_is_a_function_of_seed_and_epoch_and_shards_cover_the_batch() -> None:
    assert torch.equal(epoch_permutation(50, 1, 2), epoch_permutation(50, 1, 2))
    assert not torch.equal(epoch_permutation(50, 1, 2), epoch_permutation(50, 1, 3))
    full = list(EpochBatchSampler(11, 4, seed=1, epoch=0))
    assert len(full) == 2 and all(len(b) == 4 for b in full)  # partial batch dropped
    halves = [list(EpochBatchSampler(11, 4, seed=1, epoch=0, rank=r, world_size=2)) for r in (0, 1)]
    assert [h0 + h1 for h0, h1 in zip(*halves)] == full
    assert list(EpochBatchSampler(11, 4, seed=1, epoch=0, start=1)) == full[1:]
    with pytest.raises(ValueError, match="divisible"):
        EpochBatchSampler(11, 3, seed=0, epoch=0, world_size=2)


# ---- fit -----------------------------------------------------------------------------------------


def test_loss_falls_and_run_folder(data_root: Path, tmp_path: Path) -> None:
    result = fit(tiny_config(data_root, tmp_path / "many", iterations=24, optim__lr=0.003, batch_size=4))
    assert result["step"] == 24
    lines = [json.loads(x) for x in (tmp_path / "many" / "metrics.jsonl").read_text().splitlines()]
    train = [x["loss"] for x in lines if x["kind"] == "train"]
    assert len(train) == 24
    # first step: about ln(20) (uniform over 20 classes); the last 8 steps well below it
    assert np.mean(train[-8:]) < 0.75 * train[0], train
    for name in ("config.yaml", "metrics.jsonl", "last.pt", "best.pt", "scores.json"):
        assert (tmp_path / "many" / name).is_file(), name
    assert TrainConfig.from_yaml(tmp_path / "many" / "config.yaml").iterations == 24
    assert [x["step"] for x in lines if x["kind"] == "train"] == list(range(1, 25))
    val = [x for x in lines if x["kind"] == "val"]
    assert [v["step"] for v in val] == list(range(2, 25, 2))  # 8 images / batch 4: 2 steps per epoch
    scores = json.loads((tmp_path / "many" / "scores.json").read_text())
    assert scores["final"]["num_images"] == 2 and scores["best"]["mean_iou"] == max(v["mean_iou"] for v in val)


def _strip_timing(text: str) -> list[dict]:
    lines = [json.loads(x) for x in text.splitlines()]
    for x in lines:
        x.pop("elapsed_s", None)
        x.pop("img_per_s", None)
        x.pop("peak_rss_mb", None)
    return lines


class _Crash(Exception):
    pass


@pytest.mark.parametrize("backbone", ["resnet18", "vgg16"])  # BN running stats / dropout RNG
def test_resume_mid_epoch_is_exact(data_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backbone: str) -> None:
    over = {"model__backbone": backbone, "optim__schedule": "poly", "iterations": 7, "checkpoint_every": 2}
    fit(tiny_config(data_root, tmp_path / "straight", **over))

    original = loop.train_step
    calls = {"n": 0}

    def crashing(trainer: loop.Trainer, state: loop.TrainState, batch: dict) -> dict:
        calls["n"] += 1
        if calls["n"] == 6:  # during step 6: last.pt is from step 4 (epoch end), step 5 is logged
            raise _Crash
        return original(trainer, state, batch)

    monkeypatch.setattr(loop, "train_step", crashing)
    with pytest.raises(_Crash):
        fit(tiny_config(data_root, tmp_path / "resumed", **over))
    assert torch.load(tmp_path / "resumed" / "last.pt", weights_only=True)["step"] == 4
    monkeypatch.setattr(loop, "train_step", original)
    result = fit(tiny_config(data_root, tmp_path / "resumed", **over), resume=True)
    assert result["step"] == 7

    a = torch.load(tmp_path / "straight" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "resumed" / "last.pt", weights_only=True)
    assert a["model"].keys() == b["model"].keys()
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    for sa, sb in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values()):
        assert torch.equal(sa["momentum_buffer"], sb["momentum_buffer"])
    assert _strip_timing((tmp_path / "straight" / "metrics.jsonl").read_text()) == \
        _strip_timing((tmp_path / "resumed" / "metrics.jsonl").read_text())
    # resume of a finished run does nothing and reports the same result
    again = fit(tiny_config(data_root, tmp_path / "resumed", **over), resume=True)
    assert again["step"] == 7 and again["best"] == result["best"]


def test_onecycle_factor_hand_worked() -> None:
    f = LRFactor("onecycle", total_steps=100, warmup=0.1)
    assert f(0) == pytest.approx(0.04) and f(5) == pytest.approx(0.04 + 0.96 * 0.5) and f(10) == pytest.approx(1.0)
    assert f(55) == pytest.approx(0.5) and f(100) == pytest.approx(0.0, abs=1e-12)  # half-way down the cosine: 1/2
    assert all(f(i) >= f(i + 1) for i in range(10, 100))


def test_adamw_onecycle_resume_and_stop_after_are_exact(data_root: Path, tmp_path: Path) -> None:
    over = {"optim__name": "adamw", "optim__lr": 0.003, "optim__schedule": "onecycle", "optim__weight_decay": 0.01,
            "iterations": 7, "checkpoint_every": 1}
    fit(tiny_config(data_root, tmp_path / "straight", **over))
    partial = fit(tiny_config(data_root, tmp_path / "part", **over), stop_after=3)
    assert partial["step"] == 3 and not (tmp_path / "part" / "scores.json").exists()
    straight = _strip_timing((tmp_path / "straight" / "metrics.jsonl").read_text())
    part = _strip_timing((tmp_path / "part" / "metrics.jsonl").read_text())
    assert part == [x for x in straight if x["kind"] == "train" and x["step"] <= 3]  # same lr schedule, same losses
    fit(tiny_config(data_root, tmp_path / "part", **over), resume=True)
    a = torch.load(tmp_path / "straight" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "part" / "last.pt", weights_only=True)
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert "exp_avg_sq" in next(iter(a["optimizer"]["state"].values()))  # it really was AdamW
    assert _strip_timing((tmp_path / "part" / "metrics.jsonl").read_text()) == straight


def test_non_finite_loss_keeps_last_good_checkpoint(data_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {"n": 0}

    class PoisonedLoss(lipkit.ssl.StructureSensitiveLoss):
        def forward(self, logits, target):  # type: ignore[override]
            out = super().forward(logits, target)
            calls["n"] += 1
            if calls["n"] >= 4:
                return out._replace(loss=out.loss * float("nan"))
            return out

    monkeypatch.setattr(build, "StructureSensitiveLoss", PoisonedLoss)
    config = tiny_config(data_root, tmp_path / "run", checkpoint_every=1, data__val_split="")
    with pytest.raises(NonFiniteLossError, match=r"non-finite loss at step 4 .*loss=nan") as info:
        fit(config)
    assert info.value.step == 4
    ckpt = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert ckpt["step"] == 3
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values() if v.is_floating_point())
    # the checkpoint holds the good state: a clean 3-step run reaches the same weights
    monkeypatch.undo()
    fit(tiny_config(data_root, tmp_path / "clean", iterations=3, checkpoint_every=1, data__val_split=""))
    clean = torch.load(tmp_path / "clean" / "last.pt", weights_only=True)
    assert all(torch.equal(ckpt["model"][k], clean["model"][k]) for k in clean["model"])


def test_exploding_weights_never_reach_a_checkpoint(data_root: Path, tmp_path: Path) -> None:
    config = tiny_config(data_root, tmp_path / "run", optim__lr=1e12, iterations=8, checkpoint_every=1, data__val_split="")
    with pytest.raises(NonFiniteLossError):
        fit(config)
    last = tmp_path / "run" / "last.pt"
    if last.exists():
        ckpt = torch.load(last, weights_only=True)
        assert all(torch.isfinite(v).all() for v in ckpt["model"].values() if v.is_floating_point())


def test_train_cli(data_root: Path, tmp_path: Path) -> None:
    from lipkit.cli import main

    cfg = tmp_path / "c.yaml"
    cfg.write_text(tiny_config(data_root, tmp_path / "cli", iterations=2, data__val_split="").to_yaml())
    assert main(["train", "--config", str(cfg), "--set", "optim.lr=0.001"]) == 0
    assert TrainConfig.from_yaml(tmp_path / "cli" / "config.yaml").optim.lr == 0.001
    assert main(["train", "--config", str(cfg), "--set", "optim.nope=1"]) == 2
