"""Accuracy ablation: BCE against focal objectness on the demo data set, over several seeds.

    python benchmarks/ablate.py [--seeds 0 1 2] [--variants bce focal ...] [--out benchmarks/ablation]
                                [--device auto] [-b 16] [--opts key value ...]

Every variant trains exps/demo/demo_focal.py with the same schedule and seeds, through
tools/train.py (``--opts key value ...`` go to every run, e.g. ``--opts max_epoch 12``), and is
evaluated with pycocotools after each epoch. Writes ``<out>/ablation.md`` (AP50:95, AP50 and
AP_small of the last epoch: mean and standard deviation over seeds) and plots,
``ablation_ap.png``, ``ablation_ap50.png`` and ``ablation_obj_loss.png`` (one line per variant, mean over seeds).

Run it again to resume: finished runs are kept, an interrupted run resumes from its last
checkpoint.
"""

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXP = REPO / "exps" / "demo" / "demo_focal.py"

# name -> exp options; every variant runs the same exp, only these keys differ.
VARIANTS = {
    "bce": {"obj_loss": "bce"},
    "focal": {"obj_loss": "focal", "focal_gamma": 1.5, "focal_alpha": 0.25},
    "focal-g2": {"obj_loss": "focal", "focal_gamma": 2.0, "focal_alpha": 0.25},
    "focal-g1.5-noalpha": {"obj_loss": "focal", "focal_gamma": 1.5, "focal_alpha": None},
    "focal-w4": {"obj_loss": "focal", "focal_gamma": 1.5, "focal_alpha": 0.25, "obj_loss_weight": 4.0},
}
METRICS = ("ap50_95", "ap50", "ap_small")


def run_dir(out, variant, seed):
    return out / f"{variant}-seed{seed}"


def exp_settings(opts):
    """The exp's values with ``opts`` merged: with -b, what a run's results depend on. Recorded so
    that a change to exps/demo/demo_focal.py itself also keeps old runs out of new tables."""
    from yolox.exp import get_exp

    exp = get_exp(str(EXP))
    exp.merge(opts)
    plain = (bool, int, float, str, tuple, type(None))
    values = {k: v for k, v in vars(exp).items() if isinstance(v, plain) and k not in ("output_dir", "exp_name", "data_dir")}
    return json.loads(json.dumps(values, sort_keys=True))  # as read back from settings.json


def check_same_settings(directory, settings):
    """A run is kept or resumed only under the settings it started with; record them on first use."""
    record = directory / "settings.json"
    if record.exists():
        before = json.loads(record.read_text())
        if before != settings:
            changed = [f"{key}: {before.get(key, 'not recorded')} -> {settings.get(key)}"
                       for key in sorted(set(before) | set(settings)) if key != "exp" and before.get(key) != settings.get(key)]
            old_exp, new_exp = before.get("exp"), settings.get("exp", {})
            if old_exp is None:
                changed.append("exp values: not recorded")
            elif old_exp != new_exp:
                changed += [f"{k}: {old_exp.get(k)} -> {new_exp.get(k)}" for k in sorted(set(old_exp) | set(new_exp))
                            if old_exp.get(k) != new_exp.get(k)]
            sys.exit(f"ablate: {directory} was trained with other settings ({'; '.join(changed)}); "
                     "pass the same -b/--opts, or another --out")
    else:
        directory.mkdir(parents=True, exist_ok=True)
        record.write_text(json.dumps(settings) + "\n")


def train(out, variant, seed, args):
    """Train one run unless it finished; resume it if it was interrupted."""
    directory = run_dir(out, variant, seed)
    opts = [str(v) for item in VARIANTS[variant].items() for v in item] + ["seed", str(seed)] + args.opts
    check_same_settings(directory, {"batch_size": args.batch_size, "opts": args.opts, "exp": exp_settings(opts)})
    if (directory / "done").exists():
        print(f"[ablate] {directory.name}: done, kept")
        return
    command = [sys.executable, str(REPO / "tools" / "train.py"), "-f", str(EXP),
               "-expn", directory.name, "-b", str(args.batch_size), "--device", args.device]
    checkpoint = directory / "latest_ckpt.pth"
    if checkpoint.exists():
        command += ["--resume", "-c", str(checkpoint)]
        print(f"[ablate] {directory.name}: resuming from {checkpoint}")
    else:
        print(f"[ablate] {directory.name}: training")
    subprocess.run(command + opts + ["output_dir", str(out)], check=True, cwd=REPO)
    (directory / "done").touch()


