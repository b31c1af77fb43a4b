#!/usr/bin/env python3
"""Train a YOLOX exp: YOLOX's own trainer on GPUs, yolox_focal's CPU trainer elsewhere.

Takes YOLOX's tools/train.py flags (-f, -n, -expn, -b, -d, -c, --resume, -e, --fp16, -o, --cache,
--num_machines, --machine_rank, --dist-url, --dist-backend, -l, trailing ``key value`` options)
plus ``--device auto|cuda|cpu``. With CUDA it runs exactly YOLOX's path (``exp.get_trainer``
through ``yolox.core.launch``, multi-GPU and multi-node included).

    python tools/train.py -f exps/demo/demo_focal.py -b 16            # CPU, demo data
    python tools/train.py -f exps/yolox_s_focal.py -d 8 -b 64 --fp16 -o   # COCO on 8 GPUs
"""

import json
import os
import random

import torch
from tabulate import tabulate
from yolox.tools.train import main as yolox_train_main
from yolox.tools.train import make_parser

from yolox_focal.cli import UsageError, check_data, check_state_matches, load_exp, main_guard, pick_device


def parse_args(argv=None):
    parser = make_parser()
    parser.description = "Train a YOLOX exp on GPUs (YOLOX's trainer) or on the CPU."
    parser.add_argument("--device", default="auto", choices=["auto", "cuda", "cpu"],
                        help="cuda: YOLOX's trainer; cpu: one process in float32; auto: cuda if present")
    return parser.parse_args(argv)


def check_resume(exp, args):
    """Check up front that the checkpoint to resume or fine-tune from fits the exp's model."""
    if not (args.resume or args.ckpt):
        return
    path = args.ckpt or os.path.join(exp.output_dir, args.experiment_name, "latest_ckpt.pth")
    if not os.path.isfile(path):
        raise UsageError(f"checkpoint not found: {path}")
    state = torch.load(path, map_location="cpu", weights_only=False).get("model", {})
    if args.resume:  # YOLOX resumes with a strict load; fine-tuning skips mismatched layers
        check_state_matches(state, exp.get_model(), path)


def train_on_cpu(exp, args):
    from yolox_focal.cpu import CPUTrainer

    if exp.seed is not None:
        random.seed(exp.seed)
        torch.manual_seed(exp.seed)
    trainer = CPUTrainer(exp, args)
    trainer.train()
    print_summary(trainer)


def print_summary(trainer):
    records = []
    if os.path.isfile(trainer.metrics_path):
        with open(trainer.metrics_path) as f:
            records = [json.loads(line) for line in f if line.strip()]
    evaluated = [r for r in records if "ap50_95" in r]
    rows = [[f"epoch {r['epoch']}", f"{r['ap50_95']:.4f}", f"{r['ap50']:.4f}",
             f"{r.get('ap_small', float('nan')):.4f}"] for r in evaluated[-3:]]
    print("\n" + tabulate(rows, headers=["COCO eval (val)", "AP50:95", "AP50", "AP_small"]))
    folder = trainer.file_name
    print(f"\nbest AP50:95 {trainer.best_ap:.4f}")
    checkpoints = [os.path.join(folder, f"{n}_ckpt.pth") for n in ("best", "latest")]
    print("checkpoints: " + ", ".join(p for p in checkpoints if os.path.isfile(p)))
    print(f"logs: {os.path.join(folder, 'train_log.txt')}, {trainer.metrics_path}, "
          f"{os.path.join(folder, 'tensorboard')}")


def train_on_gpus(exp, args):
    from yolox.core import launch
    from yolox.utils import configure_module, get_num_devices

    configure_module()
    gpus = get_num_devices() if args.devices is None else args.devices
    dist_url = "auto" if args.dist_url is None else args.dist_url
    launch(yolox_train_main, gpus, args.num_machines, args.machine_rank,
           backend=args.dist_backend, dist_url=dist_url, args=(exp, args))


def main():
    args = parse_args()
    exp = load_exp(args.exp_file, args.name, args.opts)
    if not args.experiment_name:
        args.experiment_name = exp.exp_name
    device = pick_device(args.device, args.devices, args.fp16)
    check_data(exp, "train")
    check_data(exp, "val")
    check_resume(exp, args)
    if device == "cuda":
        train_on_gpus(exp, args)
    else:
        train_on_cpu(exp, args)


if __name__ == "__main__":
    main_guard(main)
