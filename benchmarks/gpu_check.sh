#!/usr/bin/env bash
# lipkit GPU check (issue 6): ONE script for a lent GPU, run from the repository root, < 8 minutes.
#
#   run(command="bash benchmarks/gpu_check.sh", carry=[".whl"], timeout_s=600)
#
# Writes markdown to $OUT/gpu_results.md (appended section by section, so a timeout keeps what was
# measured) and logs to $OUT/logs/. Sections, each guarded (a failure is recorded, the next runs):
#   0 set-up: papermill & co. from .whl/*.whl into /tmp/site (+ .whl/extra/ for modules this python
#     lacks: the .whl set has no requests/click (papermill imports them), platformdirs (jupyter_core),
#     attrs (jsonschema), pygments (IPython); .whl/extra holds cp312 wheels of those, fetched with
#     `pip download --python-version 3.12`), a python3 kernelspec in /tmp/kern. Checked on CPython
#     3.12.1 here: papermill executes a notebook with that set. Carry ".whl" (it includes .whl/extra).
#   1 environment: GPU, driver, python, torch, CUDA, cuDNN
#   2 matmul peak: 8192^3 in bf16, TF32 and strict fp32 (median of timed reps)
#   3 training throughput: DeepLabV2 ResNet-101 and Attention-to-Scale VGG-16, batch 10 @ 321,
#     fp32 and bf16 autocast + channels_last: img/s, training FLOPs per image (FlopCounterMode),
#     fraction of the measured matmul peak, peak memory, SSL "paper"/"none" step ratio
#   4 python -m lipkit reproduce --profile smoke --param DEVICE=cuda with papermill (executed notebooks
#     -> $OUT); runs before 2+3, so the notebooks on CUDA come first if time runs short
#   5 (if time is left) fit() end to end on CUDA: paper DeepLabV2 config on a small SynthLIP
# Copy $OUT/gpu_results.md to benchmarks/gpu_results.md and `make bench` includes it in RESULTS.md.
set -u
export PYTHONUNBUFFERED=1
START=$(date +%s)
BUDGET=${GPU_CHECK_BUDGET_S:-450}           # stop starting optional sections after this many seconds
OUT=${OUT:-/tmp/gpu_check_out}
mkdir -p "$OUT/logs"
MD="$OUT/gpu_results.md"
WORK=/tmp/gpu_check
mkdir -p "$WORK"
export MPLBACKEND=Agg MPLCONFIGDIR=/tmp/mpl IPYTHONDIR=/tmp/ipython JUPYTER_RUNTIME_DIR=/tmp/jupyter-runtime
SITE=${GPU_CHECK_SITE:-/tmp/site} KERN=${GPU_CHECK_KERN:-/tmp/kern}
export JUPYTER_PATH=$KERN/share/jupyter
export PYTHONPATH="$SITE:$PWD${PYTHONPATH:+:$PYTHONPATH}"
PY=${PY:-python3}
export OUT MD PY SITE KERN

elapsed() { echo $(( $(date +%s) - START )); }
say() { echo "+++ [t=$(elapsed)s] $*"; }
# section NAME TIMEOUT_S COMMAND...: run guarded, log to $OUT/logs/NAME.log, record failures in the markdown
section() {
  local name=$1 limit=$2; shift 2
  case " ${GPU_CHECK_SKIP:-} " in *" $name "*) say "section $name skipped (GPU_CHECK_SKIP)"; return 0;; esac
  say "section $name (limit ${limit}s): $*"
  local t0=$(date +%s)
  if [ "$(type -t "$1")" = function ]; then  # timeout runs programs: hand a shell function to bash -c
    timeout --kill-after=10 "$limit" bash -c "$(declare -f "$1"); $*" > >(tee "$OUT/logs/$name.log") 2>&1
  else
    timeout --kill-after=10 "$limit" "$@" > >(tee "$OUT/logs/$name.log") 2>&1
  fi
  local rc=$?
  sleep 0.2
  say "section $name: rc=$rc in $(( $(date +%s) - t0 ))s"
  if [ $rc -ne 0 ]; then
    { echo; echo "**section $name failed** (exit $rc$( [ $rc -eq 124 ] && echo ', timed out after '"$limit"' s')); last lines of its log:"
      echo; echo '```'; tail -n 25 "$OUT/logs/$name.log"; echo '```'; } >> "$MD"
  fi
  return 0
}

