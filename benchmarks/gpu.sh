#!/usr/bin/env bash
# The GPU benchmarks, as one script for a lent GPU machine. That machine has torch, numpy, scipy
# and matplotlib; MONAI, nibabel, pydicom and Flower travel as wheels in .whl/, made here by
# `bash benchmarks/gpu_wheels.sh` (see its header) and carried with the call.
#
# Usage: bash benchmarks/gpu.sh [speed|study|all] [--tiny]
#   speed   training throughput (ichfed's own epoch and, in the same run, the plain MONAI loop on
#           the same network; with and without torch.compile) and predict latency of a full-size
#           scan from a NIfTI file, end to end
#   study   the paper-preset study at the paper's scale (`--scale paper`: 32 + 33 full-size scans
#           at each of two training sites, 20 at each of two holdout sites) through Flower's
#           deployment runtime on 127.0.0.1. Stopped after STUDY_S seconds (default 480, or 270
#           after the speed part) so that the call fits the device's 10 minutes; the same
#           command again on the still-warm machine continues it (its folder, $STUDY_DIR or
#           runs/gpu-study, stays there). Its time is the sum of its stages (timings.json).
#   all     speed, then study (the default)
#   --tiny  everything at a tiny size on whatever device there is (a tiny network; the study on
#           eight reduced-size scans): how the whole script is tested on a CPU
#           (tests/benchmarks/test_gpu_script.py), so that a GPU call only measures.
# Results go to $OUT (default gpu-results): env.txt, speed.jsonl (one JSON line a benchmark)
# and the study's study.log, summary.csv, timings.json and report.html. $WHEELS (default .whl)
# is the folder of wheels installed first, when it holds any.
set -u
part=all tiny=0
for arg in "$@"; do
  case $arg in
    speed|study|all) part=$arg ;;
    --tiny) tiny=1 ;;
    *) echo "gpu.sh: unknown argument '$arg' (expected speed, study, all or --tiny)" >&2; exit 2 ;;
  esac
done
OUT=${OUT:-gpu-results}; mkdir -p "$OUT"
WHEELS=${WHEELS:-.whl}
if ls "$WHEELS"/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site "$WHEELS"/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD/src:$PWD PATH=/tmp/site/bin:$PATH
fi
PY=${PY:-python3}
export PYTHONUNBUFFERED=1 FLWR_TELEMETRY_ENABLED=0 FLWR_DISABLE_UPDATE_CHECK=1 \
  FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION=1
if [ $tiny = 1 ]; then
  device=auto study_dir=${STUDY_DIR:-runs/gpu-study-tiny}
  net=(--set 'features=[4,4,8,8,16,4]')
  train_args=(--scans 1 --max-patches 4 --set batch_size=8 --set patch=32 "${net[@]}")
  predict_args=(--repeats 1 "${net[@]}")
  # the single-site models and cwt on eight reduced-size scans (fedavg, pooled and the
  # threshold floor take the same paths as in the CPU study's tests)
  scale=demo
  study_args=(--models single,cwt --train-cases 2 --test-cases 1 --set max_epochs=2
              --set lesion_patches=4 --set batch_size=8 --set patch=32 "${net[@]}")
else
  device=cuda scale=paper study_dir=${STUDY_DIR:-runs/gpu-study}
  train_args=() predict_args=() study_args=()
fi
failed=0
if [ $part = study ]; then study_s=${STUDY_S:-480}; else study_s=${STUDY_S:-270}; fi
run() {  # one benchmark: its JSON line to speed.jsonl, a failure counted
  "$PY" "$@" | tee -a "$OUT/speed.jsonl" || failed=1
}

{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null \
    || echo "no NVIDIA GPU"
  "$PY" -c "import platform, torch; print('python', platform.python_version(), 'torch',
torch.__version__, 'cuda', torch.version.cuda)"
  git rev-parse HEAD 2>/dev/null; date -u; } | tee "$OUT/env.txt"

if [ $part != study ]; then
  if [ $tiny = 0 ]; then  # torch.compile is for CUDA only
    run benchmarks/train_speed.py --preset paper --device $device --compile --reference
  fi
  run benchmarks/train_speed.py --preset paper --device $device --reference "${train_args[@]}"
  run benchmarks/predict_speed.py --preset paper --device $device "${predict_args[@]}"
fi

if [ $part != speed ]; then
  # SIGINT, not SIGTERM: the study stops its coordinator and site processes on the way out
  timeout --signal=INT "$study_s" "$PY" -m ichfed experiment --out "$study_dir" \
    --preset paper --scale $scale --engine deployment --device $device "${study_args[@]}" \
    > "$OUT/study.log" 2>&1
  status=$?
  for name in summary.csv timings.json report.html; do
    [ -f "$study_dir/$name" ] && cp "$study_dir/$name" "$OUT/"
  done
  if [ $status = 124 ]; then
    echo "study: stopped after $study_s s; run 'bash benchmarks/gpu.sh study' again" \
         "on the same machine to continue"
  elif [ $status != 0 ]; then
    echo "study failed (exit $status):"; tail -5 "$OUT/study.log"; failed=1
  else
    echo "study finished: $study_dir"; cat "$study_dir/timings.json"
  fi
fi
exit $failed
