"""Accuracy ablation: which loss helps? Trains an exp once per variant and seed and compares each
variant with YOLOX's losses, paired by seed.

    python benchmarks/ablate.py [-f EXP] [--variants NAME ...] [--variant NAME KEY VALUE ...]
                                [--seeds 0 1 2] [--out DIR] [--device auto] [-b 16] [--fp16]
                                [--opts KEY VALUE ...] [--report-only]

A variant is a named set of loss settings on top of YOLOX's own losses (``yolox_settings()``), so
each differs from the baseline ``yolox`` in exactly the keys it names: the built-in ones
(``--list``) or your own, ``--variant NAME KEY VALUE ...`` (repeatable; any exp key may appear).
Every variant trains ``-f EXP`` (default: the demo exp, exps/demo/demo_focal.py) with the same
schedule and seeds through tools/train.py, which hands over to YOLOX's own trainer on CUDA
(``--fp16`` then trains in mixed precision) and trains on the CPU elsewhere; ``--opts key value
...`` go to every run, e.g. ``--opts max_epoch 12 no_aug_epochs 2``. Each run is evaluated with
pycocotools as the exp schedules it.

Writes ``<out>/ablation.md``: per variant, AP50:95, AP50 and AP_small of the last epoch (mean, sd
and each seed) and the difference from ``yolox`` paired by seed, with a paired t-test saying
whether it is distinguishable from seed noise; plus plots (``ablation_ap.png``, ``ablation_ap50.png``,
``ablation_obj_loss.png`` per epoch, ``ablation_differences.png`` for the paired differences). Run
it again to resume: finished runs are kept, an interrupted run resumes from its last checkpoint,
and a run made with other settings is refused.
"""

import argparse
import json
import math
import os
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

from common import machine

REPO = Path(__file__).resolve().parents[1]
DEMO_EXP = REPO / "exps" / "demo" / "demo_focal.py"
BASELINE = "yolox"

# name -> the loss settings that differ from YOLOX's; the baseline changes nothing.
VARIANTS = {
    BASELINE: {},
    "focal": {"obj_loss": "focal"},
    "focal-g2": {"obj_loss": "focal", "focal_gamma": 2.0},
    "focal-noalpha": {"obj_loss": "focal", "focal_alpha": None},
    "focal-w4": {"obj_loss": "focal", "obj_loss_weight": 4.0},
    "obj-qfocal": {"obj_loss": "qfocal"},
    "obj-varifocal": {"obj_loss": "varifocal"},
    "bce-blur": {"obj_loss": "bce_blur"},
    "cls-focal": {"cls_loss": "focal"},
    "cls-qfocal": {"cls_loss": "qfocal"},
    "cls-varifocal": {"cls_loss": "varifocal"},
    "smooth-0.1": {"cls_label_smoothing": 0.1},
    "giou": {"box_loss": "giou"},
    "diou": {"box_loss": "diou"},
    "ciou": {"box_loss": "ciou"},
    "eiou": {"box_loss": "eiou"},
    "siou": {"box_loss": "siou"},
    "alpha-iou": {"box_loss": "alpha_iou"},
    "wiou": {"box_loss": "wiou"},
    "wiou-v3": {"box_loss": "wiou_v3"},
    "mpdiou": {"box_loss": "mpdiou"},
    "shape-iou": {"box_loss": "shape_iou"},
    "nwd": {"box_loss": "nwd"},
    "cls-slide": {"cls_loss": "slide"},
    "obj-poly1": {"obj_loss": "poly1"},
    "cls-poly1-focal": {"cls_loss": "poly1_focal"},
}
# The grid the README reports: the baseline and one change of each kind.
DEFAULT_VARIANTS = [BASELINE, "focal", "focal-w4", "bce-blur", "cls-varifocal", "smooth-0.1", "ciou"]
METRICS = ("ap50_95", "ap50", "ap_small")
# two-sided 95 % critical values of Student's t, by degrees of freedom (1-10)
T_CRITICAL = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262,
              10: 2.228}


