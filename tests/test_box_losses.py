"""The box losses past the IoU family of tests/test_iou_losses.py (alpha_iou, wiou, wiou_v3, mpdiou,
shape_iou, nwd, piou, piou_v2, gcd, uiou) against float64 references written from their papers (tests/references.py): values, gradients, gradcheck, the
degenerate pairs the kit tests for every box loss, errors, and their declarations."""

import importlib
import math

import pytest
import torch

from references import (DEGENERATE_PAIRS, large_pairs, random_pairs, reference_alpha_iou, reference_gcd,
                        reference_mpdiou, reference_nwd, reference_piou, reference_piou_v2, reference_shape_iou,
                        reference_uiou, reference_uiou_ratio, reference_wiou, reference_wiou_v3)
from yolox_focal.losses.alpha_iou import AlphaIoULoss, alpha_iou_loss
from yolox_focal.losses.declare import LOSSES, KitLoss
from yolox_focal.losses.kit import LossKit
from yolox_focal.losses.gcd import GCDLoss, gcd_loss
from yolox_focal.losses.mpdiou import MPDIoULoss, mpdiou_loss
from yolox_focal.losses.nwd import NWDLoss, nwd_loss
from yolox_focal.losses.piou import PIoULoss, PIoUv2Loss, piou_loss, piou_v2_loss
from yolox_focal.losses.shape_iou import ShapeIoULoss, shape_iou_loss
from yolox_focal.losses.iou import ciou_loss
from yolox_focal.losses.uiou import UIoULoss, uiou_loss, uiou_ratio
from yolox_focal.losses.wise_iou import WIoULoss, WIoUv3Loss, wiou_loss, wiou_v3_loss

pytestmark = pytest.mark.any_yolox

SIZE = (480, 640)  # (height, width) of a training input, for mpdiou

# name -> (function(pred, target, **params), reference(pred, target, **params), parameter sets)
BOX = {
    "alpha_iou": (alpha_iou_loss, reference_alpha_iou, [dict(alpha=3.0), dict(alpha=2.0), dict(alpha=0.5),
                                                         dict(alpha=1.0)]),
    "wiou": (wiou_loss, reference_wiou, [{}]),
    "wiou_v3": (wiou_v3_loss, reference_wiou_v3, [dict(mean=0.4, alpha=1.9, delta=3.0),
                                                  dict(mean=0.7, alpha=2.5, delta=2.0)]),
    "mpdiou": (mpdiou_loss, reference_mpdiou, [dict(input_size=SIZE), dict(input_size=(416, 416))]),
    "shape_iou": (shape_iou_loss, reference_shape_iou, [dict(scale=0.0), dict(scale=0.5), dict(scale=2.0)]),
    "nwd": (nwd_loss, reference_nwd, [dict(constant=12.8), dict(constant=50.0)]),
    "piou": (piou_loss, lambda p, t: reference_piou(p, t)[0], [{}]),
    "piou_v2": (piou_v2_loss, reference_piou_v2, [dict(lam=1.3), dict(lam=0.7)]),
    "gcd": (gcd_loss, reference_gcd, [{}]),
    # the ratio from 2 (enlarged) to 0.5 (shrunk) by each schedule; other ends and weights
    "uiou": (uiou_loss, reference_uiou, [dict(progress=0.0), dict(progress=0.5), dict(progress=1.0),
                                         dict(progress=0.3, schedule="cosine"),
                                         dict(progress=0.6, schedule="fraction", start=1.5, end=0.8, gamma=1.0)]),
}
NOT_IOU_BASED = ("nwd", "gcd")  # Gaussian distances: no IoU in their formulas, so no IoU modifiers
CASES = [(name, params) for name, (_, _, sets) in BOX.items() for params in sets]
IDS = [f"{name}-{'-'.join(f'{k}={v}' for k, v in params.items())}" for name, params in CASES]
# every case on overlapping and on disjoint pairs, but alpha < 1 on disjoint ones: the plain formula's
# derivative of IoU ** alpha is infinite at IoU 0 (NaN in the reference; the kit's is 0)
PAIRED = [(name, params, disjoint) for name, params in CASES for disjoint in (False, True)
          if not (disjoint and name == "alpha_iou" and params["alpha"] < 1)]
