"""The command line of ``tools/ablate.py``.

    python tools/ablate.py [-f EXP] [--variants NAME ...] [--variant NAME KEY VALUE ...]
                           [--seeds 0 1 2] [--out DIR] [--device auto] [-b 16] [--fp16]
                           [--opts KEY VALUE ...] [--jobs N] [--gpus-per-run K] [--min-effect 0.01]
                           [--ray ADDRESS|auto [--cpus-per-run N]] [--mlflow [URI]]
                           [--report-only] [--list]

Every variant trains ``-f EXP`` (default: the demo exp, exps/demo/demo_focal.py) with the same
schedule and seeds; ``--opts key value ...`` go to every run, e.g. ``--opts max_epoch 12
no_aug_epochs 2``. Each run is evaluated with pycocotools as the exp schedules it. Writes
``<out>/ablation.md`` and plots. Run it again to resume: finished runs are kept, an interrupted run
resumes from its last checkpoint, and a run made with other settings is refused.
"""

import argparse
import time
from pathlib import Path

from ..runtime.errors import UsageError
from .grid import DEFAULT_MIN_EFFECT, DEFAULT_VARIANTS, VARIANTS, describe, parse_variants
from .report import write_report
from .local import train_grid
from .runs import REPO

__all__ = ["DEMO_EXP", "parser", "parse_args", "main"]

DEMO_EXP = REPO / "exps" / "demo" / "demo_focal.py"


def parser():
    p = argparse.ArgumentParser(prog="tools/ablate.py", description="Accuracy ablation: which loss helps? "
                                "Trains an exp once per variant and seed and compares each with YOLOX's losses.")
    p.add_argument("-f", "--exp-file", type=Path, default=DEMO_EXP, help="exp file (default: the demo exp)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--variants", nargs="+", default=None, metavar="NAME",
                   help=f"variants to train (default: {' '.join(DEFAULT_VARIANTS)}, plus every --variant)")
    p.add_argument("--variant", nargs="+", action="append", default=[], metavar="NAME KEY VALUE",
                   help="a variant of your own: a name, then loss settings (or any exp key) and values")
    p.add_argument("--list", action="store_true", help="list the built-in variants and exit")
    p.add_argument("--out", type=Path, default=Path("YOLOX_outputs") / "ablation",
                   help="the grid's folder: one folder per run, the report and plots (default: YOLOX_outputs/ablation)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--fp16", action="store_true", help="mixed precision (CUDA only; ignored on the CPU)")
    p.add_argument("-b", "--batch-size", type=int, default=16)
    p.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="runs at once on this machine, each on its own GPUs or its share of the cores (default 1)")
    p.add_argument("--gpus-per-run", type=int, default=None, metavar="K",
                   help="GPUs of each run (its -d K, on its own CUDA_VISIBLE_DEVICES; default 1)")
    p.add_argument("--ray", default=None, metavar="ADDRESS",
                   help="train the runs on the Ray cluster at ADDRESS (HOST:PORT, or auto), each as a task with its "
                        "CPUs and GPUs; --out must be storage every node sees (needs pip install -e .[cluster])")
    p.add_argument("--cpus-per-run", type=int, default=None, metavar="N",
                   help="with --ray: CPUs of each run's task, and its threads (default 1)")
    p.add_argument("--min-effect", type=float, default=DEFAULT_MIN_EFFECT, metavar="AP",
                   help=f"the difference the report sizes the seeds for (default {DEFAULT_MIN_EFFECT} AP)")
    p.add_argument("--mlflow", nargs="?", const="", default=None, metavar="URI",
                   help="log the grid to MLflow: a parent run, a child per variant x seed (default store: "
                        "sqlite:///<out>/mlflow.db; needs pip install -e .[tracking])")
    p.add_argument("--report-only", action="store_true", help="only rebuild table and plots")
    p.add_argument("--opts", nargs="*", default=[], metavar="KEY VALUE",
                   help="exp options for every run, e.g. --opts max_epoch 12 no_aug_epochs 2")
    return p


