"""Loss op benchmark: forward + backward of every loss of the kit against what a user would otherwise take.

    python benchmarks/bench_loss.py [--device auto|cpu|cuda] [--rounds 20] [--json PATH]

Each loss of ``yolox_focal.losses`` is timed, interleaved, against its peer (the best
implementation a user would take instead) and, for the element-wise losses, against
BCE-with-logits:

    focal       torchvision.ops.sigmoid_focal_loss                     gamma 1.5, alpha 0.25
    qfocal      YOLOv5's QFocalLoss formula, element-wise              beta 1.5, alpha 0.25
    varifocal   mmdetection's varifocal_loss formula                   alpha 0.75, gamma 2
    bce_blur    YOLOv5's BCEBlurWithLogitsLoss formula, element-wise   alpha 0.05
    iou, giou   YOLOX's IOUloss (giou also torchvision's generalized_box_iou_loss)
    diou, ciou  torchvision's distance_box_iou_loss, complete_box_iou_loss
    eiou        the EIoU formula (Zhang et al. 2021) written plainly in torch
    siou        YOLOv6's SIoU (yolov6/utils/figure_iou.py) written plainly in torch

Element-wise losses run on an objectness-shaped input (64 images x 8400 anchors, ~1% positives,
hard targets) and a classification-shaped one (64 x 128 fg anchors x 80 classes, soft IoU
targets); box losses on 64 x 128 matched (cx, cy, w, h) pairs, converted to (x1, y1, x2, y2)
inside torchvision's timed call, as a user of torchvision would have to. Reports the median time,
ours / peer (goal: <= 1), ours / BCE for the element-wise losses (goal on the CPU: <= 2), the
bytes autograd keeps for the backward pass and the largest difference of the peer's loss from
ours.
"""

import math
import os
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torchvision.ops import (complete_box_iou_loss, distance_box_iou_loss, generalized_box_iou_loss,
                             sigmoid_focal_loss)
from yolox.models.losses import IOUloss

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import benchmark_parser, machine, pick_device, print_table, saved_bytes, time_interleaved, write_json  # noqa: E402

from yolox_focal.losses import (bce_blur_loss, box_iou_loss, focal_loss, quality_focal_loss,  # noqa: E402
                                varifocal_loss)

FOCAL = dict(gamma=1.5, alpha=0.25)
QFOCAL = dict(beta=1.5, alpha=0.25)  # YOLOv5's QFocalLoss(gamma=1.5, alpha=0.25)
VARIFOCAL = dict(alpha=0.75, gamma=2.0)
BCE_BLUR = dict(alpha=0.05)
MAX_BCE_RATIO = 2.0  # element-wise goal on the CPU


# ---- peers written plainly, the way their sources write them ---------------------------------

def yolov5_qfocal(pred, true, gamma=QFOCAL["beta"], alpha=QFOCAL["alpha"]):
    """YOLOv5's QFocalLoss (utils/loss.py), element-wise."""
    loss = F.binary_cross_entropy_with_logits(pred, true, reduction="none")
    pred_prob = torch.sigmoid(pred)
    alpha_factor = true * alpha + (1 - true) * (1 - alpha)
    modulating_factor = torch.abs(true - pred_prob) ** gamma
    return loss * alpha_factor * modulating_factor


def mmdet_varifocal(pred, target, alpha=VARIFOCAL["alpha"], gamma=VARIFOCAL["gamma"]):
    """mmdetection's varifocal_loss (iou_weighted=True), element-wise."""
    pred_sigmoid = pred.sigmoid()
    target = target.type_as(pred)
    focal_weight = (target * (target > 0.0).float()
                    + alpha * (pred_sigmoid - target).abs().pow(gamma) * (target <= 0.0).float())
    return F.binary_cross_entropy_with_logits(pred, target, reduction="none") * focal_weight


