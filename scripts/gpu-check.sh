#!/usr/bin/env bash
# Check the local models on an NVIDIA GPU, offline: report the GPU and torch's CUDA status,
# then run the local-model benchmark (tool path against the bare library calls, float16) and
# the local-model integration tests on the GPU. Everything it finds goes to $OUT (default
# ./gpu-check-out/): env.txt, bench_local_models.json and .log, tests.log and tests.xml.
#
#   scripts/gpu-check.sh
#
# Environment:
#   SOGNI_PYTHON            the Python to use (default .venv/bin/python, else python3)
#   SOGNI_GPU_DEVICE        the torch device (default cuda:0)
#   SOGNI_TORCH_INDEX_URL   when this torch has no CUDA: a package index with CUDA builds of
#                           torch to install from (e.g. a local mirror)
#   SOGNI_TORCH_WHEELS      ... or a folder of wheels (torch and its CUDA libraries)
#   SOGNI_TORCH_SPEC        what to install from there (default: torch of the installed version)
set -uo pipefail
cd "$(dirname "$0")/.."

out=${OUT:-./gpu-check-out}
device=${SOGNI_GPU_DEVICE:-cuda:0}
if [ -n "${SOGNI_PYTHON:-}" ]; then
  py=$SOGNI_PYTHON
elif [ -x .venv/bin/python ]; then
  py=.venv/bin/python
else
  py=python3
fi
mkdir -p "$out"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"

cuda_status() {
  "$py" - <<'EOF'
import torch

print(f"torch {torch.__version__}, built for CUDA {torch.version.cuda}")
print(f"cuda available: {torch.cuda.is_available()}, devices: {torch.cuda.device_count()}")
for i in range(torch.cuda.device_count()):
    props = torch.cuda.get_device_properties(i)
    print(f"  cuda:{i} {props.name}, {props.total_memory / 2**30:.1f} GiB")
EOF
}

has_cuda() {
  "$py" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null
}

{
  echo "== nvidia-smi"
  if command -v nvidia-smi >/dev/null; then
    nvidia-smi
  else
    echo "nvidia-smi not found"
  fi
  echo "== python: $py"
  "$py" --version
  echo "== torch"
  cuda_status
} 2>&1 | tee "$out/env.txt"

if ! has_cuda; then
  base=$("$py" -c 'import torch; print(torch.__version__.split("+")[0])' 2>/dev/null)
  spec=${SOGNI_TORCH_SPEC:-torch${base:+==$base}}
  if [ -n "${SOGNI_TORCH_WHEELS:-}" ]; then
    source=(--no-index --find-links "$SOGNI_TORCH_WHEELS")
  elif [ -n "${SOGNI_TORCH_INDEX_URL:-}" ]; then
    source=(--index-url "$SOGNI_TORCH_INDEX_URL")
  else
    echo "This torch cannot use the GPU (no CUDA build, or no driver). Give a CUDA build of" \
      "torch to install: SOGNI_TORCH_INDEX_URL=<package index> or SOGNI_TORCH_WHEELS=<folder of" \
      "wheels>, or point SOGNI_PYTHON at a Python whose torch has CUDA." | tee -a "$out/env.txt"
    exit 2
  fi
  echo "== installing $spec with CUDA (${source[*]})" | tee -a "$out/env.txt"
  "$py" -m pip uninstall -y torch 2>&1 | tee -a "$out/env.txt"
  "$py" -m pip install "${source[@]}" "$spec" 2>&1 | tee -a "$out/env.txt"
  cuda_status 2>&1 | tee -a "$out/env.txt"
  if ! has_cuda; then
    echo "torch still cannot use the GPU after the install; stopping" | tee -a "$out/env.txt"
    exit 2
  fi
fi

status=0
echo "== benchmarks/bench_local_models.py --device $device --dtype float16 --json"
if "$py" benchmarks/bench_local_models.py --device "$device" --dtype float16 --json \
  >"$out/bench_local_models.json" 2>"$out/bench_local_models.log"; then
  "$py" - "$out/bench_local_models.json" <<'EOF'
import json
import sys

report = json.load(open(sys.argv[1]))
print(f"{report['device']}, {report['dtype']}, torch {report['torch']}")
for row in report["results"]:
    print(
        f"  {row['tool']:<18} ours {row['ours_ms']:8.1f} ms  bare {row['bare_ms']:8.1f} ms  "
        f"{row['ratio']:5.2f}x  {row['ours_throughput']:.2f} / {row['bare_throughput']:.2f} "
        f"{row['unit']}"
    )
EOF
else
  status=1
  echo "the benchmark failed; the end of its log:"
  tail -n 30 "$out/bench_local_models.log"
fi

echo "== local-model integration tests on $device"
SOGNI_TEST_MODEL_DEVICE=$device "$py" -m pytest -q -p no:cacheprovider \
  --junitxml="$out/tests.xml" \
  tests/integration/tools/test_diffusers_backend.py \
  tests/integration/tools/test_diffusers_edits.py \
  tests/integration/tools/test_video_model.py \
  tests/integration/tools/test_music_model.py \
  tests/integration/tools/test_segmentation_model.py \
  tests/integration/tools/test_content_filter.py 2>&1 | tee "$out/tests.log"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1

echo "== done (status $status); results in $out"
exit $status
