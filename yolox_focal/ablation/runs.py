"""The grid's runs: each trains ``-f EXP`` with its variant's settings and seed through
``tools/train.py`` in a child process (YOLOX's own trainer on CUDA, the CPU trainer elsewhere),
into ``<out>/<variant>-seed<seed>``.

``local.train_grid`` runs them, several at once with ``--jobs``. A run is kept or resumed only
under the settings it started with (``settings.json``: ``-b``,
``--opts``, ``--fp16`` and the exp's values), and refused, in one line naming what changed,
otherwise. A finished run writes ``done`` (its training time and what it trained on); an
interrupted one resumes from its ``latest_ckpt.pth``. The run's folder is claimed for the whole
run (``runtime.folder_claim``), and the claim handed to ``tools/train.py``.
"""

import contextlib
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import NamedTuple, Optional

from ..runtime.errors import FixableError, UsageError
from ..runtime.folder_claim import claim_folder
from ..runtime.machine import machine
from ..runtime.tracking import plain_values
from .grid import run_dir, variant_opts

__all__ = ["REPO", "TRAIN_SCRIPT", "OUTPUT_FILE", "POLL_S", "Ended", "trained_on", "done_record", "failed_record",
           "exp_settings", "settings_of",
           "refuse_other_settings", "check_same_settings", "Job", "prepare", "record_attempt", "attempts_of",
           "mark_done", "mark_failed", "ATTEMPTS_FILE",
           "read_metrics", "finals_of", "progress_line"]

REPO = Path(__file__).resolve().parents[2]
TRAIN_SCRIPT = REPO / "tools" / "train.py"
ATTEMPTS_FILE = "attempts.jsonl"  # one line per attempt at a run: where and when it started

# a run's training output, where it is not the terminal (several at once, or on a Ray node)
OUTPUT_FILE = "train_output.txt"
POLL_S = 0.2  # how often a launcher looks at its runs


class Ended(NamedTuple):
    """How an attempt at a run ended: ``status`` (the exit status of tools/train.py, None where it
    never gave one: its node was lost), ``why`` ('exit status 2', 'its node ... was lost'), what it
    trained on, the node and host it ran on, and when it started and ended (Unix times; None: the
    launcher's own clock is used)."""
    status: Optional[int]
    why: str
    trained_on: str
    node: Optional[str] = None
    host: Optional[str] = None
    started: Optional[float] = None
    ended: Optional[float] = None


def trained_on(device, fp16, cores=None):
    """What a run trains on, as its ``done`` record and the report name it: the GPU or the CPU
    model and cores (``cores``: the run's share, where it had fewer than the machine), and torch's
    version."""
    info = machine()
    if device == "cuda" or device == "auto" and "gpu" in info:
        where = info["gpu"] + (", fp16" if fp16 else "")
    elif cores and cores < info["cpu_count"]:
        where = f"CPU {info['processor']}, {cores} of {info['cpu_count']} cores"
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
    values = {k: v for k, v in plain_values(exp).items() if k not in ("output_dir", "exp_name", "data_dir")}
    return json.loads(json.dumps(values, sort_keys=True))  # as read back from settings.json


def settings_of(out, variant, seed, args):
    """What a run's results depend on: -b, --opts, --fp16 and the exp's values with its options."""
    opts = variant_opts(args.variant_table, variant) + ["seed", str(seed)] + args.opts
    return {"batch_size": args.batch_size, "opts": args.opts, "fp16": args.fp16,
            "exp": exp_settings(args.exp_file, opts)}


def refuse_other_settings(directory, settings):
    """Raise UsageError, naming what changed, if ``directory`` holds a run made with other settings."""
    record = Path(directory) / "settings.json"
    if not record.exists():
        return
    before = json.loads(record.read_text())
    changed = [f"{key}: {before.get(key, 'not recorded')} -> {settings.get(key)}"
               for key in sorted(set(before) | set(settings))
               if key != "exp" and before.get(key) != settings.get(key)]
    old_exp, new_exp = before.get("exp"), settings.get("exp")
    if old_exp is None and new_exp is not None:
        changed.append("exp values: not recorded")
    elif old_exp is not None:
        new_exp = new_exp or {}
        changed += [f"{k}: {old_exp.get(k)} -> {new_exp.get(k)}" for k in sorted(set(old_exp) | set(new_exp))
                    if old_exp.get(k) != new_exp.get(k) and not _added_at_default(k, old_exp, new_exp)]
    if changed:
        raise UsageError(f"{directory} was trained with other settings ({'; '.join(changed)}); "
                         "pass the same -b/--opts, or another --out")


