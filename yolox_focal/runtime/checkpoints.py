"""Checkpoints written whole: at every moment ``latest_ckpt.pth`` and ``best_ckpt.pth`` are a complete
earlier or later checkpoint, whatever stops the process (kill -9, out of memory, power cut, Ctrl-C).

YOLOX's ``save_checkpoint`` calls ``torch.save`` on the final name and then copies it to
``best_ckpt.pth``: a process stopped during either write leaves a truncated file, and the run's
resume point is gone. ``save_checkpoint_whole`` writes each file to a temporary name in the same
folder, flushes it to disk, and renames it over the old one (``os.replace`` is atomic on one file
system). ``whole_checkpoints()`` makes a YOLOX ``Trainer.save_ckpt`` call write this way;
``WholeCheckpointTrainer`` is YOLOX's trainer with that change and the loss kit's state saved and
restored (``loss_state``), for the GPU route.
"""

import contextlib
import os
import shutil
import sys
import time

import torch

from ..adapter.flavour import Trainer
from . import interrupt
from .loss_state import resume_loss_state, saving_loss_state

__all__ = ["save_checkpoint_whole", "whole_checkpoints", "WholeCheckpointTrainer", "SLOW_WRITE_ENV"]

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


def _write(path, write):
    temporary = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.part")
    with open(temporary, "wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())
    _replace(temporary, path)


def save_checkpoint_whole(state, is_best, save_dir, model_name=""):
    """YOLOX's ``save_checkpoint(state, is_best, save_dir, model_name)``, each file written whole.
    A Ctrl-C during the writes takes effect once both are in place (``interrupt.protected``)."""
    os.makedirs(save_dir, exist_ok=True)
    filename = os.path.join(save_dir, model_name + "_ckpt.pth")
    with interrupt.protected(f"writing {filename}"):
        _write(filename, lambda f: torch.save(state, f))
        if is_best:
            with open(filename, "rb") as source:
                _write(os.path.join(save_dir, "best_ckpt.pth"), lambda f: shutil.copyfileobj(source, f))
        if model_name == "latest":  # what --resume reads
            interrupt.last_good_checkpoint(filename, state.get("start_epoch"))


@contextlib.contextmanager
def whole_checkpoints():
    """Within the block, YOLOX's ``Trainer.save_ckpt`` writes through ``save_checkpoint_whole``.
    YOLOX's trainer module calls the ``save_checkpoint`` name it imported, so that name is swapped
    for the block and put back after; what the trainer saves, and when, stays YOLOX's."""
    module = sys.modules[Trainer.__module__]
    original = module.save_checkpoint
    module.save_checkpoint = save_checkpoint_whole
    try:
        yield
    finally:
        module.save_checkpoint = original


class WholeCheckpointTrainer(Trainer):
    """YOLOX's ``Trainer`` (the GPU route: ``exp.get_trainer``), its checkpoints written whole and
    holding the loss kit's state beside the weights, which ``--resume`` restores. Nothing else differs."""

    def save_ckpt(self, *args, **kwargs):
        with whole_checkpoints(), saving_loss_state(self.model):  # the state-adding save inside
            super().save_ckpt(*args, **kwargs)

    def resume_train(self, model):
        model = super().resume_train(model)
        resume_loss_state(self, model)
        return model
