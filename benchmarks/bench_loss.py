"""Loss op benchmark: forward + backward of every loss of the kit against what a user would otherwise take.

    python benchmarks/bench_loss.py [--device auto|cpu|cuda] [--rounds 20] [--json PATH] [--losses NAME ...]

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
    alpha_iou, wiou, mpdiou, shape_iou, nwd, gcd
                their papers' formulas written plainly (tests/references.py)     alpha 3, C 12.8
    wiou_v3     the formula written plainly, its running mean kept as the authors' code keeps it
    uiou        the formula written plainly (the authors' code's), at the training progress 0.5
    piou, piou_v2
                their paper's formulas written plainly (tests/references.py)     lambda 1.3
    mal         DEIM's loss_mal, element-wise: BCE-with-logits against t**gamma, negatives
                weighted by p**gamma                                      gamma 1.5
    atfl        the EFLNet formula written plainly (tests/references.py), its running mean of
                p_t a Python float as in the copies                       lambda 1.5, momentum 0.95
    poly1, poly1_focal
                BCE-with-logits / torchvision's focal loss plus the Poly-1 term    epsilon 1
    slide, slide_ema
                the authors' SlideLoss formula on BCE-with-logits (classification only)

The formulas written plainly are tests/references.py's, shared with the tests.

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
from references import (class_targets, geometry, random_pairs, reference_alpha_iou, reference_atfl,  # noqa: E402
                        reference_eiou, reference_gcd, reference_mpdiou, reference_nwd, reference_piou,
                        reference_piou_v2, reference_shape_iou, reference_siou, reference_uiou, reference_wiou, xyxy)

from yolox_focal.losses import (bce_blur_loss, box_iou_loss, focal_loss, quality_focal_loss,  # noqa: E402
                                varifocal_loss)
from yolox_focal.losses.alpha_iou import alpha_iou_loss  # noqa: E402
from yolox_focal.losses.gcd import gcd_loss  # noqa: E402
from yolox_focal.losses.mpdiou import mpdiou_loss  # noqa: E402
from yolox_focal.losses.nwd import nwd_loss  # noqa: E402
from yolox_focal.losses.atfl import ATFLLoss, max_exponent  # noqa: E402
from yolox_focal.losses.mal import mal_loss  # noqa: E402
from yolox_focal.losses.piou import piou_loss, piou_v2_loss  # noqa: E402
from yolox_focal.losses.poly import poly1_focal_loss, poly1_loss  # noqa: E402
from yolox_focal.losses.shape_iou import shape_iou_loss  # noqa: E402
from yolox_focal.losses.slide import SlideEMALoss, slide_loss  # noqa: E402
from yolox_focal.losses.uiou import uiou_loss  # noqa: E402
from yolox_focal.losses.wise_iou import WIoUv3Loss, wiou_loss  # noqa: E402

FOCAL = dict(gamma=1.5, alpha=0.25)
QFOCAL = dict(beta=1.5, alpha=0.25)  # YOLOv5's QFocalLoss(gamma=1.5, alpha=0.25)
VARIFOCAL = dict(alpha=0.75, gamma=2.0)
BCE_BLUR = dict(alpha=0.05)
POLY1 = dict(epsilon=1.0)
POLY1_FOCAL = dict(epsilon=1.0, gamma=1.5, alpha=0.25)
ALPHA_IOU = dict(alpha=3.0)
NWD = dict(constant=12.8)
INPUT_SIZE = (640, 640)  # mpdiou's training input (height, width)
WIOU_V3 = dict(alpha=1.9, delta=3.0, momentum=1 - 0.5 ** (1 / 7000))
SLIDE_EMA = dict(momentum=0.01)
MAL = dict(gamma=1.5)
ATFL = dict(lam=1.5, momentum=0.95)
PIOU_V2 = dict(lam=1.3)
UIOU_PROGRESS = 0.5  # uiou's training progress: ratio 1.25 on the default linear schedule
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


def plain_poly1(x, t, epsilon=POLY1["epsilon"]):
    """Poly-1 on BCE as its paper's code writes it: BCE + epsilon (1 - p_t)."""
    p = torch.sigmoid(x)
    return F.binary_cross_entropy_with_logits(x, t, reduction="none") + epsilon * (1 - (t * p + (1 - t) * (1 - p)))


def plain_poly1_focal(x, t, epsilon=POLY1_FOCAL["epsilon"], gamma=POLY1_FOCAL["gamma"], alpha=POLY1_FOCAL["alpha"]):
    """Poly-1 on focal: torchvision's sigmoid_focal_loss + epsilon (1 - p_t) ** (gamma + 1)."""
    p = torch.sigmoid(x)
    p_t = t * p + (1 - t) * (1 - p)
    return sigmoid_focal_loss(x, t, alpha, gamma) + epsilon * torch.pow(1 - p_t, gamma + 1)


