"""Exp settings that make no sense for the data at hand: adjusted with a one-line notice, or
refused with a one-line reason, never silently kept.

Small data sets meet settings made for COCO: a ``print_interval`` of 10 iterations never prints on
an epoch of 2, four data-loader workers fight over two cores, and with ``max_epoch`` not above
``no_aug_epochs`` YOLOX turns mosaic off from the first epoch and holds the learning rate at its
minimum.
"""

import math
import os

from .errors import FixableError

__all__ = ["fit_training_settings", "fit_loader_workers", "usable_cores"]


def usable_cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def fit_loader_workers(exp, processes=1):
    """More data-loader workers than cores only adds processes that wait: the ``processes`` of a
    run on this machine (``-d``) each start ``data_num_workers``, so each gets its share of the
    cores, at least one."""
    cores = usable_cores()
    share = max(cores // processes, 1)
    if exp.data_num_workers > share:
        machine = f"this machine's {cores} cores" if processes == 1 else (
            f"{processes} processes' share of this machine's {cores} cores")
        notice = f"data_num_workers {exp.data_num_workers} is more than {machine}: using {share}"
        exp.data_num_workers = share
        return [notice]
    return []


def fit_training_settings(exp, batch_size, train_images, processes=1):
    """Check and adjust a training run's schedule for ``train_images`` images at ``batch_size``
    (``processes`` of it on this machine: see :func:`fit_loader_workers`).
    Returns the notices (one line each); raises :class:`FixableError` for a schedule that cannot work."""
    if exp.max_epoch < 1:
        raise FixableError(f"max_epoch {exp.max_epoch} trains nothing; set max_epoch to 1 or more")
    if exp.max_epoch <= exp.no_aug_epochs:
        raise FixableError(
            f"max_epoch {exp.max_epoch} is not above no_aug_epochs {exp.no_aug_epochs}: mosaic would be off from the "
            f"first epoch and the learning rate at its minimum throughout; raise max_epoch or set no_aug_epochs "
            f"below it (e.g. no_aug_epochs {max(exp.max_epoch // 6, 0)})")
    notices = fit_loader_workers(exp, processes)
    iterations = math.ceil(train_images / batch_size)  # YOLOX's batch sampler keeps the last, short batch
    if exp.print_interval > iterations:
        notices.append(f"print_interval {exp.print_interval} is longer than an epoch ({iterations} iterations of "
                       f"batch {batch_size} over {train_images} images), so no progress line would appear: "
                       f"using {iterations}")
        exp.print_interval = iterations
    if exp.eval_interval > exp.max_epoch:
        # kept: skipping evaluation can be deliberate, but it should not go unnoticed
        notices.append(f"eval_interval {exp.eval_interval} is longer than the run ({exp.max_epoch} epochs): no "
                       f"evaluation and no best_ckpt.pth; set eval_interval {exp.max_epoch} or less to evaluate")
    return notices
