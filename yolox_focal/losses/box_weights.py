"""The box options that reweight or mix a box loss, for any IoU-based loss of the kit:

- **Wise-IoU focusing** (Tong et al. 2023, arXiv 2301.10051; ``box_wise_focusing``): the loss times
  a weight of each box's outlier degree ``beta = (1 - IoU)* / mean(1 - IoU)``, the mean a running
  mean over batches (kept as the kit keeps state: checkpointed, equal on every process). ``v3``:
  the non-monotonic ``r = beta / (delta alpha^(beta - delta))``; ``v2``: the monotonic
  ``beta ** 0.5``. "Wise-CIoU" is ``box_loss ciou box_wise_focusing v3``. ``wiou`` with ``v3`` is
  ``wiou_v3``, bit for bit (same weight, same running mean, same defaults: the paper's alpha 1.9
  and delta 3 and its authors' early momentum; their code has used alpha 1.7, delta 2.7 and
  momentum 0.01 since commit 9396f48, 2023-12-24).
- **Focal-EIoU's weighting** (Zhang et al., Neurocomputing 2022; ``box_focal_gamma``): the loss
  times ``IoU* ** gamma`` (paper: gamma 0.5 on EIoU). The IoU is out of the graph, as in the paper,
  which presents the weight as focusing on high-quality anchors: a pair without overlap has weight 0
  and gets no gradient at all, by design.
- **The IoU + Gaussian mix** (the genre's ``iou_aux``; ``box_gaussian_mix``):
  ``r L + (1 - r)(1 - S)``, L the chosen box loss, S the NWD similarity (with ``box_nwd_constant``)
  or the GCD similarity of the pair (losses/gaussian.py), r ``box_gaussian_mix_ratio``.

They compose in one order, so that no combination pulls a prediction away from its target: the
Inner/Focaler modifiers in the loss's own formula first, then the mix, then the weights, which
multiply the whole (``r (L + IoU - IoU')``, never ``r L + IoU - IoU'``). Every weight is out of the
graph and positive or zero, and each part falls as the prediction moves toward its target, so the
sum does too (``tests/test_box_loss_direction.py`` checks every loss with every option). The weights
read the plain IoU, never the modified one, for the reason ``WIoUv3Loss.with_modified_iou`` gives.

Needs only torch.
"""

import math

import torch

from ._common import EPS, Param
from .box_geometry import PairGeometry, box_inputs
from .gaussian import NWD_CONSTANT, gcd_similarity, nwd_similarity
from .running_state import RunningMean

__all__ = ["WISE_PARAMS", "BOX_WEIGHT_OPTIONS", "wise_v3_weight", "BoxWeighting"]

WISE_PARAMS = {
    "alpha": Param(1.9, 0, low_open=True, doc="base of the focusing: with delta, where the "
                   "gradient gain peaks (paper: 1.9)"),
    "delta": Param(3.0, 0, low_open=True, doc="outlier degree beta whose weight r is 1 (paper: 3)"),
    # the authors' code's early value: 1 - 0.5 ** (1 / 7000), a half-life of 7000 batches
    # (1 - 0.05 ** (1 / (t n)) with t n ~ 30000: the initial mean weighs 5 % after about 30000
    # batches). Since their commit 9396f48 (2023-12-24) they use momentum 0.01, alpha 1.7 and
    # delta 2.7; these defaults stay the paper's and the early code's.
    "momentum": Param(1 - 0.5 ** (1 / 7000), 0, 1, low_open=True,
                      doc="momentum of the running mean of 1 - IoU; 1 - 0.05 ** (1 / batches) forgets "
                          "the initial 1 to 5 % in that many batches (1: each batch's own mean)"),
}
WISE_V2_EXPONENT = 0.5  # the paper's gamma of v2's monotonic focusing