def variant_opts(variants, name):
    """The exp options of a variant: YOLOX's loss settings, then the variant's own keys."""
    from yolox_focal import yolox_settings

    settings = dict(yolox_settings(), **variants[name])
    return [str(v) for item in settings.items() for v in item]


def run_dir(out, variant, seed):
    return out / f"{variant}-seed{seed}"


def trained_on(device, fp16):
    """What a run trains on, as its ``done`` record and the report name it: the GPU or the CPU
    model and cores, and torch's version."""
    info = machine()
    if device == "cuda" or device == "auto" and "gpu" in info:
        where = info["gpu"] + (", fp16" if fp16 else "")
    else:
        where = f"CPU {info['processor']}, {info['cpu_count']} cores"
    return f"{where}, torch {info['torch']}"


def done_record(out, variant, seed):
    """A finished run's ``done`` record ({"train_seconds", "trained_on"}; older runs recorded
    less, the first ones nothing), or None while the run is not finished."""
    done = run_dir(out, variant, seed) / "done"
    if not done.exists():
        return None
    text = done.read_text().strip()
    return json.loads(text) if text else {}


def exp_settings(exp_file, opts):
    """The exp's values with ``opts`` merged: with -b, what a run's results depend on. Recorded so
    that a change to the exp file itself also keeps old runs out of new tables."""
    from yolox.exp import get_exp

    exp = get_exp(str(exp_file))
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


def train(out, variant, seed, args, progress=""):
    """Train one run unless it finished; resume it if it was interrupted. Returns the seconds spent
    training (0 for a kept run). The run's folder is claimed for the whole of it (a second ablation
    into the same --out refuses that run), and the claim is handed to tools/train.py."""
    from yolox_focal.runtime.errors import FixableError
    from yolox_focal.runtime.folder_claim import claim_folder

    try:
        claim = claim_folder(run_dir(out, variant, seed))
    except FixableError as error:
        sys.exit(f"ablate: {error}")
    with claim:
        return _train(out, variant, seed, args, progress, claim.env())


def _train(out, variant, seed, args, progress, env):
    directory = run_dir(out, variant, seed)
    opts = variant_opts(args.variant_table, variant) + ["seed", str(seed)] + args.opts
    settings = {"batch_size": args.batch_size, "opts": args.opts, "fp16": args.fp16,
                "exp": exp_settings(args.exp_file, opts)}
    check_same_settings(directory, settings)
    if (directory / "done").exists():
        print(f"[ablate] {progress}{directory.name}: done, kept")
        return 0.0
    command = [sys.executable, str(REPO / "tools" / "train.py"), "-f", str(args.exp_file),
               "-expn", directory.name, "-b", str(args.batch_size), "--device", args.device]
    if args.fp16:
        command.append("--fp16")
    checkpoint = directory / "latest_ckpt.pth"
    if checkpoint.exists():
        command += ["--resume", "-c", str(checkpoint)]
        print(f"[ablate] {progress}{directory.name}: resuming from {checkpoint}", flush=True)
    else:
        print(f"[ablate] {progress}{directory.name}: training", flush=True)
    start = time.monotonic()
    result = subprocess.run(command + opts + ["output_dir", str(out)], cwd=REPO, env=dict(os.environ, **env))
    if result.returncode:
        sys.exit(f"ablate: {directory.name} failed (tools/train.py exit status {result.returncode}, its "
                 "message is above); fix that and run the same command again to resume")
    spent = time.monotonic() - start
    record = {"train_seconds": round(spent, 1), "trained_on": trained_on(args.device, args.fp16)}
    (directory / "done").write_text(json.dumps(record) + "\n")
    return spent


def read_metrics(out, variant, seeds):
    """{seed: per-epoch records} of each finished run, from the trainer's metrics.jsonl."""
    runs = {}
    for seed in seeds:
        directory = run_dir(out, variant, seed)
        if done_record(out, variant, seed) is not None:  # unfinished runs would mix schedules in one mean
            lines = (directory / "metrics.jsonl").read_text().splitlines()
            runs[seed] = [json.loads(line) for line in lines if line.strip()]
    return runs


