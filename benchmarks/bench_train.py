"""Training-step throughput, peak memory and the SSL overhead, as ``lipkit.training`` runs a step.

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
    python benchmarks/bench_train.py --device cuda --peak      # GPU: paper models, batch 10 @ 321, fp32 vs bf16+channels_last,
                                                               # + the measured matmul peak and the fraction of it reached

On CUDA (and with ``--flops``) the training FLOPs of one step are counted with
``torch.utils.flop_counter.FlopCounterMode`` (convolutions and matmuls, forward + backward), so the
table gives achieved TFLOP/s; with ``--peak`` an n x n x n matmul (8192 on CUDA) is timed in bf16, fp32
with TF32 and strict fp32, and each row says which fraction of the matching peak it reaches (fp32 rows
against TF32, PyTorch's default for cuDNN convolutions). The paper configurations freeze BatchNorm as
``fit`` does for ImageNet-initialised backbones; without ImageNet weights here, the running statistics
are first calibrated on the batch (101 random layers would otherwise overflow in bf16).
``benchmarks/gpu_check.sh`` runs this script on a lent GPU with ``--markdown`` into its report.
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

# name -> (arch, backbone, width, batch, crop, timed steps, BatchNorm frozen as in the paper recipe)
CPU_CONFIGS: dict[str, tuple[str, str, float, int, int, int, bool]] = {
    "small (deeplabv2 r18 w0.25, cpu_small.yaml)": ("deeplabv2", "resnet18", 0.25, 8, 96, 12, False),
    "DeepLabV2 ResNet-101 @ 321": ("deeplabv2", "resnet101", 1.0, 1, 321, 1, False),
}
LARGE = {"DeepLabV2 ResNet-101 @ 321"}
GPU_CONFIGS: dict[str, tuple[str, str, float, int, int, int, bool]] = {
    "DeepLabV2 ResNet-101 (paper: batch 10 @ 321)": ("deeplabv2", "resnet101", 1.0, 10, 321, 10, True),
    "Attention-to-Scale VGG-16 (paper: batch 10 @ 321)": ("attention", "vgg16", 1.0, 10, 321, 10, True),
}
ALL = {**CPU_CONFIGS, **GPU_CONFIGS}
# matmul peak rows: label -> (dtype name, TF32 allowed); fp32 training rows are compared with TF32
PEAK_KINDS = {"bf16": ("bfloat16", False), "fp32 with TF32": ("float32", True), "fp32 strict": ("float32", False)}


def _set_tf32(on: bool) -> None:
    import torch

    torch.backends.cuda.matmul.allow_tf32 = on


def matmul_peak(device: str, n: int, repeats: int = 10) -> dict[str, float]:
    """TFLOP/s of an n x n x n matmul per ``PEAK_KINDS`` entry: median of ``repeats`` after 3 warm-up calls."""
    import torch

    dev = torch.device(device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    peaks = {}
    for label, (dtype_name, tf32) in PEAK_KINDS.items():
        _set_tf32(tf32)
        a = torch.randn(n, n, device=dev, dtype=getattr(torch, dtype_name))
        b = torch.randn(n, n, device=dev, dtype=getattr(torch, dtype_name))
        for _ in range(3):
            a @ b
        sync()
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            a @ b
            sync()
            times.append(time.perf_counter() - t0)
        peaks[label] = 2 * n**3 / statistics.median(times) / 1e12
        del a, b
    _set_tf32(False)
    return peaks


def _freeze_bn_calibrated(model, x, autocast) -> None:
    """Frozen BatchNorm as ``fit`` runs the paper configs, with running statistics calibrated on ``x``."""
    import torch
    from torch import nn

    from lipkit.training.build import freeze_bn_params, set_bn_eval  # fit's own BatchNorm policy

    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.momentum = None  # cumulative average: one pass sets the statistics of this batch
    with torch.no_grad(), autocast():
        model(x)
    set_bn_eval(model)
    freeze_bn_params(model)


def _batch(data_root: Path, batch: int, crop: int):
    """One batch of real SynthLIP training crops."""
    import torch

    from lipkit.data import LIPDataset
    from lipkit.data.transforms import train_transform
    from lipkit.labels import LIP
    from lipkit.training import TrainItems

    items = TrainItems(LIPDataset(data_root, "train"), train_transform(LIP, crop_size=crop), seed=0)
    samples = [items[(0, i % len(items))] for i in range(batch)]
    return torch.stack([s["image"] for s in samples]), torch.stack([s["label"] for s in samples]).long()


def run_one(name: str, data_root: str, threads: int, device: str, bf16: bool, modes: list[str],
            count_flops: bool = False) -> dict:
    import torch

    from lipkit.models import build_model
    from lipkit.ssl import StructureSensitiveLoss

    torch.set_num_threads(threads)
    arch, backbone, width, batch, crop, steps, freeze_bn = ALL[name]
    dev = torch.device(device)
    cuda = dev.type == "cuda"
    if cuda:
        torch.backends.cudnn.benchmark = True
    fmt = torch.channels_last if (cuda and bf16) else torch.contiguous_format
    torch.manual_seed(0)
    model = build_model(arch, backbone, 20, width=width).to(dev, memory_format=fmt).train()
    x, y = _batch(Path(data_root), batch, crop)
    x, y = x.to(dev).contiguous(memory_format=fmt), y.to(dev)

    def autocast():
        return torch.autocast(dev.type, dtype=torch.bfloat16, enabled=cuda and bf16)

    if freeze_bn:
        _freeze_bn_calibrated(model, x, autocast)
    head = {id(p) for p in model.classifier_parameters()}
    opt = torch.optim.SGD([{"params": [p for p in model.parameters() if id(p) not in head and p.requires_grad], "lr": 1e-4},
                           {"params": [p for p in model.classifier_parameters() if p.requires_grad], "lr": 1e-3}],
                          lr=1e-4, momentum=0.9, weight_decay=5e-4)
    losses = {m: StructureSensitiveLoss(m) for m in modes}

    def step(mode: str) -> float:
        if cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        with autocast():
            out = model(x)
        outputs = [out["out"], *out.get("scales", ())]
        loss = sum(losses[mode](o.float(), y).loss for o in outputs)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if cuda:
            torch.cuda.synchronize()
        return time.perf_counter() - t0

    flops_per_image = None
    if count_flops:
        from torch.utils.flop_counter import FlopCounterMode

        with FlopCounterMode(display=False) as counter:
            step(modes[0])
        flops_per_image = counter.get_total_flops() / batch
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
              "img_per_s": {m: batch / t for m, t in med.items()}, "flops_per_image": flops_per_image,
              "bn_frozen": freeze_bn}
    if cuda:
        result["peak_mem_mb"] = torch.cuda.max_memory_allocated() / 2**20
    else:
        result["peak_mem_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return result


def run_fit(data_root: str, threads: int, iterations: int) -> dict:
    """End-to-end ``fit`` img/s with cpu_small.yaml's model and crops (data loading included)."""
    from lipkit.paths import CONFIGS_DIR
    from lipkit.training import TrainConfig, fit

    with tempfile.TemporaryDirectory() as out:
        config = TrainConfig.from_yaml(CONFIGS_DIR / "cpu_small.yaml").with_overrides([
            f"data.root={data_root}", "data.val_split=", f"iterations={iterations}", f"threads={threads}",
            f"out_dir={out}", "progress=false", f"log_every={iterations}", "checkpoint_every=0"])
        t0 = time.perf_counter()
        fit(config)
        wall = time.perf_counter() - t0
        line = json.loads(Path(out, "metrics.jsonl").read_text().splitlines()[-1])
    return {"iterations": iterations, "batch": config.batch_size, "img_per_s": line["img_per_s"], "wall_s": wall}


