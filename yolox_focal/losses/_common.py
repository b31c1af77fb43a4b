"""What every loss of the kit shares: declared parameter ranges, input checks, float32 compute for
half-precision input, reduction, a fused autograd function, label smoothing, and the guard of the
box losses' divisions.

Needs only torch: the patch series (tools/make_patches.py) copies the losses into a YOLOX tree.
"""

import math
from numbers import Real

import torch

REDUCTIONS = ("none", "mean", "sum")


class Param:
    """One parameter of a loss or option, declared once: its default, a one-line doc and either the
    range of numbers it takes or its choices. The losses check their arguments with it, and
    yolox_focal.losses.settings derives the settings' ranges, docs and parsing from it.

    A range is ``low`` to ``high``, each end closed unless ``low_open``/``high_open``; ``none`` is
    what None means for the parameter (e.g. "no balancing"), or None if None is not allowed.
    ``choices`` is the tuple of allowed values instead.
    """

    def __init__(self, default, low=None, high=math.inf, *, low_open=False, high_open=False, none=None,
                 choices=None, doc=""):
        if (low is None) == (choices is None):
            raise TypeError("a Param takes a range (low, high) or choices, not both or neither")
        self.default, self.low, self.high, self.choices, self.doc = default, low, high, choices, doc
        self.low_open, self.high_open, self.none = low_open, high_open, none

    def with_default(self, default):
        """The same parameter with another default (one range shared by two losses)."""
        copy = object.__new__(Param)
        copy.__dict__.update(self.__dict__, default=default)
        return copy

    def allows(self, value):
        if self.choices is not None:
            return value in self.choices
        if value is None:
            return self.none is not None
        if isinstance(value, bool) or not isinstance(value, Real) or math.isnan(value):
            return False
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        return above and below and math.isfinite(value)

    def describe(self):
        """The allowed values, in words: "in [0, 1] or None (no balancing)", "one of a, b"."""
        if self.choices is not None:
            return "one of " + ", ".join(map(str, self.choices))
        if self.high == math.inf:
            text = f"a finite number {'>' if self.low_open else '>='} {self.low:g}"
        else:
            text = (f"in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}"
                    f"{')' if self.high_open else ']'}")
        return text + (f" or None ({self.none})" if self.none is not None else "")

    def check(self, label, value):
        """Raise a one-line ``ValueError`` naming ``label``, the allowed values and ``value``."""
        if not self.allows(value):
            raise ValueError(f"{label} must be {self.describe()}, got {value!r}")

    def parse(self, label, text):
        """A command-line string as this parameter's value (other values are taken as they are)."""
        if not isinstance(text, str):
            return text
        word = text.strip().lower()
        if self.choices is not None:
            return next((c for c in self.choices if str(c).lower() == word), word)
        if self.none is not None and word == "none":
            return None
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"{label} takes a number, got {text!r}") from None


def check_params(loss_name, params, values):
    """Check each argument of a loss against its declared :class:`Param`; ``loss_name`` (its
    registry name) starts each message."""
    for key, param in params.items():
        param.check(f"{loss_name} {key}", values[key])


def check_reduction(reduction):
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")


def check_logits_and_targets(loss_name, pred, target):
    """Same shapes, floating-point logits, targets in [0, 1] (hard or soft)."""
    if pred.shape != target.shape:
        raise ValueError(
            f"{loss_name} needs pred and target of the same shape, got {tuple(pred.shape)} "
            f"and {tuple(target.shape)}"
        )
    if not pred.is_floating_point():
        raise ValueError(f"{loss_name} needs floating-point logits, got dtype {pred.dtype}")
    if target.numel():
        low, high = torch.aminmax(target.detach())
        if not (low >= 0 and high <= 1):  # also catches NaN
            raise ValueError(
                f"{loss_name} targets must lie in [0, 1], got values from {low.item():g} "
                f"to {high.item():g}"
            )


def compute_dtype(pred):
    """float16/bfloat16 logits are computed in float32, as BCEWithLogitsLoss is under autocast."""
    return torch.float32 if pred.dtype in (torch.float16, torch.bfloat16) else pred.dtype


