"""The trainer of both routes' checkpoints: YOLOX's own ``Trainer.save_ckpt``, each file written
whole (``checkpoint_files``) and holding the loss kit's state beside the weights (``loss_state``).

YOLOX's trainer module calls the ``save_checkpoint`` name it imported; :func:`whole_checkpoints`
swaps that one name, for one ``save_ckpt`` call, for a writer that does both. What the trainer
saves, and when, stays YOLOX's. ``WholeCheckpointTrainer`` is YOLOX's trainer with that change, the
loss state restored on ``--resume``, the training progress handed to the loss kit before each
iteration (:func:`training_progress`, for a loss whose schedule follows training, such as ``uiou``),
the run's ``metrics.jsonl`` (``epoch_metrics``: each epoch's losses and AP, overall and per class)
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
from .coco_scoring import with_per_class
from .epoch_metrics import EpochMetrics
from .loss_state import loss_kit_of, put_loss_state, resume_loss_state

__all__ = ["whole_checkpoints", "WholeCheckpointTrainer", "training_progress", "per_class_of"]


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
    the training progress before each iteration; each epoch a line of ``metrics.jsonl`` (rank 0); a
    Ctrl-C or SIGTERM stops it with one line (from each machine's first process), after a checkpoint
    write in progress. Nothing else differs."""

    def __init__(self, exp, args):
        super().__init__(exp, args)
        self.epoch_metrics = EpochMetrics(self.file_name)
        self.last_evaluation = None  # this epoch's (ap50_95, ap50, summary), None before an evaluation
        self._latest_held = None  # within after_epoch: the latest checkpoint's save_ckpt calls, held back
        if threading.current_thread() is threading.main_thread():  # where Python runs signal handlers
            interrupt.watch_run(self.file_name)
            interrupt.install(speaks=getattr(self, "local_rank", getattr(self, "rank", 0)) == 0)

    def save_ckpt(self, *args, **kwargs):
        if self._latest_held is not None and (args[:1] or [kwargs.get("ckpt_name")])[0] == "latest":
            self._latest_held.append((args, kwargs))  # written at the end of the epoch (after_epoch)
            return
        # the state saved is the trained model's, not the EMA copy's (see loss_state)
        with whole_checkpoints(self.model):
            super().save_ckpt(*args, **kwargs)

    def before_train(self):
        super().before_train()
        self.evaluator = with_per_class(self.evaluator)  # per-class AP for metrics.jsonl, as on the CPU
        if self.rank == 0:
            self.epoch_metrics.start(self.args.resume, self.start_epoch)

    def before_iter(self):
        super().before_iter()
        kit = loss_kit_of(self.model)
        if kit is not None:
            kit.set_progress(training_progress(self.epoch, self.iter, self.max_epoch, self.max_iter))

    def after_iter(self):
        # the losses before YOLOX's log line clears its meters
        self.epoch_metrics.add_iteration(self.meter.get_filtered_meter("loss"))
        super().after_iter()

    def evaluate_and_save_model(self):
        # YOLOX's, with what its exp.eval returns kept for metrics.jsonl: (ap50_95, ap50, summary),
        # from YOLOX main and pixeltable-yolox with the detections after it (return_outputs)
        evaluate = self.exp.eval

        def kept(*args, **kwargs):
            results = evaluate(*args, **kwargs)
            self.last_evaluation = results[0] if isinstance(results[0], tuple) else results
            return results

        own = vars(self.exp).get("eval")  # None: the exp class's method
        self.exp.eval = kept
        try:
            super().evaluate_and_save_model()
        finally:
            if own is None:
                del self.exp.eval
            else:
                self.exp.eval = own

    def after_epoch(self):
        """YOLOX's, its ``latest`` checkpoint written last: after the evaluation and the epoch's
        ``metrics.jsonl`` record (YOLOX writes it first). A run stopped or failing in between resumes
        from the epoch before and trains this one again, so each epoch a checkpoint holds has its
        record, and a run stopped in its last evaluation does not end, resumed, without its final AP.
        After an evaluation, the checkpoint holds the norm statistics averaged over the processes,
        as the training goes on with them (YOLOX's holds rank 0's own)."""
        self.last_evaluation = None
        self._latest_held = []
        try:
            super().after_epoch()
        finally:
            held, self._latest_held = self._latest_held, None
        self.record_epoch()
        for args, kwargs in held:
            self.save_ckpt(*args, **kwargs)

    def record_epoch(self):
        """The epoch's line of ``metrics.jsonl`` (written by rank 0; None elsewhere)."""
        return self.epoch_metrics.end_epoch(self.epoch + 1, self.last_evaluation, per_class_of(self.evaluator),
                                            write=self.rank == 0)

    def resume_train(self, model):
        model = super().resume_train(model)
        resume_loss_state(self, model)
        return model


def per_class_of(evaluator):
    """The per-class AP of an evaluator's last evaluation, ``{class name: (ap50_95, ap50) or None}``:
    the COCO evaluators' own (``cpu_evaluators``, ``coco_scoring``), or a VOC data set's
    (``voc.NamedVOCDetection``); None where neither kept any."""
    found = getattr(evaluator, "last_per_class", None)
    if found is None:
        dataset = getattr(getattr(evaluator, "dataloader", None), "dataset", None)
        found = getattr(dataset, "last_per_class", None)
    return dict(found) if found else None
