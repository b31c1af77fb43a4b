"""Several processes, on one machine or on several, on the CPU: YOLOX's own ``launch`` over gloo.

YOLOX's ``launch`` (``yolox/core/launch.py``, after detectron2's) does the work of a distributed
run: the world size from ``-d`` and ``--num_machines``, a free port for ``--dist-url auto``, one
process per device through ``torch.multiprocessing`` (spawn, or fork with ``--cache``), and a
join that stops the other processes when one fails. Only its per-process setup,
``_distributed_worker``, is tied to CUDA: it asserts that CUDA is available and calls
``torch.cuda.set_device``. :func:`launch` therefore calls YOLOX's own ``launch`` with that one
function swapped, for the call's duration, for :func:`_cpu_worker`, which follows its structure
(process group, one group per machine, a first barrier) without CUDA and adds what a CPU run on
shared machines needs: a share of the cores per process, a rendezvous that fails in one line, and
a stop when the launcher is gone. Swapping the worker rather than copying ``launch`` keeps every
decision ``launch`` makes YOLOX's, in whichever YOLOX is installed.

The rest of the CUDA ties are in the CPU trainer and evaluators (``cpu_trainer``, ``cpu_evaluators``):
DDP without ``device_ids``, the size of ``random_resize`` broadcast over gloo, :func:`all_reduce_norm`
on CPU tensors, and detections gathered to rank 0.

Faults end in one line instead of a hang: a process that dies makes torch's join (inside YOLOX's
``launch``) stop the others, and :func:`launch` names it; a process that loses its connection to
another machine's process stops with exit status 3, named by its own launcher. A Ctrl-C or SIGTERM
to the launcher (or to its whole process group) stops every process, each after a checkpoint
write in progress, and the launcher alone says where (``interrupt.launching``).
"""

import contextlib
import logging
import os
import signal
import socket
import sys
import threading
import time
from datetime import timedelta
from urllib.parse import urlparse

import torch
import torch.distributed as dist

from . import interrupt
from .errors import FixableError, print_errors
from .fit_settings import usable_cores

__all__ = ["DIST_TIMEOUT", "LOST_CONTACT", "world_size", "check_launch", "launch", "all_reduce_norm",
           "broadcast_size", "merge_gathered"]

# How long a collective (or the rendezvous) waits for a process that is alive but silent: YOLOX's
# own default. Rank 0 scores the whole validation set while the others wait at a barrier, so this
# must exceed the longest evaluation. A process that dies is noticed at once, not after this.
DIST_TIMEOUT = timedelta(minutes=30)

# Exit status of a process that lost its connection to another one (which died or was stopped).
LOST_CONTACT = 3
# How long such a process waits before it says so: on one machine the launcher notices the dead
# process first, stops this one and names the dead one.
_LOST_CONTACT_GRACE_S = 3.0
# What gloo says when the other end of a connection is gone.
_LOST_CONTACT_WORDS = ("Connection closed by peer", "Connection reset by peer", "Broken pipe",
                       "Socket closed", "connection closed", "Connection refused")


def world_size(args):
    """The number of processes of the run: ``-d`` per machine times ``--num_machines``."""
    return (args.devices or 1) * (getattr(args, "num_machines", 1) or 1)


def check_launch(args, device, gpus_available):
    """Refuse, in one line and before any work, a distributed setting that cannot work: ``-d`` below
    1 or above the GPUs there are, a ``--machine_rank`` outside ``--num_machines``, several machines
    without a ``--dist-url``, a batch that does not split evenly over the processes, a port taken."""
    processes = args.devices
    if processes is not None and processes < 1:
        raise FixableError(f"-d {processes}: give 1 or more processes per machine")
    if device == "cuda" and processes is not None and processes > gpus_available:
        raise FixableError(f"-d {processes} asks for {processes} GPUs but this machine has {gpus_available}; "
                           f"use -d {gpus_available} or fewer, or --device cpu -d {processes}")
    machines, machine_rank = getattr(args, "num_machines", 1), getattr(args, "machine_rank", 0)
    if machines < 1:
        raise FixableError(f"--num_machines {machines}: give 1 or more machines")
    if not 0 <= machine_rank < machines:
        raise FixableError(f"--machine_rank {machine_rank} is not below --num_machines {machines}: number the "
                           f"machines 0 to {machines - 1}")
    url = getattr(args, "dist_url", None)
    if machines > 1 and url in (None, "auto"):
        raise FixableError(f"--num_machines {machines} needs --dist-url tcp://HOST:PORT, HOST being machine 0's "
                           f"address, the same on every machine")
    total = world_size(args)
    if total > 1 and args.batch_size is not None and args.batch_size % total:
        raise FixableError(f"-b {args.batch_size} does not split evenly over {total} processes (YOLOX gives each "
                           f"-b / processes images); use a multiple of {total}")
    if total > 1 and machine_rank == 0:
        _check_port_free(url)