PAIRED_IDS = [f"{i}-{'disjoint' if d else 'overlapping'}" for (n, p, d), i in
              zip(PAIRED, [IDS[CASES.index((n, p))] for n, p, _ in PAIRED])]


def _grad(fn, pred, target):
    p = pred.detach().clone().requires_grad_()
    loss = fn(p, target)
    (g,) = torch.autograd.grad(loss.sum(), p)
    return loss.detach(), g


@pytest.mark.parametrize("name,params,disjoint", PAIRED, ids=PAIRED_IDS)
def test_matches_float64_reference(name, params, disjoint):
    fn, ref, _ = BOX[name]
    pred, target = random_pairs(2000, 4, torch.float64, disjoint)
    ours, ours_grad = _grad(lambda p, t: fn(p, t, **params), pred, target)
    expected, expected_grad = _grad(lambda p, t: ref(p, t, **params), pred, target)
    assert ours.shape == (2000,) and ours.dtype == torch.float64
    torch.testing.assert_close(ours, expected, atol=1e-7, rtol=1e-7)
    torch.testing.assert_close(ours_grad, expected_grad, atol=1e-8, rtol=1e-6)
    # the comparison covers a gradient, not zeros, except alpha_iou's on disjoint boxes: IoU 0, flat
    assert bool(expected_grad.abs().max() > 1e-4) == (not disjoint or name != "alpha_iou")


@pytest.mark.parametrize("name,params", CASES, ids=IDS)
def test_float32_matches_float64_reference(name, params):
    fn, ref, _ = BOX[name]
    pred, target = random_pairs(2000, 5, torch.float32)
    ours, ours_grad = _grad(lambda p, t: fn(p, t, **params), pred, target)
    expected, expected_grad = _grad(lambda p, t: ref(p, t, **params), pred.double(), target.double())
    assert ours.dtype == torch.float32
    # uiou at the end of training halves every box about its centre: a box 1 px wide at 550 px has
    # half float32's usual share of its width in rounding, twice the error of the boxes as they are
    slack = 2 if name == "uiou" and params["progress"] > 0.5 else 1
    torch.testing.assert_close(ours.double(), expected, atol=2e-5 * slack, rtol=1e-4 * slack)
    torch.testing.assert_close(ours_grad.double(), expected_grad, atol=1e-6 * slack, rtol=1e-3 * slack)


# Wise-IoU takes the enclosing box (v1) and the weight r (v3) out of the graph, by the paper's design:
# numerical differentiation sees them move, so v1 is checked on nested pairs, where the enclosing box
# is the target's and does not move, and v3 by its reference above (r times v1's gradient). PIoU v2's
# weight u is out of the graph likewise: it is checked by its reference, and v1 (u's absence) here.
# UIoU's weight too: below, with the weight held at its value where the gradient is taken.
GRADCHECK = [(n, p, d) for n, p, d in PAIRED if n not in ("wiou", "wiou_v3", "piou_v2", "uiou")]


@pytest.mark.parametrize("name,params,disjoint", GRADCHECK,
                         ids=[PAIRED_IDS[PAIRED.index(c)] for c in GRADCHECK])
def test_gradcheck(name, params, disjoint):
    fn = BOX[name][0]
    pred, target = random_pairs(30, 8, torch.float64, disjoint)
    pred.requires_grad_()
    assert torch.autograd.gradcheck(lambda p: fn(p, target, **params), (pred,))


def test_wiou_gradcheck_on_nested_pairs():
    pred, target = random_pairs(30, 8, torch.float64)
    target = torch.cat([pred[:, :2], pred[:, 2:] * 1.5 + 1], 1)  # a target around each prediction
    target[:, :2] += (torch.rand(30, 2, dtype=torch.float64) - 0.5) * 0.2
    pred.requires_grad_()
    assert torch.autograd.gradcheck(lambda p: wiou_loss(p, target), (pred,))


