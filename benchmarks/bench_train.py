"""Training-step throughput, peak memory and the SSL overhead, as ``lipkit.train`` runs a step.

A step = forward, ``StructureSensitiveLoss`` on every output (fused + per-scale for attention),
backward, SGD update (two parameter groups, momentum, weight decay): the same calls ``fit`` makes.
Inputs are real SynthLIP training crops (train transform: scale, crop, flip), so the joint term
sees real body parts. Each configuration runs in its own subprocess (peak RSS / CUDA peak memory
is that configuration's); one untimed warm-up step, then the median of the timed steps. The SSL
overhead ratio compares modes "paper" and "none" with the steps interleaved (the machine may be
shared, so alternating keeps both under the same load).

    .venv/bin/python benchmarks/bench_train.py                 # CPU: small model + ResNet-101 @ 321 (1 step)
    .venv/bin/python benchmarks/bench_train.py --skip-large
    .venv/bin/python benchmarks/bench_train.py --fit           # + end-to-end fit img/s (data loading included)
    python benchmarks/bench_train.py --device cuda             # GPU: paper models, batch 10 @ 321, fp32 vs bf16+channels_last
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# name -> (arch, backbone, width, batch, crop, timed steps)
CPU_CONFIGS: dict[str, tuple[str, str, float, int, int, int]] = {
    "small (deeplabv2 r18 w0.25, cpu_small.yaml)": ("deeplabv2", "resnet18", 0.25, 8, 96, 12),
    "DeepLabV2 ResNet-101 @ 321": ("deeplabv2", "resnet101", 1.0, 1, 321, 1),
}
LARGE = {"DeepLabV2 ResNet-101 @ 321"}
GPU_CONFIGS: dict[str, tuple[str, str, float, int, int, int]] = {
    "DeepLabV2 ResNet-101 (paper: batch 10 @ 321)": ("deeplabv2", "resnet101", 1.0, 10, 321, 10),
    "Attention-to-Scale VGG-16 (paper: batch 10 @ 321)": ("attention", "vgg16", 1.0, 10, 321, 10),
}
ALL = {**CPU_CONFIGS, **GPU_CONFIGS}


def _batch(data_root: Path, batch: int, crop: int):
    """One batch of real SynthLIP training crops."""
    import torch

    from lipkit.data import LIPDataset
    from lipkit.data.transforms import train_transform
    from lipkit.labels import LIP
    from lipkit.train import TrainItems

    items = TrainItems(LIPDataset(data_root, "train"), train_transform(LIP, crop_size=crop), seed=0)
    samples = [items[(0, i % len(items))] for i in range(batch)]
    return torch.stack([s["image"] for s in samples]), torch.stack([s["label"] for s in samples]).long()


def run_one(name: str, data_root: str, threads: int, device: str, bf16: bool, modes: list[str]) -> dict:
    import torch

    from lipkit.models import build_model
    from lipkit.ssl import StructureSensitiveLoss

    torch.set_num_threads(threads)
    arch, backbone, width, batch, crop, steps = ALL[name]
    dev = torch.device(device)
    cuda = dev.type == "cuda"
    fmt = torch.channels_last if (cuda and bf16) else torch.contiguous_format
    torch.manual_seed(0)
    model = build_model(arch, backbone, 20, width=width).to(dev, memory_format=fmt).train()
    head = {id(p) for p in model.classifier_parameters()}
    opt = torch.optim.SGD([{"params": [p for p in model.parameters() if id(p) not in head], "lr": 1e-4},
                           {"params": list(model.classifier_parameters()), "lr": 1e-3}],
                          lr=1e-4, momentum=0.9, weight_decay=5e-4)
    x, y = _batch(Path(data_root), batch, crop)
    x, y = x.to(dev).contiguous(memory_format=fmt), y.to(dev)
    losses = {m: StructureSensitiveLoss(m) for m in modes}

    def step(mode: str) -> float:
        if cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=cuda and bf16):
            out = model(x)
        outputs = [out["out"], *out.get("scales", ())]
        loss = sum(losses[mode](o.float(), y).loss for o in outputs)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if cuda:
            torch.cuda.synchronize()
        return time.perf_counter() - t0

    for m in modes:
        step(m)  # warm-up
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    times: dict[str, list[float]] = {m: [] for m in modes}
    for _ in range(steps):
        for m in modes:  # interleaved
            times[m].append(step(m))
    med = {m: statistics.median(t) for m, t in times.items()}
    result = {"name": name, "batch": batch, "crop": crop, "steps": steps, "median_s": med,
              "img_per_s": {m: batch / t for m, t in med.items()}}
    if cuda:
        result["peak_mem_mb"] = torch.cuda.max_memory_allocated() / 2**20
    else:
        result["peak_mem_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return result


def run_fit(data_root: str, threads: int, iterations: int) -> dict:
    """End-to-end ``fit`` img/s with cpu_small.yaml's model and crops (data loading included)."""
    from lipkit.paths import CONFIGS_DIR
    from lipkit.train import TrainConfig, fit

    with tempfile.TemporaryDirectory() as out:
        config = TrainConfig.from_yaml(CONFIGS_DIR / "cpu_small.yaml").with_overrides([
            f"data.root={data_root}", "data.val_split=", f"iterations={iterations}", f"threads={threads}",
            f"out_dir={out}", "progress=false", f"log_every={iterations}", "checkpoint_every=0"])
        t0 = time.perf_counter()
        fit(config)
        wall = time.perf_counter() - t0
        line = json.loads(Path(out, "metrics.jsonl").read_text().splitlines()[-1])
    return {"iterations": iterations, "batch": config.batch_size, "img_per_s": line["img_per_s"], "wall_s": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip-large", action="store_true")
    parser.add_argument("--fit", action="store_true", help="also time fit() end to end on SynthLIP")
    parser.add_argument("--fit-iterations", type=int, default=30)
    parser.add_argument("--data-root", default="", help="a LIP-format folder (default: a temporary SynthLIP)")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--bf16", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--modes", default="none,paper", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one, args.data_root, args.threads, args.device, args.bf16, args.modes.split(","))))
        return

    import torch

    with tempfile.TemporaryDirectory() as tmp:
        root = args.data_root
        if not root:
            from lipkit.data.synth import make_synthlip

            root = str(make_synthlip(Path(tmp) / "synth", n_train=64, n_val=0, seed=0, progress=False))
        cuda = args.device.startswith("cuda")
        configs = GPU_CONFIGS if cuda else {k: v for k, v in CPU_CONFIGS.items() if not (args.skip_large and k in LARGE)}
        variants = [("fp32", False), ("bf16+channels_last", True)] if cuda else [("fp32", False)]
        rows = []
        for name in configs:
            for label, bf16 in variants:
                cmd = [sys.executable, __file__, "--one", name, "--data-root", root, "--threads", str(args.threads),
                       "--device", args.device] + (["--bf16"] if bf16 else [])
                proc = subprocess.run(cmd, capture_output=True, text=True)
                if proc.returncode != 0:
                    rows.append(f"| {name} | {label} | failed: {proc.stderr.strip().splitlines()[-1][:80]} | | | | |")
                    continue
                r = json.loads(proc.stdout.strip().splitlines()[-1])
                ratio = r["median_s"]["paper"] / r["median_s"]["none"]
                rows.append(f"| {name} | {label} | {r['batch']}x{r['crop']} | {r['img_per_s']['none']:.2f} | "
                            f"{r['img_per_s']['paper']:.2f} | {ratio:.3f} | {r['peak_mem_mb']:.0f} |")
        dev_name = torch.cuda.get_device_name(0) if cuda else f"CPU, {args.threads} threads"
        print(f"\nTraining step (forward + loss on every output + backward + SGD), torch {torch.__version__}, {dev_name}; "
              "median over steps, paper/none interleaved.\n")
        print("| model | precision | batch x crop | img/s (none) | img/s (paper) | SSL overhead (paper/none) | peak memory (MiB) |")
        print("|---|---|---|---|---|---|---|")
        print("\n".join(rows))
        if args.fit and not cuda:
            f = run_fit(root, args.threads, args.fit_iterations)
            print(f"\nEnd-to-end fit (cpu_small.yaml, {f['iterations']} iterations of batch {f['batch']}, "
                  f"data loading in the main process): {f['img_per_s']:.2f} img/s ({f['wall_s']:.1f} s wall incl. set-up)")


if __name__ == "__main__":
    main()
