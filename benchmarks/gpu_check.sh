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
#   2 python -m lipkit reproduce --profile smoke --param DEVICE=cuda with papermill (executed notebooks
#     -> $OUT); first after the set-up, so the notebooks on CUDA come first if time runs short
#   3 benchmarks/bench_train.py --device cuda --peak: matmul peak (8192^3 in bf16, TF32 and strict
#     fp32), then DeepLabV2 ResNet-101 and Attention-to-Scale VGG-16 training steps, batch 10 @ 321,
#     fp32 and bf16 autocast + channels_last: img/s, training FLOPs per image (FlopCounterMode),
#     fraction of the measured matmul peak, peak memory, SSL "paper"/"none" step ratio
#   4 (if time is left) fit() end to end on CUDA: paper DeepLabV2 config on a small SynthLIP
# A CPU dry run of the script's plumbing: GPU_CHECK_SKIP="setup env reproduce fit" GPU_CHECK_DEVICE=cpu \
#   GPU_CHECK_BENCH_ARGS="--skip-large --peak-size 512" PY=.venv/bin/python bash benchmarks/gpu_check.sh
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

# ------------------------------------------------------------------ 2 reproduce --profile smoke on CUDA
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

# ------------------------------------------------------------------ 3 matmul peak and training throughput (bench_train)
if [ "$(elapsed)" -lt "$BUDGET" ]; then
  # the timed step is benchmarks/bench_train.py's, the one `make bench` runs on the CPU
  section bench 240 $PY benchmarks/bench_train.py --device "${GPU_CHECK_DEVICE:-cuda}" --peak \
    --markdown "$MD" --json "$OUT/gpu_results.json" ${GPU_CHECK_BENCH_ARGS:-}
else
  echo -e "\n(bench skipped: $(elapsed) s used of the ${BUDGET} s budget)" >> "$MD"
fi

# ------------------------------------------------------------------ 4 fit end to end (optional)
cat > "$WORK/fit.py" <<'EOF'
import json, sys, tempfile, time
from pathlib import Path
import torch
if not torch.cuda.is_available():
    print("no CUDA device: fit() section skipped")
    raise SystemExit(0)
from lipkit.data.synth import make_synthlip
from lipkit.paths import CONFIGS_DIR
from lipkit.training import TrainConfig, fit

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
