#!/usr/bin/env bash
# Wheels for benchmarks/gpu.sh, made on this machine: what a lent GPU machine (Python 3.12 with
# torch, numpy, scipy and matplotlib already installed) lacks to run ichfed: MONAI, nibabel,
# pydicom, highdicom and Flower with its dependencies, in the versions of this machine's .venv. Not Ray
# (the study runs on Flower's deployment runtime), not uv (it installs apps' dependencies, which
# ichfed turns off), not python-gdcm (compressed DICOM only). About 45 MB into .whl/, which git
# ignores and the device call carries (`carry: [".whl"]`; the working tree's limit is 64 MiB).
# Usage: bash benchmarks/gpu_wheels.sh  (PYVER=3.11 WHEELS=DIR: for Python 3.11, into DIR)
set -euo pipefail
PY=${PY:-.venv/bin/python}
ver() { "$PY" -c "from importlib.metadata import version; print(version('$1'))"; }
target=(--only-binary=:all: --python-version "${PYVER:-3.12}" --implementation cp
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64
        --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64
        --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform manylinux_2_5_x86_64)
dir=${WHEELS:-.whl}
rm -rf "$dir" && mkdir -p "$dir"
"$PY" -m pip download -q "${target[@]}" -d "$dir" "flwr==$(ver flwr)" "nibabel==$(ver nibabel)" \
  "pydicom==$(ver pydicom)" "highdicom==$(ver highdicom)"
# MONAI alone: its dependency on torch would fetch a CUDA build of several GB
"$PY" -m pip download -q --no-deps "${target[@]}" -d "$dir" "monai==$(ver monai)"
rm -f "$dir"/numpy-*.whl "$dir"/uv-*.whl "$dir"/pillow-*.whl  # numpy and pillow: already there
du -sh "$dir"
