"""Training-step benchmark: the focal demo exp against the identical BCE demo exp.

    python benchmarks/bench_train_step.py [--device auto|cpu|cuda] [-b 16] [--rounds 15] [--json PATH]

One step is forward, loss, backward and the exp's own optimizer step, on a fixed batch at the exp's
input size with small boxes like the demo data's. Both models start from the same weights.
"""

import sys
from pathlib import Path

import torch
from yolox.exp import get_exp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import benchmark_parser, machine, pick_device, print_table, time_interleaved, write_json  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
EXPS = {"bce": REPO / "exps" / "demo" / "demo_bce.py", "focal": REPO / "exps" / "demo" / "demo_focal.py"}


def fixed_batch(batch, size, num_classes, generator, boxes_per_image=6):
    images = torch.rand(batch, 3, size, size, generator=generator) * 255
    labels = torch.zeros(batch, 50, 5)
    for i in range(batch):
        wh = torch.rand(boxes_per_image, 2, generator=generator) * size * 0.15 + 6
        centre = wh / 2 + torch.rand(boxes_per_image, 2, generator=generator) * (size - wh)
        labels[i, :boxes_per_image, 0] = torch.randint(num_classes, (boxes_per_image,), generator=generator).float()
        labels[i, :boxes_per_image, 1:3], labels[i, :boxes_per_image, 3:5] = centre, wh
    return images, labels


def main():
    parser = benchmark_parser(__doc__, rounds=15, json_name="train_step.json")
    parser.add_argument("-b", "--batch-size", type=int, default=16)
    args = parser.parse_args()
    device = pick_device(args.device)

    exps = {name: get_exp(str(path)) for name, path in EXPS.items()}
    models = {name: exp.get_model().to(device).train() for name, exp in exps.items()}
    models["focal"].load_state_dict(models["bce"].state_dict())
    optimizers = {name: exps[name].get_optimizer(args.batch_size) for name in exps}
    exp = exps["focal"]
    images, labels = fixed_batch(args.batch_size, exp.input_size[0], exp.num_classes,
                                 torch.Generator().manual_seed(0))
    images, labels = images.to(device), labels.to(device)

    def step(name):
        def run():
            optimizers[name].zero_grad()
            models[name](images, labels)["total_loss"].backward()
            optimizers[name].step()
        return run

    timing = time_interleaved({name: step(name) for name in ("bce", "focal")}, device,
                              rounds=args.rounds, warmup=3)
    row = {"exp": "demo", "image": exp.input_size[0], "batch": args.batch_size,
           "bce_ms": timing["bce"]["median_ms"], "focal_ms": timing["focal"]["median_ms"],
           "ratio": timing["focal"]["ratio"]}
    print_table(f"Training step on {device} (median of {args.rounds} interleaved rounds)", [row],
                ["exp", "image", "batch", "bce_ms", "focal_ms", "ratio"])
    write_json(args.json, {"benchmark": "train_step", "device": str(device), "machine": machine(),
                           "rows": [row]})


if __name__ == "__main__":
    main()
