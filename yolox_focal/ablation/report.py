"""``<out>/ablation.md`` and the plots, from the finished runs of a grid: per variant, each
metric's last-epoch mean, sd and seeds; the paired difference from the baseline and whether it is
larger than seed noise, overall and per class (for runs that recorded per-class AP); how many
seeds would resolve a difference of ``--min-effect`` at the measured spread; the command that
makes the grid again and what the runs trained on."""

import os
import shlex
import statistics
from pathlib import Path

from .grid import BASELINE, DEFAULT_MIN_EFFECT, METRICS, VARIANTS, describe
from .runs import REPO, done_record, failed_record, finals_of, read_metrics
from .stats import mean_std, paired_diffs, paired_difference, pooled_sd, seeds_needed

__all__ = ["scored_metrics", "summary_table", "difference_table", "per_class_table", "seeds_lines", "runs_footer", "command_line", "plot", "plot_differences",
           "write_report", "PLOTS"]

# file -> (metrics.jsonl key, axis label); and the paired differences' plot
PLOTS = {"ablation_ap.png": ("ap50_95", "AP50:95"), "ablation_ap50.png": ("ap50", "AP50"),
         "ablation_obj_loss.png": ("obj_loss", "objectness loss")}
DIFFERENCES_PLOT = "ablation_differences.png"


def scored_metrics(out, variants, seeds):
    """The metrics (of ``grid.METRICS``, in its order) that some finished run scored: the VOC route
    has no AP by object size, so a VOC grid's tables leave ``ap_small`` out rather than fill it
    with n/a. All of them while no finished run has scored any."""
    finals = [f for variant in variants for f in finals_of(out, variant, seeds).values()]
    return tuple(m for m in METRICS if any(f.get(m) is not None for f in finals)) or METRICS


def summary_table(out, variants, seeds, variant_table=VARIANTS):
    """Per variant, each scored metric's mean ± sd over the finished seeds and its value at each
    seed (in the order of the seeds column), and the minutes of training per run."""
    metrics = scored_metrics(out, variants, seeds)
    lines = ["| variant | settings | seeds | " + " | ".join(f"{m}: mean ± sd (each seed)" for m in metrics)
             + " | min per run |",
             "|---|---|---|" + "---|" * len(metrics) + "---|"]
    for variant in variants:
        finals = finals_of(out, variant, seeds)
        if not finals:
            continue
        minutes, _ = mean_std([(done_record(out, variant, seed) or {}).get("train_seconds") for seed in finals])
        cells = []
        for metric in metrics:
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
    metrics = scored_metrics(out, variants, seeds)
    lines = ["| variant | " + " | ".join(f"{m} - {BASELINE} (mean ± sd [95 % CI])" for m in metrics) + " | verdict |",
             "|---|" + "---|" * len(metrics) + "---|"]
    for variant in variants:
        if variant == BASELINE:
            continue
        results = [paired_difference(finals_of(out, variant, seeds), baseline, m) for m in metrics]
        if results[0] is None:
            continue
        cells = ["n/a" if r is None else f"{r.mean:+.4f} ± {r.sd:.4f} [{r.mean - r.half_width:+.4f}, "
                 f"{r.mean + r.half_width:+.4f}]" + (" *" if r.distinguishable else "") for r in results]
        marked = [(m, r) for m, r in zip(metrics, results) if r is not None and r.distinguishable]
        if marked:
            verdict = "distinguishable from seed noise on " + ", ".join(
                f"{m} ({'better' if r.mean > 0 else 'worse'})" for m, r in marked)
        else:
            verdict = f"not distinguishable from seed noise ({results[0].n} paired seeds)"
        lines.append(f"| {variant} | " + " | ".join(cells) + f" | {verdict} |")
    return "\n".join(lines)


PER_CLASS_METRICS = ("ap50_95", "ap50")


def _class_finals(finals, name):
    """{seed: {"ap50_95", "ap50"}} of one class, from last-epoch records that hold per-class AP."""
    return {seed: (f.get("per_class") or {}).get(name) or {} for seed, f in finals.items() if "per_class" in f}


