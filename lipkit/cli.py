"""``python -m lipkit COMMAND``: every command's arguments and what it runs.

Library modules hold no argparse; each command here is a pair ``<name>_arguments(parser)`` and
``<name>_command(args) -> exit code`` calling into the library. Modules behind a command are
imported when the command runs (start-up time: ``--help`` and ``synth`` need no torch).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any
import time
from collections.abc import Callable
from pathlib import Path

LIP_SPLITS = ("train", "val", "test")


# ------------------------------------------------------------------------------------------ data
def synth_arguments(parser: argparse.ArgumentParser) -> None:
    from lipkit.data.synth import FORMATS, LAYOUTS  # start-up time: the generator's imports

    parser.add_argument("root", type=Path, help="output folder (created; a previous SynthLIP there is replaced)")
    parser.add_argument("--train", type=int, default=2000, help="training images (default 2000)")
    parser.add_argument("--val", type=int, default=500, help="validation images (default 500)")
    parser.add_argument("--test", type=int, default=0, help="test images, without labels in LIP format (default 0)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--min-size", type=int, default=100, help="smallest image side in pixels (default 100)")
    parser.add_argument("--max-size", type=int, default=500, help="largest image side in pixels (default 500)")
    parser.add_argument("--workers", type=int, default=None, help="processes (default: all CPUs)")
    parser.add_argument("--format", choices=FORMATS, default="lip", help="label set and its folder family")
    parser.add_argument("--layout", choices=LAYOUTS, default="flat",
                        help="LIP folders: flat (lipkit's) or official (as LIP's archives unpack, extra nesting included)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def synth_command(args: argparse.Namespace) -> int:
    from lipkit.data.synth import make_synthlip

    try:
        root = make_synthlip(args.root, args.train, args.val, args.test, seed=args.seed,
                             size_range=(args.min_size, args.max_size), workers=args.workers,
                             format=args.format, progress=not args.quiet, layout=args.layout)
    except (ValueError, FileExistsError) as exc:
        print(f"synth: {exc}")
        return 2
    print(f"SynthLIP ({args.format}, {args.layout} layout) written to {root}: "
          f"train {args.train}, val {args.val}, test {args.test}")
    return 0


def convert_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("format", choices=("ccp",),
                        help="source dataset: ccp = Clothing Co-Parsing (git clone https://github.com/bearpaw/clothing-co-parsing)")
    parser.add_argument("src", type=Path, help="the source folder (for ccp: the clone, with photos/ and annotations/)")
    parser.add_argument("dst", type=Path, help="output folder in LIP's flat layout: new, empty or an earlier conversion (replaced)")
    parser.add_argument("--limit", type=int, default=0, help="only the first N images of each split (0: all)")
    parser.add_argument("--height", type=int, default=0,
                        help="resize photos to H px high (bilinear, antialiased; labels nearest): a small copy to train "
                             "on a CPU, e.g. 126, the shipped SynthLIP model's training height (0: native size, byte for byte)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def convert_command(args: argparse.Namespace) -> int:
    """Convert a dataset into LIP's layout; bad input: one line on stderr, exit 2 (nothing in DST changed)."""
    from lipkit.data.ccp_convert import convert_ccp

    if args.limit < 0:
        print(f"convert: --limit {args.limit}: must be >= 0 (0: all images)", file=sys.stderr)
        return 2
    if args.height and args.height < 8:
        print(f"convert: --height {args.height}: must be >= 8 px (0: native size)", file=sys.stderr)
        return 2
    done = convert_ccp(args.src, args.dst, limit=args.limit or None, progress=not args.no_progress,
                       height=args.height or None)
    counts = ", ".join(f"{split} {n}" for split, n in done.counts.items())
    size = f"photos {args.height} px high" if args.height else "native size"
    print(f"CCP written to {done.root} (LIP flat layout, label set ccp, {size}): {counts}; "
          "read it with --label-set ccp (its default) or data.label_set=ccp")
    return 0


def _label_set_of(root: str | Path, given: str | None) -> str | None:
    """``--label-set`` when given, else the one ``root`` declares (lipkit_dataset.json), else None."""
    from lipkit.data.layout import declared_label_set

    return given or declared_label_set(root)


