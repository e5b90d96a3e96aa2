"""lipkit: human parsing on Look into Person (LIP) and structure-sensitive learning (SSL).

Gong, Liang, Zhang, Shen, Lin. "Look into Person: Self-supervised Structure-sensitive Learning
and A New Benchmark for Human Parsing". CVPR 2017.

The package root holds only the label sets; submodules are imported on use (``import lipkit.metrics``)
so that the CLI starts fast. The README's "Layout" section maps the modules.
"""

from lipkit.labels import ATR, CIHP, LIP, PASCAL_PERSON_PART, LabelSet, get_label_set

__version__ = "0.1.0"

__all__ = ["ATR", "CIHP", "LIP", "PASCAL_PERSON_PART", "LabelSet", "get_label_set", "__version__"]
