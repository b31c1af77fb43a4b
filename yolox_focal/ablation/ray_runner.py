"""``--ray ADDRESS`` (or ``auto``): the grid's runs as tasks on a Ray cluster.

The loop is ``local.train_grid``'s, the same as for ``--jobs``: this machine (the driver) prepares
each run (its folder claimed, its command built: ``runs.prepare``), retries a failed run once and
records how it ended; only the start differs. Each attempt at a run is one Ray task with the run's
resources (``--cpus-per-run`` CPUs; on GPUs ``--gpus-per-run`` GPUs, the run's ``-d K``, Ray
setting its ``CUDA_VISIBLE_DEVICES``), which runs ``tools/train.py`` on whichever node Ray gives
it, into the ``--out`` folder: storage every node sees at the same path (a shared file system).
The task records its node in ``<run>/attempts.jsonl`` as it starts, and the run's ``done`` record
names the node it finished on.

A task whose node is lost (or whose run fails) is retried once, as on this machine, from the run's
last checkpoint; Ray runs the retry on a node that is alive. The driver holds each run's folder
claim (``runtime.folder_claim``) and hands it to the training process, so a lost node never holds
one; the training process dies with its task (``PR_SET_PDEATHSIG``), and the task with its node.
A claim left by an earlier driver on a host whose every Ray node is dead is taken over at once
(``gone_hosts``), not after ``folder_claim.STALE_S``.

Ray is an optional extra (``pip install -e .[cluster]``), imported only here, and this module only
with ``--ray``.
"""

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from ..runtime import interrupt
from ..runtime.errors import UsageError
from .runs import OUTPUT_FILE, POLL_S, REPO, TRAIN_SCRIPT, Ended, attempts_of, record_attempt, trained_on

__all__ = ["RayLauncher", "attempt", "INSTALL_HINT"]

INSTALL_HINT = "pip install -e .[cluster] (or pip install ray)"
PR_SET_PDEATHSIG = 1