def check_data_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("root", help="dataset root (LIP flat or official layout, or PASCAL-Person-Part)")
    parser.add_argument("--split", choices=LIP_SPLITS, default=None, help="split to check (default: every split found)")
    parser.add_argument("--label-set", default=None, help="label set of the ids (default: the one the root declares in "
                        "lipkit_dataset.json, else lip, or pascal-person-part for a PASCAL root)")
    parser.add_argument("--with-pose", action="store_true", help="require a pose CSV for the split")
    parser.add_argument("--decode-images", action="store_true", help="fully decode every image (slower; catches corrupt pixel data)")
    parser.add_argument("--max-files", type=int, default=3, help="files shown per problem kind")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def check_data_command(args: argparse.Namespace) -> int:
    """Check the requested split(s), print a report per split; 0 when all are clean, 1 otherwise."""
    from lipkit.data.layout import available_splits
    from lipkit.data.validate import validate_split
    from lipkit.labels import get_label_set

    try:
        name = _label_set_of(args.root, args.label_set)
        label_set = get_label_set(name) if name else None
    except ValueError as err:
        print(f"check-data: {err}")
        return 2
    splits = [args.split] if args.split else available_splits(args.root) or ["train"]  # none: report train's layout error
    clean = True
    for split in splits:
        report = validate_split(args.root, split, label_set, with_pose=args.with_pose,
                                decode_images=args.decode_images, progress=not args.no_progress)
        print(report.format(max_files=args.max_files))
        print()
        clean = clean and report.ok
    return 0 if clean else 1


def stats_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("root", type=Path, help="LIP-format dataset root (flat or official layout)")
    parser.add_argument("--split", default="train", choices=LIP_SPLITS)
    parser.add_argument("--label-set", default=None, help="label set name (lip, cihp, atr, pascal-person-part, ccp; "
                        "default: the one the root declares in lipkit_dataset.json, else lip)")
    parser.add_argument("--limit", type=int, default=0, help="only the first N images (0: all)")
    parser.add_argument("--workers", type=int, default=0, help="threads decoding labels (0: main thread)")
    parser.add_argument("--json", type=Path, default=None, help="also write the summary and class table as JSON here")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def stats_command(args: argparse.Namespace) -> int:
    from lipkit.data import LIPDataError
    from lipkit.stats import compute_stats, report

    try:
        label_set = _label_set_of(args.root, args.label_set) or "lip"
        stats = compute_stats(args.root, args.split, label_set=label_set, limit=args.limit or None,
                              num_workers=args.workers, progress=not args.no_progress)
    except (LIPDataError, FileNotFoundError, ValueError) as err:
        print(f"error: {err}")
        return 1
    print(report(stats))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        table = stats.class_table().reset_index()
        payload = {"summary": stats.summary(), "classes": json.loads(table.to_json(orient="records"))}
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    return 0


# ------------------------------------------------------------------------------------------ training
def train_arguments(parser: argparse.ArgumentParser) -> None:
    """``python -m lipkit train`` (also under ``torchrun --nproc_per_node N -m lipkit train``)."""
    parser.add_argument("--config", default=None, help="a YAML or JSON TrainConfig (see configs/)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set optim.lr=0.001 --set data.root=data/synthlip")
    parser.add_argument("--resume", action="store_true", help="continue from <out_dir>/last.pt if it exists")
    parser.add_argument("--print-config", action="store_true", help="print the resolved config and exit")


def train_command(args: argparse.Namespace) -> int:
    """Run ``fit``; exit 2 with the message on a config error, 1 on a non-finite loss."""
    from lipkit.training import NonFiniteLossError, TrainConfig, fit

    try:
        config = TrainConfig.from_file(args.config) if args.config else TrainConfig()
        config = config.with_overrides(args.overrides)
    except (ValueError, FileNotFoundError) as exc:
        print(f"train: {exc}")
        return 2
    if args.print_config:
        print(config.to_yaml())
        return 0
    try:
        result = fit(config, resume=args.resume)
    except NonFiniteLossError as exc:
        print(f"train: {exc}")
        return 1
    if int(os.environ.get("RANK", "0")) == 0:
        val = result["val"] or {}
        print(f"done: step {result['step']}, val mIoU {val.get('mean_iou')}, best {result['best']}, out {result['out_dir']}")
    return 0


def pretrain_arguments(parser: argparse.ArgumentParser) -> None:
    from lipkit.models import ARCHS

    parser.add_argument("--arch", choices=ARCHS, action="append", help="only this network (repeatable); default: both")
    parser.add_argument("--ship-only", action="store_true", help="do not train: re-export and re-score finished runs")
    parser.add_argument("--serial", action="store_true", help="train the networks one after the other in this process")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--print-config", action="store_true", help="print the TrainConfig of each network and exit")
    parser.add_argument("--profile", default="synthlip", choices=("synthlip", "synthlip-pascal"),
                        help="synthlip (default: checkpoints/synthlip_<arch>) or synthlip-pascal (the same SynthLIP "
                             "people with PASCAL-Person-Part's labels: checkpoints/synthlip_pascal_<arch>)")
    parser.add_argument("--run", default="", help="with --ship-only and one --arch: ship this finished run folder "
                                                  "instead of the recipe's (e.g. runs/ssl_study_pascal/base_deeplabv2)")


