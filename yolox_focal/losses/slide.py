"""Slide loss (Yu et al. 2022, "YOLO-FaceV2: A Scale and Occlusion Aware Face Detector"): BCE
weighted by where a sample's IoU lies against the mean IoU mu,

    w(x) = 1             x <= mu - 0.1
           e^(1 - mu)    mu - 0.1 < x < mu
           e^(1 - x)     x >= mu

which raises the weight of the samples just below the mean (the hard boundary between positives
and negatives) and of the positives the more their IoU is below 1.

In YOLOX, x and mu are read off the classification targets: a foreground anchor's target is
one-hot times the IoU of its match (``pred_ious_this_matching``), so x is the target value itself
and mu is the mean of the nonzero class targets of the batch, the mean IoU of the positives.
Objectness targets are hard 0/1 there, where the weight is 1 everywhere: so slide serves the
classification branch only. Label smoothing makes every target nonzero: use slide without it.

Where the paper, its authors' code and the copies differ:

- the paper: the weights above, mu "the mean IoU of all the positive samples", nothing more;
- the authors' code (YOLO-FaceV2, utils/loss.py): the paper's weights since commit cf42012 ("fix
  bug", 2022-10-18; also on tag v2.1), which replaced e^mu in the middle band by e^(1 - mu); the
  repository's master branch never took that commit and still weighs the middle band e^mu. In both,
  mu is the mean of the predicted boxes' IoU (their CIoU) with their targets, raised to at least 0.2.
  Without that floor a batch whose mean IoU is under 0.1 would put every negative (x = 0) in the
  middle band and weigh it e^(1 - mu) ~ e;
- the YOLOv8 copies: mu the mean CIoU of the predicted boxes, or a running mean of it, or a fixed
  0.5 where the caller passes none.

This follows the authors' fixed code (cf42012): the paper's weights, mu floored at 0.2 (a constant,
``MEAN_FLOOR``). mu is read off YOLOX's class targets: the IoU of each positive prediction with its
target, the authors' quantity in YOLOX's IoU rather than CIoU. ``slide_ema`` uses a running mean
of mu instead of each batch's.

Needs only torch.
"""

import torch

from ._common import Param, bce_with_logits, compute_dtype, elementwise_loss
from .declare import KitLoss, register
from .running_mean import RunningMeanLoss

__all__ = ["slide_loss", "slide_weight", "SlideLoss", "SlideEMALoss", "positive_mean", "MEAN_FLOOR"]

MEAN_FLOOR = 0.2  # the authors' code's lower bound of mu
BAND = 0.1  # width of the band below mu weighed e^(1 - mu)


def positive_mean(target):
    """(sum, count) of the nonzero targets, as 0-dim tensors (no host synchronisation); float32 for
    half-precision targets, whose sum of thousands of IoUs and count above 2048 float16 rounds."""
    target = target.detach().to(compute_dtype(target))
    return target.sum(), (target > 0).sum().to(target.dtype)


def slide_weight(t, mean):
    """w(t) for targets ``t`` and a mean IoU ``mean`` (a 0-dim tensor), floored at MEAN_FLOOR."""
    mean = mean.to(t.dtype).clamp(min=MEAN_FLOOR)
    middle = torch.where(t > mean - BAND, torch.exp(1 - mean), torch.ones_like(t))
    return torch.where(t >= mean, torch.exp(1 - t), middle)


def _slide(x, t, mean, need_grad):
    if mean is None:
        total, count = positive_mean(t)
        mean = total / count.clamp(min=1)
    weight = slide_weight(t, mean)
    loss = bce_with_logits(x, t).mul_(weight)
    if not need_grad:
        return loss, None
    return loss, torch.sigmoid(x).sub_(t).mul_(weight)  # the weight is a constant of the target


def slide_loss(pred, target, mean_iou=None, reduction="none"):
    """Slide loss of logits ``pred`` against classification targets in [0, 1] carrying the IoU of
    their match (see the module docstring).

    ``mean_iou``: mu, a number or 0-dim tensor; None (the default): the mean of the nonzero targets
    of this call. Either is floored at 0.2. Inputs, dtypes and reduction as
    :func:`yolox_focal.losses.focal_loss`; the weight depends on the target only, a constant.
    """
    return _named_slide_loss("slide", pred, target, mean_iou, reduction)


def _named_slide_loss(name, pred, target, mean_iou, reduction):
    """:func:`slide_loss` for the loss registered as ``name``, which starts its messages."""
    if mean_iou is not None:
        mean_iou = torch.as_tensor(mean_iou, dtype=torch.float32, device=pred.device)
    return elementwise_loss(f"{name} loss", _slide, pred, target, (mean_iou,), reduction)


@register
class SlideLoss(KitLoss):
    """Slide loss (Yu et al. 2022) with each batch's mean IoU of the positives; see :func:`slide_loss`."""

    name = "slide"
    branches = ("cls",)
    params = {}
    function = staticmethod(slide_loss)


@register
class SlideEMALoss(RunningMeanLoss):
    """Slide loss with a running mean of mu over the batches (and the processes): mu moves less from
    batch to batch than each batch's own mean, which a few matches can swing. The first batch sets
    the mean, which then averages the batches until there are 1 / momentum of them, and runs with
    that momentum from there (see running_mean.py). Before any training batch, the batch's own
    mean is used."""

    name = "slide_ema"
    branches = ("cls",)
    params = {"momentum": Param(0.01, 0, 1, low_open=True,
                                doc="momentum of the running mean IoU of the positives (0.01: about "
                                    "the last 100 batches)")}
    initial = 0.0
    warm_start = True

    def base_loss(self, pred, target, **context):
        total, count = positive_mean(target)
        batch_mean = total / count.clamp(min=1)
        mean = self.update_mean(total, count)
        mean = torch.where(self.updates.to(mean.device) > 0, mean, batch_mean.to(mean.dtype))
        return _named_slide_loss(self.name, pred, target, mean, "none")
