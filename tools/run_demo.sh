#!/usr/bin/env bash
# The demo, start to finish on the CPU: set up, make the demo data if absent, train the focal demo
# exp, and print its COCO AP and where the checkpoint and logs are. Extra arguments go to
# tools/train.py (e.g. "-b 8", or exp options such as "max_epoch 6").
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
python tools/make_demo_data.py --if-missing
python tools/train.py -f exps/demo/demo_focal.py -b 16 --device cpu "$@"