def per_class_table(out, variants, seeds):
    """Each variant minus the baseline per class, paired by seed (runs that recorded per-class AP
    only), then per variant the classes whose interval leaves out 0."""
    baseline = finals_of(out, BASELINE, seeds)
    classes = list(dict.fromkeys(name for f in baseline.values() for name in (f.get("per_class") or {})))
    if not classes:
        return ("Per class: the baseline's runs hold no per-class AP (older runs: the CPU trainer now records it in "
                "metrics.jsonl after each evaluation).")
    lines = ["| variant | class | " + " | ".join(f"{m} - {BASELINE} (mean ± sd [95 % CI])" for m in PER_CLASS_METRICS)
             + " |", "|---|---|" + "---|" * len(PER_CLASS_METRICS)]
    marked = {}
    for variant in variants:
        if variant == BASELINE:
            continue
        finals = finals_of(out, variant, seeds)
        for name in classes:
            ours, theirs = _class_finals(finals, name), _class_finals(baseline, name)
            results = [paired_difference(ours, theirs, m) for m in PER_CLASS_METRICS]
            if all(r is None for r in results):
                continue
            cells = ["n/a" if r is None else f"{r.mean:+.4f} ± {r.sd:.4f} [{r.mean - r.half_width:+.4f}, "
                     f"{r.mean + r.half_width:+.4f}]" + (" *" if r.distinguishable else "") for r in results]
            lines.append(f"| {variant} | {name} | " + " | ".join(cells) + " |")
            marked.setdefault(variant, []).extend(
                f"{name} {m} ({'better' if r.mean > 0 else 'worse'})"
                for m, r in zip(PER_CLASS_METRICS, results) if r is not None and r.distinguishable)
    if len(lines) == 2:
        return "Per class: fewer than two seeds pair up with the baseline's; no per-class difference yet."
    verdicts = [f"- {variant}: " + (", ".join(found) if found else "none") for variant, found in marked.items()]
    return ("Per class, each variant minus the baseline paired by seed (`*`: the 95 % interval leaves out 0):\n\n"
            + "\n".join(lines) + "\n\nClasses whose interval leaves out 0:\n\n" + "\n".join(verdicts))


def seeds_lines(out, variants, seeds, min_effect):
    """Per metric, how many paired seeds would resolve a difference of ``min_effect`` at the paired
    spread measured here (pooled over the variants; ``stats.seeds_needed``)."""
    baseline = finals_of(out, BASELINE, seeds)
    lines = []
    for metric in scored_metrics(out, variants, seeds):
        differences = [paired_difference(finals_of(out, v, seeds), baseline, metric) for v in variants if v != BASELINE]
        differences = [d for d in differences if d is not None]
        sd = pooled_sd(differences)
        if sd is None:
            lines.append(f"- {metric}: no paired spread yet (a variant and the baseline need two seeds in common)")
            continue
        lines.append(f"- {metric}: paired sd {sd:.4f} (pooled over {len(differences)} variant"
                     f"{'s' * (len(differences) != 1)}); a difference of {min_effect:g} needs about "
                     f"{seeds_needed(sd, min_effect)} paired seeds")
    return (f"Seeds to resolve a difference of {min_effect:g} (`--min-effect`) at the measured paired spread, for a "
            "two-sided paired t-test at 5 % with power 80 % (Guenther's formula n = ((z_0.975 + z_0.8) sd / effect)^2 "
            "+ z_0.975^2 / 2):\n\n" + "\n".join(lines))


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
    failed = [(f"{v}-seed{s}", r) for v in variants for s in seeds if (r := failed_record(out, v, s)) is not None]
    failures = "".join(f"\n\nFailed (twice, left out of the tables): {name}, exit statuses "
                       f"{', '.join(map(str, r.get('exit_statuses', [])))}, output in {r.get('output')}"
                       for name, r in failed)
    return (f"{len(records)} run{'s' * (len(records) != 1)} finished, {time_note}; trained on: "
            + "; ".join(f"{where} ({n} run{'s' * (n != 1)})" for where, n in machines.items()) + failures)


