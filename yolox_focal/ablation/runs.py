"""The grid's runs: each trains ``-f EXP`` with its variant's settings and seed through
``tools/train.py`` in a child process (YOLOX's own trainer on CUDA, the CPU trainer elsewhere),
into ``<out>/<variant>-seed<seed>``.

A run is kept or resumed only under the settings it started with (``settings.json``: ``-b``,
``--opts``, ``--fp16`` and the exp's values), and refused, in one line naming what changed,
otherwise. A finished run writes ``done`` (its training time and what it trained on); an
interrupted one resumes from its ``latest_ckpt.pth``. The run's folder is claimed for the whole
run (``runtime.folder_claim``), and the claim handed to ``tools/train.py``.
"""

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from ..runtime.errors import FixableError, UsageError
from ..runtime.folder_claim import claim_folder
from ..runtime.machine import machine
from .grid import grid_runs, run_dir, variant_opts

__all__ = ["REPO", "TRAIN_SCRIPT", "trained_on", "done_record", "exp_settings", "check_same_settings", "train",
           "read_metrics", "finals_of", "progress_line", "train_grid"]

REPO = Path(__file__).resolve().parents[2]
TRAIN_SCRIPT = REPO / "tools" / "train.py"


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
    values = {k: v for k, v in vars(exp).items()
              if isinstance(v, plain) and k not in ("output_dir", "exp_name", "data_dir")}
    return json.loads(json.dumps(values, sort_keys=True))  # as read back from settings.json


def check_same_settings(directory, settings):
    """A run is kept or resumed only under the settings it started with; record them on first use."""
    record = Path(directory) / "settings.json"
    if record.exists():
        before = json.loads(record.read_text())
        if before != settings:
            changed = [f"{key}: {before.get(key, 'not recorded')} -> {settings.get(key)}"
                       for key in sorted(set(before) | set(settings))
                       if key != "exp" and before.get(key) != settings.get(key)]
            old_exp, new_exp = before.get("exp"), settings.get("exp", {})
            if old_exp is None:
                changed.append("exp values: not recorded")
            elif old_exp != new_exp:
                changed += [f"{k}: {old_exp.get(k)} -> {new_exp.get(k)}" for k in sorted(set(old_exp) | set(new_exp))
                            if old_exp.get(k) != new_exp.get(k)]
            raise UsageError(f"{directory} was trained with other settings ({'; '.join(changed)}); "
                             "pass the same -b/--opts, or another --out")
    else:
        Path(directory).mkdir(parents=True, exist_ok=True)
        temporary = record.with_name(".settings.json.part")
        temporary.write_text(json.dumps(settings) + "\n")
        os.replace(temporary, record)


def train(out, variant, seed, args, progress=""):
    """Train one run unless it finished; resume it if it was interrupted. Returns the seconds spent
    training (0 for a kept run). The run's folder is claimed for the whole of it (a second ablation
    into the same --out refuses that run), and the claim is handed to tools/train.py."""
    try:
        claim = claim_folder(run_dir(out, variant, seed))
    except FixableError as error:
        raise UsageError(str(error)) from None
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
    command = [sys.executable, str(TRAIN_SCRIPT), "-f", str(args.exp_file),
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
        raise FixableError(f"{directory.name} failed (tools/train.py exit status {result.returncode}, its "
                           "message is above); fix that and run the same command again to resume")
    spent = time.monotonic() - start
    record = {"train_seconds": round(spent, 1), "trained_on": trained_on(args.device, args.fp16)}
    temporary = directory / ".done.part"
    temporary.write_text(json.dumps(record) + "\n")
    os.replace(temporary, directory / "done")
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


def finals_of(out, variant, seeds):
    """{seed: last-epoch record} of each finished run of a variant."""
    return {seed: run[-1] for seed, run in read_metrics(out, variant, seeds).items() if run}


def progress_line(done, total, spent):
    """'[run 4/21, 3 done, ~1h05m left]' from the mean time of the runs trained so far (by this
    command, or kept from an earlier one on the same machine)."""
    left = total - done
    if not spent or not left:
        return f"[run {done + 1}/{total}] "
    eta = statistics.fmean(spent) * left
    return f"[run {done + 1}/{total}, {done} done, ~{int(eta // 3600)}h{int(eta % 3600 // 60):02d}m left] "


def train_grid(args):
    """Every variant and seed, seed-major, with the progress and time left before each run."""
    runs = grid_runs(args.variants, args.seeds)
    spent, here = [], trained_on(args.device, args.fp16)
    for done, (seed, variant) in enumerate(runs):
        seconds = train(args.out, variant, seed, args, progress_line(done, len(runs), spent))
        record = done_record(args.out, variant, seed) or {}
        if not seconds and record.get("trained_on") == here:  # a kept run trained on this machine
            seconds = record.get("train_seconds")                 # informs the estimate of a resumed grid
        if seconds:
            spent.append(seconds)