def mean_std(values):
    values = [v for v in values if v is not None]
    if not values:
        return None, None
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def finals_of(out, variant, seeds):
    """{seed: last-epoch record} of each finished run of a variant."""
    return {seed: run[-1] for seed, run in read_metrics(out, variant, seeds).items() if run}


class Difference(NamedTuple):
    """Variant minus baseline over the paired seeds: ``mean ± half_width`` is the 95 % confidence
    interval of the mean, and the difference is distinguishable from seed noise where it leaves
    out 0 (the two-sided paired t-test at 95 %)."""
    mean: float
    sd: float
    n: int
    half_width: float
    distinguishable: bool


def paired_diffs(variant_finals, baseline_finals, metric):
    """Variant - baseline at each seed both finished and both evaluated."""
    pairs = [(variant_finals[s].get(metric), baseline_finals[s].get(metric))
             for s in variant_finals if s in baseline_finals]
    return [v - b for v, b in pairs if v is not None and b is not None]


def paired_difference(variant_finals, baseline_finals, metric):
    """The ``Difference`` over the paired seeds; None where fewer than two seeds pair up."""
    diffs = paired_diffs(variant_finals, baseline_finals, metric)
    if len(diffs) < 2:
        return None
    mean, sd = statistics.fmean(diffs), statistics.stdev(diffs)
    half_width = T_CRITICAL.get(len(diffs) - 1, 1.96) * sd / math.sqrt(len(diffs))
    return Difference(mean, sd, len(diffs), half_width, abs(mean) > half_width)


def describe(settings):
    return ", ".join(f"{k}={v}" for k, v in settings.items()) or "YOLOX's losses"


def summary_table(out, variants, seeds, variant_table=VARIANTS):
    """Per variant, each metric's mean ± sd over the finished seeds and its value at each seed (in
    the order of the seeds column), and the minutes of training per run."""
    lines = ["| variant | settings | seeds | " + " | ".join(f"{m}: mean ± sd (each seed)" for m in METRICS)
             + " | min per run |",
             "|---|---|---|" + "---|" * len(METRICS) + "---|"]
    for variant in variants:
        finals = finals_of(out, variant, seeds)
        if not finals:
            continue
        minutes, _ = mean_std([(done_record(out, variant, seed) or {}).get("train_seconds") for seed in finals])
        cells = []
        for metric in METRICS:
            values = [f.get(metric) for f in finals.values()]
            mean, sd = mean_std(values)
            each = " / ".join("n/a" if v is None else f"{v:.3f}" for v in values)
            cells.append("n/a" if mean is None else f"{mean:.4f} ± {sd:.4f} ({each})")
        lines.append(f"| {variant} | {describe(variant_table[variant])} | {', '.join(map(str, finals))} | "
                     + " | ".join(cells) + " | " + ("n/a" if minutes is None else f"{minutes / 60:.1f}") + " |")
    return "\n".join(lines)


def difference_table(out, variants, seeds):
    """Each variant minus the baseline, paired by seed, and whether that is more than seed noise."""
    baseline = finals_of(out, BASELINE, seeds)
    lines = [f"| variant | " + " | ".join(f"{m} - {BASELINE} (mean ± sd [95 % CI])" for m in METRICS) + " | verdict |",
             "|---|" + "---|" * len(METRICS) + "---|"]
    for variant in variants:
        if variant == BASELINE:
            continue
        results = [paired_difference(finals_of(out, variant, seeds), baseline, m) for m in METRICS]
        if results[0] is None:
            continue
        cells = ["n/a" if r is None else f"{r.mean:+.4f} ± {r.sd:.4f} [{r.mean - r.half_width:+.4f}, "
                 f"{r.mean + r.half_width:+.4f}]" + (" *" if r.distinguishable else "") for r in results]
        marked = [(m, r) for m, r in zip(METRICS, results) if r is not None and r.distinguishable]
        if marked:
            verdict = "distinguishable from seed noise on " + ", ".join(
                f"{m} ({'better' if r.mean > 0 else 'worse'})" for m, r in marked)
        else:
            verdict = f"not distinguishable from seed noise ({results[0].n} paired seeds)"
        lines.append(f"| {variant} | " + " | ".join(cells) + f" | {verdict} |")
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