def yolov5_bce_blur(pred, true, alpha=BCE_BLUR["alpha"]):
    """YOLOv5's BCEBlurWithLogitsLoss (utils/loss.py), element-wise."""
    loss = F.binary_cross_entropy_with_logits(pred, true, reduction="none")
    pred = torch.sigmoid(pred)
    dx = pred - true
    alpha_factor = 1 - torch.exp((dx - 1) / (alpha + 1e-4))
    return loss * alpha_factor


def _corners(box):
    """(cx, cy, w, h) -> x1, x2, y1, y2."""
    return box[..., 0] - box[..., 2] / 2, box[..., 0] + box[..., 2] / 2, \
        box[..., 1] - box[..., 3] / 2, box[..., 1] + box[..., 3] / 2


def _xyxy(box):
    return torch.cat([box[..., :2] - box[..., 2:] / 2, box[..., :2] + box[..., 2:] / 2], dim=-1)


def plain_eiou(pred, target, eps=1e-7):
    """EIoU (Zhang et al. 2021): 1 - IoU + rho^2 / c^2 + dw^2 / cw^2 + dh^2 / ch^2."""
    b1_x1, b1_x2, b1_y1, b1_y2 = _corners(pred)
    b2_x1, b2_x2, b2_y1, b2_y2 = _corners(target)
    inter = ((torch.min(b1_x2, b2_x2) - torch.max(b1_x1, b2_x1)).clamp(0)
             * (torch.min(b1_y2, b2_y2) - torch.max(b1_y1, b2_y1)).clamp(0))
    w1, h1, w2, h2 = pred[..., 2], pred[..., 3], target[..., 2], target[..., 3]
    iou = inter / (w1 * h1 + w2 * h2 - inter + eps)
    cw = torch.max(b1_x2, b2_x2) - torch.min(b1_x1, b2_x1)
    ch = torch.max(b1_y2, b2_y2) - torch.min(b1_y1, b2_y1)
    rho2 = (target[..., 0] - pred[..., 0]) ** 2 + (target[..., 1] - pred[..., 1]) ** 2
    return (1 - iou + rho2 / (cw**2 + ch**2 + eps) + (w1 - w2) ** 2 / (cw**2 + eps)
            + (h1 - h2) ** 2 / (ch**2 + eps))


def yolov6_siou(pred, target, eps=1e-7):
    """YOLOv6's SIoU (yolov6/utils/figure_iou.py, IOUloss(iou_type="siou")) on (cx, cy, w, h)."""
    b1_x1, b1_x2, b1_y1, b1_y2 = _corners(pred)
    b2_x1, b2_x2, b2_y1, b2_y2 = _corners(target)
    inter = ((torch.min(b1_x2, b2_x2) - torch.max(b1_x1, b2_x1)).clamp(0)
             * (torch.min(b1_y2, b2_y2) - torch.max(b1_y1, b2_y1)).clamp(0))
    w1, h1 = b1_x2 - b1_x1, b1_y2 - b1_y1 + eps
    w2, h2 = b2_x2 - b2_x1, b2_y2 - b2_y1 + eps
    union = w1 * h1 + w2 * h2 - inter + eps
    iou = inter / union
    cw = torch.max(b1_x2, b2_x2) - torch.min(b1_x1, b2_x1)
    ch = torch.max(b1_y2, b2_y2) - torch.min(b1_y1, b2_y1)
    s_cw = (b2_x1 + b2_x2 - b1_x1 - b1_x2) * 0.5
    s_ch = (b2_y1 + b2_y2 - b1_y1 - b1_y2) * 0.5
    sigma = torch.pow(s_cw**2 + s_ch**2, 0.5)
    sin_alpha_1 = torch.abs(s_cw) / sigma
    sin_alpha_2 = torch.abs(s_ch) / sigma
    threshold = pow(2, 0.5) / 2
    sin_alpha = torch.where(sin_alpha_1 > threshold, sin_alpha_2, sin_alpha_1)
    angle_cost = torch.cos(torch.arcsin(sin_alpha) * 2 - math.pi / 2)
    rho_x = (s_cw / cw) ** 2
    rho_y = (s_ch / ch) ** 2
    gamma = angle_cost - 2
    distance_cost = 2 - torch.exp(gamma * rho_x) - torch.exp(gamma * rho_y)
    omiga_w = torch.abs(w1 - w2) / torch.max(w1, w2)
    omiga_h = torch.abs(h1 - h2) / torch.max(h1, h2)
    shape_cost = torch.pow(1 - torch.exp(-1 * omiga_w), 4) + torch.pow(1 - torch.exp(-1 * omiga_h), 4)
    return 1.0 - (iou - 0.5 * (distance_cost + shape_cost))