def pretrain_command(args: argparse.Namespace) -> int:
    from lipkit import pretrain
    from lipkit import recipe as rc
    from lipkit.models import ARCHS

    archs = tuple(args.arch or ARCHS)
    recipe = rc.SYNTHLIP_PASCAL.replace() if args.profile == "synthlip-pascal" else None
    if args.run and (not args.ship_only or len(archs) != 1):
        print("pretrain: --run DIR ships one finished run: pass it with --ship-only and one --arch")
        return 2
    if args.print_config:
        for arch in archs:
            print(f"# {arch}\n{pretrain.pretrain_config(arch, recipe).to_yaml()}")
        return 0
    if args.ship_only:
        dests = [pretrain.ship(a, Path(args.run) if args.run else None, recipe=recipe) for a in archs]
    else:
        dests = pretrain.pretrain(archs, progress=not args.quiet, parallel=not args.serial, recipe=recipe)
    for dest in dests:
        s = json.loads((dest / "scores.json").read_text())
        others = [100 * s[f"val_seed{k}"]["mean_iou"] for k in pretrain.OTHER_SEEDS if f"val_seed{k}" in s]
        print(f"{rc.rel(dest)}: val mIoU {100 * s['val']['mean_iou']:.2f}%; other seeds' val mIoU "
              f"{', '.join(f'{m:.2f}' for m in others)}% (mean {sum(others) / max(1, len(others)):.2f}%)")
    return 0


def search_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("variants", nargs="*", help="variants to run (default: all); see --list")
    parser.add_argument("--steps", type=int, default=None, help="training steps of each variant (default: the search's)")
    parser.add_argument("--serial", action="store_true", help="run the variants one after the other in this process")
    parser.add_argument("--list", action="store_true", help="print the variants and exit")
    parser.add_argument("--table", action="store_true", help="print the shipped results as a table and exit")


def search_command(args: argparse.Namespace) -> int:
    from lipkit import baseline_search as bs

    if args.list:
        for name, v in bs.VARIANTS.items():
            print(f"{name}: {v.arch}, {v.steps} steps, recipe {v.recipe}, overrides {list(v.overrides)}")
        return 0
    if args.table:
        rows = bs.table()
        if not rows:
            print(f"search: no results yet in results/{bs.SEARCH_NAME}/; run `python -m lipkit search`")
            return 1
        print(" | ".join(rows[0]))
        for row in rows:
            print(" | ".join(str(v) for v in row.values()))
        return 0
    names = args.variants or list(bs.VARIANTS)
    unknown = [n for n in names if n not in bs.VARIANTS]
    if unknown:
        print(f"search: unknown variant {unknown[0]!r}; expected one of {', '.join(bs.VARIANTS)}")
        return 2
    steps = args.steps
    if args.steps is not None and args.steps < 1:
        print(f"search: --steps {args.steps}: must be >= 1")
        return 2
    if args.serial:
        for name in names:
            print(f"{bs.run_variant(name, steps)}: done")
    else:
        bs.run_search(names, steps)
    return 0


def study_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("arms", nargs="*", help="arms to run (default: all); see --list")
    parser.add_argument("--base", action="store_true", help="train (resuming) and ship the base stage(s) first")
    parser.add_argument("--only-base", action="store_true", help="train (resuming) the base stage(s) of the arms, then exit")
    parser.add_argument("--shard", default="1/1", help="K/N: run every N-th planned run from the K-th (default 1/1)")
    parser.add_argument("--steps", type=int, default=None, help="branch steps of every run (default: the study's)")
    parser.add_argument("--list", action="store_true", help="print the planned runs (of this shard) and exit")
    parser.add_argument("--plan", action="store_true",
                        help="write plan.json from the pilot (the control and paper runs so far) and exit")
    parser.add_argument("--summary", action="store_true", help="print the paired differences of what has finished and exit")
    parser.add_argument("--readme", default="", metavar="FILE",
                        help="rewrite FILE's generated study tables (<!-- study:<metric> --> blocks) from the shipped "
                             "runs and exit (make study-readme)")
    parser.add_argument("--profile", default="synthlip",
                        help="synthlip (default: the shipped study, results/ssl_study), synthlip-pascal (RQ4 across "
                             "datasets: the same people with PASCAL-Person-Part's labels, results/ssl_study_pascal; "
                             "default arms control, paper, normalized, lr_matched, released) or paper (real LIP "
                             "at the paper's recipe, "
                             "runs/paper/ssl_study; needs --data-root)")
    parser.add_argument("--data-root", default="", help="real LIP root for --profile paper")
    parser.add_argument("--seeds", type=int, default=None,
                        help="seeds 0..N-1 of every arm (default: each arm's planned seeds, lipkit.study.ARMS)")