def _uiou_weight(pred, target, progress, start=2.0, end=0.5, schedule="linear", gamma=0.5):
    """UIoU's weight 1 - IoU_r ** gamma, computed apart from the loss, without a graph."""
    from references import geometry
    r = reference_uiou_ratio(progress, start, end, schedule)
    scale = torch.tensor([1.0, 1.0, r, r], dtype=pred.dtype)
    return 1 - geometry(pred.detach() * scale, target * scale)[0] ** gamma


@pytest.mark.parametrize("params", BOX["uiou"][2], ids=lambda p: "-".join(f"{k}={v}" for k, v in p.items()))
@pytest.mark.parametrize("disjoint", [False, True])
def test_uiou_gradcheck_with_its_weight_held(params, disjoint):
    # L(p) w(p0) / w(p), the weight w computed apart (no graph), is w(p0) CIoU(scaled pair) for every p:
    # numerically differentiated it is the CIoU term's gradient times w(p0); the kit's gradient times
    # w(p0) / w(p0) is that only if the kit's weight takes no gradient. Targets of the predictions'
    # aspect ratios: CIoU's own constant alpha (test_iou_losses.py) then multiplies v = 0, flat there.
    pred, target = random_pairs(30, 8, torch.float64, disjoint)
    target[:, 2:] = pred[:, 2:] * torch.linspace(0.6, 1.6, 30, dtype=torch.float64)[:, None]
    weight = _uiou_weight(pred, target, **params)
    assert (weight > 0.01).all()
    pred.requires_grad_()
    assert torch.autograd.gradcheck(
        lambda p: uiou_loss(p, target, **params) * weight / _uiou_weight(p, target, **params), (pred,))


