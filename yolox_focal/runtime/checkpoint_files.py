"""Checkpoint files: written whole, read with one-line errors.

Written whole: at every moment ``latest_ckpt.pth`` and ``best_ckpt.pth`` are a complete earlier or
later checkpoint, whatever stops the process (kill -9, out of memory, power cut, Ctrl-C). YOLOX's
``save_checkpoint`` calls ``torch.save`` on the final name and then copies it to ``best_ckpt.pth``:
a process stopped during either write leaves a truncated file, and the run's resume point is gone.
:func:`save_checkpoint_whole` writes each file to a temporary name in the same folder, flushes it
to disk, and renames it over the old one (``os.replace`` is atomic on one file system). The
temporary name is the writer's own (host and process id: :func:`temporary_name`), so that two
writers never share one. A full disk stops the run with one line (:class:`DiskFullError`), the
partial file removed and the earlier checkpoint intact.

Read: :func:`load_checkpoint` loads a YOLOX checkpoint into a model or says in one line why not.
"""

import contextlib
import errno
import os
import shutil
import socket
import time

import torch

from . import interrupt
from .errors import FixableError, UsageError

__all__ = ["save_checkpoint_whole", "temporary_name", "PARTIAL_SUFFIX", "DiskFullError", "SLOW_WRITE_ENV",
           "load_checkpoint", "check_state_matches", "allow_numpy_scalars_in_checkpoints"]

PARTIAL_SUFFIX = ".part"  # the end of every temporary file name: what a killed writer leaves

# Seconds to wait between writing a checkpoint and renaming it into place: lets the tests stop a
# run while a write is in progress. Unset (no wait) in normal use.
SLOW_WRITE_ENV = "YOLOX_FOCAL_SLOW_CHECKPOINT_WRITE"


def _replace(temporary, final):
    slow = float(os.environ.get(SLOW_WRITE_ENV) or 0)
    if slow:
        time.sleep(slow)
    os.replace(temporary, final)
    with contextlib.suppress(OSError):  # make the rename itself durable where the OS allows
        folder = os.open(os.path.dirname(final) or ".", os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


class DiskFullError(FixableError):
    """No space left where a checkpoint is written."""


def temporary_name(path):
    """The hidden name ``path`` is written under before it is renamed into place, this writer's own:
    ``.latest_ckpt.pth.<host>.<pid>.part``."""
    folder, name = os.path.split(path)
    return os.path.join(folder, f".{name}.{socket.gethostname()}.{os.getpid()}{PARTIAL_SUFFIX}")


def _disk_full(error):
    """Whether ``error`` comes from a full disk (or quota): torch's writer reports it as a
    RuntimeError raised while the OSError was handled."""
    while error is not None:
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        error = error.__cause__ or error.__context__
    return False


def _no_space_line(path, written):
    folder = os.path.dirname(path) or "."
    previous = [p for p in (path, os.path.join(folder, "latest_ckpt.pth")) if os.path.isfile(p)]
    if previous:  # the previous checkpoint: as big as the next, near enough
        needs = f"a checkpoint needs about {os.path.getsize(previous[0]) / 2**20:.0f} MB"
    else:
        needs = f"a checkpoint needs more than the {written / 2**20:.0f} MB written when the disk filled"
    return (f"no space left in {folder} to write {os.path.basename(path)}: {needs}; free space there "
            f"(or train into another output_dir); {interrupt.last_good_state()}")


def _write(path, write):
    temporary = temporary_name(path)
    try:
        with open(temporary, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
    except BaseException as error:  # nothing half written stays behind
        written = os.path.getsize(temporary) if os.path.isfile(temporary) else 0
        with contextlib.suppress(OSError):
            os.remove(temporary)
        if _disk_full(error):
            raise DiskFullError(_no_space_line(path, written)) from None
        raise
    _replace(temporary, path)


def save_checkpoint_whole(state, is_best, save_dir, model_name=""):
    """YOLOX's ``save_checkpoint(state, is_best, save_dir, model_name)``, each file written whole.
    A Ctrl-C or SIGTERM during the writes takes effect once both are in place (``interrupt.protected``)."""
    os.makedirs(save_dir, exist_ok=True)
    filename = os.path.join(save_dir, model_name + "_ckpt.pth")
    with interrupt.protected(f"writing {filename}"):
        _write(filename, lambda f: torch.save(state, f))
        if model_name == "latest":  # what --resume reads
            interrupt.last_good_checkpoint(filename, state.get("start_epoch"))
        if is_best:
            with open(filename, "rb") as source:
                _write(os.path.join(save_dir, "best_ckpt.pth"), lambda f: shutil.copyfileobj(source, f))


def allow_numpy_scalars_in_checkpoints():
    """Let ``torch.load``'s default weights-only mode read YOLOX checkpoints.

    YOLOX's trainer stores ``best_ap`` as pycocotools gives it, a numpy float64, and its own
    ``torch.load`` calls (resume, fine-tune, tools/eval.py) pass no ``weights_only``, which torch
    2.6+ turns on: every checkpoint saved after an evaluation would fail to load. Allowing numpy's
    scalar reconstructor and float dtype keeps those calls YOLOX's, unchanged.
    """
    import numpy as np

    if not hasattr(torch.serialization, "add_safe_globals"):  # torch < 2.4: weights-only is off by default
        return
    try:
        from numpy._core.multiarray import scalar  # numpy 2
    except ImportError:
        from numpy.core.multiarray import scalar
    torch.serialization.add_safe_globals([
        np.dtype, type(np.dtype("float64")),
        (scalar, "numpy.core.multiarray.scalar"), (scalar, "numpy._core.multiarray.scalar"),
    ])


def load_checkpoint(path, model):
    """Load a YOLOX checkpoint (a dict with "model") into ``model``, or say in one line why not."""
    if not os.path.isfile(path):
        raise UsageError(f"checkpoint not found: {path}")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:
        raise UsageError(f"cannot read checkpoint {path}: {type(error).__name__}: {error}") from None
    state = checkpoint.get("model") if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        raise UsageError(f"{path} is not a YOLOX checkpoint (no 'model' state dict)")
    check_state_matches(state, model, path)
    model.load_state_dict(state)
    return checkpoint


def check_state_matches(state, model, path):
    """Raise a one-line ``UsageError`` if the state dict ``state`` (read from ``path``) does not fit ``model``."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    mismatched = [f"{k} {tuple(state[k].shape)} vs model {tuple(v.shape)}"
                  for k, v in expected.items() if k in state and state[k].shape != v.shape]
    if missing or unexpected or mismatched:
        problems = [f"{len(x)} {what} (first: {x[0]})" for x, what in (
            (missing, "missing keys"), (unexpected, "unexpected keys"), (mismatched, "shape mismatches")) if x]
        raise UsageError(f"checkpoint {path} does not match the exp's model: {'; '.join(problems)}; "
                         f"check -f and num_classes")