def _study_recipe(args: argparse.Namespace) -> Any:
    from lipkit import recipe as rc  # the profiles' recipes; imported only by the study command

    if args.profile == "synthlip":
        return None
    if args.profile == "synthlip-pascal":
        return rc.SYNTHLIP_PASCAL.replace()
    if args.profile != "paper":
        raise ValueError(f"--profile {args.profile!r}: expected synthlip, synthlip-pascal or paper")
    if not args.data_root:
        raise ValueError("--profile paper needs --data-root DIR (real LIP, flat or official layout)")
    return rc.profile_recipe("paper").replace(data_root=args.data_root)


def _study_plan_or_summary(args: argparse.Namespace, recipe: Any) -> int:
    from lipkit import study, study_plan, study_summary  # only these two actions need the statistics modules

    if args.plan:
        for line in study_plan.plan_sentences(study_plan.write_plan(recipe=recipe)):
            print(line)
        return 0
    if args.readme:
        return _study_readme(Path(args.readme), recipe)
    lr = bool(study.label_set_of(recipe).flip_pairs)  # PASCAL's labels have no left/right: joint error instead
    for metric in ("mIoU", "L/R confusion" if lr else "joint error"):
        table = study_summary.summary_table(metric, root=study.study_dir(recipe), bootstrap=0)
        print(f"== {metric} (arm - control, points)")
        print(table[["seeds", "mean diff", "verdict"]].to_string() if len(table) else "no paired runs yet")
    return 0


def _study_readme(path: Path, recipe: Any) -> int:
    from lipkit import study, study_readme, study_summary  # only this action writes the README's tables
    from lipkit.training import atomic_write_text

    if not path.is_file():
        raise ValueError(f"--readme {path}: no such file")
    root = study.study_dir(recipe)
    text = study_readme.fill_blocks(path.read_text(), study_readme.readme_blocks(root))
    atomic_write_text(path, text)
    print(f"{path}: study tables rewritten from the {len(study_summary.load_runs(root))} finished runs in {root}")
    return 0


def study_command(args: argparse.Namespace) -> int:
    from lipkit import study

    unknown = [a for a in args.arms if a not in study.ARMS]
    if unknown:
        print(f"study: unknown arm {unknown[0]!r}; expected one of {', '.join(study.ARMS)}")
        return 2
    if args.steps is not None and args.steps < 1 or args.seeds is not None and args.seeds < 1:
        print(f"study: --steps {args.steps}, --seeds {args.seeds}: must be >= 1")
        return 2
    try:
        recipe = _study_recipe(args)
        if args.plan or args.summary or args.readme:
            return _study_plan_or_summary(args, recipe)
        for arm in args.arms:
            study.check_arm(arm, recipe)  # e.g. flip_no_swap on PASCAL's labels: one line
        runs = study.shard(study.planned_runs(args.arms or None, args.seeds, recipe), args.shard)
    except (FileExistsError, ValueError) as exc:
        print(f"study: {exc}")
        return 2
    root = study.study_dir(recipe)
    if args.list:
        for arm, seed in runs:
            print(f"{study.run_name(arm, seed)}{'  (done)' if study.finished(arm, seed, root) else ''}")
        return 0
    if args.base or args.only_base:
        for arch in sorted({study.ARMS[a].arch for a, _ in runs}):
            print(f"{study.train_base(arch, recipe)}: base of {arch}")
        if args.only_base:
            return 0
    for arm, seed in runs:
        if not study.finished(arm, seed, root):
            print(f"{study.run_one(arm, seed, args.steps, recipe=recipe)}: done")
    return 0


