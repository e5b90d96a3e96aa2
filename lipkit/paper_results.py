"""The paper's published numbers (Gong et al. 2017; ``lip_facts.md`` section 4), in one place.

Notebooks show them beside ours (:mod:`lipkit.viz_results`), and the SSL study's report puts the
paper's SSL gains beside its paired differences (:mod:`lipkit.study_report`). "unverified": recalled,
not checked against the PDF here.
"""

from __future__ import annotations

import pandas as pd

# Per-class IoU (%) of Attention+SSL on LIP val as published (per-class table). Averages to 44.73.
PAPER_ATTENTION_SSL_IOU: dict[str, float] = {
    "Background": 84.56, "Hat": 59.75, "Hair": 67.25, "Glove": 28.95, "Sunglasses": 21.57,
    "Upper-clothes": 65.30, "Dress": 29.49, "Coat": 51.92, "Socks": 38.52, "Pants": 68.02,
    "Jumpsuits": 24.48, "Scarf": 14.92, "Skirt": 24.32, "Face": 71.01, "Left-arm": 52.64,
    "Right-arm": 55.79, "Left-leg": 40.23, "Right-leg": 38.80, "Left-shoe": 28.08, "Right-shoe": 29.03,
}
# Published LIP val results (pixel acc, mean acc, mIoU, %).
PAPER_RESULTS = pd.DataFrame(
    [("DeepLabV2 VGG-16 (unverified)", 82.66, 51.64, 41.64), ("Attention VGG-16 (unverified)", 83.43, 54.39, 42.92),
     ("DeepLabV2 + SSL (unverified)", 83.16, 52.55, 42.44), ("Attention + SSL", 84.36, 54.94, 44.73)],
    columns=["method", "pixel acc", "mean acc", "mIoU"]).set_index("method")
# PASCAL-Person-Part mIoU (%, unverified): Attention, Attention + SSL.
PAPER_PASCAL_ATTENTION_MIOU: tuple[float, float] = (56.39, 59.36)
# (label set, network) -> mIoU without and with SSL: what the study's RQ4 table puts beside its paper arms
PAPER_SSL_MIOU: dict[tuple[str, str], tuple[float, float]] = {
    ("LIP", "deeplabv2"): (PAPER_RESULTS.loc["DeepLabV2 VGG-16 (unverified)", "mIoU"],
                           PAPER_RESULTS.loc["DeepLabV2 + SSL (unverified)", "mIoU"]),
    ("LIP", "attention"): (PAPER_RESULTS.loc["Attention VGG-16 (unverified)", "mIoU"],
                           PAPER_RESULTS.loc["Attention + SSL", "mIoU"]),
    ("PASCAL-Person-Part", "attention"): PAPER_PASCAL_ATTENTION_MIOU,
}

__all__ = ["PAPER_ATTENTION_SSL_IOU", "PAPER_PASCAL_ATTENTION_MIOU", "PAPER_RESULTS", "PAPER_SSL_MIOU"]