def reduce(loss, reduction):
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def power(base, exponent):
    """``base ** exponent`` for base in [0, 1] as a new tensor.

    Whole and half exponents (1, 1.5, 2, ...) use multiplies and a square root, several times
    faster than the general ``pow``.
    """
    doubled = 2 * exponent
    if doubled != int(doubled) or doubled > 8:
        return torch.log(base).mul_(exponent).exp_()  # log(0) = -inf gives 0 ** exponent = 0
    if doubled % 2:
        result, multiplies = base.sqrt(), int(exponent)
    elif exponent == 0:
        return torch.ones_like(base)
    else:
        result, multiplies = base.clone(), int(exponent) - 1
    for _ in range(multiplies):
        result.mul_(base)
    return result


def bce_with_logits(x, t):
    """Element-wise BCE-with-logits, ``log(1 + e^x) - x t``, stable for any x, as a new tensor.

    Written ``max(x, 0) - x t + log(1 + e^-|x|)`` with the last term added last: where the loss is
    tiny (x = 30, t = 1) it is that term, kept, not rounded away against x (``softplus`` returns x
    itself above 20, so ``softplus(x) - x t`` is 0 there). It is also the faster form on the CPU.
    """
    return x.clamp(min=0).addcmul_(x, t, value=-1).add_(torch.abs(x).neg_().exp_().log1p_())


class FusedLoss(torch.autograd.Function):
    """Runs ``loss_and_grad(x, t, *params, need_grad) -> (loss, dloss/dx)`` once in the forward
    pass and keeps only the gradient for the backward pass.

    On the CPU, allocating tensors costs more than the arithmetic on them: computing the loss with
    fused in-place ops and its derivative in closed form beats autograd's chain of small ops, and
    saves one tensor instead of every intermediate.
    """

    @staticmethod
    def forward(ctx, loss_and_grad, x, t, *params):
        # YOLOX hands the objectness logits over as a strided view of the head's outputs (every
        # 85th element): element-wise kernels on it run about ten times slower than on one copy.
        x, t = x.contiguous(), t.contiguous()
        loss, grad = loss_and_grad(x, t, *params, need_grad=ctx.needs_input_grad[1])
        ctx.num_params = len(params)
        ctx.save_for_backward(grad)
        return loss

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_loss):
        (grad,) = ctx.saved_tensors
        return (None, grad_loss * grad, None) + (None,) * ctx.num_params


def elementwise_loss(loss_name, loss_and_grad, pred, target, params, reduction):
    """Check the inputs, then run a fused element-wise loss of logits against targets in [0, 1].

    ``target`` is a constant: no gradient flows into it.
    """
    check_reduction(reduction)
    check_logits_and_targets(loss_name, pred, target)
    x = pred.to(compute_dtype(pred))
    loss = FusedLoss.apply(loss_and_grad, x, target.detach().to(x.dtype), *params)
    return reduce(loss, reduction)


SMOOTHING = Param(0.0, 0, 1, high_open=True, doc="label smoothing: targets t become t (1 - eps) + eps / 2")


def smooth_targets(target, epsilon):
    """Label smoothing in the spirit of YOLOv5's ``smooth_BCE``, for soft targets.

    YOLOv5 trains classes against ``1 - epsilon / 2`` instead of 1 and ``epsilon / 2`` instead of 0.
    YOLOX's class targets are soft (one-hot times the IoU of the matched prediction), so each target
    t is mapped linearly, ``t (1 - epsilon) + epsilon / 2``: 1 and 0 go where YOLOv5 puts them and a
    target of IoU 0.6 goes to 0.6 - 0.1 epsilon. ``epsilon = 0`` returns ``target`` itself.
    """
    SMOOTHING.check("label smoothing", epsilon)
    if epsilon == 0:
        return target
    return target * (1 - epsilon) + epsilon / 2


# torchvision's guard: keeps a box loss's division by an area or a squared length finite (and its
# gradient, for zero-size boxes) at the cost of ~EPS / area in the value.
EPS = 1e-7