def plot_differences(out, variants, seeds, filename):
    """Each variant minus the baseline, one panel per metric: every seed's paired difference as a
    dot, their mean with its 95 % confidence interval as a bar; a bar crossing 0 is seed noise."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    baseline = finals_of(out, BASELINE, seeds)
    rows = [(v, finals_of(out, v, seeds)) for v in variants if v != BASELINE]
    rows = [(v, finals) for v, finals in rows if paired_difference(finals, baseline, METRICS[0])]
    fig, axes = plt.subplots(1, len(METRICS), figsize=(4 * len(METRICS), 0.5 * len(rows) + 1.5), sharey=True,
                             squeeze=False)
    for ax, metric in zip(axes[0], METRICS):
        for y, (variant, finals) in enumerate(rows):
            dots = paired_diffs(finals, baseline, metric)
            ax.plot(dots, [y] * len(dots), "o", color="0.6", markersize=4)
            result = paired_difference(finals, baseline, metric)
            if result:
                ax.errorbar(result.mean, y, xerr=result.half_width, fmt="D", capsize=4,
                            color="C3" if result.distinguishable else "C0")
        ax.axvline(0, color="black", linewidth=0.8)
        ax.set_xlabel(f"{metric} - {BASELINE}")
        ax.grid(alpha=0.3, axis="x")
    axes[0][0].set_yticks(range(len(rows)), [v for v, _ in rows])
    axes[0][0].invert_yaxis()
    fig.suptitle(f"difference from {BASELINE} paired by seed (dots: seeds {', '.join(map(str, seeds))}; "
                 "bar: mean and 95 % CI, red where it leaves out 0)", fontsize=9)
    fig.tight_layout()
    fig.savefig(out / filename, dpi=120)
    plt.close(fig)


def parse_variants(specs):
    """--variant NAME KEY VALUE ... -> {name: {key: value}}; values stay strings (the exp parses them)."""
    table = dict(VARIANTS)
    for spec in specs:
        if len(spec) < 3 or len(spec) % 2 == 0:
            sys.exit(f"ablate: --variant takes a name, then key value pairs; got {' '.join(spec)}")
        name, pairs = spec[0], spec[1:]
        if name in VARIANTS:
            sys.exit(f"ablate: --variant {name}: that is a built-in variant's name; choose another")
        table[name] = dict(zip(pairs[0::2], pairs[1::2]))
    return table


def progress_line(done, total, spent):
    """'[run 4/21, 3 done, ~1h05m left]' from the mean time of the runs trained so far (by this
    command, or kept from an earlier one on the same machine)."""
    left = total - done
    if not spent or not left:
        return f"[run {done + 1}/{total}] "
    eta = statistics.fmean(spent) * left
    return f"[run {done + 1}/{total}, {done} done, ~{int(eta // 3600)}h{int(eta % 3600 // 60):02d}m left] "


def command_line(args):
    """The command that makes this grid again, every choice spelt out."""
    def shown(path):
        return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)

    words = ["python", "benchmarks/ablate.py", "-f", shown(args.exp_file), "--out", shown(args.out),
             "--variants", *args.variants, "--seeds", *map(str, args.seeds), "-b", str(args.batch_size),
             "--device", args.device] + ["--fp16"] * args.fp16
    for spec in args.variant:
        words += ["--variant", *spec]
    if args.opts:
        words += ["--opts", *args.opts]
    return shlex.join(words)


def runs_footer(out, variants, seeds):
    """How many runs the tables hold, their training time and what they were trained on."""
    records = [r for v in variants for s in seeds if (r := done_record(out, v, s)) is not None]
    seconds = [r["train_seconds"] for r in records if "train_seconds" in r]
    machines = {}
    for record in records:
        where = record.get("trained_on", "not recorded")
        machines[where] = machines.get(where, 0) + 1
    time_note = f"{sum(seconds) / 3600:.1f} h of training" if seconds else "training time not recorded"
    if 0 < len(seconds) < len(records):
        time_note += f" (recorded for {len(seconds)} of them)"
    return (f"{len(records)} runs finished, {time_note}; trained on: "
            + "; ".join(f"{where} ({n} run{'s' * (n != 1)})" for where, n in machines.items()))


def train_grid(args):
    """Every variant and seed, seed-major (an early stop leaves whole seeds to compare), with the
    progress and time left before each run."""
    runs = [(seed, variant) for seed in args.seeds for variant in args.variants]
    spent, here = [], trained_on(args.device, args.fp16)
    for done, (seed, variant) in enumerate(runs):
        seconds = train(args.out, variant, seed, args, progress_line(done, len(runs), spent))
        record = done_record(args.out, variant, seed) or {}
        if not seconds and record.get("trained_on") == here:  # a kept run trained on this machine
            seconds = record.get("train_seconds")                 # informs the estimate of a resumed grid
        if seconds:
            spent.append(seconds)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-f", "--exp-file", type=Path, default=DEMO_EXP, help="exp file (default: the demo exp)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--variants", nargs="+", default=None, metavar="NAME",
                        help=f"variants to train (default: {' '.join(DEFAULT_VARIANTS)}, plus every --variant)")
    parser.add_argument("--variant", nargs="+", action="append", default=[], metavar="NAME KEY VALUE",
                        help="a variant of your own: a name, then loss settings (or any exp key) and values")
    parser.add_argument("--list", action="store_true", help="list the built-in variants and exit")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "ablation")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--fp16", action="store_true", help="mixed precision (CUDA only; ignored on the CPU)")
    parser.add_argument("-b", "--batch-size", type=int, default=16)
    parser.add_argument("--report-only", action="store_true", help="only rebuild table and plots")
    parser.add_argument("--opts", nargs="*", default=[], metavar="KEY VALUE",
                        help="exp options for every run, e.g. --opts max_epoch 12 no_aug_epochs 2")
    args = parser.parse_args()
    args.variant_table = parse_variants(args.variant)
    if args.list:
        for name, settings in VARIANTS.items():
            print(f"{name:15s} {describe(settings)}")
        return
    if args.variants is None:
        args.variants = DEFAULT_VARIANTS + [spec[0] for spec in args.variant]
    unknown = [v for v in args.variants if v not in args.variant_table]
    if unknown:
        sys.exit(f"ablate: unknown variant {unknown[0]!r}; see --list, or define it with --variant")
    if not args.exp_file.is_file():
        sys.exit(f"ablate: exp file not found: {args.exp_file}")
    args.exp_file, args.out = args.exp_file.resolve(), args.out.resolve()
    started = time.monotonic()
    if not args.report_only:
        train_grid(args)
    report = "\n\n".join([
        summary_table(args.out, args.variants, args.seeds, args.variant_table),
        difference_table(args.out, args.variants, args.seeds)
        + "\n\nEach difference: mean ± sd over the paired seeds [95 % confidence interval of the mean]. "
        "`*`: the interval leaves out 0, i.e. the paired t-test (two-sided, 95 %) says the difference is "
        "larger than seed noise.",
        f"`{command_line(args)}`\n\n{runs_footer(args.out, args.variants, args.seeds)}",
    ])
    (args.out / "ablation.md").write_text(report + "\n")
    plot(args.out, args.variants, args.seeds, "ap50_95", "COCO AP50:95", "ablation_ap.png")
    plot(args.out, args.variants, args.seeds, "ap50", "COCO AP50", "ablation_ap50.png")
    plot(args.out, args.variants, args.seeds, "obj_loss", "objectness loss", "ablation_obj_loss.png")
    plot_differences(args.out, args.variants, args.seeds, "ablation_differences.png")
    print(report)
    print(f"\nwrote {args.out / 'ablation.md'}, ablation_ap.png, ablation_ap50.png, ablation_obj_loss.png, ablation_differences.png "
          f"({time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