# option -> Param, for declare.OPTIONS: the box branch's settings box_<option>
BOX_WEIGHT_OPTIONS = {
    "wise_focusing": Param("off", choices=("off", "v2", "v3"), doc=(
        "Wise-IoU focusing (Tong et al. 2023) of an IoU-based loss: v3 non-monotonic, v2 monotonic "
        "(beta ** 0.5), of the outlier degree against a running mean; off: none")),
    "wise_alpha": WISE_PARAMS["alpha"].with_default(WISE_PARAMS["alpha"].default),
    "wise_delta": WISE_PARAMS["delta"].with_default(WISE_PARAMS["delta"].default),
    "wise_momentum": WISE_PARAMS["momentum"].with_default(WISE_PARAMS["momentum"].default),
    "focal_gamma": Param(0.0, 0, doc=(
        "Focal-EIoU (Zhang et al. 2022): an IoU-based loss times IoU ** gamma, the IoU out of the graph "
        "(no gradient for pairs without overlap); 0: off (paper: 0.5)")),
    "gaussian_mix": Param("off", choices=("off", "nwd", "gcd"), doc=(
        "r L + (1 - r)(1 - S): the box loss mixed with a Gaussian similarity S, NWD (with box_nwd_constant) "
        "or GCD; off: none")),
    "gaussian_mix_ratio": Param(0.5, 0, 1, low_open=True, high_open=True, doc="r of box_gaussian_mix: the "
                                "box loss's share"),
    "nwd_constant": NWD_CONSTANT,
}


def wise_v3_weight(iou_loss, mean, alpha, delta):
    """r = beta / (delta alpha^(beta - delta)), beta = (1 - IoU) / mean, without gradient."""
    beta = iou_loss.detach() / mean.clamp(min=EPS)
    # beta / (delta alpha^(beta - delta)) as (beta / delta) exp((delta - beta) ln alpha): in place
    log_alpha = math.log(alpha)
    return torch.mul(beta, -log_alpha).add_(delta * log_alpha).exp_().mul_(beta).div_(delta)


class BoxWeighting:
    """The mix and the weights of a box loss's options (see the module docstring), built by
    ``KitLoss`` only where one of them is on. Keeps the Wise focusing's running mean."""

    def __init__(self, options):
        self.wise = options["wise_focusing"]
        self.alpha, self.delta = options["wise_alpha"], options["wise_delta"]
        self.gamma = options["focal_gamma"]
        self.mix, self.ratio = options["gaussian_mix"], options["gaussian_mix_ratio"]
        self.nwd_constant = options["nwd_constant"]
        self.running = RunningMean(1.0, options["wise_momentum"]) if self.wise != "off" else None

    @staticmethod
    def is_on(options):
        return (options.get("wise_focusing", "off") != "off" or options.get("focal_gamma", 0.0) != 0
                or options.get("gaussian_mix", "off") != "off")

    def apply(self, loss, pred, target, iou, training):
        """``loss`` (per box, the modifiers' form if on) mixed, then weighted. ``iou``: the pairs'
        plain IoU where the caller has it, else None."""
        flat_pred, flat_target, shape = box_inputs("box option", pred, target, "none")
        if self.mix != "off":
            diff = flat_pred - flat_target
            similarity = (nwd_similarity(diff, self.nwd_constant) if self.mix == "nwd" else
                          gcd_similarity(diff, flat_pred[:, 2:], flat_target[:, 2:]))
            loss = self.ratio * loss + (1 - self.ratio) * (1 - similarity.reshape(shape))
        if self.wise == "off" and self.gamma == 0:
            return loss
        with torch.no_grad():
            iou = PairGeometry(flat_pred, flat_target).iou if iou is None else iou.detach().reshape(-1)
            iou = iou.to(flat_pred.dtype)
            weight = torch.ones_like(iou)
            if self.wise != "off":
                iou_loss = 1 - iou
                mean = self.running.update(iou_loss.sum(), iou_loss.new_full((), iou_loss.numel()), training)
                weight = (wise_v3_weight(iou_loss, mean, self.alpha, self.delta) if self.wise == "v3" else
                          (iou_loss / mean.clamp(min=EPS)).pow(WISE_V2_EXPONENT))
            if self.gamma:
                weight = weight * iou.clamp(min=0).pow(self.gamma)
        return loss * weight.reshape(shape)

    def state(self):
        if self.running is None:
            return {}
        return {f"wise_{key}": value for key, value in self.running.state().items()}

    def load(self, label, state):
        if self.running is None:
            if state:
                raise ValueError(f"{label} keeps no state, but was given {sorted(state)}")
            return
        self.running.load(f"{label}'s Wise focusing", {k.removeprefix("wise_"): v for k, v in state.items()})