def plain_slide(x, t, mean):
    """The authors' SlideLoss (YOLO-FaceV2) on BCE-with-logits, mu floored at 0.2."""
    loss = F.binary_cross_entropy_with_logits(x, t, reduction="none")
    mean = max(mean, 0.2)
    low = t <= mean - 0.1
    middle = (t > mean - 0.1) & (t < mean)
    high = t >= mean
    return loss * (1.0 * low + math.exp(1.0 - mean) * middle + torch.exp(-(t - 1.0)) * high)


def plain_slide_batch_mean(x, t):
    return plain_slide(x, t, t[t > 0].mean().item())


class PlainRunningMean:
    """A running mean kept as the copies keep it: a Python float moved with ``.item()``; from
    ``initial``, or (None) set by the first value."""

    def __init__(self, initial, momentum):
        self.mean, self.momentum = initial, momentum

    def update(self, value):
        value = value.item()
        self.mean = value if self.mean is None else (1 - self.momentum) * self.mean + self.momentum * value
        return self.mean


def plain_wiou_v3():
    """Wise-IoU v3 written plainly, in the structure of the authors' code."""
    running = PlainRunningMean(1.0, WIOU_V3["momentum"])

    def loss(p, t):
        iou, cw, ch, rho2 = geometry(p, t)
        iou_loss = 1 - iou
        mean = running.update(iou_loss.detach().mean())
        beta = iou_loss.detach() / mean
        r = beta / (WIOU_V3["delta"] * WIOU_V3["alpha"] ** (beta - WIOU_V3["delta"]))
        return r * torch.exp(rho2 / (cw**2 + ch**2).detach()) * iou_loss
    return loss


def plain_slide_ema():
    running = PlainRunningMean(None, SLIDE_EMA["momentum"])

    def loss(x, t):
        return plain_slide(x, t, running.update(t[t > 0].mean()))
    return loss


def plain_mal(x, t, gamma=MAL["gamma"]):
    """DEIM's loss_mal (Huang et al. 2025), element-wise: BCE-with-logits against t**gamma, the
    negatives weighted by p**gamma (in the graph, as the kit has it)."""
    weight = torch.where(t > 0, torch.ones_like(x), torch.sigmoid(x) ** gamma)
    return F.binary_cross_entropy_with_logits(x, t**gamma, reduction="none") * weight


def plain_atfl():
    """ATFL written plainly (tests/references.py), the running mean of p_t a Python float."""
    running = PlainRunningMean(None, ATFL["momentum"])

    def loss(x, t):
        p = torch.sigmoid(x)
        mean = running.update((t * p + (1 - t) * (1 - p)).detach().mean())
        return reference_atfl(x, t, mean, ATFL["lam"], max_exponent(ATFL["lam"]))
    return loss


def kit_module(cls, **params):
    """A stateful loss of the kit in training mode, as the head runs it."""
    return cls(**params).train()


def _bce(x, t):
    return F.binary_cross_entropy_with_logits(x, t, reduction="none")


# name -> (ours, [(peer name, peer)])
ELEMENTWISE = {
    "focal": (lambda x, t: focal_loss(x, t, **FOCAL),
              [("torchvision sigmoid_focal_loss", lambda x, t: sigmoid_focal_loss(x, t, **FOCAL))]),
    "qfocal": (lambda x, t: quality_focal_loss(x, t, **QFOCAL), [("YOLOv5 QFocalLoss", yolov5_qfocal)]),
    "varifocal": (lambda x, t: varifocal_loss(x, t, **VARIFOCAL), [("mmdet varifocal_loss", mmdet_varifocal)]),
    "bce_blur": (lambda x, t: bce_blur_loss(x, t, **BCE_BLUR), [("YOLOv5 BCEBlurWithLogits", yolov5_bce_blur)]),
    "poly1": (lambda x, t: poly1_loss(x, t, **POLY1), [("plain Poly-1 BCE", plain_poly1)]),
    "poly1_focal": (lambda x, t: poly1_focal_loss(x, t, **POLY1_FOCAL), [("plain Poly-1 focal", plain_poly1_focal)]),
    "slide": (slide_loss, [("YOLO-FaceV2 SlideLoss", plain_slide_batch_mean)]),
    "slide_ema": (kit_module(SlideEMALoss, **SLIDE_EMA), [("SlideLoss, running mean", plain_slide_ema())]),
    "mal": (lambda x, t: mal_loss(x, t, **MAL), [("DEIM loss_mal", plain_mal)]),
    "atfl": (kit_module(ATFLLoss, **ATFL), [("EFLNet ATFL, running mean", plain_atfl())]),
}
CLASSIFICATION_ONLY = {"slide", "slide_ema"}  # on hard objectness targets their weight is 1

