#!/usr/bin/env bash
# What only a CUDA machine shows, in one run on one GPU (CI has none): run it before a release.
#
#   YOLOX_SRC=/path/to/YOLOX bash benchmarks/gpu_check.sh [OUT] [STEP ...]
#
# Steps, in this order unless named (each writes its log to OUT, default gpu_check/):
#   yolox    a YOLOX checkout's own tools/train.py on the focal demo exp with --fp16, EPOCHS epochs
#            of 25 iterations at -b 16 (default 2), then its tools/eval.py on the last checkpoint
#            with --fp16 --fuse; checks that the run's metrics.jsonl holds its AP, per class too
#   bench    benchmarks/bench_loss.py (float32 and float16 under autocast) and bench_head.py on CUDA
#   ablate   tools/ablate.py --fp16: ablate's default variants, SEEDS (default "0 1"), with
#            ABLATION_EPOCHS epochs (default 6; the README's CPU grid ran 12)
# For Megvii's YOLOX (pixeltable-yolox has no tools/ folder). The demo data is made in OUT/data.
# YOLOX_SRC and this checkout go first on PYTHONPATH: the checkout's YOLOX and this yolox-focal are
# the ones checked, installed or not.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${YOLOX_SRC:-}" ]; then
  echo "error: YOLOX_SRC is not set; set it to a YOLOX checkout (git clone https://github.com/Megvii-BaseDetection/YOLOX)" >&2
  exit 2
fi
[ -f "$YOLOX_SRC/tools/train.py" ] || { echo "error: YOLOX_SRC=$YOLOX_SRC has no tools/train.py; set it to a YOLOX checkout" >&2; exit 2; }
out=${1:-gpu_check}
shift $(( $# > 0 ? 1 : 0 ))
if [ $# -gt 0 ]; then steps=("$@"); else steps=(yolox bench ablate); fi
for step in "${steps[@]}"; do
  case $step in yolox|bench|ablate) ;; *) echo "error: unknown step '$step'; the steps are yolox, bench, ablate" >&2; exit 2;; esac
done
mkdir -p "$out" && out=$(cd "$out" && pwd)
export PYTHONPATH="$YOLOX_SRC:$repo${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
python -c "import sys, torch; torch.cuda.is_available() or sys.exit('error: torch sees no CUDA device; this script checks the GPU route')"
python "$repo/tools/make_demo_data.py" --out "$out/data" --if-missing

exp="$repo/exps/demo/demo_focal.py"
opts=(data_dir "$out/data" output_dir "$out/yolox_outputs" max_epoch "${EPOCHS:-2}" eval_interval 1 no_aug_epochs 0
      warmup_epochs 1)
for step in "${steps[@]}"; do
  echo "== $step"
  case $step in
    yolox)
      # Run from the checkout, as its README does; YOLOX's own flags only.
      (cd "$YOLOX_SRC" && python tools/train.py -f "$exp" -d 1 -b 16 --fp16 "${opts[@]}") 2>&1 | tee "$out/yolox_train.log"
      # the run's metrics.jsonl, as the ablation reads it: every epoch's record, AP per class included
      python - "$out/yolox_outputs/demo_focal/metrics.jsonl" <<'PY' | tee "$out/yolox_metrics.txt"
import json, sys
records = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
last = records[-1]
if last.get("ap50_95") is None or not last.get("per_class"):
    sys.exit(f"error: the GPU route's metrics.jsonl holds no AP after its last evaluation: {last}")
print(f"metrics.jsonl: {len(records)} epochs; last AP50:95 {last['ap50_95']:.4f}, AP50 {last['ap50']:.4f}; "
      f"per class {sorted(last['per_class'])}")
PY
      (cd "$YOLOX_SRC" && python tools/eval.py -f "$exp" -c "$out/yolox_outputs/demo_focal/last_epoch_ckpt.pth" -d 1 \
        -b 16 --conf 0.001 --fp16 --fuse "${opts[@]}") 2>&1 | tee "$out/yolox_eval.log"
      ;;
    bench)
      python "$repo/benchmarks/bench_loss.py" --device cuda --json "$out/loss.json" | tee "$out/bench_loss.txt"
      python "$repo/benchmarks/bench_head.py" --device cuda --json "$out/head.json" | tee "$out/bench_head.txt"
      ;;
    ablate)
      # shellcheck disable=SC2086  # SEEDS is a list
      python "$repo/tools/ablate.py" --device cuda --fp16 --seeds ${SEEDS:-0 1} --out "$out/ablation" \
        --opts data_dir "$out/data" max_epoch "${ABLATION_EPOCHS:-6}" no_aug_epochs 1 eval_interval 1 | tee "$out/ablate.txt"
      ;;
  esac
done
echo "== done: logs, benchmark tables and the ablation report are in $out"