def _bce(x, t):
    return F.binary_cross_entropy_with_logits(x, t, reduction="none")


# name -> (ours, [(peer name, peer)])
ELEMENTWISE = {
    "focal": (lambda x, t: focal_loss(x, t, **FOCAL),
              [("torchvision sigmoid_focal_loss", lambda x, t: sigmoid_focal_loss(x, t, **FOCAL))]),
    "qfocal": (lambda x, t: quality_focal_loss(x, t, **QFOCAL), [("YOLOv5 QFocalLoss", yolov5_qfocal)]),
    "varifocal": (lambda x, t: varifocal_loss(x, t, **VARIFOCAL), [("mmdet varifocal_loss", mmdet_varifocal)]),
    "bce_blur": (lambda x, t: bce_blur_loss(x, t, **BCE_BLUR), [("YOLOv5 BCEBlurWithLogits", yolov5_bce_blur)]),
}

_yolox_iou, _yolox_giou = IOUloss(reduction="none", loss_type="iou"), IOUloss(reduction="none", loss_type="giou")
BOXES = {
    "iou": (lambda p, t: box_iou_loss(p, t, "iou"), [("YOLOX IOUloss", _yolox_iou)]),
    "giou": (lambda p, t: box_iou_loss(p, t, "giou"),
             [("YOLOX IOUloss", _yolox_giou),
              ("torchvision generalized_box_iou_loss", lambda p, t: generalized_box_iou_loss(_xyxy(p), _xyxy(t)))]),
    "diou": (lambda p, t: box_iou_loss(p, t, "diou"),
             [("torchvision distance_box_iou_loss", lambda p, t: distance_box_iou_loss(_xyxy(p), _xyxy(t)))]),
    "ciou": (lambda p, t: box_iou_loss(p, t, "ciou"),
             [("torchvision complete_box_iou_loss", lambda p, t: complete_box_iou_loss(_xyxy(p), _xyxy(t)))]),
    "eiou": (lambda p, t: box_iou_loss(p, t, "eiou"), [("plain EIoU", plain_eiou)]),
    "siou": (lambda p, t: box_iou_loss(p, t, "siou"), [("YOLOv6 SIoU", yolov6_siou)]),
}


def make_inputs(shape_name, device, generator):
    if shape_name == "objectness":
        logits = torch.randn(64 * 8400, 1, generator=generator) * 2 - 4.6  # near the prior 0.01
        targets = (torch.rand(64 * 8400, 1, generator=generator) < 0.01).float()
    elif shape_name == "classification":
        rows, classes = 64 * 128, 80
        logits = torch.randn(rows, classes, generator=generator) * 2 - 4.6
        targets = torch.zeros(rows, classes)
        targets[torch.arange(rows), torch.randint(classes, (rows,), generator=generator)] = torch.rand(
            rows, generator=generator)
    else:  # boxes: matched (cx, cy, w, h) pairs, predictions near their targets
        pairs = 64 * 128
        centres = torch.rand(pairs, 2, generator=generator) * 640
        sizes = torch.rand(pairs, 2, generator=generator) * 200 + 4
        targets = torch.cat([centres, sizes], dim=1)
        logits = torch.cat([centres + torch.randn(pairs, 2, generator=generator) * sizes / 4,
                            sizes * torch.exp(torch.randn(pairs, 2, generator=generator) * 0.3)], dim=1)
    return logits.to(device), targets.to(device)


