"""``python -m lipkit COMMAND``: the command-line entry point.

Each command lives in the module that owns the concept; this file only maps names to them
(one small explicit table) and imports the module on use, so ``--help`` stays instant.
Every module named here provides ``add_arguments(parser)`` and ``run(args) -> int`` under the
function names given in the table.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# command -> (module, add-arguments function, run function, one-line help)
COMMANDS: dict[str, tuple[str, str, str, str]] = {
    "synth": ("lipkit.data.synth", "add_arguments", "run", "write a SynthLIP dataset in LIP (or PASCAL-Person-Part) layout"),
    "check-data": ("lipkit.data.validate", "add_arguments", "run", "scan a dataset split and report every problem"),
    "stats": ("lipkit.stats", "add_arguments", "run", "dataset statistics of a LIP-format split"),
    "train": ("lipkit.train", "add_arguments", "run", "train a parsing model from a config"),
    "evaluate": ("lipkit.evaluate", "add_arguments", "run", "score a checkpoint on a split"),
    "predict": ("lipkit.evaluate", "add_predict_arguments", "run_predict", "parse images, write label PNGs and overlays"),
    "pretrain": ("lipkit.pretrain", "add_arguments", "run", "train the SynthLIP baselines and ship them in checkpoints/"),
    "reproduce": ("lipkit.pipeline", "add_arguments", "run", "run the numbered notebooks with papermill for a profile"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m lipkit", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (_module, _add, _run, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        build_parser().parse_args(argv)  # prints help or the "invalid choice" error and exits
        return 2
    name, rest = argv[0], argv[1:]
    module_name, add_name, run_name, help_text = COMMANDS[name]
    module = importlib.import_module(module_name)
    parser = argparse.ArgumentParser(prog=f"python -m lipkit {name}", description=help_text)
    getattr(module, add_name)(parser)
    args = parser.parse_args(rest)
    return int(getattr(module, run_name)(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
