"""The grid's runs on this machine, ``--jobs N`` at a time.

Each run is ``tools/train.py`` in a child process (``runs.prepare``). On GPUs each of the N slots
has its own devices: ``--gpus-per-run K`` of those visible, the run's ``-d K`` on its own
``CUDA_VISIBLE_DEVICES``. On the CPU each slot has its share of the cores: the child is bound to
them (``sched_setaffinity``) and runs that many threads (``OMP_NUM_THREADS``). With N above 1 a
run's output goes to ``<run>/train_output.txt`` (one terminal cannot show several trainings);
with 1 it goes to the terminal, as before.

A run that fails (not one the user stopped) is retried once, from its last checkpoint where it
wrote one; failing again, it is recorded as failed (``<run>/failed``, in the report) and the other
runs go on. Ctrl-C or SIGTERM stops every run (each stops at once, a checkpoint write finished
first, without a line of its own: the ablation is their launcher) and the ablation prints one line
naming them; finished runs are kept and stopped ones resume on the next run of the same command.
A second Ctrl-C kills them at once.

The loop (``train_grid``) is the one of every runner: it prepares each run (``runs.prepare``: its
folder claimed, its command), starts it through a launcher, retries a failed run once and records
the outcome. ``LocalLauncher`` starts the runs here, in child processes; ``ray_runner.RayLauncher``
(``--ray``) sends them to a Ray cluster.
"""

import os
import signal
import subprocess
import sys
import socket
import time
from collections import deque

from ..runtime import interrupt
from ..runtime.errors import UsageError
from ..runtime.fit_settings import usable_cores
from .grid import grid_runs
from .runs import (OUTPUT_FILE, POLL_S, REPO, Ended, done_record, mark_done, mark_failed, prepare, progress_line,
                   record_attempt, refuse_other_settings, settings_of, trained_on)

__all__ = ["slots", "train_grid", "LocalLauncher", "STOPPED"]

STOPPED = (interrupt.EXIT_STATUS, 128 + signal.SIGTERM)  # a child stopped by a Ctrl-C or SIGTERM


def _uses_cuda(device):
    if device == "cpu":
        return False
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda asked for, but torch sees no CUDA device; use --device cpu")
    return torch.cuda.is_available()


def slots(args):
    """One dict per slot: the ``env`` its runs get, the ``cores`` they are bound to (None: no
    binding), the ``extra`` arguments of tools/train.py and a ``label``. Checked before any work."""
    if args.jobs < 1:
        raise UsageError(f"--jobs {args.jobs}: give 1 or more runs at once")
    if _uses_cuda(args.device):
        import torch

        per_run = args.gpus_per_run or 1
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        devices = [d for d in visible.split(",") if d.strip()] if visible else list(map(str, range(torch.cuda.device_count())))
        if args.jobs * per_run > len(devices):
            raise UsageError(f"--jobs {args.jobs} x --gpus-per-run {per_run} needs {args.jobs * per_run} GPUs; "
                             f"{len(devices)} are visible: lower --jobs or --gpus-per-run")
        return [{"env": {"CUDA_VISIBLE_DEVICES": ",".join(devices[i * per_run:(i + 1) * per_run])}, "cores": None,
                 "extra": ["-d", str(per_run)], "threads": None,
                 "label": f"GPU {','.join(devices[i * per_run:(i + 1) * per_run])}"} for i in range(args.jobs)]
    if args.gpus_per_run:
        raise UsageError(f"--gpus-per-run {args.gpus_per_run} is for GPUs, and this grid trains on the CPU "
                         "(--device cpu, or no CUDA device): leave it out")
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(usable_cores()))
    share = len(cores) // args.jobs
    if args.jobs == 1:
        return [{"env": {}, "cores": None, "extra": [], "threads": None, "label": f"{len(cores)} cores"}]
    if share == 0:  # more runs than cores: they share them all, one thread each
        return [{"env": _threads(1), "cores": None, "extra": [], "threads": 1, "label": "1 thread"}
                for _ in range(args.jobs)]
    return [{"env": _threads(share), "cores": cores[i * share:(i + 1) * share], "extra": [], "threads": share,
             "label": f"core{'s' * (share > 1)} {','.join(map(str, cores[i * share:(i + 1) * share]))}"}
            for i in range(args.jobs)]