_yolox_iou, _yolox_giou = IOUloss(reduction="none", loss_type="iou"), IOUloss(reduction="none", loss_type="giou")
BOXES = {
    "iou": (lambda p, t: box_iou_loss(p, t, "iou"), [("YOLOX IOUloss", _yolox_iou)]),
    "giou": (lambda p, t: box_iou_loss(p, t, "giou"),
             [("YOLOX IOUloss", _yolox_giou),
              ("torchvision generalized_box_iou_loss", lambda p, t: generalized_box_iou_loss(xyxy(p), xyxy(t)))]),
    "diou": (lambda p, t: box_iou_loss(p, t, "diou"),
             [("torchvision distance_box_iou_loss", lambda p, t: distance_box_iou_loss(xyxy(p), xyxy(t)))]),
    "ciou": (lambda p, t: box_iou_loss(p, t, "ciou"),
             [("torchvision complete_box_iou_loss", lambda p, t: complete_box_iou_loss(xyxy(p), xyxy(t)))]),
    "eiou": (lambda p, t: box_iou_loss(p, t, "eiou"), [("plain EIoU", reference_eiou)]),
    "siou": (lambda p, t: box_iou_loss(p, t, "siou"), [("YOLOv6 SIoU", reference_siou)]),
    "alpha_iou": (lambda p, t: alpha_iou_loss(p, t, **ALPHA_IOU),
                  [("plain Alpha-IoU", lambda p, t: reference_alpha_iou(p, t, **ALPHA_IOU))]),
    "wiou": (wiou_loss, [("plain Wise-IoU v1", reference_wiou)]),
    "wiou_v3": (kit_module(WIoUv3Loss, **WIOU_V3), [("plain Wise-IoU v3, running mean", plain_wiou_v3())]),
    "mpdiou": (lambda p, t: mpdiou_loss(p, t, INPUT_SIZE),
               [("plain MPDIoU", lambda p, t: reference_mpdiou(p, t, INPUT_SIZE))]),
    "shape_iou": (shape_iou_loss, [("plain Shape-IoU", lambda p, t: reference_shape_iou(p, t, 0.0))]),
    "nwd": (lambda p, t: nwd_loss(p, t, **NWD), [("plain NWD", lambda p, t: reference_nwd(p, t, **NWD))]),
    "gcd": (gcd_loss, [("plain GCD", reference_gcd)]),
    "piou": (piou_loss, [("plain PIoU", lambda p, t: reference_piou(p, t)[0])]),
    "piou_v2": (lambda p, t: piou_v2_loss(p, t, **PIOU_V2),
                [("plain PIoU v2", lambda p, t: reference_piou_v2(p, t, **PIOU_V2))]),
    "uiou": (lambda p, t: uiou_loss(p, t, UIOU_PROGRESS),
             [("plain Unified-IoU", lambda p, t: reference_uiou(p, t, UIOU_PROGRESS))]),
}


def make_inputs(shape_name, device, generator):
    if shape_name == "objectness":
        logits = torch.randn(64 * 8400, 1, generator=generator) * 2 - 4.6  # near the prior 0.01
        targets = (torch.rand(64 * 8400, 1, generator=generator) < 0.01).float()
    elif shape_name == "classification":  # YOLOX's: one-hot times the IoU of the match
        rows, classes = 64 * 128, 80
        logits = torch.randn(rows, classes, generator=generator) * 2 - 4.6
        targets = class_targets(rows, classes, generator, torch.float32)
    else:  # boxes: matched (cx, cy, w, h) pairs, predictions near their targets
        logits, targets = random_pairs(64 * 128, int(torch.randint(2**31, (1,), generator=generator)),
                                       torch.float32)
    return logits.to(device), targets.to(device)


def run_case(shape_name, dtype_name, device, rounds, losses=None):
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
        if (shape_name == "objectness" and name in CLASSIFICATION_ONLY) or (losses and name not in losses):
            continue
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
    names = list(ELEMENTWISE) + list(BOXES)
    parser.add_argument("--losses", nargs="+", choices=names, metavar="NAME",
                        help=f"time only these losses (default: all): {', '.join(names)}")
    args = parser.parse_args()
    device = pick_device(args.device)
    dtypes = ["float32"] + (["float16-autocast"] if device.type == "cuda" else [])
    rows, load_before = [], os.getloadavg()  # timings are only as good as the machine is quiet
    for shape_name in ("objectness", "classification", "boxes"):
        for dtype_name in dtypes:
            rows += run_case(shape_name, dtype_name, device, args.rounds, args.losses)
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
                                      "bce_blur": BCE_BLUR, "poly1": POLY1, "poly1_focal": POLY1_FOCAL,
                                      "alpha_iou": ALPHA_IOU, "nwd": NWD, "mpdiou_input_size": INPUT_SIZE,
                                      "wiou_v3": WIOU_V3, "slide_ema": SLIDE_EMA, "uiou_progress": UIOU_PROGRESS,
                                      "mal": MAL, "atfl": ATFL, "piou_v2": PIOU_V2},
                           "goals": {"ours_per_peer_max": 1.0, "ours_per_bce_max_cpu": MAX_BCE_RATIO},
                           "goals_missed": missed, "rows": rows})


if __name__ == "__main__":
    main()
