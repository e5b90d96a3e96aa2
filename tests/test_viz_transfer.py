"""Notebook 07's and the README's words about the CCP transfer experiment (lipkit.viz_transfer).

The inputs are hand-made results dicts, so each expected sentence is worked out by hand; the README's
generated block is checked against the shipped files the same way the study's tables are.
"""

from __future__ import annotations

import json
import pytest

from lipkit import paths, transfer as tr, viz_transfer as vt
from lipkit.cli import main
from lipkit.labels import CCP
from lipkit.study_readme import fill_blocks
from lipkit.study_stats import paired_t_interval


def _scores(iou: dict[str, float | None], miou: float, sil: float, height: int | None = 126) -> dict:
    full = {c: 0.0 for c in CCP.classes}
    full.update(iou)
    return {"iou": full, "mean_iou": miou, "silhouette_iou": sil, "height": height, "num_images": 100}


def _summary(diffs_miou: list[float], diffs_sil: list[float]) -> dict:
    out = {"n": len(diffs_miou), "steps": [2016], "seeds": []}
    for metric, diffs in (("mean_iou", diffs_miou), ("silhouette_iou", diffs_sil)):
        iv = paired_t_interval(diffs)
        out[metric] = {"diffs": diffs, "interval": iv.__dict__, "smallest_detectable": 1.23}
    return out


def test_per_class_is_ordered_by_iou_and_groups_the_zeros():
    scores = _scores({"Background": 0.9, "Pants": 0.35, "Coat": 0.298, "Hat": 0.0004, "Skirt": None}, 0.2, 0.6)
    # background is not a person class; Skirt is absent (None); Hat rounds to 0.0 and joins the zeros
    zeros = sorted(c.lower() for c in CCP.classes[1:] if c not in ("Pants", "Coat", "Skirt"))
    assert vt._per_class(scores) == f"pants 35.0, coat 29.8, {', '.join(zeros[:-1])} and {zeros[-1]} 0"


def test_transfer_sentences_say_higher_lower_or_the_detectable_effect():
    up = vt.transfer_sentences(_summary([5.0, 4.0, 6.0], [1.0, -1.0, 0.5]))
    # mIoU diffs 5, 4, 6: mean 5, sd 1, 95% CI 5 -+ 4.30 / sqrt(3) = 2.52 to 7.48; silhouette: mean 0.17, spans 0
    assert up[0].startswith("mIoU: synthlip - scratch +5.00 points (95% CI +2.52 to +7.48, 3 seeds)") and up[0].endswith("higher from SynthLIP.")
    assert "no difference detected" in up[1] and "1.23 points" in up[1]
    down = vt.transfer_sentences(_summary([-5.0, -4.0, -6.0], [-5.0, -4.0, -6.0]))
    assert all(line.endswith("lower from SynthLIP.") for line in down)
    assert "not been run" in vt.transfer_sentences(None)[0]


def test_readme_lines_carry_the_files_numbers():
    report = {"num_images": 100, "train_height": _scores({"Pants": 0.35}, 0.177, 0.597),
              "native": _scores({}, 0.066, 0.21, height=None)}
    model = {"run": "synthlip_s1", "full_size": _scores({"Skin": 0.5}, 0.4, 0.8)}
    lines = vt.readme_lines(report, _summary([5.0, 2.0, 8.0], [4.0, 4.0, 1.0]), model, train_images=903)
    assert len(lines) == 3 and all(line.startswith("- **") for line in lines)
    assert "**17.7 % mIoU, 59.7 % silhouette IoU**" in lines[0] and "6.6 % and 21.0 %" in lines[0]
    assert "903 CCP train photos" in lines[1] and "2,016 steps" in lines[1] and "3 seeds" in lines[1]
    assert "+5.00 points (95% CI" in lines[1]
    assert "**80.0 % silhouette IoU, 40.0 % mIoU**" in lines[2] and "synthlip_s1" in lines[2] and "skin 50.0" in lines[2]
    not_run = vt.readme_lines(report, None, None, train_images=903)
    assert len(not_run) == 2 and "not been run" in not_run[1]


def test_the_readme_ccp_results_are_the_shipped_files():
    readme = (paths.REPO_ROOT / "README.md").read_text()
    block = vt.readme_block(paths.results_dir(tr.NAME), tr.shipped_dir() / "scores.json")
    assert readme == fill_blocks(readme, {"ccp:results": "\n".join(block)}), \
        "README's CCP results differ from results/ccp_transfer: run `make study-readme`"


def test_transfer_readme_without_its_block_is_one_line_and_leaves_the_file(tmp_path, capsys):
    target = tmp_path / "README.md"
    target.write_text("no markers here\n")
    assert main(["transfer", "--readme", str(target)]) == 2
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and "ccp:results" in out[0] and str(target) in out[0]
    assert target.read_text() == "no markers here\n"
    target.write_text("a\n<!-- ccp:results -->\nold\n<!-- /ccp:results -->\nb\n")
    assert main(["transfer", "--readme", str(target)]) == 0
    text = target.read_text()
    assert text.startswith("a\n<!-- ccp:results -->\n- **Zero-shot") and text.endswith("<!-- /ccp:results -->\nb\n")
    assert "old" not in text


def test_readme_block_without_zero_shot_names_the_command(tmp_path):
    (tmp_path / "other.json").write_text(json.dumps({}))
    with pytest.raises(FileNotFoundError, match="transfer --zero-shot"):
        vt.readme_block(tmp_path, tmp_path / "none.json")
