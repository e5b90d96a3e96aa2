"""Forward+backward throughput and peak memory of lipkit models on CPU.

Each configuration runs in its own subprocess (so peak RSS is that configuration's), with
``torch.set_num_threads(threads)``; one untimed warm-up step, then ``steps`` timed steps of
forward + cross-entropy on logits upsampled to the input size (as the training loss does) +
backward. Reports the median step time (the machine may be shared) and prints a markdown table.

    .venv/bin/python benchmarks/bench_models.py                  # small configs + ResNet-101 @ 321
    .venv/bin/python benchmarks/bench_models.py --skip-large     # small configs only
    python benchmarks/bench_models.py --device cuda --paper [--bf16]  # paper models, batch 10 @ 321
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

# name -> (arch, backbone, width, output_stride, batch, size, steps)
CONFIGS: dict[str, tuple[str, str, float, int, int, int, int]] = {
    "small (deeplabv2 r18 w0.25 os8)": ("deeplabv2", "resnet18", 0.25, 8, 8, 128, 20),
    "small os16 (deeplabv2 r18 w0.25 os16)": ("deeplabv2", "resnet18", 0.25, 16, 8, 128, 20),
    "small attention (r18 w0.25 os8)": ("attention", "resnet18", 0.25, 8, 8, 128, 10),
    "r18 w0.5 os8": ("deeplabv2", "resnet18", 0.5, 8, 8, 128, 10),
    "DeepLabV2 ResNet-101 (full, os8)": ("deeplabv2", "resnet101", 1.0, 8, 1, 321, 1),
}
LARGE = {"DeepLabV2 ResNet-101 (full, os8)"}
# The paper's two networks at the paper's batch and crop (for a GPU).
PAPER: dict[str, tuple[str, str, float, int, int, int, int]] = {
    "Attention-to-Scale VGG-16 (paper)": ("attention", "vgg16", 1.0, 8, 10, 321, 10),
    "DeepLabV2 ResNet-101 (paper)": ("deeplabv2", "resnet101", 1.0, 8, 10, 321, 10),
}
ALL = {**CONFIGS, **PAPER}


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def run_one(name: str, threads: int, device: str = "cpu", bf16: bool = False) -> dict[str, float | str]:
    import torch
    import torch.nn.functional as F

    from lipkit.models import build_model

    torch.set_num_threads(threads)
    arch, backbone, width, stride, batch, size, steps = ALL[name]
    torch.manual_seed(0)
    base_rss = _peak_rss_mb()
    dev = torch.device(device)
    cuda = dev.type == "cuda"
    fmt = torch.channels_last if cuda else torch.contiguous_format
    model = build_model(arch, backbone, 20, width=width, output_stride=stride).train()
    model = model.to(dev, memory_format=fmt)
    x = torch.randn(batch, 3, size, size, device=dev).contiguous(memory_format=fmt)
    y = torch.randint(0, 20, (batch, size, size), device=dev)

    def step() -> None:
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16):
            out = model(x)["out"]
            loss = F.cross_entropy(F.interpolate(out.float(), size=(size, size), mode="bilinear",
                                                 align_corners=False), y)
        model.zero_grad(set_to_none=True)
        loss.backward()

    step()  # warm-up
    if cuda:
        step()
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(steps):  # per-step times: the median resists bursts from other processes
        t0 = time.perf_counter()
        step()
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    dt = statistics.median(times)
    peak = torch.cuda.max_memory_allocated() / 2**20 if cuda else _peak_rss_mb()
    return {"config": name + (" bf16" if bf16 else ""), "batch": batch, "size": size,
            "threads": threads, "steps": steps, "device": device,
            "s_per_step": dt, "img_per_s": batch / dt, "mean_s_per_step": statistics.fmean(times),
            "params_M": sum(p.numel() for p in model.parameters()) / 1e6,
            "peak_MB": peak, "rss_before_model_MB": base_rss}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--skip-large", action="store_true", help="skip DeepLabV2 ResNet-101 at 321 px")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--paper", action="store_true", help="the paper's models at batch 10, 321 px")
    p.add_argument("--bf16", action="store_true", help="bf16 autocast (CUDA)")
    p.add_argument("--only", help="run one configuration in-process and print JSON (internal)")
    args = p.parse_args(argv)
    if args.only:
        print(json.dumps(run_one(args.only, args.threads, args.device, args.bf16)))
        return 0
    rows = []
    names = list(PAPER) if args.paper else [n for n in CONFIGS if not (args.skip_large and n in LARGE)]
    for name in names:
        cmd = [sys.executable, __file__, "--only", name, "--threads", str(args.threads),
               "--device", args.device] + (["--bf16"] if args.bf16 else [])
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            print(proc.stderr, file=sys.stderr)
            return proc.returncode
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(f"done: {name}", file=sys.stderr)
    import torch
    where = (torch.cuda.get_device_name() if args.device.startswith("cuda")
             else f"CPU, {args.threads} threads")
    mem = "peak CUDA alloc (MB)" if args.device.startswith("cuda") else "peak RSS (MB)"
    print(f"\nforward+backward on {where}, torch {torch.__version__}\n")
    print(f"| config | batch | px | params (M) | median s/step | mean s/step | img/s (median) | {mem} |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['config']} | {r['batch']} | {r['size']} | {r['params_M']:.2f} | "
              f"{r['s_per_step']:.3f} | {r['mean_s_per_step']:.3f} | {r['img_per_s']:.1f} | {r['peak_MB']:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