# ------------------------------------------------------------------------------------------ CCP transfer
def transfer_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = ("The CCP transfer experiment (lipkit.transfer): DeepLabV2 trained on Clothing Co-Parsing from "
                          "scratch and from the shipped SynthLIP model, paired by seed; results/ccp_transfer/. Order: "
                          "--prepare, --zero-shot, the runs (--shard 1/2 and 2/2 side by side), --summary, --ship.")
    parser.add_argument("--ccp", default="", help="the Clothing Co-Parsing clone (default: $LIPKIT_CCP; "
                                                  "git clone https://github.com/bearpaw/clothing-co-parsing)")
    parser.add_argument("--prepare", action="store_true",
                        help="write the small copy (data/ccp-h<H>) and the synthlip arm's initial weights, then exit "
                             "(once, before starting shards side by side)")
    parser.add_argument("--zero-shot", action="store_true",
                        help="score the shipped SynthLIP DeepLabV2 on full-size CCP val at its training height and at "
                             "native size into results/ccp_transfer/zero_shot.json, then exit")
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 of each arm (default 3)")
    parser.add_argument("--steps", type=int, default=None, help="training steps of every run (default: lipkit.transfer.STEPS)")
    parser.add_argument("--shard", default="1/1", help="K/N: run every N-th planned run from the K-th (default 1/1)")
    parser.add_argument("--list", action="store_true", help="print the planned runs (of this shard) and exit")
    parser.add_argument("--summary", action="store_true", help="print and write the paired differences (summary.json) and exit")
    parser.add_argument("--ship", action="store_true", help="ship the best finished run as checkpoints/ccp_deeplabv2/ and exit")
    parser.add_argument("--readme", default="", metavar="FILE",
                        help="rewrite FILE's generated CCP results (<!-- ccp:results --> block) from the shipped files "
                             "and exit (make study-readme)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def _ccp_source(args: argparse.Namespace) -> Path:
    from lipkit.paths import ccp_root

    src = Path(args.ccp) if args.ccp else ccp_root()
    if src is None:
        raise FileNotFoundError("no CCP clone: pass --ccp DIR or set LIPKIT_CCP "
                                "(git clone https://github.com/bearpaw/clothing-co-parsing)")
    return src


def _transfer_prepare(src: Path, places: Any, progress: bool) -> None:
    from lipkit import transfer as tr
    from lipkit.recipe import rel

    height = tr.default_height()
    tr.ensure_small_copy(src, places.data, height, progress=progress)
    tr.write_init_weights(places.init)
    print(f"transfer: {rel(places.data)} (CCP at {height} px high) and {rel(places.init)} ready")


def _transfer_summary(places: Any) -> int:
    from lipkit import transfer as tr

    result = tr.summary(places.results, out=places.results / "summary.json")
    if not result["n"]:
        print(f"transfer: no seed has both arms finished in {places.results}; run `python -m lipkit transfer`")
        return 1
    for row in result["seeds"]:
        print(f"seed {row['seed']} ({row['steps']} steps): " + ", ".join(
            f"{m} scratch {row[f'scratch_{m}']:.2f} synthlip {row[f'synthlip_{m}']:.2f}" for m in tr.METRICS))
    for metric in tr.METRICS:
        iv, det = result[metric]["interval"], result[metric]["smallest_detectable"]
        print(f"{metric}, synthlip - scratch: {iv['mean']:+.2f} points (95% CI {iv['lower']:+.2f} to {iv['upper']:+.2f}, "
              f"n={iv['n']} seeds; smallest detectable at 80% power: {det:.2f})")
    return 0


def _transfer_readme(path: Path, places: Any) -> int:
    from lipkit import transfer as tr, viz_transfer as vt  # only this action writes the README's CCP block
    from lipkit.study_readme import fill_blocks
    from lipkit.training import atomic_write_text

    try:
        text = path.read_text()
        block = vt.readme_block(places.results, tr.shipped_dir() / "scores.json")
        atomic_write_text(path, fill_blocks(text, {"ccp:results": "\n".join(block)}))
    except (OSError, ValueError) as exc:
        print(f"transfer: {path}: {exc}")
        return 2
    print(f"transfer: {path}: CCP results rewritten")
    return 0


def transfer_command(args: argparse.Namespace) -> int:
    """The CCP transfer experiment: prepare, zero-shot, the runs of a shard, summary or shipping."""
    from lipkit import transfer as tr
    from lipkit.data.ccp_convert import converted_height
    from lipkit.recipe import rel
    from lipkit.study import shard

    if args.seeds < 1 or (args.steps is not None and args.steps < 1):
        print(f"transfer: --seeds {args.seeds}, --steps {args.steps}: both must be >= 1")
        return 2
    places, steps = tr.Places.default(), args.steps or tr.STEPS
    try:
        runs = shard(tr.planned_runs(args.seeds), args.shard)
    except ValueError as exc:
        print(f"transfer: {exc}")
        return 2
    if args.list:
        done = tr.run_scores(places.results)
        for arm, seed in runs:
            name = tr.run_name(arm, seed)
            print(f"{name}{'  (done)' if done.get(name, {}).get('steps') == steps else ''}")
        return 0
    if args.summary:
        return _transfer_summary(places)
    if args.readme:
        return _transfer_readme(Path(args.readme), places)
    src = _ccp_source(args)
    if args.ship:
        print(f"transfer: shipped {rel(tr.ship(src, places=places))}")
        return 0
    ready = places.init.is_file() and converted_height(places.data) == tr.default_height()
    if args.prepare or args.zero_shot or (not ready and args.shard == "1/1"):
        _transfer_prepare(src, places, progress=not args.quiet)
    elif not ready:
        print("transfer: run `python -m lipkit transfer --prepare` first (shards must not convert CCP at once)")
        return 2
    if args.zero_shot:
        result = tr.zero_shot_report(src, places, progress=not args.quiet, out=places.results / "zero_shot.json")
        for scale in ("train_height", "native", "mapped_init"):
            s = result[scale]
            print(f"{scale} ({s['height'] or 'native'} px): mIoU {100 * s['mean_iou']:.2f}, silhouette IoU "
                  f"{100 * s['silhouette_iou']:.2f} ({s['num_images']} images)")
    if args.prepare or args.zero_shot:
        return 0
    for arm, seed in runs:
        dest = tr.run_one(arm, seed, src, steps, places, progress=not args.quiet)
        full = json.loads((dest / "scores.json").read_text())["full_size"]
        print(f"{rel(dest)}: full-size val mIoU {100 * full['mean_iou']:.2f}, silhouette IoU {100 * full['silhouette_iou']:.2f}")
    return 0


# ------------------------------------------------------------------------------------------ evaluation
def _scales(text: str) -> tuple[float, ...]:
    from lipkit.evaluate import check_scales

    try:
        return check_scales([float(s) for s in text.split(",") if s.strip()])
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--scales: {exc}; write e.g. 0.75,1,1.25") from None


def _model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, help="a lipkit checkpoint (last.pt / best.pt) or a shipped model.pt")
    parser.add_argument("--scales", type=_scales, default=(1.0,), help="test scales, comma-separated (default 1)")
    parser.add_argument("--flip", action="store_true", help="also average the mirrored image's logits (mirror classes swapped)")
    parser.add_argument("--device", default="auto", help="auto (cuda if available), cpu or cuda[:N]")


def evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    _model_arguments(parser)
    parser.add_argument("--data-root", required=True, help="a LIP-format dataset folder")
    parser.add_argument("--split", default="val", help="split to score (default val)")
    parser.add_argument("--max-images", type=int, default=None, help="score only the first N images")
    parser.add_argument("--out", default=None, help="also write the scores to this JSON file")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def evaluate_command(args: argparse.Namespace) -> int:
    """Score a checkpoint on a split and print the headline numbers (and write --out JSON)."""
    from lipkit.data import open_split
    from lipkit.evaluate import evaluate
    from lipkit.labels import get_label_set
    from lipkit.training import load_model_from_checkpoint, resolve_device

    device = resolve_device(args.device)
    model, config = load_model_from_checkpoint(args.checkpoint, device=device)
    label_set = get_label_set(config.data.label_set)
    dataset = open_split(args.data_root, args.split, label_set)
    scores = evaluate(model, dataset, label_set, scales=args.scales, flip=args.flip, device=device,
                      max_images=args.max_images, progress=not args.no_progress)
    print(f"{args.split}: {scores['num_images']} images, pixel acc {100 * scores['pixel_accuracy']:.2f}, "
          f"mean acc {100 * scores['mean_accuracy']:.2f}, mIoU {100 * scores['mean_iou']:.2f} "
          f"(absent as 0: {100 * scores['absent_zero']['mean_iou']:.2f}), joint error {scores['joint_error']}")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(scores, indent=1))
    return 0


def predict_arguments(parser: argparse.ArgumentParser) -> None:
    _model_arguments(parser)
    parser.add_argument("images", nargs="+", help="image files to parse")
    parser.add_argument("--out", required=True, help="folder for <name>.png (palette labels) and <name>_overlay.png")
    parser.add_argument("--input-height", default="train",
                        help="height (px) each image is parsed at, labels mapped back to its own size: 'train' (default: "
                             "the median height of the model's training images, recorded in a shipped model.pt; a "
                             "model parses people best at the scale it learnt), 'native' (the image's own size) or a number")


def _input_height(text: str, checkpoint: str) -> int | None:
    """``--input-height``: None for the native size, else the height in pixels."""
    from lipkit.training import train_image_height

    if text == "native":
        return None
    if text == "train":
        height = train_image_height(checkpoint)
        if height is None:
            print(f"predict: {checkpoint} records no training image height; parsing at each image's own size")
        return height
    if not text.isdigit() or int(text) < 8:
        raise ValueError(f"--input-height {text!r}: 'train', 'native' or a height of at least 8 px")
    return int(text)


def predict_command(args: argparse.Namespace) -> int:
    """Parse each image; write its label map as a palette PNG and an overlay next to it in --out."""
    from PIL import Image
    from tqdm.auto import tqdm

    from lipkit.data import read_image, write_label_png
    from lipkit.evaluate import predict_labels
    from lipkit.labels import get_label_set
    from lipkit.training import load_model_from_checkpoint, resolve_device
    from lipkit.viz import overlay

    stems = [Path(p).stem for p in args.images]
    if len(set(stems)) != len(stems):
        print("predict: two input images share a file name; outputs would overwrite each other")
        return 2
    device = resolve_device(args.device)
    model, config = load_model_from_checkpoint(args.checkpoint, device=device)
    try:
        height = _input_height(args.input_height, args.checkpoint)
    except ValueError as exc:
        print(f"predict: {exc}")
        return 2
    label_set = get_label_set(config.data.label_set)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    for path, stem in zip(tqdm(args.images, desc="predict"), stems):
        image = read_image(path)
        at = 1.0 if height is None else height / image.shape[0]  # scales are relative to the image: rescale them
        labels = predict_labels(model, image, scales=[s * at for s in args.scales], flip=args.flip, label_set=label_set)
        write_label_png(out_dir / f"{stem}.png", labels, label_set)
        Image.fromarray(overlay(image, labels, label_set)).save(out_dir / f"{stem}_overlay.png")
    print(f"wrote {2 * len(stems)} files to {out_dir}")
    return 0