def read_metrics(out, variant, seeds):
    """{seed: per-epoch records} of each finished run, from the trainer's metrics.jsonl."""
    runs = {}
    for seed in seeds:
        directory = run_dir(out, variant, seed)
        if (directory / "done").exists():  # unfinished runs would mix schedules in one mean
            lines = (directory / "metrics.jsonl").read_text().splitlines()
            runs[seed] = [json.loads(line) for line in lines if line.strip()]
    return runs


def mean_std(values):
    values = [v for v in values if v is not None]
    if not values:
        return None, None
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def summary_table(out, variants, seeds):
    lines = ["| variant | settings | seeds | " + " | ".join(f"{m} (mean ± sd)" for m in METRICS)
             + " | ap50 per seed |",
             "|---|---|---|" + "---|" * len(METRICS) + "---|"]
    for variant in variants:
        finals = {seed: run[-1] for seed, run in read_metrics(out, variant, seeds).items() if run}
        if not finals:
            continue
        cells = []
        for metric in METRICS:
            mean, sd = mean_std([f.get(metric) for f in finals.values()])
            cells.append("n/a" if mean is None else f"{mean:.4f} ± {sd:.4f}")
        per_seed = ", ".join(f"{seed}: " + ("n/a" if f.get("ap50") is None else f"{f['ap50']:.3f}")
                             for seed, f in finals.items())
        settings = ", ".join(f"{k}={v}" for k, v in VARIANTS[variant].items())
        lines.append(f"| {variant} | {settings} | {len(finals)} | " + " | ".join(cells) + f" | {per_seed} |")
    return "\n".join(lines)


def plot(out, variants, seeds, key, ylabel, filename):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for variant in variants:
        runs = [run for run in read_metrics(out, variant, seeds).values() if run]
        if not runs:
            continue
        epochs = sorted({r["epoch"] for run in runs for r in run if r.get(key) is not None})
        means = [statistics.fmean(r[key] for run in runs for r in run
                                  if r["epoch"] == e and r.get(key) is not None) for e in epochs]
        ax.plot(epochs, means, marker="o", label=variant)
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.set_title(f"{ylabel}, mean over seeds {', '.join(map(str, seeds))}")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / filename, dpi=120)
    plt.close(fig)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "ablation")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("-b", "--batch-size", type=int, default=16)
    parser.add_argument("--report-only", action="store_true", help="only rebuild table and plots")
    parser.add_argument("--opts", nargs="*", default=[], metavar="KEY VALUE",
                        help="exp options for every run, e.g. --opts max_epoch 12 no_aug_epochs 2")
    args = parser.parse_args()
    args.out = args.out.resolve()
    if not args.report_only:
        for seed in args.seeds:  # seed-major: an early stop still leaves every variant comparable
            for variant in args.variants:
                train(args.out, variant, seed, args)
    table = summary_table(args.out, args.variants, args.seeds)
    (args.out / "ablation.md").write_text(table + "\n")
    plot(args.out, args.variants, args.seeds, "ap50_95", "COCO AP50:95", "ablation_ap.png")
    plot(args.out, args.variants, args.seeds, "ap50", "COCO AP50", "ablation_ap50.png")
    plot(args.out, args.variants, args.seeds, "obj_loss", "objectness loss", "ablation_obj_loss.png")
    print(table)
    print(f"\nwrote {args.out / 'ablation.md'}, ablation_ap.png, ablation_ap50.png, ablation_obj_loss.png")


if __name__ == "__main__":
    main()
