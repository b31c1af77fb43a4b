"""MPDIoU (Ma & Xu 2023, "MPDIoU: A Loss for Efficient and Accurate Bounding Box Regression"):

    1 - IoU + d1^2 / (w^2 + h^2) + d2^2 / (w^2 + h^2)

d1, d2 the distances between the top-left corners and between the bottom-right corners of the two
boxes, w and h the width and height of the training input image. YOLOX's multiscale training
changes that size from batch to batch, so the loss reads each batch's (``needs = ("input_size",)``:
the kit hands it over from the images the head is given).

Needs only torch.
"""

import math
from numbers import Real


from .box_geometry import geometry_loss
from .declare import KitLoss, penalty_form, register

__all__ = ["mpdiou_loss", "MPDIoULoss"]


def _check_input_size(input_size):
    if input_size is None:
        raise ValueError("mpdiou needs the training input size (height, width), got None: this head "
                         "was not given the batch's images; choose another box loss")
    if (not isinstance(input_size, (tuple, list)) or len(input_size) != 2
            or not all(isinstance(s, Real) and math.isfinite(s) and s > 0 for s in input_size)):
        raise ValueError(f"mpdiou input_size must be (height, width), two numbers > 0, got {input_size!r}")


def mpdiou_loss(pred, target, input_size, reduction="none"):
    """MPDIoU loss of ``(..., 4)`` ``(cx, cy, w, h)`` boxes, one per box, for a training input of
    ``input_size = (height, width)`` pixels (the boxes' units)."""
    _check_input_size(input_size)
    height, width = input_size
    return geometry_loss("mpdiou loss", _mpdiou, pred, target, reduction, float(width**2 + height**2))


def _mpdiou(g, size_sq):
    corners = (g.p_lo - g.t_lo).square_().sum(0) + (g.p_hi - g.t_hi).square_().sum(0)
    return 1 - g.iou + corners / size_sq


@register
class MPDIoULoss(KitLoss):
    """MPDIoU (Ma & Xu 2023), normalised by the batch's training input size; see :func:`mpdiou_loss`."""

    name = "mpdiou"
    branches = ("box",)
    params = {}
    function = staticmethod(mpdiou_loss)
    needs = ("input_size",)
    with_modified_iou = penalty_form
