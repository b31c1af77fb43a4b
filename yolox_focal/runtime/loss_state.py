"""The loss kit's state in a training checkpoint: beside ``"model"``, under ``"loss_kit"``.

A loss that keeps state (a running mean) keeps it outside the model's state dict, so that stock
YOLOX checkpoints load into our head with ``strict=True`` and ours into stock YOLOX. The trainer
saves it beside the weights (:func:`put_loss_state`, in ``checkpoints.whole_checkpoints``) and gives it
back on ``--resume`` (:func:`restore_loss_state`).

The state saved is the trained model's (``trainer.model``), not the EMA copy's: the EMA model is
saved as the weights, but its loss kit is a copy made when the EMA started and never computes a loss.
"""

import copy
import os

import torch
from loguru import logger

__all__ = ["KEY", "loss_kit_of", "put_loss_state", "restore_loss_state", "check_loss_state_fits",
           "resume_loss_state"]

KEY = "loss_kit"


def loss_kit_of(model):
    """The loss kit of ``model``'s head (through a DistributedDataParallel wrapper), or None."""
    model = getattr(model, "module", model)
    return getattr(getattr(model, "head", None), "loss_kit", None)


def put_loss_state(ckpt, model):
    """Add ``model``'s loss-kit state to the checkpoint dict ``ckpt`` (on the CPU), as ``ckpt["loss_kit"]``;
    a model without a loss kit adds nothing. Returns ``ckpt``."""
    kit = loss_kit_of(model)
    if kit is not None:
        ckpt[KEY] = {k: v.detach().to("cpu", copy=True) for k, v in kit.loss_state().items()}
    return ckpt


def restore_loss_state(ckpt, model):
    """Give ``model``'s loss kit the state of the checkpoint dict ``ckpt``. A checkpoint without one
    (stock YOLOX's, or saved before its losses kept state) leaves the state as it starts, with a
    warning where the kit keeps any; a state of other losses raises a one-line ``ValueError``."""
    kit = loss_kit_of(model)
    if kit is None:
        return
    if KEY not in ckpt:
        if kit.loss_state():
            logger.warning(f"the checkpoint holds no loss state; {sorted(kit.loss_state())} start afresh")
        return
    kit.load_loss_state(ckpt[KEY])


def check_loss_state_fits(ckpt, model):
    """Raise the one-line ``ValueError`` of :func:`restore_loss_state` now, before any work, if the
    checkpoint's loss state is not ``model``'s loss kit's (another loss setting); changes nothing."""
    kit = loss_kit_of(model)
    if kit is not None and KEY in ckpt:
        copy.deepcopy(kit).load_loss_state(ckpt[KEY])


def resume_loss_state(trainer, model):
    """After YOLOX's ``Trainer.resume_train``: the loss state of the checkpoint it resumed from (the
    same file: ``-c`` or the run's ``latest_ckpt.pth``), read again, memory-mapped."""
    if not trainer.args.resume:
        return
    path = trainer.args.ckpt or os.path.join(trainer.file_name, "latest_ckpt.pth")
    restore_loss_state(torch.load(path, map_location="cpu", mmap=True), model)