def _check_port_free(url):
    """Machine 0 serves the rendezvous on ``--dist-url``'s port: say now if something holds it."""
    if not url or url == "auto":
        return
    parsed = urlparse(url)
    if parsed.scheme != "tcp":
        return
    try:
        port = parsed.port
    except ValueError:
        port = None
    if not parsed.hostname or port is None:
        raise FixableError(f"--dist-url {url}: write it as tcp://HOST:PORT (e.g. tcp://127.0.0.1:29500)")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # as torch's TCPStore binds: a port left in TIME_WAIT by an earlier run is free to it
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("", port))
        except OSError as error:
            raise FixableError(f"--dist-url {url}: port {port} is in use on this machine ({error.strerror}); "
                               f"pick a free port, or --dist-url auto on one machine") from None


def launch(main_func, args, main_args):
    """Run ``main_func(*main_args)`` in ``-d`` processes on this machine, as machine
    ``--machine_rank`` of ``--num_machines``, through YOLOX's own ``launch`` with gloo.

    A process that fails ends the run: one that reported its own error (exit status 2) is left to
    have said it; one that died otherwise (killed, out of memory) is named here in one line.
    """
    from ..adapter import flavour

    yolox_launch = flavour.launch
    launch_module = sys.modules[yolox_launch.__module__]
    processes = args.devices or 1
    url = "auto" if getattr(args, "dist_url", None) is None else args.dist_url
    machine_rank = getattr(args, "machine_rank", 0)
    # torch's join logs each process it stops ("Terminating process ... via signal SIGTERM"): the
    # line below names the cause instead.
    logging.getLogger("torch.multiprocessing.spawn").setLevel(logging.ERROR)
    # and multiprocessing's resource tracker (its own process, started with this one's -W options)
    # warns at exit of the semaphores a killed process leaves: noise after that line.
    sys.warnoptions.append("ignore::UserWarning:multiprocessing.resource_tracker")
    try:
        # a Ctrl-C or SIGTERM is passed on to the processes; this one says where the run stopped
        with interrupt.launching(), _swapped(launch_module, "_distributed_worker", _cpu_worker):
            yolox_launch(main_func, processes, getattr(args, "num_machines", 1), machine_rank,
                         backend="gloo", dist_url=url, args=main_args)
    except torch.multiprocessing.ProcessExitedException as error:
        if error.exit_code == 2:  # the process printed its own error line
            raise SystemExit(2) from None
        raise FixableError(_describe_exit(error, machine_rank * processes + error.error_index)) from None


def _describe_exit(error, rank):
    if error.exit_code == LOST_CONTACT:
        return (f"process rank {rank} (pid {error.error_pid}) lost its connection to another process of the run, "
                f"which died or was stopped (that machine's own error line names it); stopped this machine's "
                f"processes")
    stopped_by = {status: signal.Signals(signum).name for signum, status in interrupt.EXIT_STATUSES.items()}
    if error.signal_name:
        how = f"was killed by {error.signal_name}"
    elif error.exit_code in stopped_by:  # its own handler stopped it
        how = f"was stopped by {stopped_by[error.exit_code]}"
    else:
        how = f"exited with status {error.exit_code}"
    return f"process rank {rank} (pid {error.error_pid}) {how}; stopped the other processes"


@contextlib.contextmanager
def _swapped(module, name, value):
    saved = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, saved)


