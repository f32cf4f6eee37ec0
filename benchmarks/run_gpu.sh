#!/usr/bin/env bash
# The GPU benchmarks in one go (a few minutes on one GPU): extraction, SAE training, the
# TRF fit and the SAE-sized permutation null, each on the device beside its CPU figure.
# Run from the repository root on a machine whose python3 has torch with CUDA and the
# project's dependencies (neuro_sae itself is read from the checkout via PYTHONPATH).
# Every benchmark has its own time limit, so one that fails or hangs does not stop the rest.
# Usage: bash benchmarks/run_gpu.sh [LOG_DIR [STEP ...]]
#   LOG_DIR: where the logs go (default .); STEP: some of extract extract_fp16 sae sae_big
#   trf null (default: all).
set -u
LOG=${1:-.}
shift || true
WANT=" ${*:-extract extract_fp16 sae sae_big trf null} "
mkdir -p "$LOG"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
export NEURO_SAE_PROGRESS=0
step() {  # step NAME LIMIT_S COMMAND...
  local name=$1 limit=$2
  shift 2
  [[ $WANT == *" $name "* ]] || return 0
  echo "=== $name ($(date -u +%T), limit ${limit} s): $*"
  local t0=$SECONDS
  timeout "$limit" "$@" >"$LOG/$name.log" 2>&1
  local rc=$?
  cat "$LOG/$name.log"
  echo "=== $name: exit $rc after $((SECONDS - t0)) s"
}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, numpy, scipy; print('torch', torch.__version__, 'CUDA',
torch.version.cuda, torch.cuda.get_device_name(0), '| numpy', numpy.__version__,
'| scipy', scipy.__version__)"
nproc
step extract 150 python3 benchmarks/bench_extract.py --device cuda --seconds 600 --repeats 3 \
  --batch-size 16 --backbones whisper-base-random hubert-base-random
step extract_fp16 90 python3 benchmarks/bench_extract.py --device cuda --dtype float16 \
  --seconds 600 --repeats 3 --batch-size 16 --backbones whisper-base-random hubert-base-random
step sae 90 python3 benchmarks/bench_sae.py --device cuda --steps 30 --warmup 5 --profile
step sae_big 90 python3 benchmarks/bench_sae.py --device cuda --steps 30 --warmup 5 \
  --batch 16384
step trf 120 python3 benchmarks/bench_trf_device.py --device cuda
step null 150 python3 benchmarks/bench_sweep_null.py --device cuda --sae-features 512 \
  --numpy-features 32 --feature-batch 64