def parse_args(argv=None):
    """The arguments, checked before any work: every mistake as one UsageError line."""
    args = parser().parse_args(argv)
    args.variant_table = parse_variants(args.variant)
    if args.list:
        return args
    if args.variants is None:
        args.variants = DEFAULT_VARIANTS + [spec[0] for spec in args.variant]
    unknown = [v for v in args.variants if v not in args.variant_table]
    if unknown:
        raise UsageError(f"unknown variant {unknown[0]!r}; see --list, or define it with --variant")
    repeated = sorted({s for s in args.seeds if args.seeds.count(s) > 1})
    if repeated:
        raise UsageError(f"--seeds names seed {repeated[0]} twice; name each seed once")
    if len(args.opts) % 2:
        raise UsageError(f"--opts takes key value pairs; got {' '.join(args.opts)}")
    if not 0 < args.min_effect < 1:
        raise UsageError(f"--min-effect {args.min_effect:g} is not a difference of AP; give one between 0 and 1, "
                         f"e.g. {DEFAULT_MIN_EFFECT}")
    if args.mlflow is not None:
        import importlib.util

        if importlib.util.find_spec("mlflow") is None:
            raise UsageError("--mlflow needs MLflow, which is not installed: pip install -e .[tracking] "
                             "(or pip install mlflow)")
    if args.jobs < 1:
        raise UsageError(f"--jobs {args.jobs}: give 1 or more runs at once")
    if args.ray is not None:
        import importlib.util

        if not args.ray.strip():
            raise UsageError("--ray needs the Ray cluster's address: HOST:PORT of its head, or auto")
        try:
            found = importlib.util.find_spec("ray") is not None
        except (ImportError, ValueError):  # a finder that refuses it, or a module entry of None
            found = False
        if not found:
            raise UsageError("--ray needs Ray, which is not installed: pip install -e .[cluster] (or pip install ray)")
        if args.jobs != 1:
            raise UsageError(f"--jobs {args.jobs} is for runs on this machine; with --ray the cluster runs as many at "
                             "once as its nodes' CPUs and GPUs allow: leave --jobs out")
        if args.cpus_per_run is not None and args.cpus_per_run < 1:
            raise UsageError(f"--cpus-per-run {args.cpus_per_run}: give 1 or more CPUs a run")
    elif args.cpus_per_run is not None:
        raise UsageError(f"--cpus-per-run {args.cpus_per_run} is for runs on a Ray cluster (--ray); on this "
                         "machine --jobs N shares the cores: leave it out")
    if args.gpus_per_run is not None and args.gpus_per_run < 1:
        raise UsageError(f"--gpus-per-run {args.gpus_per_run}: give 1 or more GPUs a run")
    if not args.exp_file.is_file():
        raise UsageError(f"exp file not found: {args.exp_file}; pass an exp file with -f")
    args.exp_file, args.out = args.exp_file.resolve(), args.out.resolve()
    if args.report_only and not args.out.is_dir():
        raise UsageError(f"--report-only: {args.out} does not exist; pass the --out the grid trained into")
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.list:
        for name, settings in VARIANTS.items():
            print(f"{name:15s} {describe(settings)}")
        return
    started = time.monotonic()
    failed = [] if args.report_only else train_grid(args)
    report, files = write_report(args)
    print(report)
    print(f"\nwrote {args.out / files[0]}, {', '.join(files[1:])} ({time.monotonic() - started:.0f} s)")
    if args.mlflow is not None:
        from .tracking import default_uri, log_grid

        uri = args.mlflow or default_uri(args.out)
        parent, added = log_grid(args, uri, files)
        print(f"MLflow: parent run {parent} on {uri}, {added} child run{'s' * (added != 1)} added")
    if failed:
        raise SystemExit(f"error: {len(failed)} run{'s' * (len(failed) != 1)} failed twice: "
                         + ", ".join(f"{v}-seed{s}" for v, s, _ in failed) + "; their output says why; run the "
                         "same command again to retry them")