def _threads(n):
    return {"OMP_NUM_THREADS": str(n), "MKL_NUM_THREADS": str(n)}


class _Stop:
    """SIGINT and SIGTERM while the grid runs: the first passes SIGTERM on to every run, a second
    Ctrl-C kills them."""

    def __init__(self, running):
        self.running, self.signal, self.count = running, None, 0

    def __enter__(self):
        self.saved = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def __exit__(self, *exc):
        for signum, handler in self.saved.items():
            signal.signal(signum, handler)

    def _on_signal(self, signum, frame):
        if self.signal is not None and signum == signal.SIGTERM:
            return  # a stop is under way
        self.signal = self.signal or signum
        self.count += 1
        for active in self.running.values():
            try:
                active["process"].send_signal(signal.SIGKILL if self.count > 1 else signal.SIGTERM)
            except OSError:  # ended already
                pass


class _LocalAttempt:
    """A run training in a child process here."""

    def __init__(self, process, where):
        self.process, self.where = process, where

    def poll(self):
        status = self.process.poll()
        if status is None:
            return None
        return Ended(status, f"exit status {status}", self.where, host=socket.gethostname())

    def send_signal(self, signum):
        self.process.send_signal(signum)


class LocalLauncher:
    """The runs on this machine, ``--jobs N`` at a time, each in its slot (``slots``)."""

    def __init__(self, args):
        self.args, self.places = args, slots(args)
        self.quiet = args.jobs > 1
        self.parallel = args.jobs

    def label(self, place):
        return self.places[place]["label"]

    def trains_on(self):
        """What a run trains on here (a kept run that trained the same way informs the estimate)."""
        return trained_on(self.args.device, self.args.fp16, self.places[0]["threads"])

    def start(self, job, place):
        """Start ``job`` in slot ``place``: its output to the terminal, or (``quiet``) to its output file."""
        slot = self.places[place]
        env = dict(os.environ, **job.env, **slot["env"])
        env[interrupt.LAUNCHER_ENV] = str(os.getpid())  # the runs stop without a line: the ablation prints it
        output = open(job.directory / OUTPUT_FILE, "a") if self.quiet else None
        cores = slot["cores"]
        process = subprocess.Popen(job.command + slot["extra"], cwd=REPO, env=env, stdout=output,
                                   stderr=subprocess.STDOUT if self.quiet else None,
                                   preexec_fn=(lambda: os.sched_setaffinity(0, cores)) if cores else None)
        if output:
            output.close()
        record_attempt(job.directory, job.resumes, node=None, host=socket.gethostname(), pid=process.pid)
        return _LocalAttempt(process, trained_on(self.args.device, self.args.fp16, slot["threads"]))

    gone_hosts = ()  # a claim from another host waits for its heartbeat to age (folder_claim.STALE_S)

    def close(self):
        pass


def _where(job):
    """'after epoch N' of the run's last checkpoint, or 'no checkpoint yet'."""
    latest = job.directory / "latest_ckpt.pth"
    if not latest.exists():
        return "no checkpoint yet"
    try:
        import torch

        return f"after epoch {torch.load(latest, map_location='cpu', mmap=True, weights_only=True)['start_epoch']}"
    except Exception:  # the line is worth having without the epoch
        return f"at {latest}"


def train_grid(args, launcher=None):
    """Train every run of the grid not finished yet, through ``launcher`` (default: this machine's
    ``--jobs`` slots; with ``--ray``, the cluster's); returns the runs that failed twice as
    ``[(variant, seed, statuses)]``. A stop by signal ends the process with its one line and the exit
    status of the signal."""
    runs = grid_runs(args.variants, args.seeds)
    settings = {}
    for seed, variant in runs:  # every refusal before any run trains
        settings[seed, variant] = settings_of(args.out, variant, seed, args)
        refuse_other_settings(args.out / f"{variant}-seed{seed}", settings[seed, variant])
    if launcher is None:
        if getattr(args, "ray", None):
            from .ray_runner import RayLauncher  # Ray only with --ray

            launcher = RayLauncher(args, len(runs))
        else:
            launcher = LocalLauncher(args)
    try:
        return _train(args, launcher, runs, settings)
    finally:
        launcher.close()