def _added_at_default(key, old_exp, new_exp):
    """Whether ``key`` is a loss setting one record lacks and the other holds at YOLOX's value: one a
    later yolox-focal added (a new loss's parameter), which cannot have changed a run made before
    it. So an upgrade in the middle of a grid keeps its runs."""
    if (key in old_exp) == (key in new_exp):
        return False
    from ..losses.settings import yolox_settings

    defaults = json.loads(json.dumps(yolox_settings()))  # as read back from settings.json
    return key in defaults and (old_exp if key in old_exp else new_exp)[key] == defaults[key]


def check_same_settings(directory, settings):
    """``local.train_grid`` runs them, several at once with ``--jobs``. A run is kept or resumed only
under the settings it started with; record them on first use."""
    refuse_other_settings(directory, settings)
    record = Path(directory) / "settings.json"
    if not record.exists():
        Path(directory).mkdir(parents=True, exist_ok=True)
        write_whole(record, json.dumps(settings) + "\n")


def write_whole(path, text):
    """``text`` into ``path`` whole: under a partial name, then moved into place."""
    temporary = Path(path).with_name(f".{Path(path).name}.part")
    temporary.write_text(text)
    os.replace(temporary, path)


class Job(NamedTuple):
    """A run ready to train: its folder's claim (held), the command and the environment to run it
    with, and whether it resumes."""
    variant: str
    seed: int
    directory: Path
    claim: object
    command: list
    env: dict
    resumes: bool


def prepare(out, variant, seed, args, settings=None, gone_hosts=()):
    """Claim the run's folder and check its settings; None (claim released) for a finished run, else
    the ``Job`` that trains or resumes it. ``settings``: the run's, if already computed;
    ``gone_hosts``: hosts known to be gone (a cluster's lost nodes), whose claims are taken over."""
    directory = run_dir(out, variant, seed)
    try:
        claim = claim_folder(directory, gone_hosts=gone_hosts)
    except FixableError as error:
        raise UsageError(str(error)) from None
    try:
        check_same_settings(directory, settings or settings_of(out, variant, seed, args))
        if (directory / "done").exists():
            claim.release()
            return None
        command = [sys.executable, str(TRAIN_SCRIPT), "-f", str(args.exp_file), "-expn", directory.name,
                   "-b", str(args.batch_size), "--device", args.device] + ["--fp16"] * args.fp16
        checkpoint = directory / "latest_ckpt.pth"
        if checkpoint.exists():
            command += ["--resume", "-c", str(checkpoint)]
        opts = variant_opts(args.variant_table, variant) + ["seed", str(seed)] + args.opts
        command += opts + ["output_dir", str(out)]
        return Job(variant, seed, directory, claim, command, claim.env(), checkpoint.exists())
    except BaseException:
        claim.release()
        raise


def record_attempt(directory, resumes, node, host, pid=None):
    """An attempt at the run in ``directory`` starts: a line in its ``attempts.jsonl`` naming where
    (the cluster's node, where there is one, the host and the training process), when, and whether
    it resumes."""
    record = {"node": node, "host": host, "pid": pid, "started": round(time.time(), 3), "resumes": resumes}
    with open(Path(directory) / ATTEMPTS_FILE, "a") as f:
        f.write(json.dumps(record) + "\n")


def attempts_of(directory):
    """The attempts at the run in ``directory``, oldest first (none recorded: [])."""
    path = Path(directory) / ATTEMPTS_FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def mark_done(job, seconds, where, started=None, node=None, host=None):
    """The run finished: its ``done`` record (training time, what it trained on, the cluster's node
    and the host it finished on, and when it started and ended, as Unix times), and no ``failed``."""
    record = {"train_seconds": round(seconds, 1), "trained_on": where}
    if node is not None:
        record["node"] = node
    if host is not None:
        record["host"] = host
    if started is not None:
        record.update(started=round(started, 3), ended=round(started + seconds, 3))
    write_whole(job.directory / "done", json.dumps(record) + "\n")
    with contextlib.suppress(FileNotFoundError):
        os.remove(job.directory / "failed")


def mark_failed(job, statuses, output):
    """The run failed twice: its ``failed`` record (the exit statuses, where its output is)."""
    write_whole(job.directory / "failed", json.dumps({"exit_statuses": statuses, "output": str(output)}) + "\n")


def failed_record(out, variant, seed):
    """A run's ``failed`` record, or None where it did not fail (or finished since)."""
    path = run_dir(out, variant, seed) / "failed"
    if not path.exists() or (path.parent / "done").exists():
        return None
    return json.loads(path.read_text())


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


def progress_line(done, total, spent, jobs=1):
    """'[run 4/21, 3 done, ~1h05m left]' from the mean time of the runs trained so far (by this
    command, or kept from an earlier one on the same machine), ``jobs`` of them at a time."""
    left = total - done
    if not spent or not left:
        return f"[run {done + 1}/{total}] "
    eta = statistics.fmean(spent) * left / jobs
    return f"[run {done + 1}/{total}, {done} done, ~{int(eta // 3600)}h{int(eta % 3600 // 60):02d}m left] "