def _die_with_parent():
    """In the training process, before it starts: SIGKILL when the task's process ends (its node
    lost, the task cancelled by force), so that a lost task leaves no training behind."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() == 1:  # the task's process ended before the line above
        os._exit(1)


def attempt(command, env, directory, resumes, device, fp16, cpus):
    """The body of a run's Ray task, on its node: train or resume the run (``command`` as
    ``runs.prepare`` built it, its interpreter and tools/train.py as installed on this node), its
    output appended to ``<run>/train_output.txt``. Returns how it ended (a dict of ``Ended``'s
    fields). Cancelled (the driver's Ctrl-C), it passes SIGTERM on, so the run writes its
    checkpoint first."""
    import ray

    node = ray.get_runtime_context().get_node_id()
    command = [sys.executable, str(TRAIN_SCRIPT)] + list(command[2:])
    threads = {"OMP_NUM_THREADS": str(cpus), "MKL_NUM_THREADS": str(cpus)}
    env = dict(os.environ, **env, **threads)
    env[interrupt.LAUNCHER_ENV] = str(os.getpid())  # the run stops without a line: the driver prints it
    started = time.time()
    with open(Path(directory) / OUTPUT_FILE, "a") as output:
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=output, stderr=subprocess.STDOUT,
                                   preexec_fn=_die_with_parent)
    record_attempt(directory, resumes, node=node, host=socket.gethostname(), pid=process.pid)
    try:
        while (status := process.poll()) is None:  # in Python, not in waitpid: ray.cancel reaches it here
            time.sleep(POLL_S)
    except KeyboardInterrupt:  # ray.cancel: stop the run as a Ctrl-C would (a checkpoint write finished first)
        process.send_signal(signal.SIGTERM)
        status = process.wait()
    gpu = bool(os.environ.get("CUDA_VISIBLE_DEVICES")) and device != "cpu"
    return {"status": status, "why": f"exit status {status}", "node": node, "host": socket.gethostname(),
            "trained_on": trained_on("cuda" if gpu else "cpu", fp16, None if gpu else cpus),
            "started": started, "ended": time.time()}


class _RayAttempt:
    """A run's task on the cluster."""

    def __init__(self, ray, ref, directory):
        self.ray, self.ref, self.directory = ray, ref, directory

    def poll(self):
        ready, _ = self.ray.wait([self.ref], timeout=0)
        if not ready:
            return None
        try:
            return Ended(**self.ray.get(self.ref))
        except self.ray.exceptions.TaskCancelledError:
            return Ended(None, "stopped", "")
        except self.ray.exceptions.RayError as error:
            return Ended(None, self._lost(error), "")

    def _lost(self, error):
        """Why the task ended without a result: its node lost, or the task itself failed."""
        started = [a for a in attempts_of(self.directory) if a.get("node")]
        node = started[-1]["node"] if started else None
        if node is None:
            return f"its task failed before it started the run ({type(error).__name__})"
        if not isinstance(error, self.ray.exceptions.RayTaskError):
            return f"its task on node {node} ended without a result ({type(error).__name__}): the node was lost"
        return f"its task on node {node} failed: {str(error).strip().splitlines()[-1]}"

    def send_signal(self, signum):
        """SIGTERM: cancel the task (the run writes its checkpoint, then stops); SIGKILL: by force."""
        self.ray.cancel(self.ref, force=signum == signal.SIGKILL)


class RayLauncher:
    """The grid's runs on the Ray cluster at ``args.ray``, all sent at once: Ray runs as many as its
    nodes' resources allow and queues the others."""

    quiet = True  # each run's output is in its folder, on the node that trains it

    def __init__(self, args, runs):
        try:
            import ray
        except ImportError:
            raise UsageError(f"--ray needs Ray, which is not installed: {INSTALL_HINT}") from None
        self.ray, self.args = ray, args
        try:
            ray.init(address=args.ray, log_to_driver=False, logging_level="WARNING")
        except (ConnectionError, RuntimeError, ValueError) as error:
            raise UsageError(f"--ray {args.ray}: no Ray cluster to connect to ({str(error).strip().splitlines()[0]}); "
                             "start one (ray start --head) and give its address, or auto") from None
        try:
            self._resources(args)
        except BaseException:
            ray.shutdown()
            raise
        self.places = list(range(runs))
        self.task = ray.remote(attempt).options(num_cpus=self.cpus, num_gpus=self.gpus, max_retries=0)

    def _resources(self, args):
        """Each run's CPUs and GPUs, checked against the cluster's nodes before any run starts."""
        nodes = [n for n in self.ray.nodes() if n.get("Alive")]
        largest = {kind: max((n["Resources"].get(kind, 0) for n in nodes), default=0) for kind in ("CPU", "GPU")}
        self.cpus = args.cpus_per_run or 1
        if args.device == "cpu":
            if args.gpus_per_run:
                raise UsageError(f"--gpus-per-run {args.gpus_per_run} is for GPUs, and this grid trains on the CPU "
                                 "(--device cpu): leave it out")
            self.gpus = 0
        elif args.device == "cuda" or args.gpus_per_run or largest["GPU"]:
            self.gpus = args.gpus_per_run or 1
        else:  # auto, and no node has a GPU
            self.gpus = 0
        if self.gpus > largest["GPU"]:
            raise UsageError(f"--gpus-per-run {self.gpus} (--device {args.device}): no node of the Ray cluster at "
                             f"{args.ray} has {self.gpus} GPU{'s' * (self.gpus != 1)} (the most: {largest['GPU']:g}); "
                             "lower --gpus-per-run, or --device cpu")
        if self.cpus > largest["CPU"]:
            raise UsageError(f"--cpus-per-run {self.cpus}: no node of the Ray cluster at {args.ray} has {self.cpus} "
                             f"CPUs (the most: {largest['CPU']:g}); lower --cpus-per-run")
        total = sum(n["Resources"].get("GPU" if self.gpus else "CPU", 0) for n in nodes)
        self.parallel = max(1, int(total // (self.gpus or self.cpus)))
        alive = {n.get("NodeManagerHostname") for n in nodes}
        self.gone_hosts = tuple(sorted({n.get("NodeManagerHostname") for n in self.ray.nodes()
                                        if not n.get("Alive")} - alive - {None}))

    def label(self, place):
        gpus = f", {self.gpus} GPU{'s' * (self.gpus != 1)}" if self.gpus else ""
        return f"a Ray task of {self.cpus} CPU{'s' * (self.cpus != 1)}{gpus}"

    def trains_on(self):
        return None  # known on the node only

    def start(self, job, place):
        extra = ["-d", str(self.gpus)] if self.gpus else []
        ref = self.task.remote(job.command + extra, job.env, str(job.directory), job.resumes, self.args.device,
                               self.args.fp16, self.cpus)
        return _RayAttempt(self.ray, ref, job.directory)

    def close(self):
        self.ray.shutdown()