def command_line(args):
    """The command that makes this grid again, every choice spelt out."""
    def shown(path):
        return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)

    words = ["python", "tools/ablate.py", "-f", shown(args.exp_file), "--out", shown(args.out),
             "--variants", *args.variants, "--seeds", *map(str, args.seeds), "-b", str(args.batch_size),
             "--device", args.device] + ["--fp16"] * args.fp16
    if args.jobs != 1:
        words += ["--jobs", str(args.jobs)]
    if args.gpus_per_run:
        words += ["--gpus-per-run", str(args.gpus_per_run)]
    if getattr(args, "ray", None):
        words += ["--ray", args.ray]
    if getattr(args, "cpus_per_run", None):
        words += ["--cpus-per-run", str(args.cpus_per_run)]
    if args.min_effect != DEFAULT_MIN_EFFECT:
        words += ["--min-effect", f"{args.min_effect:g}"]
    for spec in args.variant:
        words += ["--variant", *spec]
    if args.opts:
        words += ["--opts", *args.opts]
    return shlex.join(words)


def _save(fig, path):
    """The figure written whole: under a partial name, then moved into place."""
    temporary = path.with_name(f".{path.name}.part")
    fig.savefig(temporary, dpi=120, format="png")
    os.replace(temporary, path)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot(out, variants, seeds, key, ylabel, filename):
    """``key`` per epoch, one line per variant: its mean over the finished seeds."""
    plt = _pyplot()
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
    _save(fig, Path(out) / filename)
    plt.close(fig)


def plot_differences(out, variants, seeds, filename=DIFFERENCES_PLOT):
    """Each variant minus the baseline, one panel per metric: every seed's paired difference as a
    dot, their mean with its 95 % confidence interval as a bar; a bar crossing 0 is seed noise."""
    plt = _pyplot()
    baseline = finals_of(out, BASELINE, seeds)
    rows = [(v, finals_of(out, v, seeds)) for v in variants if v != BASELINE]
    metrics = scored_metrics(out, variants, seeds)
    rows = [(v, finals) for v, finals in rows if paired_difference(finals, baseline, metrics[0])]
    fig, axes = plt.subplots(1, len(metrics), figsize=(4 * len(metrics), 0.5 * len(rows) + 1.5), sharey=True,
                             squeeze=False)
    for ax, metric in zip(axes[0], metrics):
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
    _save(fig, Path(out) / filename)
    plt.close(fig)


def write_report(args):
    """Write ``ablation.md`` (whole) and the plots into ``args.out``; return the report's text and
    the files written."""
    out, variants, seeds = args.out, args.variants, args.seeds
    unscored = [m for m in METRICS if m not in scored_metrics(out, variants, seeds)]
    report = "\n\n".join([
        summary_table(out, variants, seeds, args.variant_table)
        + (f"\n\nNot scored by these runs' evaluator, left out: {', '.join(unscored)}." if unscored else ""),
        difference_table(out, variants, seeds)
        + "\n\nEach difference: mean ± sd over the paired seeds [95 % confidence interval of the mean]. "
        "`*`: the interval leaves out 0, i.e. the paired t-test (two-sided, 95 %) says the difference is "
        "larger than seed noise.",
        per_class_table(out, variants, seeds),
        seeds_lines(out, variants, seeds, args.min_effect),
        f"`{command_line(args)}`\n\n{runs_footer(out, variants, seeds)}",
    ])
    path = Path(out) / "ablation.md"
    temporary = path.with_name(".ablation.md.part")
    temporary.write_text(report + "\n")
    os.replace(temporary, path)
    for filename, (key, label) in PLOTS.items():
        plot(out, variants, seeds, key, label, filename)
    plot_differences(out, variants, seeds)
    return report, [path.name, *PLOTS, DIFFERENCES_PLOT]
