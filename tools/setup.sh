#!/usr/bin/env bash
# Sets up everything yolox-focal needs in the active Python (3.8+; a venv is fine) and installs
# this repository in editable mode. Safe to run again: installed pieces are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}

$PY -m pip install -q setuptools wheel
# torch first: yolox compiles a C++ op against it.
$PY -m pip install -q "torch==2.14.1" "torchvision==0.29.1"
# yolox 0.3.0 on PyPI pins onnx/onnxruntime versions without builds for current Pythons;
# install it without its pins, then the packages it really uses at run time.
if ! $PY -c "import yolox, sys; sys.exit(yolox.__version__ != '0.3.0')" 2>/dev/null; then
  $PY -m pip install -q --no-deps --no-build-isolation "yolox==0.3.0"
fi
$PY -m pip install -q loguru opencv-python-headless pycocotools tabulate tqdm thop psutil \
  tensorboard ninja matplotlib pytest
$PY -m pip install -q --no-deps -e .
$PY -c "import yolox_focal, yolox, torch; print('yolox-focal', yolox_focal.__version__, '| yolox', yolox.__version__, '| torch', torch.__version__)"
