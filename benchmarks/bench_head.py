"""Head benchmark: ``get_losses`` (forward + backward) of FocalYOLOXHead, for each branch choice,
against YOLOX's YOLOXHead.

    python benchmarks/bench_head.py [--device auto|cpu|cuda] [--rounds 80] [--json PATH]
                                    [--heads WORD ...] [--models nano s]

One head per loss of each branch (the other branches at YOLOX's setting), plus the kit at YOLOX's
settings; all share weights and run on the same inputs: the head outputs YOLOX computes from
random feature maps for yolox-nano (416 px) and yolox-s (640 px), batch 8, with random ground
truth (about 7 boxes an image, as in COCO). Timed interleaved, from the head outputs onward, so
the figure is the loss (label assignment included), not the convolutions. Goal: at most 1.02x
YOLOXHead for a loss; at most 1.05x for a label assignment (``assigner``), which replaces SimOTA.
``--heads tal dsl`` times only the heads whose name holds one of the words (YOLOXHead and its
control always), ``--models nano`` one model, for a short run.

A loss adds tens of microseconds to a step of 50-80 ms on the CPU, less than the step's own
spread: each ratio comes with a 95 % confidence interval, and a second copy of YOLOXHead is timed
as a control, whose ratio would be 1 exactly on a perfect machine. Its distance from 1 is the
resolution of this run.
"""

import os
import sys
from pathlib import Path

import torch
from yolox.exp import get_exp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import benchmark_parser, machine, pick_device, print_table, time_interleaved, write_json  # noqa: E402

from yolox_focal import FocalYOLOXHead, yolox_settings  # noqa: E402
from yolox_focal.losses import losses_for  # noqa: E402

MODELS = {"nano": ("yolox-nano", 416), "s": ("yolox-s", 640)}


def random_labels(batch, size, generator, boxes=7, max_labels=50):
    labels = torch.zeros(batch, max_labels, 5)
    for i in range(batch):
        n = int(torch.randint(1, 2 * boxes, (1,), generator=generator))
        wh = torch.rand(n, 2, generator=generator) * size * 0.3 + 8
        centre = wh / 2 + torch.rand(n, 2, generator=generator) * (size - wh)
        labels[i, :n, 0] = torch.randint(80, (n,), generator=generator).float()
        labels[i, :n, 1:3], labels[i, :n, 3:5] = centre, wh
    return labels


def capture_loss_args(head, feats, labels, imgs):
    """The arguments YOLOXHead.forward passes to get_losses for these inputs."""
    captured = []
    head.get_losses = lambda *args, **kwargs: captured.append((list(args), kwargs))  # this call only
    try:
        head(feats, labels, imgs)
    finally:
        del head.get_losses
    args, kwargs = captured[0]
    args[5] = args[5].detach()  # outputs: time the loss, not the convolutions
    return args, kwargs


CONTROL = "yolox, a second copy (control)"

# One variant per branch choice: every loss of every branch, the others at YOLOX's setting.
VARIANTS = {"kit at YOLOX's settings": {}}
for _branch in ("obj", "cls", "box"):
    VARIANTS.update({f"{_branch} {loss}": {f"{_branch}_loss": loss} for loss in losses_for(_branch)
                     if loss != yolox_settings()[f"{_branch}_loss"]})
VARIANTS["cls bce, label smoothing 0.1"] = {"cls_label_smoothing": 0.1}
VARIANTS["box iou, Inner-IoU 0.8 and Focaler-IoU [0, 0.95]"] = {"box_inner_ratio": 0.8, "box_focaler_high": 0.95}
# One per label assignment: each assigner, and simota and dsl with each Gaussian similarity.
ASSIGNERS = {"assigner simota (iou, YOLOX's own)": {"assigner": "simota"},
             "assigner tal": {"assigner": "tal"}, "assigner dsl": {"assigner": "dsl"},
             **{f"assigner {a} {s}": {"assigner": a, "assigner_similarity": s}
                for a in ("simota", "dsl") for s in ("nwd", "gcd")}}
VARIANTS.update(ASSIGNERS)
GOALS = {name: 1.05 if name in ASSIGNERS else 1.02 for name in VARIANTS}


def run_case(size_name, batch, device, rounds, variants):
    exp_name, image_size = MODELS[size_name]
    stock = get_exp(exp_name=exp_name).get_model().head.to(device).train()
    control = get_exp(exp_name=exp_name).get_model().head.to(device).train()
    control.load_state_dict(stock.state_dict())
    heads = {"yolox": stock, CONTROL: control}
    for name, settings in variants.items():
        head = get_exp(exp_name=exp_name).get_model().head.to(device).train()
        head.load_state_dict(stock.state_dict())
        heads[name] = FocalYOLOXHead.convert(head, **dict(yolox_settings(), **settings))
    g = torch.Generator().manual_seed(batch)
    channels = [conv.conv.in_channels for conv in stock.stems]
    feats = [torch.randn(batch, c, image_size // s, image_size // s, generator=g).to(device)
             for c, s in zip(channels, (8, 16, 32))]
    labels = random_labels(batch, image_size, g).to(device)
    imgs = torch.zeros(batch, 3, image_size, image_size, device=device)
    args, kwargs = capture_loss_args(stock, feats, labels, imgs)

    def step(head):
        def run():
            outputs = args[5].clone().requires_grad_()
            head.get_losses(*args[:5], outputs, *args[6:], **kwargs)[0].backward()
        return run

    timing = time_interleaved({name: step(head) for name, head in heads.items()}, device, rounds=rounds)
    return [{"model": size_name, "image": image_size, "batch": batch, "head": name,
             "median_ms": timing[name]["median_ms"], "x_yolox": timing[name]["ratio"],
             "ci95": "{:.3f}-{:.3f}".format(*timing[name]["ratio_ci95"]),
             "goal": "" if name in ("yolox", CONTROL) else
             f"<={GOALS[name]} " + ("ok" if timing[name]["ratio"] <= GOALS[name] else "MISSED")}
            for name in heads]


def main():
    parser = benchmark_parser(__doc__, rounds=80, json_name="head.json")
    parser.add_argument("--heads", nargs="+", metavar="WORD", help="time only the heads whose name holds a word")
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    args = parser.parse_args()
    device = pick_device(args.device)
    variants = {name: settings for name, settings in VARIANTS.items()
                if not args.heads or any(word in name for word in args.heads)}
    load_before = os.getloadavg()  # timings are only as good as the machine is quiet
    rows = [row for size in args.models for row in run_case(size, 8, device, args.rounds, variants)]
    print_table(f"get_losses forward + backward on {device} (median of {args.rounds} interleaved rounds)",
                rows, ["model", "image", "batch", "head", "median_ms", "x_yolox", "ci95", "goal"])
    missed = [f"{r['model']} {r['head']}" for r in rows if r["goal"].endswith("MISSED")]
    print("\ngoal " + ("met by every choice" if not missed else "missed by: " + ", ".join(missed)))
    write_json(args.json, {"benchmark": "head", "device": str(device), "machine": machine(), "rounds": args.rounds,
                           "load_average": {"before": load_before, "after": os.getloadavg()},
                           "goals_missed": missed, "rows": rows})


if __name__ == "__main__":
    main()