def run_case(shape_name, dtype_name, device, rounds):
    inputs, targets = make_inputs(shape_name, device, torch.Generator().manual_seed(0))
    autocast = dtype_name == "float16-autocast"
    if autocast:
        inputs, targets = inputs.half(), targets.half()
    boxes = shape_name == "boxes"

    def call(fn):
        with torch.autocast(device.type, dtype=torch.float16, enabled=autocast):
            x = inputs.clone().requires_grad_()
            return x, fn(x, targets)

    def step(fn):
        def run():
            x, loss = call(fn)
            loss.sum().backward()
            return loss
        return run

    rows = []
    for name, (ours, peers) in (BOXES if boxes else ELEMENTWISE).items():
        variants = {"ours": step(ours)}
        variants.update({peer_name: step(peer) for peer_name, peer in peers})
        if not boxes:
            variants["BCE"] = step(_bce)
        timing = time_interleaved(variants, device, rounds=rounds)
        reference = call(ours)[1].detach().double()

        def row(implementation, fn, **extra):
            return dict({"shape": shape_name, "dtype": dtype_name, "loss": name, "implementation": implementation,
                         "median_ms": timing[implementation]["median_ms"],
                         "saved_MiB": saved_bytes(lambda: call(fn)[1]) / 2**20}, **extra)

        ours_row = row("ours", ours)
        if not boxes:
            # per-round ratios are taken against "ours" (timed first); their medians are inverted
            ours_row["x_bce"] = 1 / timing["BCE"]["ratio"]
            ours_row["bce_goal_met"] = device.type != "cpu" or ours_row["x_bce"] <= MAX_BCE_RATIO
        peer_rows = []
        for peer_name, peer in peers:
            ratio = 1 / timing[peer_name]["ratio"]  # ours / peer
            peer_rows.append(row(peer_name, peer, ours_per_peer=ratio, peer_goal_met=ratio <= 1,
                                 max_abs_diff=(call(peer)[1].detach().double() - reference).abs().max().item()))
        ours_row["ours_per_peer"] = max(r["ours_per_peer"] for r in peer_rows)
        ours_row["peer_goal_met"] = all(r["peer_goal_met"] for r in peer_rows)
        rows += [ours_row] + peer_rows
        if not boxes:
            rows.append(row("BCE", _bce))
    return rows


def main():
    parser = benchmark_parser(__doc__, rounds=20, json_name="loss.json")
    args = parser.parse_args()
    device = pick_device(args.device)
    dtypes = ["float32"] + (["float16-autocast"] if device.type == "cuda" else [])
    rows, load_before = [], os.getloadavg()  # timings are only as good as the machine is quiet
    for shape_name in ("objectness", "classification", "boxes"):
        for dtype_name in dtypes:
            rows += run_case(shape_name, dtype_name, device, args.rounds)
    print_table(f"Loss forward + backward on {device} (median of {args.rounds} interleaved rounds; goals: "
                f"ours/peer <= 1, ours/BCE <= {MAX_BCE_RATIO:g} on the CPU)", rows,
                ["shape", "dtype", "loss", "implementation", "median_ms", "ours_per_peer", "x_bce",
                 "peer_goal_met", "bce_goal_met", "saved_MiB", "max_abs_diff"])
    missed = [f"{r['shape']}/{r['dtype']}/{r['loss']}" for r in rows
              if r["implementation"] == "ours" and not (r["peer_goal_met"] and r.get("bce_goal_met", True))]
    print("\ngoals " + ("met by every loss" if not missed else "missed by: " + ", ".join(missed)))
    load = {"before": load_before, "after": os.getloadavg()}
    print(f"load average (1, 5, 15 min) before {load['before']}, after {load['after']}")
    write_json(args.json, {"benchmark": "loss", "device": str(device), "machine": machine(), "load_average": load,
                           "params": {"focal": FOCAL, "qfocal": QFOCAL, "varifocal": VARIFOCAL,
                                      "bce_blur": BCE_BLUR},
                           "goals": {"ours_per_peer_max": 1.0, "ours_per_bce_max_cpu": MAX_BCE_RATIO},
                           "goals_missed": missed, "rows": rows})


if __name__ == "__main__":
    main()