def score_arguments(parser: argparse.ArgumentParser) -> None:
    from lipkit.labels import LABEL_SETS
    from lipkit.score import ABSENT_RULES, RESIZE_RULES

    parser.add_argument("pred_dir", type=Path, help="folder of predicted label PNGs named <id>.png (id or palette colour PNGs)")
    parser.add_argument("--data-root", required=True, help="the dataset root holding the ground truth (LIP layout, or PASCAL)")
    parser.add_argument("--split", default="val", help="split whose ground truth to score against (default val)")
    parser.add_argument("--label-set", default=None, choices=sorted(LABEL_SETS),
                        help="label set of ids and palette (default: the one the data root declares in lipkit_dataset.json, else lip)")
    parser.add_argument("--absent", choices=ABSENT_RULES, default=None,
                        help="absent-class rule to report: nan (LIP_SSL, excluded) or zero (SCHP/CE2P/HRNet); default both")
    parser.add_argument("--resize", choices=RESIZE_RULES, default="none",
                        help="predictions of another size: none (an error), nearest (prediction to the ground truth's "
                             "size) or gt-nearest (ground truth to the prediction's; not the benchmark protocol)")
    subset = parser.add_mutually_exclusive_group()
    subset.add_argument("--ids", type=Path, default=None, help="score only the ids listed in this file (one per line)")
    subset.add_argument("--max-images", type=int, default=None, help="score only the first N images of the split")
    parser.add_argument("--allow-missing", action="store_true", help="score missing predictions as all background (and say how many)")
    parser.add_argument("--json", type=Path, default=None, help="also write the scores and protocol as JSON here")
    parser.add_argument("--csv", type=Path, default=None, help="also write them as long-format CSV here")
    parser.add_argument("--workers", type=int, default=None, help="PNG decoding threads (default: usable cores minus one, 1 to 8)")
    parser.add_argument("--max-files", type=int, default=10, help="files listed per problem kind (0: all)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def score_command(args: argparse.Namespace) -> int:
    """Score a folder of predictions; 0 when scored, 1 when the inputs have problems (all listed), 2 for bad options."""
    from lipkit.data import LIPDataError
    from lipkit.score import ABSENT_RULES, ScoreError, score_folder

    try:
        label_set = _label_set_of(args.data_root, args.label_set) or "lip"
        report = score_folder(args.pred_dir, args.data_root, args.split, label_set, resize=args.resize,
                              ids_file=args.ids, max_images=args.max_images, allow_missing=args.allow_missing,
                              absent=(args.absent,) if args.absent else ABSENT_RULES, workers=args.workers,
                              progress=not args.no_progress)
    except ScoreError as err:
        print(err.format(args.max_files))
        return 1
    except (LIPDataError, ValueError) as err:
        print(f"score: {err}")
        return 2
    print(report.format())
    for path, write in ((args.json, report.write_json), (args.csv, report.write_csv)):
        if path is not None:
            print(f"wrote {write(path)}")
    return 0


# ------------------------------------------------------------------------------------------ pipeline
def reproduce_arguments(parser: argparse.ArgumentParser) -> None:
    from lipkit.pipeline import PROFILES

    parser.add_argument("--profile", default="smoke", choices=sorted(PROFILES), help="parameter profile (see --list)")
    parser.add_argument("--data-root", default=None, help="real LIP root (required by the paper profile)")
    parser.add_argument("--only", default="", help="comma-separated notebook numbers, e.g. 01,02")
    parser.add_argument("--resume", action="store_true",
                        help="skip notebooks that succeeded last time with the same content and parameters")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                        help="override a parameter in every notebook that declares it, e.g. --param DEVICE=cuda "
                             "(repeatable; VALUE is a Python literal or a string)")
    parser.add_argument("--list", action="store_true", help="print the profile table and exit")
    parser.add_argument("--rehearse", action="store_true",
                        help="with --profile paper: the paper path on this CPU, steps and val images capped "
                             "(lipkit.rehearsal), into runs/paper-rehearsal/")
    parser.add_argument("--store-outputs", action="store_true",
                        help="instead: execute notebooks/NN_*.ipynb in place with their own (smoke) defaults, "
                             "storing the outputs nbval compares against (after a change to them or to SynthLIP)")