def _train(args, launcher, runs, settings):
    quiet, places = launcher.quiet, launcher.places
    here = launcher.trains_on()
    pending, running, spent, failed, stopped = deque(runs), {}, [], [], []
    finished = 0
    with _Stop(running) as stop:
        while pending or running:
            free = [i for i in range(len(places)) if i not in running]
            while pending and free and stop.signal is None:
                seed, variant = pending.popleft()
                progress = progress_line(finished, len(runs), spent, launcher.parallel)
                job = prepare(args.out, variant, seed, args, settings[seed, variant], launcher.gone_hosts)
                if job is None:
                    print(f"[ablate] {progress}{variant}-seed{seed}: done, kept", flush=True)
                    finished += 1
                    record = done_record(args.out, variant, seed) or {}
                    if record.get("trained_on") == here and record.get("train_seconds"):
                        spent.append(record["train_seconds"])  # a kept run trained here informs the estimate
                    continue
                slot = free.pop(0)
                word = f"resuming from {job.directory / 'latest_ckpt.pth'}" if job.resumes else "training"
                where = f" ({launcher.label(slot)}; output in {job.directory / OUTPUT_FILE})" if quiet else ""
                print(f"[ablate] {progress}{job.directory.name}: {word}{where}", flush=True)
                running[slot] = {"job": job, "process": launcher.start(job, slot), "tries": 1,
                                 "start": time.monotonic(), "started": time.time(), "statuses": []}
            if not running:
                break
            time.sleep(POLL_S)
            for slot, active in list(running.items()):
                ended = active["process"].poll()
                if ended is None:
                    continue
                job, status = active["job"], ended.status
                job.claim.release()
                del running[slot]
                if status == 0:
                    if ended.started is not None and ended.ended is not None:
                        seconds, started = ended.ended - ended.started, ended.started
                    else:
                        seconds, started = time.monotonic() - active["start"], active["started"]
                    mark_done(job, seconds, ended.trained_on, started, node=ended.node, host=ended.host)
                    finished += 1
                    spent.append(seconds)
                    on = f" on node {ended.node}" if ended.node else ""
                    print(f"[ablate] {job.directory.name}: finished{on} ({seconds / 60:.1f} min)", flush=True)
                elif stop.signal is not None or status in STOPPED or status in (-signal.SIGINT, -signal.SIGTERM):
                    stopped.append(job)
                elif active["tries"] == 1:
                    active["statuses"].append(status if status is not None else ended.why)
                    retry = prepare(args.out, job.variant, job.seed, args, settings[job.seed, job.variant],
                                    launcher.gone_hosts)
                    source = f"from {retry.directory / 'latest_ckpt.pth'}" if retry.resumes else "from the start (no checkpoint)"
                    print(f"[ablate] {job.directory.name}: failed ({ended.why}); retrying once {source}", flush=True)
                    running[slot] = dict(active, job=retry, process=launcher.start(retry, slot), tries=2)
                else:
                    statuses = active["statuses"] + [status if status is not None else ended.why]
                    mark_failed(job, statuses, job.directory / OUTPUT_FILE if quiet else "the terminal")
                    failed.append((job.variant, job.seed, statuses))
                    print(f"[ablate] {job.directory.name}: failed again ({ended.why}); reported as failed, "
                          "the other runs go on", flush=True)
        if stop.signal is not None:
            word = "interrupted" if stop.signal == signal.SIGINT else "terminated"
            named = ", ".join(f"{job.directory.name} ({_where(job)})" for job in stopped) or "none was training"
            sys.stdout.flush()
            print(f"{word}: stopped the ablation's runs: {named}; {finished} finished run"
                  f"{'s' * (finished != 1)} kept; run the same command again to resume", file=sys.stderr, flush=True)
            sys.exit(interrupt.EXIT_STATUSES[stop.signal])
    return failed
