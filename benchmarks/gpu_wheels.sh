#!/usr/bin/env bash
# Download, on a machine with internet, the wheels that uglspot imports and a
# bare GPU machine (CPython 3.12, x86_64, PyTorch/timm/transformers/einops/
# safetensors/tqdm/numpy/pyyaml/matplotlib preinstalled, no network) lacks:
# PyAV and orjson. They land in wheels/ (ignored by git), which travels with
# the working tree; docs/performance.md gives the device command that
# installs them from there and runs benchmarks/gpu_suite.py.
#
#   bash benchmarks/gpu_wheels.sh [DEST]        # DEST defaults to wheels/
set -euo pipefail
dest="${1:-$(cd "$(dirname "$0")/.." && pwd)/wheels}"
python="${PYTHON:-python3}"
mkdir -p "$dest"
# pip matches a manylinux tag exactly, so the usual ones are all named;
# --no-deps: neither package needs anything at run time.
"$python" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 \
    --dest "$dest" 'av>=12' 'orjson>=3.9'
ls -1 "$dest"
