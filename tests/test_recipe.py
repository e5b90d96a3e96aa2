"""One recipe vocabulary: profiles, notebook parameters and configs name each setting once."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import papermill
import pytest

from lipkit import paths
from lipkit import recipe as rc
from lipkit.training import TrainConfig

RESULT_NOTEBOOKS = ("02", "03", "04", "05")


def _notebook(prefix: str) -> Path:
    return next(paths.NOTEBOOKS_DIR.glob(f"{prefix}_*.ipynb"))


def _defaults(prefix: str) -> dict:
    import ast

    return {name: ast.literal_eval(p["default"]) for name, p in papermill.inspect_notebook(str(_notebook(prefix))).items()}


@pytest.mark.parametrize("prefix", RESULT_NOTEBOOKS)
def test_result_notebook_parameters_are_the_smoke_recipe_fields(prefix):
    """Notebooks 02-05 declare exactly the recipe's fields (in capitals) plus FIGURES_DIR, with the smoke values."""
    defaults = _defaults(prefix)
    expected = rc.RECIPES["smoke"].parameters()
    assert set(defaults) == set(expected) | {"FIGURES_DIR"}
    assert {k: defaults[k] for k in expected} == expected
    assert rc.Recipe.from_parameters(defaults) == rc.RECIPES["smoke"]


def test_notebook_01_reads_the_same_synthlip_folder_as_02_to_05():
    d01, d02 = _defaults("01"), _defaults("02")
    assert rc.Recipe.from_parameters(d01).synth_name == rc.Recipe.from_parameters(d02).synth_name


def test_every_profile_recipe_is_valid_and_its_parameters_round_trip():
    for name, recipe in rc.RECIPES.items():
        assert recipe.profile == name
        assert rc.Recipe.from_parameters(recipe.parameters()) == recipe


def test_recipe_rejects_bad_values():
    for bad, key in (({"baselines": "hub"}, "baselines"), ({"synth_min_px": 200}, "synth_min_px"),
                     ({"scale_min": 2.0}, "scale_min"), ({"seeds": 0}, "seeds"), ({"crop_size": 0}, "crop_size")):
        with pytest.raises(ValueError, match=key):
            rc.Recipe(**bad)


def test_cpu_profile_scores_the_val_split_the_shipped_baselines_were_scored_on():
    cpu, synthlip = rc.RECIPES["cpu"], rc.RECIPES["synthlip"]
    same = ("synth_val", "synth_seed", "synth_min_px", "synth_max_px")
    assert {k: getattr(cpu, k) for k in same} == {k: getattr(synthlip, k) for k in same}
    assert cpu.synth_train <= synthlip.synth_train and cpu.val_images == 0


def test_ensure_synthlip_caches_by_stamp_and_shares_val_across_train_sizes(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "DATA_DIR", tmp_path / "data")
    small = rc.Recipe(synth_train=3, synth_val=2, synth_min_px=40, synth_max_px=56, synth_seed=5)
    big = small.replace(synth_train=6)
    a = rc.ensure_synthlip(small)
    assert a.name == "synthlip-3-2-px40-56-seed5"
    mtime = (a / "val_id.txt").stat().st_mtime_ns
    assert rc.ensure_synthlip(small) == a and (a / "val_id.txt").stat().st_mtime_ns == mtime  # cached
    b = rc.ensure_synthlip(big)
    assert b != a
    for ident in (a / "val_id.txt").read_text().split():  # the val split does not depend on the train size
        for sub, ext in (("val_images", "jpg"), ("val_segmentations", "png")):
            da = hashlib.sha256((a / sub / f"{ident}.{ext}").read_bytes()).hexdigest()
            assert da == hashlib.sha256((b / sub / f"{ident}.{ext}").read_bytes()).hexdigest()
    (a / ".complete").write_text('{"generator": "older"}')
    rc.ensure_synthlip(small)
    assert (a / "val_id.txt").stat().st_mtime_ns != mtime  # another generator stamp regenerates
    assert rc.ensure_synthlip(small.replace(data_root=str(tmp_path))) == tmp_path
    with pytest.raises(FileNotFoundError, match="not a folder"):
        rc.ensure_synthlip(small.replace(data_root=str(tmp_path / "missing")))


# ------------------------------------------------------------------------ paper configs vs the paper recipe
def _numbers(config: TrainConfig, train_images: int = 30462) -> dict:
    """What decides a run's weights: everything but paths, logging, validation cadence and device."""
    d = config.to_dict()
    steps = d["iterations"] or d["epochs"] * (train_images // d["batch_size"])
    for key in ("iterations", "epochs", "log_every", "checkpoint_every", "progress", "out_dir", "eval", "threads",
                "device", "init_checkpoint"):
        d.pop(key)
    d["data"].pop("root")
    d["data"].pop("max_val_images")
    d["model"]["freeze_bn"] = config.bn_frozen
    if d["optim"]["schedule"] == "constant":  # the schedule's shape parameters play no part
        d["optim"].pop("warmup")
        d["optim"].pop("poly_power")
    d["steps"] = steps
    return d


@pytest.mark.parametrize("name, arch", [("paper_attention_vgg16", "attention"), ("paper_deeplabv2_resnet101", "deeplabv2")])
def test_paper_baseline_configs_equal_the_paper_recipe(name, arch, tmp_path):
    recipe = rc.RECIPES["paper"].replace(data_root=str(tmp_path))
    stored = TrainConfig.from_yaml(paths.CONFIGS_DIR / f"{name}.yaml")
    assert _numbers(stored) == _numbers(rc.baseline_config(recipe, arch))


def test_paper_ssl_finetune_config_equals_the_paper_recipe(tmp_path):
    recipe = rc.RECIPES["paper"].replace(data_root=str(tmp_path))
    stored = TrainConfig.from_yaml(paths.CONFIGS_DIR / "paper_ssl_finetune.yaml")
    generated = rc.finetune_config(recipe, rc.PAPER, 0, "attention")
    assert _numbers(stored) == _numbers(generated)
    assert stored.init_checkpoint == rc.baseline_config(recipe, "attention").out_dir + "/last.pt"


def test_recipe_fields_reach_the_train_config_under_the_same_name(tmp_path):
    r = rc.Recipe(data_root=str(tmp_path), crop_size=65, batch_size=6, threads=1, workers=1, device="cpu")
    c = rc.baseline_config(r)
    assert (c.data.crop_size, c.batch_size, c.threads, c.data.workers, c.device) == (65, 6, 1, 1, "cpu")
    assert [f.name for f in dataclasses.fields(rc.Recipe)].count("crop_size") == 1
