"""The trainer of both routes' checkpoints: YOLOX's own ``Trainer.save_ckpt``, each file written
whole (``checkpoint_files``) and holding the loss kit's state beside the weights (``loss_state``).

YOLOX's trainer module calls the ``save_checkpoint`` name it imported; :func:`whole_checkpoints`
swaps that one name, for one ``save_ckpt`` call, for a writer that does both. What the trainer
saves, and when, stays YOLOX's. ``WholeCheckpointTrainer`` is YOLOX's trainer with that change, the
loss state restored on ``--resume``, the training progress handed to the loss kit before each
iteration (:func:`training_progress`, for a loss whose schedule follows training, such as ``uiou``)
and the tools' handling of Ctrl-C and SIGTERM (``interrupt``): the GPU route's trainer
(``exp.get_trainer``), whichever tool starts it, and the base of the CPU trainer
(``cpu_trainer.CPUTrainer``).
"""

import contextlib
import sys
import threading

from ..adapter.flavour import Trainer
from . import interrupt
from .checkpoint_files import save_checkpoint_whole
from .loss_state import loss_kit_of, put_loss_state, resume_loss_state

__all__ = ["whole_checkpoints", "WholeCheckpointTrainer", "training_progress"]


def training_progress(epoch, iteration, max_epoch, iters_per_epoch):
    """The share of training done before iteration ``iteration`` (from 0) of epoch ``epoch`` (from 0):
    ``(epoch * iters_per_epoch + iteration) / (max_epoch * iters_per_epoch)``, 0 at the first
    iteration and ``1 - 1 / (max_epoch * iters_per_epoch)`` at the last, as YOLOX's own schedules
    count iterations; a resumed run goes on from where it stopped."""
    total = max_epoch * iters_per_epoch
    return min(max((epoch * iters_per_epoch + iteration) / total, 0.0), 1.0) if total > 0 else 0.0


@contextlib.contextmanager
def whole_checkpoints(model):
    """Within the block, YOLOX's ``save_checkpoint`` (as its trainer module calls it) writes each file
    whole, ``model``'s loss state added to the checkpoint; put back after."""
    module = sys.modules[Trainer.__module__]
    original = module.save_checkpoint

    def save_checkpoint(state, *args, **kwargs):
        return save_checkpoint_whole(put_loss_state(dict(state), model), *args, **kwargs)

    module.save_checkpoint = save_checkpoint
    try:
        yield
    finally:
        module.save_checkpoint = original


class WholeCheckpointTrainer(Trainer):
    """YOLOX's ``Trainer`` (the GPU route: ``exp.get_trainer``), its checkpoints written whole and
    holding the loss kit's state beside the weights, which ``--resume`` restores; the loss kit given
    the training progress before each iteration; a Ctrl-C or SIGTERM stops it with one line (from
    each machine's first process), after a checkpoint write in progress. Nothing else differs."""

    def __init__(self, exp, args):
        super().__init__(exp, args)
        if threading.current_thread() is threading.main_thread():  # where Python runs signal handlers
            interrupt.watch_run(self.file_name)
            interrupt.install(speaks=getattr(self, "local_rank", getattr(self, "rank", 0)) == 0)

    def save_ckpt(self, *args, **kwargs):
        # the state saved is the trained model's, not the EMA copy's (see loss_state)
        with whole_checkpoints(self.model):
            super().save_ckpt(*args, **kwargs)

    def before_iter(self):
        super().before_iter()
        kit = loss_kit_of(self.model)
        if kit is not None:
            kit.set_progress(training_progress(self.epoch, self.iter, self.max_epoch, self.max_iter))

    def resume_train(self, model):
        model = super().resume_train(model)
        resume_loss_state(self, model)
        return model