def _emit(lines: list[str], markdown: str | None) -> None:
    """Print ``lines``; also append them to the ``markdown`` file when given (gpu_check.sh's report)."""
    text = "\n".join(lines)
    print(text, flush=True)
    if markdown:
        with open(markdown, "a") as fh:
            fh.write(text + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip-large", action="store_true")
    parser.add_argument("--fit", action="store_true", help="also time fit() end to end on SynthLIP")
    parser.add_argument("--fit-iterations", type=int, default=30)
    parser.add_argument("--data-root", default="", help="a LIP-format folder (default: a temporary SynthLIP)")
    parser.add_argument("--flops", action="store_true", help="count training FLOPs per image (always on with CUDA)")
    parser.add_argument("--peak", action="store_true", help="measure the matmul peak and report the fraction reached")
    parser.add_argument("--peak-size", type=int, default=0, help="matmul n for --peak (default 8192 on CUDA, 1024 on CPU)")
    parser.add_argument("--markdown", default=None, help="also append the report to this markdown file")
    parser.add_argument("--json", default=None, help="write the raw results to this JSON file")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--bf16", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--modes", default="none,paper", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one, args.data_root, args.threads, args.device, args.bf16, args.modes.split(","),
                                 count_flops=args.flops)))
        return

    import torch

    cuda = args.device.startswith("cuda")
    count_flops = args.flops or cuda
    dev_name = torch.cuda.get_device_name(0) if cuda else f"CPU, {args.threads} threads"
    results: dict = {"device": dev_name, "torch": torch.__version__, "training": {}}
    peaks: dict[str, float] = {}
    if args.peak:
        torch.set_num_threads(args.threads)
        n = args.peak_size or (8192 if cuda else 1024)
        peaks = matmul_peak(args.device, n)
        results["matmul_tflops"] = peaks
        _emit([f"\n## Matrix-multiply peak ({n} x {n} x {n}, median of 10 after 3 warm-up; {dev_name})\n",
               "| dtype | TFLOP/s |", "|---|---:|", *(f"| {k} | {v:.1f} |" for k, v in peaks.items())], args.markdown)

    with tempfile.TemporaryDirectory() as tmp:
        root = args.data_root
        if not root:
            from lipkit.data.synth import make_synthlip

            root = str(make_synthlip(Path(tmp) / "synth", n_train=64, n_val=0, seed=0, progress=False))
        configs = GPU_CONFIGS if cuda else {k: v for k, v in CPU_CONFIGS.items() if not (args.skip_large and k in LARGE)}
        variants = [("fp32", False, "fp32 with TF32"), ("bf16+channels_last", True, "bf16")] if cuda else [("fp32", False, "fp32 strict")]
        rows = []
        for name in configs:
            for label, bf16, peak_key in variants:
                cmd = [sys.executable, __file__, "--one", name, "--data-root", root, "--threads", str(args.threads),
                       "--device", args.device] + (["--bf16"] if bf16 else []) + (["--flops"] if count_flops else [])
                proc = subprocess.run(cmd, capture_output=True, text=True)
                if proc.returncode != 0:
                    last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
                    rows.append(f"| {name} | {label} | failed: {last[:120]} | | | | | | | |")
                    continue
                r = json.loads(proc.stdout.strip().splitlines()[-1])
                results["training"][f"{name} {label}"] = r
                ratio = r["median_s"]["paper"] / r["median_s"]["none"]
                flops, achieved, frac = r["flops_per_image"], "-", "-"
                if flops:
                    achieved_tflops = flops * r["img_per_s"]["none"] / 1e12
                    achieved = f"{achieved_tflops:.2f}"
                    if peak_key in peaks:
                        frac = f"{achieved_tflops / peaks[peak_key]:.1%} of {peak_key}"
                rows.append(f"| {name} | {label} | {r['batch']}x{r['crop']} | {r['img_per_s']['none']:.2f} | "
                            f"{r['img_per_s']['paper']:.2f} | {ratio:.3f} | {r['peak_mem_mb']:.0f} | "
                            f"{f'{flops / 1e9:.1f}' if flops else '-'} | {achieved} | {frac} |")
        _emit([f"\n## Training step (forward + loss on every output + backward + SGD), torch {torch.__version__}, "
               f"{dev_name}; median over steps, paper/none interleaved\n",
               "| model | precision | batch x crop | img/s (none) | img/s (paper) | SSL overhead (paper/none) | "
               "peak memory (MiB) | training GFLOP/image | achieved TFLOP/s | fraction of measured peak |",
               "|---|---|---|---:|---:|---:|---:|---:|---:|---|", *rows], args.markdown)
        if args.fit and not cuda:
            f = run_fit(root, args.threads, args.fit_iterations)
            results["fit"] = f
            print(f"\nEnd-to-end fit (cpu_small.yaml, {f['iterations']} iterations of batch {f['batch']}, "
                  f"data loading in the main process): {f['img_per_s']:.2f} img/s ({f['wall_s']:.1f} s wall incl. set-up)")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