@pytest.mark.parametrize("name,params", CASES, ids=IDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("case", list(DEGENERATE_PAIRS))
def test_degenerate_pairs_finite(name, params, dtype, case):
    p, t = DEGENERATE_PAIRS[case]
    pred = torch.tensor([p], dtype=dtype, requires_grad=True)
    target = torch.tensor([t], dtype=dtype)
    loss = BOX[name][0](pred, target, **params)
    loss.sum().backward()
    assert torch.isfinite(loss).all() and torch.isfinite(pred.grad).all()
    assert (loss >= 0).all()


@pytest.mark.parametrize("name,params", CASES, ids=IDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_identical_boxes_give_zero(name, params, dtype):
    boxes = torch.tensor([DEGENERATE_PAIRS[c][0] for c in ("identical", "huge, identical")], dtype=dtype)
    pred = boxes.clone().requires_grad_()
    loss = BOX[name][0](pred, boxes, **params)
    loss.sum().backward()
    torch.testing.assert_close(loss, torch.zeros(2, dtype=dtype), atol=1e-6, rtol=0)
    assert torch.isfinite(pred.grad).all()


@pytest.mark.parametrize("name,params", [c for c in CASES if c[0] != "nwd"],
                         ids=[i for c, i in zip(CASES, IDS) if c[0] != "nwd"])
@pytest.mark.parametrize("case", ["same centre, other size", "disjoint far apart", "touching", "huge coordinates",
                                  "huge, disjoint", "zero width", "zero height"])
def test_degenerate_pairs_match_references(name, params, case):
    fn, ref, _ = BOX[name]
    p, t = DEGENERATE_PAIRS[case]
    pred, target = torch.tensor([p], dtype=torch.float64), torch.tensor([t], dtype=torch.float64)
    torch.testing.assert_close(fn(pred, target, **params), ref(pred, target, **params), atol=1e-6, rtol=1e-6)


def _yolox_iou_loss():
    """YOLOX's own IoU loss, 1 - IoU ** 2: Megvii's IOUloss or pixeltable-yolox's IouLoss."""
    losses = importlib.import_module("yolox.models.losses")
    return getattr(losses, "IOUloss", None) or getattr(losses, "IouLoss")


@pytest.mark.parametrize("disjoint", [False, True])
def test_alpha_2_is_yoloxs_iou_loss(disjoint):
    pred, target = random_pairs(3000, 1, torch.float64, disjoint)
    pred[:50, 2:] = 0  # zero-size predictions and identical pairs mixed in
    pred[50:100] = target[50:100]
    ours, ours_grad = _grad(lambda p, t: alpha_iou_loss(p, t, alpha=2), pred, target)
    theirs, their_grad = _grad(_yolox_iou_loss()(reduction="none", loss_type="iou"), pred, target)
    # the same formula; the guards differ (1e-7 and YOLOX's 1e-16 in the union): ~1e-7 / area
    torch.testing.assert_close(ours, theirs, atol=1e-8, rtol=1e-7)
    torch.testing.assert_close(ours_grad, their_grad, atol=1e-9, rtol=1e-6)
    assert bool((theirs[100:] == 1).all()) == disjoint


def test_alpha_iou_up_weights_high_iou_boxes():
    pred, target = random_pairs(500, 2, torch.float64)
    iou = 1 - alpha_iou_loss(pred, target, alpha=1)
    good, poor = iou > 0.6, iou < 0.5
    assert good.sum() > 10 and poor.sum() > 10
    _, g1 = _grad(lambda p, t: alpha_iou_loss(p, t, alpha=1), pred, target)
    _, g3 = _grad(lambda p, t: alpha_iou_loss(p, t, alpha=3), pred, target)
    ratio = g3.norm(dim=1) / g1.norm(dim=1)  # 3 IoU ** 2: above 1 for IoU > 0.58, below under it
    assert (ratio[good] > 1.08).all() and (ratio[poor] < 0.75).all()


def test_wiou_detaches_the_enclosing_box_only():
    pred, target = random_pairs(300, 3, torch.float64)
    _, ours = _grad(wiou_loss, pred, target)

    def attached(p, t):  # the same formula with the enclosing box left in the graph
        from references import geometry
        iou, cw, ch, rho2 = geometry(p, t)
        return torch.exp(rho2 / (cw**2 + ch**2)) * (1 - iou)

    _, full = _grad(attached, pred, target)
    assert (ours - full).abs().max() > 1e-4


def test_mpdiou_reads_the_input_size():
    pred, target = random_pairs(100, 4, torch.float64, disjoint=True)
    small, large = mpdiou_loss(pred, target, (320, 320)), mpdiou_loss(pred, target, (640, 640))
    # IoU 0: 1 + corners / (w^2 + h^2), so doubling the size quarters the penalty
    torch.testing.assert_close(large - 1, (small - 1) / 4)


def test_shape_iou_scale_0_is_diou_plus_the_shape_cost():
    from references import reference_diou
    pred, target = random_pairs(200, 5, torch.float64)
    omega = (pred[:, 2:] - target[:, 2:]).abs() / torch.max(pred[:, 2:], target[:, 2:])
    expected = reference_diou(pred, target) + 0.5 * (1 - torch.exp(-omega)).pow(4).sum(1)
    torch.testing.assert_close(shape_iou_loss(pred, target, scale=0), expected)


@pytest.mark.parametrize("name", NOT_IOU_BASED)
def test_gaussian_losses_are_smooth_where_iou_is_not(name):
    # tiny boxes a few pixels apart, overlapping or not: IoU losses sit at 1, NWD and GCD still order them
    target = torch.tensor([[100.0, 100, 4, 4]] * 3, dtype=torch.float64)
    pred = torch.tensor([[104.5, 100, 4, 4], [108.0, 100, 4, 4], [120.0, 100, 4, 4]], dtype=torch.float64)
    loss = BOX[name][0](pred, target)
    assert (alpha_iou_loss(pred, target, alpha=1) == 1).all()
    assert loss[0] < loss[1] < loss[2] < 1


def test_gcd_takes_no_parameters():
    assert GCDLoss.params == {} and GCDLoss().values == {}
    with pytest.raises(TypeError, match="^GCDLoss takes .*got 1 positional values$"):
        GCDLoss(1.0)


def test_gcd_of_one_pair_by_hand():
    # dcx 2, dw -4, dcy 0, dh 3: D^2 = ((4 + 16 / 4)(1/16 + 1/64) + (0 + 9 / 4)(1/36 + 1/9)) / 2 = 0.46875
    pred = torch.tensor([[10.0, 20, 4, 6]], dtype=torch.float64)
    target = torch.tensor([[12.0, 20, 8, 3]], dtype=torch.float64)
    expected = 1 - math.exp(-math.sqrt(0.46875))
    assert gcd_loss(pred, target).item() == pytest.approx(expected, rel=1e-7)  # sizes^2 guarded by 1e-7
    assert GCDLoss()(pred, target).item() == pytest.approx(expected, rel=1e-7)  # sizes^2 guarded by 1e-7


@pytest.mark.parametrize("disjoint", [False, True])
@pytest.mark.parametrize("factor", [0.5, 4.0, 100.0])
def test_gcd_is_symmetric_and_unchanged_by_scaling_the_pair(disjoint, factor):
    pred, target = random_pairs(1000, 21, torch.float64, disjoint)
    loss = gcd_loss(pred, target)
    assert bool((loss > 1e-3).all()) and bool((loss < 1).all())
    torch.testing.assert_close(gcd_loss(target, pred), loss, atol=1e-12, rtol=1e-12)
    # centres and sizes of both boxes times one factor: D^2 is a ratio of squared lengths
    torch.testing.assert_close(gcd_loss(pred * factor, target * factor), loss, atol=1e-9, rtol=1e-5)
    # not so for NWD, whose constant is in pixels, nor for a pair scaled about different points
    assert not torch.allclose(nwd_loss(pred * factor, target * factor), nwd_loss(pred, target), rtol=1e-3)
    moved = torch.cat([target[:, :2] * factor, target[:, 2:]], 1)
    assert not torch.allclose(gcd_loss(pred * factor, moved), loss, rtol=1e-3)


def test_gcd_normalises_by_both_boxes_not_one():
    # the one-sided distance of a circulating copy (each term normalised by one box) is neither
    # symmetric nor this loss: the reference comparison would see it
    pred, target = random_pairs(500, 22, torch.float64)
    d = pred - target
    one_sided = ((d[:, 0] ** 2 + d[:, 2] ** 2 / 4) / target[:, 2] ** 2
                 + (d[:, 1] ** 2 + d[:, 3] ** 2 / 4) / target[:, 3] ** 2)
    assert (gcd_loss(pred, target) - (1 - torch.exp(-one_sided.sqrt()))).abs().max() > 1e-2
    assert (gcd_loss(pred, target) - (1 - torch.exp(-(one_sided / 2).sqrt()))).abs().max() > 1e-2


# ---- shapes, reductions, dtypes, errors, declarations ------------------------------------------

@pytest.mark.parametrize("name,params", CASES, ids=IDS)
def test_shapes_and_reductions(name, params):
    fn = BOX[name][0]
    pred, target = random_pairs(24, 9, torch.float32)
    flat = fn(pred, target, **params)
    assert flat.shape == (24,)
    batched = fn(pred.reshape(2, 3, 4, 4), target.reshape(2, 3, 4, 4), **params)
    assert batched.shape == (2, 3, 4) and torch.equal(batched.reshape(-1), flat)
    torch.testing.assert_close(fn(pred, target, **params, reduction="sum"), flat.sum())
    torch.testing.assert_close(fn(pred, target, **params, reduction="mean"), flat.mean())
    empty = torch.zeros(0, 4, requires_grad=True)
    total = fn(empty, torch.zeros(0, 4), **params, reduction="sum")
    total.backward()
    assert total.item() == 0 and empty.grad.shape == (0, 4)


@pytest.mark.parametrize("name,params", CASES, ids=IDS)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_boxes_compute_in_float32(name, params, dtype):
    fn = BOX[name][0]
    pred, target = large_pairs(200, 6, dtype)  # areas that float16 cannot hold
    half = pred.clone().requires_grad_()
    loss = fn(half, target, **params)
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss, fn(pred.float(), target.float(), **params), atol=0, rtol=0)
    loss.sum().backward()
    assert half.grad.dtype == dtype and torch.isfinite(half.grad).all()


BAD = [
    (lambda: alpha_iou_loss(torch.zeros(3, 4), torch.zeros(3, 4), alpha=0), "alpha_iou alpha must be a finite number > 0, got 0"),
    (lambda: alpha_iou_loss(torch.zeros(3, 4), torch.zeros(3, 4), alpha=float("nan")), "alpha_iou alpha"),
    (lambda: AlphaIoULoss(alpha="3"), "alpha_iou alpha must be .*got '3'"),
    (lambda: WIoUv3Loss(alpha=-1.0), "wiou_v3 alpha"),
    (lambda: WIoUv3Loss(delta=0), "wiou_v3 delta"),
    (lambda: WIoUv3Loss(momentum=0), r"wiou_v3 momentum must be in \(0, 1\], got 0"),
    (lambda: WIoUv3Loss(momentum=1.5), "wiou_v3 momentum"),
    (lambda: wiou_v3_loss(torch.zeros(3, 4), torch.zeros(3, 4), 0.5, delta=-2), "wiou_v3 delta"),
    (lambda: mpdiou_loss(torch.zeros(3, 4), torch.zeros(3, 4), None), "mpdiou needs the training input size"),
    (lambda: mpdiou_loss(torch.zeros(3, 4), torch.zeros(3, 4), (0, 640)), r"input_size must be \(height, width\)"),
    (lambda: mpdiou_loss(torch.zeros(3, 4), torch.zeros(3, 4), 640), r"input_size .*got 640"),
    (lambda: MPDIoULoss()(torch.zeros(3, 4), torch.zeros(3, 4), input_size=None), "mpdiou loss needs the batch.s input_size"),
    (lambda: ShapeIoULoss(scale=-1), "shape_iou scale must be a finite number >= 0, got -1"),
    (lambda: NWDLoss(constant=0), "nwd constant must be a finite number > 0, got 0"),
    (lambda: nwd_loss(torch.zeros(3, 4), torch.zeros(3, 4), constant=float("inf")), "nwd constant"),
    (lambda: wiou_loss(torch.zeros(3, 4), torch.zeros(4, 4)), r"wiou loss needs .*same shape.*\(3, 4\).*\(4, 4\)"),
    (lambda: nwd_loss(torch.zeros(3, 5), torch.zeros(3, 5)), r"\(\.\.\., 4\)"),
    (lambda: shape_iou_loss(torch.zeros(3, 4, dtype=torch.long), torch.zeros(3, 4)), "floating-point"),
    (lambda: alpha_iou_loss(torch.zeros(3, 4), torch.zeros(3, 4), reduction="avg"), "reduction"),
    (lambda: PIoUv2Loss(lam=0), "piou_v2 lam must be a finite number > 0, got 0"),
    (lambda: piou_loss(torch.zeros(3, 4), torch.zeros(2, 4)), r"piou loss needs .*same shape"),
    (lambda: gcd_loss(torch.zeros(3, 4), torch.zeros(2, 4)), r"^gcd loss needs .*same shape.*\(3, 4\).*\(2, 4\)$"),
    (lambda: gcd_loss(torch.zeros(3, 5), torch.zeros(3, 5)), r"\(\.\.\., 4\)"),
    (lambda: gcd_loss(torch.zeros(3, 4, dtype=torch.int32), torch.zeros(3, 4)), "^gcd loss needs floating-point"),
    (lambda: gcd_loss(torch.zeros(3, 4), torch.zeros(3, 4), reduction="avg"), "reduction"),
    (lambda: UIoULoss(start=0), r"uiou start must be a finite number > 0, got 0"),
    (lambda: UIoULoss(end=-0.5), r"uiou end must be a finite number > 0, got -0.5"),
    (lambda: UIoULoss(schedule="cos"), r"uiou schedule must be one of linear, cosine, fraction, got 'cos'"),
    (lambda: UIoULoss(gamma=0), r"uiou gamma must be a finite number > 0, got 0"),
    (lambda: uiou_loss(torch.zeros(3, 4), torch.zeros(3, 4), 1.5), r"uiou progress must be in \[0, 1\], got 1.5"),
    (lambda: uiou_loss(torch.zeros(3, 4), torch.zeros(3, 4), None), r"uiou progress must be in \[0, 1\], got None"),
    (lambda: UIoULoss()(torch.zeros(3, 4), torch.zeros(3, 4), progress=-0.1), r"uiou progress .*got -0.1"),
    (lambda: uiou_loss(torch.zeros(3, 4), torch.zeros(3, 5), 0.5), r"uiou loss needs .*same shape"),
]


@pytest.mark.parametrize("call,pattern", BAD)
def test_bad_arguments_one_line(call, pattern):
    with pytest.raises(ValueError, match=pattern) as info:
        call()
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("name", NOT_IOU_BASED)
@pytest.mark.parametrize("option,value,default", [("inner_ratio", 0.8, 1.0), ("focaler_low", 0.2, 0.0),
                                                  ("focaler_high", 0.9, 1.0)])
def test_iou_modifiers_are_refused_for_the_gaussian_losses_in_one_line(name, option, value, default):
    with pytest.raises(ValueError) as info:
        MODULES[name](**{option: value})
    assert str(info.value) == (f"{name} {option} modifies an IoU-based box loss, and {name} is not one; "
                               f"leave it at {default}")
    with pytest.raises(ValueError) as info:
        LossKit(box_loss=name, **{f"box_{option}": value})
    assert str(info.value) == (f"box_{option} modifies an IoU-based box loss, and {name} is not one; "
                               f"leave it at {default}")
    assert torch.equal(MODULES[name](**{option: default})(*random_pairs(8, 23)), BOX[name][0](*random_pairs(8, 23)))


MODULES = {"alpha_iou": AlphaIoULoss, "wiou": WIoULoss, "wiou_v3": WIoUv3Loss, "mpdiou": MPDIoULoss,
           "shape_iou": ShapeIoULoss, "nwd": NWDLoss, "piou": PIoULoss, "piou_v2": PIoUv2Loss, "gcd": GCDLoss,
           "uiou": UIoULoss}
# the losses whose function takes what the module is handed besides its parameters (needs)
NEEDING = ("wiou_v3", "mpdiou", "uiou")


@pytest.mark.parametrize("name", list(MODULES))
def test_declared_and_registered(name):
    cls = MODULES[name]
    assert LOSSES[name] is cls and issubclass(cls, KitLoss)
    assert cls.branches == ("box",)
    assert cls.iou_based == (name not in NOT_IOU_BASED)
    for param in cls.params.values():
        assert param.allows(param.default) and param.doc
    assert cls().state_dict() == {}  # no buffers: a head carrying it keeps YOLOX's state dict


@pytest.mark.parametrize("name,params", [c for c in CASES if c[0] not in NEEDING],
                         ids=[i for c, i in zip(CASES, IDS) if c[0] not in NEEDING])
def test_module_is_the_function(name, params):
    pred, target = random_pairs(40, 10, torch.float32)
    module = MODULES[name](**params)
    assert torch.equal(module(pred, target), BOX[name][0](pred, target, **params))
    for key, value in params.items():
        assert f"{key}={value}" in repr(module)


def test_mpdiou_module_takes_the_input_size_by_keyword():
    pred, target = random_pairs(40, 11, torch.float32)
    assert MPDIoULoss.needs == ("input_size",)
    assert torch.equal(MPDIoULoss()(pred, target, input_size=SIZE), mpdiou_loss(pred, target, SIZE))


# ---- uiou: the ratio's schedule, the training progress ------------------------------------------

@pytest.mark.parametrize("schedule,authors", [
    ("linear", lambda epoch: -0.005 * epoch + 2),  # their metrics.py, for 300 epochs
    ("cosine", lambda epoch: 0.75 * math.cos(math.pi * epoch / 300) + 1.25),
    ("fraction", lambda epoch: 200 / (epoch + 100)),
])
def test_uiou_ratio_at_the_defaults_is_the_authors_schedule_over_300_epochs(schedule, authors):
    for epoch in range(0, 301, 15):
        assert uiou_ratio(epoch / 300, schedule=schedule) == pytest.approx(authors(epoch), rel=1e-12, abs=1e-12)
    assert uiou_ratio(0.0, 1.5, 0.8, schedule) == pytest.approx(1.5) and uiou_ratio(1.0, 1.5, 0.8, schedule) == \
        pytest.approx(0.8)


def test_uiou_is_the_weighted_ciou_of_the_pair_scaled_by_the_ratio():
    pred, target = random_pairs(300, 12, torch.float64)
    for progress in (0.0, 0.5, 1.0):
        r = uiou_ratio(progress)
        scale = torch.tensor([1.0, 1.0, r, r], dtype=torch.float64)
        weight = _uiou_weight(pred, target, progress)
        torch.testing.assert_close(uiou_loss(pred, target, progress), weight * ciou_loss(pred * scale, target * scale))
    # enlarged early (r = 2), the pairs overlap more and their CIoU loss is smaller than shrunk late
    assert (ciou_loss(pred * torch.tensor([1, 1, 2.0, 2.0], dtype=torch.float64), target * 2 ** torch.tensor(
        [0, 0, 1.0, 1.0], dtype=torch.float64)) < ciou_loss(pred, target)).float().mean() > 0.9


def test_uiou_weight_takes_no_gradient_and_reads_the_scaled_pairs_iou():
    from references import geometry, reference_ciou
    pred, target = random_pairs(300, 13, torch.float64)
    _, ours = _grad(lambda p, t: uiou_loss(p, t, 0.2), pred, target)

    def weighted(p, t, attached, scaled):  # the same formula with the weight in the graph or of the plain pair
        scale = torch.tensor([1.0, 1.0, 1.7, 1.7], dtype=p.dtype)  # the ratio at 0.2
        ps, ts = p * scale, t * scale
        iou = geometry(ps, ts)[0] if scaled else geometry(p, t)[0]
        weight = 1 - iou**0.5
        return (weight if attached else weight.detach()) * reference_ciou(ps, ts)

    loss, same = _grad(lambda p, t: weighted(p, t, False, True), pred, target)
    torch.testing.assert_close(ours, same)
    torch.testing.assert_close(uiou_loss(pred, target, 0.2), loss)
    assert (ours - _grad(lambda p, t: weighted(p, t, True, True), pred, target)[1]).abs().max() > 1e-3
    assert (uiou_loss(pred, target, 0.2) - weighted(pred, target, False, False)).abs().max() > 1e-3


def test_uiou_module_reads_the_progress_given_and_in_eval_mode_the_end_of_training():
    pred, target = random_pairs(40, 14, torch.float32)
    module = UIoULoss(schedule="cosine", gamma=0.7)
    assert UIoULoss.needs == ("progress",) and module.training
    assert torch.equal(module(pred, target, progress=0.4), uiou_loss(pred, target, 0.4, schedule="cosine", gamma=0.7))
    assert "schedule=cosine" in repr(module) and "gamma=0.7" in repr(module)
    with pytest.raises(ValueError) as info:  # training without the progress: one line naming the fix
        module(pred, target)
    assert str(info.value) == (
        "the uiou loss needs the training progress, and none was given: train with yolox-focal's trainer "
        "(tools/train.py, or an exp with FocalExpMixin, whose get_trainer gives it), or call "
        "loss_kit.set_progress(fraction) before each step, fraction from 0 at the first iteration to 1 at the "
        "end (or pass progress=...)")
    module.eval()
    assert torch.equal(module(pred, target), uiou_loss(pred, target, 1.0, schedule="cosine", gamma=0.7))
    assert not torch.equal(module(pred, target), module(pred, target, progress=0.0))


def test_the_kit_hands_the_progress_to_the_losses_that_need_it():
    from yolox_focal import LossKit

    pred, target = random_pairs(40, 15, torch.float32)
    kit = LossKit(box_loss="uiou", box_uiou_start=1.5, box_focaler_low=0.1)
    assert kit.needs_progress and not LossKit(box_loss="mpdiou").needs_progress and kit.progress is None
    with pytest.raises(ValueError, match="^the uiou loss needs the training progress, and none was given: "):
        kit.box(pred, target)
    kit.set_progress(0.25)
    kit.start_batch(torch.zeros(2, 3, 64, 96))  # the batch's images leave the progress as it was
    assert kit.progress == 0.25 and kit.box.batch_context == {"progress": 0.25}
    expected = UIoULoss(start=1.5, focaler_low=0.1)(pred, target, progress=0.25)
    assert torch.equal(kit.box(pred, target), expected)
    assert kit.obj.batch_context == kit.cls.batch_context == {}  # no other loss is handed it
    for bad in (-0.01, 1.01, float("nan"), None):
        with pytest.raises(ValueError, match=r"^the training progress must be in \[0, 1\], got "):
            kit.set_progress(bad)
    assert kit.progress == 0.25
