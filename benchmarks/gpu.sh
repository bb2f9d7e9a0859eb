#!/usr/bin/env bash
# The GPU part of the benchmarks, as one script for a lent GPU machine that has torch but not
# MONAI, nibabel or pydicom (carried as wheels in .whl/). Results go to $OUT (or ./gpu-results).
# Usage: bash benchmarks/gpu.sh [all|quick]  (quick: no torch.compile run)
set -u
OUT=${OUT:-gpu-results}; mkdir -p "$OUT"
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD/src:$PWD
fi
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
python3 -c "import torch; print('torch', torch.__version__)" | tee -a "$OUT/gpu.txt"
if [ "${1:-all}" = all ]; then
  python3 benchmarks/train_speed.py --preset paper --device cuda --compile --reference \
    | tee "$OUT/train_paper_compile.json"
fi
python3 benchmarks/train_speed.py --preset paper --device cuda --reference \
  | tee "$OUT/train_paper_eager.json"
python3 benchmarks/predict_speed.py --preset paper --device cuda | tee "$OUT/predict_paper_cuda.json"
python3 benchmarks/predict_speed.py --preset paper --device cuda --slice-mm 0.625 \
  | tee "$OUT/predict_paper_cuda_long.json"
python3 benchmarks/gpu_equivalence.py --device cuda | tee "$OUT/gpu_equivalence.json"