def _cpu_worker(local_rank, main_func, world_size, processes_per_machine, machine_rank, backend, dist_url,
                args, timeout=DIST_TIMEOUT):
    """YOLOX's ``_distributed_worker`` (same arguments) on the CPU: join the process group, make the
    per-machine groups YOLOX's ``get_local_rank`` reads, wait for all, then run ``main_func``."""
    from yolox.utils import dist as comm

    rank = machine_rank * processes_per_machine + local_rank
    interrupt.install()  # a stop without a line: the launcher says it
    _stop_without_launcher(rank)
    if "OMP_NUM_THREADS" not in os.environ:  # share the cores instead of each process taking all
        torch.set_num_threads(max(1, usable_cores() // processes_per_machine))
    try:
        dist.init_process_group(backend=backend, init_method=dist_url, world_size=world_size, rank=rank,
                                timeout=timeout)
        machines = world_size // processes_per_machine
        for machine in range(machines):  # every process makes every group, in the same order
            group = dist.new_group(list(range(machine * processes_per_machine,
                                              (machine + 1) * processes_per_machine)))
            if machine == machine_rank:
                comm._LOCAL_PROCESS_GROUP = group
        comm.synchronize()
    except Exception as error:  # the rendezvous: a wrong address, a machine that never came
        print_errors(f"process rank {rank} could not join the run at {dist_url}: {type(error).__name__}: "
                     f"{_first_line(error)}")
        sys.exit(2)
    try:
        main_func(*args)
        dist.destroy_process_group()
    except FixableError as error:
        if rank != 0:  # the same error on rank 0 (a diverged run, a bad flag) ends this process first
            time.sleep(_LOST_CONTACT_GRACE_S)
        print_errors(error)
        sys.exit(2)
    except Exception as error:
        if not any(words in str(error) for words in _LOST_CONTACT_WORDS):
            raise
        time.sleep(_LOST_CONTACT_GRACE_S)
        sys.exit(LOST_CONTACT)


def _first_line(error):
    return (str(error).strip().splitlines() or [""])[0]


def _stop_without_launcher(rank):
    """Stop this process, in one line, once the launcher that started it is gone (killed): nothing
    else would end it, and its peers would wait on it."""
    launcher = os.getppid()

    def watch():
        while os.getppid() == launcher:
            time.sleep(1.0)
        print(f"error: process rank {rank}: its launcher (pid {launcher}) is gone; stopping", file=sys.__stderr__)
        os._exit(LOST_CONTACT)

    threading.Thread(target=watch, name="launcher-watch", daemon=True).start()


def broadcast_size(size):
    """Rank 0's ``(height, width)`` on every process: what ``Exp.random_resize`` broadcasts with a
    CUDA tensor, here with a CPU one over gloo. ``size`` is ignored on the other ranks."""
    tensor = torch.tensor(size if dist.get_rank() == 0 else (0, 0), dtype=torch.long)
    dist.broadcast(tensor, 0)
    return int(tensor[0]), int(tensor[1])


def all_reduce_norm(module):
    """YOLOX's ``all_reduce_norm`` (``yolox/utils/allreduce_norm.py``) on the CPU: every norm layer's
    statistics replaced by their mean over the processes.

    YOLOX first broadcasts rank 0's list of names as a CUDA tensor; here every process has built
    the same model, so YOLOX's ``get_async_norm_states`` lists the same names in the same order.
    """
    from yolox.utils.allreduce_norm import get_async_norm_states

    states = get_async_norm_states(module)
    if not dist.is_initialized() or dist.get_world_size() == 1 or not states:
        return
    flat = torch.cat([state.flatten().double() for state in states.values()])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    means = torch.split(flat, [state.numel() for state in states.values()])
    module.load_state_dict({name: mean.reshape(state.shape).to(state.dtype)
                            for (name, state), mean in zip(states.items(), means)}, strict=False)


def merge_gathered(parts):
    """One dict from the per-process dicts gathered to rank 0, the first
    process's entry kept for a key several hold.

    YOLOX's evaluation loader shards the validation set with torch's ``DistributedSampler``, which
    repeats a few images so that every process has as many: scored twice, their detections would
    count as false positives and lower the AP. Keyed by image, each is kept once.
    """
    merged = {}
    for part in parts:
        for key, value in part.items():
            merged.setdefault(key, value)
    return merged
