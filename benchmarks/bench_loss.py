"""Loss op benchmark: forward + backward of BCE-with-logits against three focal losses.

    python benchmarks/bench_loss.py [--device auto|cpu|cuda] [--rounds 30] [--json PATH]

Compares ``yolox_focal.focal_loss`` with YOLOv5's formulation (BCE, then the focal factors as
separate tensor ops) and ``torchvision.ops.sigmoid_focal_loss``, all at gamma 1.5 / alpha 0.25,
on an objectness-shaped input (64 images x 8400 anchors, ~1% positives, hard targets) and a
classification-shaped one (fg anchors x 80 classes, soft IoU-weighted targets). Reports the
median time, its ratio to BCE, the bytes autograd keeps for the backward pass, and the largest
difference from ``yolox_focal`` (should be below 1e-6).
"""

import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torchvision.ops import sigmoid_focal_loss

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import benchmark_parser, machine, pick_device, print_table, saved_bytes, time_interleaved, write_json  # noqa: E402

from yolox_focal import focal_loss  # noqa: E402

GAMMA, ALPHA = 1.5, 0.25


def yolov5_formulation(pred, target):
    """Focal factors applied around BCE as separate ops, the way YOLOv5's FocalLoss does."""
    loss = F.binary_cross_entropy_with_logits(pred, target, reduction="none")
    prob = torch.sigmoid(pred)
    p_t = target * prob + (1 - target) * (1 - prob)
    alpha_factor = target * ALPHA + (1 - target) * (1 - ALPHA)
    return loss * alpha_factor * (1.0 - p_t) ** GAMMA


LOSSES = {
    "bce": lambda x, t: F.binary_cross_entropy_with_logits(x, t, reduction="none"),
    "yolox_focal": lambda x, t: focal_loss(x, t, GAMMA, ALPHA),
    "yolov5_formulation": yolov5_formulation,
    "torchvision": lambda x, t: sigmoid_focal_loss(x, t, ALPHA, GAMMA),
}


def make_inputs(shape_name, device, generator):
    if shape_name == "objectness":
        logits = torch.randn(64 * 8400, 1, generator=generator) * 2 - 4.6  # near the prior 0.01
        targets = (torch.rand(64 * 8400, 1, generator=generator) < 0.01).float()
    else:
        rows, classes = 64 * 128, 80
        logits = torch.randn(rows, classes, generator=generator) * 2 - 4.6
        targets = torch.zeros(rows, classes)
        targets[torch.arange(rows), torch.randint(classes, (rows,), generator=generator)] = torch.rand(
            rows, generator=generator)
    return logits.to(device), targets.to(device)


def run_case(shape_name, dtype_name, device, rounds):
    logits, targets = make_inputs(shape_name, device, torch.Generator().manual_seed(0))
    autocast = dtype_name == "float16-autocast"
    if autocast:
        logits, targets = logits.half(), targets.half()

    def step(loss_fn):
        def run():
            x = logits.clone().requires_grad_()
            with torch.autocast(device.type, dtype=torch.float16, enabled=autocast):
                loss = loss_fn(x, targets)
            loss.sum().backward()
            return loss
        return run

    variants = {name: step(fn) for name, fn in LOSSES.items()}
    timing = time_interleaved(variants, device, rounds=rounds)
    reference = variants["yolox_focal"]().detach().double()
    rows = []
    for name, fn in LOSSES.items():
        def forward_only(fn=fn):
            with torch.autocast(device.type, dtype=torch.float16, enabled=autocast):
                return fn(logits.clone().requires_grad_(), targets)
        row = {
            "shape": shape_name, "dtype": dtype_name, "loss": name,
            "median_ms": timing[name]["median_ms"], "x_bce": timing[name]["ratio"],
            "saved_MiB": saved_bytes(forward_only) / 2**20,
        }
        if name not in ("bce", "yolox_focal"):
            row["max_abs_diff"] = (variants[name]().detach().double() - reference).abs().max().item()
        rows.append(row)
    return rows


def main():
    parser = benchmark_parser(__doc__, rounds=30, json_name="loss.json")
    args = parser.parse_args()
    device = pick_device(args.device)
    dtypes = ["float32"] + (["float16-autocast"] if device.type == "cuda" else [])
    rows = []
    for shape_name in ("objectness", "classification"):
        for dtype_name in dtypes:
            rows += run_case(shape_name, dtype_name, device, args.rounds)
    print_table(f"Loss forward + backward on {device} (median of {args.rounds} interleaved rounds)",
                rows, ["shape", "dtype", "loss", "median_ms", "x_bce", "saved_MiB", "max_abs_diff"])
    write_json(args.json, {"benchmark": "loss", "device": str(device), "machine": machine(),
                           "gamma": GAMMA, "alpha": ALPHA, "rows": rows})


if __name__ == "__main__":
    main()
