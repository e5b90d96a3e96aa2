"""Which keys two TrainConfig dicts disagree on (dotted): what the search and study tests compare."""

from __future__ import annotations


def config_diff(a: dict, b: dict, prefix: str = "") -> set[str]:
    """Dotted keys whose values differ between two nested dicts (a key missing on one side differs)."""
    out = set()
    for k in a.keys() | b.keys():
        if isinstance(a.get(k), dict) and isinstance(b.get(k), dict):
            out |= config_diff(a[k], b[k], f"{prefix}{k}.")
        elif a.get(k) != b.get(k):
            out.add(prefix + k)
    return out


def comparable(config) -> dict:
    """A TrainConfig's dict without ``progress`` (a display switch, not part of the recipe)."""
    d = config.to_dict()
    d.pop("progress")
    return d