def reproduce_command(args: argparse.Namespace) -> int:
    from lipkit import paths
    from lipkit.pipeline import PipelineError, discover, parse_param, profile_table, reproduce, store_outputs

    if args.list:
        print(profile_table())
        return 0
    only = [s for s in args.only.split(",") if s.strip()] or None
    if args.rehearse:
        return rehearse_command(args)
    try:
        if args.store_outputs:
            for nb in discover(paths.NOTEBOOKS_DIR, only):
                start = time.perf_counter()
                store_outputs(nb)
                print(f"{nb.name}: outputs stored in {time.perf_counter() - start:.1f} s")
            return 0
        overrides = dict(parse_param(p) for p in args.param)
        summary = reproduce(args.profile, data_root=args.data_root, only=only, resume=args.resume, params=overrides)
    except PipelineError as err:
        print(f"error: {err}")
        return 2
    print()
    print(summary.table())
    if summary.failure is not None:
        print()
        print(f"error: {summary.failure.error}")
        print("Earlier notebooks' outputs are kept; fix the notebook and rerun with --resume to continue from it.")
        return 1
    return 0


def rehearse_command(args: argparse.Namespace) -> int:
    from lipkit.pipeline import PipelineError, parse_param
    from lipkit.rehearsal import rehearse

    if args.profile != "paper" or not args.data_root:
        print("reproduce --rehearse: rehearses the paper profile; pass --profile paper --data-root ROOT (real LIP, "
              "or python -m lipkit synth ROOT --train 30462 --val 10000 --test 10000 --layout official)")
        return 2
    try:  # --param shrinks it further (the miniature in tests/test_rehearsal.py)
        report = rehearse(args.data_root, overrides=dict(parse_param(p) for p in args.param))
    except (PipelineError, ValueError, TypeError) as err:
        print(f"error: {err}")
        return 2
    print()
    print(report.text())
    return 0 if report.ok else 1


# ------------------------------------------------------------------------------------------ dispatch
Arguments = Callable[[argparse.ArgumentParser], None]
Command = Callable[[argparse.Namespace], int]

COMMANDS: dict[str, tuple[Arguments, Command, str]] = {
    "synth": (synth_arguments, synth_command, "write a SynthLIP dataset in LIP (or PASCAL-Person-Part) layout"),
    "convert": (convert_arguments, convert_command, "convert another dataset (ccp: Clothing Co-Parsing) into LIP's layout"),
    "check-data": (check_data_arguments, check_data_command, "scan a dataset split and report every problem"),
    "stats": (stats_arguments, stats_command, "dataset statistics of a LIP-format split"),
    "train": (train_arguments, train_command, "train a parsing model from a config"),
    "evaluate": (evaluate_arguments, evaluate_command, "score a checkpoint on a split"),
    "predict": (predict_arguments, predict_command, "parse images, write label PNGs and overlays"),
    "score": (score_arguments, score_command, "score a folder of predicted label PNGs under a stated protocol"),
    "pretrain": (pretrain_arguments, pretrain_command, "train the SynthLIP baselines and ship them in checkpoints/"),
    "search": (search_arguments, search_command, "the baseline search: recipe variants trained for equal time (results/)"),
    "study": (study_arguments, study_command, "the SSL study: arms x seeds from one base, resumable, sharded (results/)"),
    "transfer": (transfer_arguments, transfer_command,
                 "the CCP transfer experiment: SynthLIP init vs scratch on real photos, paired by seed (results/)"),
    "reproduce": (reproduce_arguments, reproduce_command, "run the numbered notebooks with papermill for a profile"),
}


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser (command names and one-line help; each command parses its own arguments)."""
    parser = argparse.ArgumentParser(prog="python -m lipkit", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (_arguments, _command, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        build_parser().parse_args(argv)  # prints help or the "invalid choice" error and exits
        return 2
    name, rest = argv[0], argv[1:]
    add_arguments, command, help_text = COMMANDS[name]
    parser = argparse.ArgumentParser(prog=f"python -m lipkit {name}", description=help_text)
    add_arguments(parser)
    args = parser.parse_args(rest)
    try:
        return int(command(args) or 0)
    except _user_errors() as exc:  # bad files or settings: one line naming them, no traceback
        print(f"{name}: {exc}", file=sys.stderr)
        return 2


def _user_errors() -> tuple[type[Exception], ...]:
    """Errors that mean bad input (a file or a setting), each message naming what and what to do."""
    from lipkit.data.io import LIPDataError
    from lipkit.models import PretrainedWeightsError
    from lipkit.training import CheckpointError

    return (LIPDataError, CheckpointError, PretrainedWeightsError, FileNotFoundError)


__all__ = ["COMMANDS", "build_parser", "main"]
