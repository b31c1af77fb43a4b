#!/usr/bin/env python3
"""Evaluate a YOLOX checkpoint with pycocotools: YOLOX's own evaluator on GPUs, on the CPU elsewhere.

Takes YOLOX's tools/eval.py flags (-f, -n, -expn, -b, -d, -c, --conf, --nms, --tsize, --seed,
--fp16, --fuse, --trt, --legacy, --test, --speed, --num_machines, --machine_rank, --dist-url,
--dist-backend, trailing ``key value`` options) plus ``--device auto|cuda|cpu``. On the CPU, ``-d N``
evaluates in N processes (each its shard of the validation set; rank 0 scores the whole set).

    python tools/eval.py -f exps/demo/demo_focal.py -c YOLOX_outputs/demo_focal/best_ckpt.pth
    python tools/eval.py -f exps/demo/demo_focal.py -c YOLOX_outputs/demo_focal/best_ckpt.pth -d 2 -b 8 --device cpu
"""

from yolox_focal.runtime import interrupt  # first: from here on a Ctrl-C or SIGTERM stops with one line

interrupt.install()

import contextlib  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402

import torch  # noqa: E402
from loguru import logger  # noqa: E402
from tabulate import tabulate  # noqa: E402

from yolox_focal.runtime.ap_report import format_ap  # noqa: E402
from yolox_focal.runtime.checkpoint_files import allow_numpy_scalars_in_checkpoints, load_checkpoint  # noqa: E402
from yolox_focal.runtime.cli import main_guard, run_yolox_entry, start_tool  # noqa: E402
from yolox_focal.runtime.distributed import launch, world_size  # noqa: E402
from yolox_focal.runtime.errors import UsageError  # noqa: E402

# YOLOX's own torch.load calls (resume, eval) run in this process on one GPU.
allow_numpy_scalars_in_checkpoints()


def apply_test_flags(exp, args):
    if args.conf is not None and not 0 <= args.conf <= 1:
        raise UsageError(f"--conf {args.conf}: a confidence threshold lies in [0, 1] (0.001 for AP)")
    if args.nms is not None and not 0 < args.nms <= 1:
        raise UsageError(f"--nms {args.nms}: an IoU threshold lies in (0, 1] (YOLOX uses 0.65)")
    if args.tsize is not None and (args.tsize < 32 or args.tsize % 32):
        raise UsageError(f"--tsize {args.tsize}: the test size must be a multiple of 32 (YOLOX's largest stride)")
    if args.conf is not None:
        exp.test_conf = args.conf
    if args.nms is not None:
        exp.nmsthre = args.nms
    if args.tsize is not None:
        exp.test_size = (args.tsize, args.tsize)


def evaluate_on_cpu(exp, args, checkpoint_path):
    """Evaluate in this process: the whole validation set, or one process's shard of a distributed
    evaluation, which rank 0 scores and reports."""
    from yolox.utils import fuse_model, get_rank, get_world_size, setup_logger

    from yolox_focal.runtime.ap_report import parse_coco_summary
    from yolox_focal.runtime.cpu_evaluators import to_cpu_evaluator

    if args.seed is not None:
        random.seed(args.seed)
        torch.manual_seed(args.seed)
    folder = os.path.join(exp.output_dir, args.experiment_name)
    os.makedirs(folder, exist_ok=True)
    rank, distributed = get_rank(), get_world_size() > 1
    setup_logger(folder, distributed_rank=rank, filename="val_log.txt", mode="a")
    model = exp.get_model()
    load_checkpoint(checkpoint_path, model)
    model.eval()
    if args.fuse:
        model = fuse_model(model)
    evaluator = to_cpu_evaluator(exp.get_evaluator(args.batch_size, distributed, args.test, args.legacy))
    interrupt.set_phase(f"the evaluation of {checkpoint_path}")
    ap50_95, ap50, summary = evaluator.evaluate(model, distributed)
    if rank != 0:
        return ap50_95, ap50
    logger.info("\n" + (summary or ""))  # in val_log.txt and on the terminal, per-class table included
    figures = parse_coco_summary(summary)
    logger.complete()  # YOLOX's terminal log sink is queued: let the summary out before the table
    print("\n" + tabulate([[checkpoint_path, format_ap(ap50_95), format_ap(ap50), format_ap(figures.get("ap_small"))]],
                          headers=["checkpoint", "AP50:95", "AP50", "AP_small"], floatfmt=".4f"))
    print(f"log: {os.path.join(folder, 'val_log.txt')}")
    return ap50_95, ap50


def main():
    args, exp, device = start_tool(
        "eval", "Evaluate a YOLOX checkpoint on GPUs (YOLOX's evaluator) or on the CPU.", splits=("val",))
    apply_test_flags(exp, args)  # before any work, and for YOLOX's evaluator too
    checkpoint = args.ckpt or os.path.join(exp.output_dir, args.experiment_name, "best_ckpt.pth")
    if device == "cuda":
        if not (args.speed or args.trt):
            load_checkpoint(checkpoint, exp.get_model())  # fail here, not after the GPUs start
        interrupt.set_phase(f"the evaluation of {checkpoint} (YOLOX's evaluator)")
        with interrupt.launching() if world_size(args) > 1 else contextlib.nullcontext():
            run_yolox_entry("eval", args)
    elif args.trt or args.speed:
        raise UsageError("--trt and --speed need CUDA; drop them for a CPU evaluation")
    elif world_size(args) > 1:
        load_checkpoint(checkpoint, exp.get_model())  # fail here, not in every process
        interrupt.set_phase(f"the evaluation of {checkpoint} in {world_size(args)} processes")
        launch(evaluate_on_cpu, args, (exp, args, checkpoint))
    else:
        evaluate_on_cpu(exp, args, checkpoint)


if __name__ == "__main__":
    main_guard(main)