{ echo "# lipkit on a GPU"; echo; echo "Run $(date -u '+%Y-%m-%d %H:%M UTC') by \`benchmarks/gpu_check.sh\` at commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')."; } > "$MD"

# ------------------------------------------------------------------ 0 set-up
setup() {
  set -x
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" .whl/*.whl || return 1
  # pure-python dependencies the wheel set lacks; only for modules this python cannot import already
  local whl mod
  for whl in .whl/extra/*.whl; do
    [ -e "$whl" ] || continue
    case "$(basename "$whl")" in
      requests-*) mod=requests;; urllib3-*) mod=urllib3;; idna-*) mod=idna;; charset_normalizer-*) mod=charset_normalizer;;
      certifi-*) mod=certifi;; click-*) mod=click;; platformdirs-*) mod=platformdirs;; attrs-*) mod=attr;;
      pygments-*) mod=pygments;; psutil-*) mod=psutil;; python_dateutil-*) mod=dateutil;; six-*) mod=six;; *) mod="";;
    esac
    if [ -n "$mod" ] && ! $PY -c "import $mod" 2>/dev/null; then
      $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$SITE" "$whl" || echo "could not install $whl"
    fi
  done
  $PY -m ipykernel install --prefix "$KERN" --name python3 --display-name "Python 3 (lipkit)" || return 1
  set +x
  $PY - <<'EOF'
import importlib
bad = []
for m in ("papermill", "nbclient", "nbformat", "ipykernel", "jupyter_client", "zmq", "IPython", "ipywidgets",
          "matplotlib_inline", "requests", "click", "platformdirs", "jsonschema", "lipkit", "torch"):
    try:
        importlib.import_module(m)
    except Exception as exc:  # report every missing piece at once
        bad.append(f"{m}: {type(exc).__name__}: {exc}")
print("imports ok" if not bad else "MISSING:\n  " + "\n  ".join(bad))
raise SystemExit(1 if bad else 0)
EOF
}
section setup 150 setup

# ------------------------------------------------------------------ 1 environment
cat > "$WORK/env.py" <<'EOF'
import platform, subprocess, sys
import torch
md = sys.argv[1]
try:
    smi = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total,clocks.max.sm,power.limit",
                          "--format=csv,noheader"], capture_output=True, text=True, timeout=20).stdout.strip()
except (OSError, subprocess.SubprocessError) as exc:
    smi = f"n/a ({exc})"
rows = [("GPU", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"),
        ("nvidia-smi (name, driver, memory, max SM clock, power limit)", smi or "n/a"),
        ("python", platform.python_version()), ("torch", torch.__version__), ("CUDA (torch build)", torch.version.cuda),
        ("cuDNN", str(torch.backends.cudnn.version())),
        ("GPU memory", f"{torch.cuda.get_device_properties(0).total_memory / 2**30:.1f} GiB" if torch.cuda.is_available() else "-"),
        ("CPU cores", str(__import__("os").cpu_count()))]
try:
    import papermill
    rows.append(("papermill", papermill.__version__))
except Exception as exc:
    rows.append(("papermill", f"not importable: {exc}"))
text = "\n## Environment\n\n| | |\n|---|---|\n" + "\n".join(f"| {k} | {v} |" for k, v in rows) + "\n"
print(text)
open(md, "a").write(text)
raise SystemExit(0 if torch.cuda.is_available() else 1)
EOF
section env 60 $PY "$WORK/env.py" "$MD"

# ------------------------------------------------------------------ 2 + 3 matmul peak, training throughput
cat > "$WORK/bench.py" <<'EOF'
"""Matmul peak and the paper models' training throughput; appends markdown to argv[1], JSON to argv[2]."""
import json, statistics, sys, time
import torch
from torch import nn

md, js = sys.argv[1], sys.argv[2]
DRY = not torch.cuda.is_available()  # a CPU dry run of this code path (tiny sizes), for checking the script
dev = torch.device("cpu" if DRY else "cuda")
results = {"dry_run_on_cpu": DRY}


def sync():
    if not DRY:
        torch.cuda.synchronize()


def emit(text):
    print(text, flush=True)
    with open(md, "a") as fh:
        fh.write(text + "\n")


def set_tf32(on):
    try:
        torch.backends.cuda.matmul.allow_tf32 = on
    except Exception:
        torch.backends.cuda.matmul.fp32_precision = "tf32" if on else "ieee"


def matmul_tflops(dtype, tf32=False, n=8192, reps=10):
    n = 256 if DRY else n
    set_tf32(tf32)
    a = torch.randn(n, n, device=dev, dtype=dtype)
    b = torch.randn(n, n, device=dev, dtype=dtype)
    for _ in range(3):
        a @ b
    sync()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        a @ b
        sync()
        times.append(time.perf_counter() - t0)
    set_tf32(False)
    del a, b
    if not DRY:
        torch.cuda.empty_cache()
    return 2 * n ** 3 / statistics.median(times) / 1e12


emit("\n## Matrix-multiply peak (8192 x 8192 x 8192, median of the timed reps after 3 warm-up)\n")
if DRY:
    emit("**DRY RUN on CPU (no CUDA device): tiny sizes, the figures below mean nothing.**\n")
emit("| dtype | TFLOP/s |\n|---|---:|")
peaks = {}
for label, dtype, tf32, reps in (("bf16", torch.bfloat16, False, 20), ("fp32 with TF32", torch.float32, True, 10),
                                 ("fp32 strict (no TF32)", torch.float32, False, 5)):
    try:
        peaks[label] = matmul_tflops(dtype, tf32, reps=reps)
        emit(f"| {label} | {peaks[label]:.1f} |")
    except Exception as exc:
        emit(f"| {label} | failed: {type(exc).__name__}: {exc} |")
results["matmul_tflops"] = peaks
json.dump(results, open(js, "w"), indent=1)

from torch.utils.flop_counter import FlopCounterMode
from lipkit.models import build_model
from lipkit.ssl import StructureSensitiveLoss

torch.backends.cudnn.benchmark = True
BATCH, CROP, WARM, STEPS = (10, 321, 3, 10) if not DRY else (1, 65, 1, 1)
MODELS = [("DeepLabV2 ResNet-101", "deeplabv2", "resnet101"), ("Attention-to-Scale VGG-16", "attention", "vgg16")]


def labels(n, size, gen):
    coarse = torch.randint(0, 20, (n, 1, 12, 12), generator=gen).float()
    y = nn.functional.interpolate(coarse, size=(size, size), mode="nearest")[:, 0].long()
    y[:, :, :8] = 255
    return y


def run(name, arch, backbone, bf16, flops_per_image):
    torch.manual_seed(0)
    fmt = torch.channels_last if bf16 else torch.contiguous_format
    model = build_model(arch, backbone, 20).to(dev, memory_format=fmt).train()
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(BATCH, 3, CROP, CROP, generator=gen).to(dev).contiguous(memory_format=fmt)
    y = labels(BATCH, CROP, gen).to(dev)
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    if bns:  # the paper recipe freezes BN (ImageNet statistics); without those weights, calibrate the
        for m in bns:  # running statistics on the input first, or 101 random layers overflow
            m.momentum = None
        with torch.no_grad(), torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16):
            model(x)
        for m in bns:
            m.eval()
            for p in m.parameters():
                p.requires_grad_(False)
    head = {id(p) for p in model.classifier_parameters()}
    opt = torch.optim.SGD([{"params": [p for p in model.parameters() if id(p) not in head and p.requires_grad]},
                           {"params": [p for p in model.classifier_parameters() if p.requires_grad], "lr": 1e-3}],
                          lr=1e-4, momentum=0.9, weight_decay=5e-4)
    losses = {m: StructureSensitiveLoss(m) for m in ("none", "paper")}

    def step(mode="none"):
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16):
            out = model(x)
        outs = [out["out"], *out.get("scales", ())]
        loss = sum(losses[mode](o.float(), y).loss for o in outs)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    if flops_per_image is None:
        with FlopCounterMode(display=False) as counter:
            step()
        flops_per_image = counter.get_total_flops() / BATCH
    for _ in range(WARM):
        step()
    sync()
    if not DRY:
        torch.cuda.reset_peak_memory_stats()
    times = {"none": [], "paper": []}
    for _ in range(STEPS):
        for mode in ("none", "paper"):  # interleaved
            sync()
            t0 = time.perf_counter()
            loss = step(mode)
            sync()
            times[mode].append(time.perf_counter() - t0)
    assert torch.isfinite(loss), "non-finite loss"
    med = {m: statistics.median(t) for m, t in times.items()}
    peak_mem = 0.0 if DRY else torch.cuda.max_memory_allocated() / 2**30
    del model, opt, x, y
    if not DRY:
        torch.cuda.empty_cache()
    return {"img_per_s": BATCH / med["none"], "img_per_s_paper": BATCH / med["paper"], "s_per_step": med["none"],
            "ssl_ratio": med["paper"] / med["none"], "flops_per_image": flops_per_image, "peak_mem_gib": peak_mem}


emit(f"\n## Training throughput (batch {BATCH} @ {CROP}, forward + loss on every output + backward + SGD; "
     f"{WARM} warm-up, median of {STEPS} timed steps; cudnn.benchmark on; BatchNorm frozen as in the paper recipe)\n")
emit("Training FLOPs per image (forward + backward) counted with `torch.utils.flop_counter.FlopCounterMode` "
     "(convolutions and matmuls). fp32 runs use PyTorch's defaults (cuDNN convolutions in TF32), so their fraction is "
     "against the TF32 matmul peak; bf16 runs against the bf16 peak.\n")
emit("| model | precision | img/s | s/step | training GFLOP/image | achieved TFLOP/s | fraction of measured peak | "
     "peak memory (GiB) | SSL paper/none step |")
emit("|---|---|---:|---:|---:|---:|---:|---:|---:|")
results["training"] = {}
for name, arch, backbone in MODELS:
    flops = None
    for label, bf16, peak_key in (("fp32", False, "fp32 with TF32"), ("bf16 autocast + channels_last", True, "bf16")):
        try:
            r = run(name, arch, backbone, bf16, flops)
            flops = r["flops_per_image"]
            achieved = flops * r["img_per_s"] / 1e12
            peak = peaks.get(peak_key)
            frac = f"{achieved / peak:.1%} of {peak_key}" if peak else "n/a"
            emit(f"| {name} | {label} | {r['img_per_s']:.1f} | {r['s_per_step']:.3f} | {flops / 1e9:.0f} | "
                 f"{achieved:.1f} | {frac} | {r['peak_mem_gib']:.1f} | {r['ssl_ratio']:.3f} |")
            results["training"][f"{name} {label}"] = r
        except Exception as exc:
            emit(f"| {name} | {label} | failed: {type(exc).__name__}: {str(exc)[:200]} | | | | | | |")
            if not DRY:
                torch.cuda.empty_cache()
        json.dump(results, open(js, "w"), indent=1)
EOF

# ------------------------------------------------------------------ 4 reproduce --profile smoke on CUDA
reproduce() {
  echo "notebooks: $(ls notebooks/*.ipynb 2>/dev/null | xargs -n1 basename | tr '\n' ' ')"
  $PY -m lipkit reproduce --profile smoke --param DEVICE=${GPU_CHECK_DEVICE:-cuda}
  local rc=$?
  mkdir -p "$OUT/reproduce"
  cp runs/smoke/pipeline.json "$OUT/reproduce/" 2>/dev/null
  cp runs/smoke/*.ipynb "$OUT/reproduce/" 2>/dev/null
  return $rc
}
if [ "$(elapsed)" -lt "$BUDGET" ]; then
  section reproduce 300 reproduce
  {
    echo; echo "## \`python -m lipkit reproduce --profile smoke\` on CUDA (papermill, kernel python3)"; echo
    grep -E '^\| ' "$OUT/logs/reproduce.log" || echo "(no summary table; see logs/reproduce.log)"
    echo
    $PY - "$OUT/reproduce" <<'EOF' 2>&1 || true
import json, pathlib, re, sys
import torch
print(f"The kernel's python sees CUDA: {torch.cuda.is_available()} "
      f"({torch.cuda.get_device_name(0) if torch.cuda.is_available() else '-'}).\n")
d = pathlib.Path(sys.argv[1])
for nb in sorted(d.glob("*.ipynb")):
    cells = json.loads(nb.read_text())["cells"]
    errors = sum(1 for c in cells for o in c.get("outputs", []) if o.get("output_type") == "error")
    texts = ["".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", "")) for c in cells
             for o in c.get("outputs", [])]
    hits = [m.group(0).strip() for t in texts for m in re.finditer(r"[^\n]{0,50}\b(cuda(:\d)?|CUDA|GPU)\b[^\n]{0,50}", t)][:3]
    print(f"- {nb.name}: {len(cells)} cells, error outputs: {errors}; device mentions in outputs: {hits or 'none'}")
EOF
    echo; echo "Executed notebooks and pipeline.json are in \$OUT/reproduce/."
  } >> "$MD"
else
  echo -e "\n(reproduce skipped: $(elapsed) s used of the ${BUDGET} s budget)" >> "$MD"
fi

# ------------------------------------------------------------------ 3 (run after 4: the notebooks on CUDA come first)
if [ "$(elapsed)" -lt "$BUDGET" ]; then
  section bench 240 $PY "$WORK/bench.py" "$MD" "$OUT/gpu_results.json"
else
  echo -e "\n(bench skipped: $(elapsed) s used of the ${BUDGET} s budget)" >> "$MD"
fi

# ------------------------------------------------------------------ 5 fit end to end (optional)
cat > "$WORK/fit.py" <<'EOF'
import json, sys, tempfile, time
from pathlib import Path
import torch
if not torch.cuda.is_available():
    print("no CUDA device: fit() section skipped")
    raise SystemExit(0)
from lipkit.data.synth import make_synthlip
from lipkit.paths import CONFIGS_DIR
from lipkit.train import TrainConfig, fit

md = sys.argv[1]
tmp = Path(tempfile.mkdtemp())
root = make_synthlip(tmp / "synth", n_train=120, n_val=10, seed=0, workers=8, progress=False)
config = TrainConfig.from_yaml(CONFIGS_DIR / "paper_deeplabv2_resnet101.yaml").with_overrides([
    f"data.root={root}", "model.pretrained=null", "iterations=36", "log_every=12", "checkpoint_every=0",
    "progress=false", f"out_dir={tmp / 'run'}", "data.max_val_images=10"])
t0 = time.perf_counter()
result = fit(config)
wall = time.perf_counter() - t0
train = [json.loads(l) for l in (tmp / "run" / "metrics.jsonl").read_text().splitlines() if '"train"' in l]
rates = [
    (b["images"] - a["images"]) / (b["elapsed_s"] - a["elapsed_s"]) for a, b in zip(train, train[1:])
]
text = (f"\n## fit() end to end on CUDA\n\n`configs/paper_deeplabv2_resnet101.yaml` (bf16 autocast, channels_last, "
        f"batch 10 @ 321, 8 loader workers) without ImageNet weights, on SynthLIP (120 train): 36 steps in {wall:.0f} s "
        f"wall including set-up and validation; steady img/s between log lines: {', '.join(f'{r:.1f}' for r in rates)}; "
        f"final step {result['step']}, loss {train[-1]['loss']:.3f}.\n")
print(text)
open(md, "a").write(text)
EOF
if [ "$(elapsed)" -lt "$BUDGET" ]; then
  section fit 120 $PY "$WORK/fit.py" "$MD"
else
  echo -e "\n(fit() section skipped: $(elapsed) s used of the ${BUDGET} s budget)" >> "$MD"
fi

echo -e "\nTotal wall time of gpu_check.sh: $(elapsed) s." >> "$MD"
say "done; results in $MD"
cat "$MD"
exit 0
