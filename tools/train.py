#!/usr/bin/env python3
"""Train a YOLOX exp: YOLOX's own trainer on GPUs, yolox_focal's CPU trainer elsewhere.

Takes YOLOX's tools/train.py flags (-f, -n, -expn, -b, -d, -c, --resume, -e, --fp16, -o, --cache,
--num_machines, --machine_rank, --dist-url, --dist-backend, -l, trailing ``key value`` options)
plus ``--device auto|cuda|cpu``. With CUDA it runs exactly YOLOX's path (``exp.get_trainer``
through ``yolox.core.launch``, multi-GPU and multi-node included). On the CPU, ``-d N`` trains in N
processes through the same ``launch`` over gloo, on one machine or, with ``--num_machines``, on several.

    python tools/train.py -f exps/demo/demo_focal.py -b 16            # CPU, demo data
    python tools/train.py -f exps/demo/demo_focal.py -b 16 -d 2 --device cpu   # CPU, 2 processes
    python tools/train.py -f exps/yolox_s_focal.py -d 8 -b 64 --fp16 -o   # COCO on 8 GPUs
"""

from yolox_focal.runtime import interrupt  # first: from here on a Ctrl-C or SIGTERM stops the run with one line

interrupt.install()

import contextlib  # noqa: E402
import json  # noqa: E402
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
from yolox_focal.runtime.folder_claim import claim_folder  # noqa: E402
from yolox_focal.runtime.loss_state import check_loss_state_fits  # noqa: E402

# YOLOX's own torch.load calls (resume, eval) run in this process on one GPU.
allow_numpy_scalars_in_checkpoints()


def check_resume(exp, args):
    """Check up front that the checkpoint to resume (strictly, as YOLOX does) or fine-tune from exists
    and, for a resume, fits the exp's model."""
    if args.resume:
        path = args.ckpt or os.path.join(exp.output_dir, args.experiment_name, "latest_ckpt.pth")
        model = exp.get_model()
        checkpoint = load_checkpoint(path, model)
        try:
            check_loss_state_fits(checkpoint, model)
        except ValueError as error:
            raise UsageError(f"cannot resume from {path}: {error}") from None
        interrupt.last_good_checkpoint(path, checkpoint.get("start_epoch"))
    elif args.ckpt and not os.path.isfile(args.ckpt):
        raise UsageError(f"checkpoint not found: {args.ckpt}")


def train_on_cpu(exp, args):
    """Train in this process: the whole run, or one process of a distributed one (rank 0 reports)."""
    from yolox_focal.runtime.cpu_trainer import CPUTrainer

    if exp.seed is not None:
        random.seed(exp.seed)
        torch.manual_seed(exp.seed)
    trainer = CPUTrainer(exp, args)
    trainer.train()
    if trainer.rank == 0:
        print_summary(trainer)


def print_summary(trainer):
    logger.complete()  # YOLOX's terminal log sink is queued: let its last lines out first
    records = []
    if os.path.isfile(trainer.epoch_metrics.path):
        with open(trainer.epoch_metrics.path) as f:
            records = [json.loads(line) for line in f if line.strip()]
    evaluated = [r for r in records if "ap50_95" in r]
    rows = [[f"epoch {r['epoch']}", format_ap(r["ap50_95"]), format_ap(r["ap50"]), format_ap(r.get("ap_small"))]
            for r in evaluated[-3:]]
    print("\n" + tabulate(rows, headers=["eval (val)", "AP50:95", "AP50", "AP_small"], floatfmt=".4f"))
    folder = trainer.file_name
    print(f"\nbest AP50:95 {format_ap(float(trainer.best_ap))}")
    checkpoints = [os.path.join(folder, f"{n}_ckpt.pth") for n in ("best", "latest")]
    print("checkpoints: " + ", ".join(p for p in checkpoints if os.path.isfile(p)))
    print(f"logs: {os.path.join(folder, 'train_log.txt')}, {trainer.epoch_metrics.path}, "
          f"{os.path.join(folder, 'tensorboard')}")


def main():
    args, exp, device = start_tool(
        "train", "Train a YOLOX exp on GPUs (YOLOX's trainer) or on the CPU.", splits=("train", "val"))
    folder = os.path.join(exp.output_dir, args.experiment_name)
    if getattr(args, "machine_rank", 0) == 0:  # the machine whose first process writes the folder
        claim_folder(folder)
    interrupt.watch_run(folder)
    check_resume(exp, args)
    processes = world_size(args)
    if device == "cuda":
        interrupt.set_phase("training on the GPU (YOLOX's trainer)")
        with interrupt.launching() if processes > 1 else contextlib.nullcontext():
            run_yolox_entry("train", args)
    elif processes > 1:
        interrupt.set_phase(f"training in {processes} processes")
        launch(train_on_cpu, args, (exp, args))
    else:
        train_on_cpu(exp, args)


if __name__ == "__main__":
    main_guard(main)
