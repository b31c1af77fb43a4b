"""The IoU family of box losses (iou, giou, diou, ciou, eiou, siou) and the Inner/Focaler modifiers on every
IoU-based loss against YOLOX, torchvision and float64
references (tests/references.py) written from the papers' formulas."""

import math

import pytest
import torch
from torchvision.ops import complete_box_iou_loss, distance_box_iou_loss, generalized_box_iou_loss
from yolox.models.losses import IOUloss

from references import (DEGENERATE_PAIRS, large_pairs, random_pairs, reference_ciou, reference_diou, reference_eiou,
                        reference_mpdiou, reference_piou, reference_piou_v2, reference_shape_iou, reference_siou,
                        reference_uiou, reference_with_modified_iou, xyxy)
from yolox_focal.losses import (LOSSES, CIoULoss, DIoULoss, EIoULoss, GIoULoss, IoULoss, SIoULoss, box_iou_loss,
                                losses_for, siou_loss)

KINDS = ("iou", "giou", "diou", "ciou", "eiou", "siou")


def _grad(fn, pred, target):
    p = pred.detach().clone().requires_grad_()
    loss = fn(p, target)
    (g,) = torch.autograd.grad(loss.sum(), p)
    return loss.detach(), g


REFERENCES = {"diou": reference_diou, "ciou": reference_ciou, "eiou": reference_eiou, "siou": reference_siou}
TORCHVISION = {"giou": generalized_box_iou_loss, "diou": distance_box_iou_loss, "ciou": complete_box_iou_loss}


# ---- YOLOX bit for bit ------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["iou", "giou"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("disjoint", [False, True])
def test_iou_giou_are_yoloxs_iouloss_bit_for_bit(kind, dtype, disjoint):
    pred, target = random_pairs(3000, 1, dtype, disjoint)
    pred[:50, 2:] = 0  # zero-size predictions and identical pairs mixed in
    pred[50:100] = target[50:100]
    ours, ours_grad = _grad(lambda p, t: box_iou_loss(p, t, kind), pred, target)
    theirs, their_grad = _grad(IOUloss(reduction="none", loss_type=kind), pred, target)
    assert ours.dtype == dtype and torch.equal(ours, theirs)
    assert torch.equal(ours_grad, their_grad)
    for reduction in ("mean", "sum"):
        assert torch.equal(box_iou_loss(pred, target, kind, reduction),
                           IOUloss(reduction=reduction, loss_type=kind)(pred, target))


# ---- torchvision ------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["giou", "diou", "ciou"])
@pytest.mark.parametrize("disjoint", [False, True])
def test_matches_torchvision(kind, disjoint):
    pred, target = random_pairs(2000, 2, torch.float64, disjoint)
    ours, ours_grad = _grad(lambda p, t: box_iou_loss(p, t, kind), pred, target)
    theirs, their_grad = _grad(lambda p, t: TORCHVISION[kind](xyxy(p), xyxy(t)), pred, target)
    # both use eps 1e-7 but in different places (and YOLOX's giou 1e-16): differences ~ eps / area
    torch.testing.assert_close(ours, theirs, atol=1e-7, rtol=1e-7)
    torch.testing.assert_close(ours_grad, their_grad, atol=1e-8, rtol=1e-6)
    # disjoint: IoU 0 and a positive penalty everywhere, so the comparison covers the penalty
    assert bool((ours > 1).all()) == disjoint


@pytest.mark.parametrize("kind", ["giou", "diou", "ciou"])
def test_float32_matches_torchvision(kind):
    pred, target = random_pairs(2000, 3, torch.float32)
    ours, ours_grad = _grad(lambda p, t: box_iou_loss(p, t, kind), pred, target)
    theirs, their_grad = _grad(lambda p, t: TORCHVISION[kind](xyxy(p), xyxy(t)), pred, target)
    torch.testing.assert_close(ours, theirs, atol=2e-5, rtol=1e-4)
    torch.testing.assert_close(ours_grad, their_grad, atol=1e-6, rtol=1e-3)


# ---- the papers' formulas in float64 ---------------------------------------------------------

@pytest.mark.parametrize("kind", ["diou", "ciou", "eiou", "siou"])
@pytest.mark.parametrize("disjoint", [False, True])
def test_matches_float64_reference(kind, disjoint):
    pred, target = random_pairs(2000, 4, torch.float64, disjoint)
    ours, ours_grad = _grad(lambda p, t: box_iou_loss(p, t, kind), pred, target)
    expected, expected_grad = _grad(REFERENCES[kind], pred, target)
    torch.testing.assert_close(ours, expected, atol=1e-7, rtol=1e-7)
    torch.testing.assert_close(ours_grad, expected_grad, atol=1e-8, rtol=1e-6)


@pytest.mark.parametrize("kind", ["diou", "ciou", "eiou", "siou"])
def test_float32_matches_float64_reference(kind):
    pred, target = random_pairs(2000, 5, torch.float32)
    ours, ours_grad = _grad(lambda p, t: box_iou_loss(p, t, kind), pred, target)
    expected, expected_grad = _grad(REFERENCES[kind], pred.double(), target.double())
    assert ours.dtype == torch.float32
    torch.testing.assert_close(ours.double(), expected, atol=2e-5, rtol=1e-4)
    torch.testing.assert_close(ours_grad.double(), expected_grad, atol=1e-6, rtol=1e-3)


def test_siou_covers_both_angle_branches():
    pred, target = random_pairs(2000, 6, torch.float64)
    d = (target - pred)[:, :2].abs()
    steep = d[:, 1] > d[:, 0]
    assert 100 < steep.sum() < 1900  # the reference comparison above saw both sides of 45 degrees


def test_ciou_gradient_treats_alpha_as_a_constant():
    pred, target = random_pairs(500, 7, torch.float64)
    ours, ours_grad = _grad(lambda p, t: box_iou_loss(p, t, "ciou"), pred, target)
    _, detached_grad = _grad(lambda p, t: reference_ciou(p, t, detach_alpha=True), pred, target)
    full, full_grad = _grad(lambda p, t: reference_ciou(p, t, detach_alpha=False), pred, target)
    torch.testing.assert_close(ours, full, atol=1e-7, rtol=1e-7)  # same value either way
    torch.testing.assert_close(ours_grad, detached_grad, atol=1e-8, rtol=1e-6)
    assert (ours_grad - full_grad).abs().max() > 1e-4  # and alpha's gradient would have shown


@pytest.mark.parametrize("kind", ["diou", "eiou", "siou"])
@pytest.mark.parametrize("disjoint", [False, True])
def test_gradcheck(kind, disjoint):
    pred, target = random_pairs(30, 8, torch.float64, disjoint)
    pred.requires_grad_()
    assert torch.autograd.gradcheck(lambda p: box_iou_loss(p, target, kind), (pred,))


# ---- degenerate pairs --------------------------------------------------------------------------

DEGENERATE = DEGENERATE_PAIRS  # every box loss stays finite on these, loss and gradient


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("case", list(DEGENERATE))
def test_degenerate_pairs_finite(kind, dtype, case):
    p, t = DEGENERATE[case]
    pred = torch.tensor([p], dtype=dtype, requires_grad=True)
    target = torch.tensor([t], dtype=dtype)
    loss = box_iou_loss(pred, target, kind)
    loss.sum().backward()
    assert torch.isfinite(loss).all() and torch.isfinite(pred.grad).all()
    assert (loss >= 0).all()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_identical_boxes_give_zero(kind, dtype):
    boxes = torch.tensor([DEGENERATE[c][0] for c in ("identical", "huge, identical")], dtype=dtype)
    pred = boxes.clone().requires_grad_()
    loss = box_iou_loss(pred, boxes, kind)
    loss.sum().backward()
    # 1 - IoU with IoU = area / (area + eps): 0 up to eps / area
    torch.testing.assert_close(loss, torch.zeros(2, dtype=dtype), atol=1e-6, rtol=0)
    assert torch.isfinite(pred.grad).all()


@pytest.mark.parametrize("kind", ["iou", "giou"])
def test_identical_tiny_boxes_give_zero_with_yoloxs_eps(kind):
    # YOLOX's 1e-16 is far below a 1e-8 area; the guarded kinds' 1e-7 (torchvision's) is not
    boxes = torch.tensor([DEGENERATE["tiny"][0]], dtype=torch.float64)
    torch.testing.assert_close(box_iou_loss(boxes, boxes, kind), torch.zeros(1, dtype=torch.float64),
                               atol=1e-7, rtol=0)


@pytest.mark.parametrize("kind", KINDS)
def test_empty_boxes_have_iou_zero(kind):
    # two zero-size boxes at the same point: IoU is 0 (0 / 0 guarded), every penalty 0, so loss 1
    loss = box_iou_loss(torch.tensor([[10.0, 20, 0, 0]]), torch.tensor([[10.0, 20, 0, 0]]), kind)
    torch.testing.assert_close(loss, torch.ones(1))


# YOLOv6's SIoU divides 0 by 0 at equal centres (its own test below); the plain CIoU takes atan(w / 0)
# for a zero height (ours clamps the side; the finite test covers it)
@pytest.mark.parametrize("kind,case", [
    (kind, case) for kind in ("diou", "ciou", "eiou", "siou")
    for case in ("same centre, other size", "disjoint far apart", "touching", "huge coordinates",
                 "huge, disjoint", "zero width", "zero height")
    if not (kind == "siou" and case.startswith("same centre")) and not (kind == "ciou" and "zero" in case)])
def test_degenerate_pairs_match_references(kind, case):
    p, t = DEGENERATE[case]
    pred, target = torch.tensor([p], dtype=torch.float64), torch.tensor([t], dtype=torch.float64)
    torch.testing.assert_close(box_iou_loss(pred, target, kind), REFERENCES[kind](pred, target),
                               atol=1e-6, rtol=1e-6)


def test_siou_at_equal_centres_is_iou_and_shape_cost():
    pred = torch.tensor([[10.0, 20, 4, 6]], dtype=torch.float64)
    target = torch.tensor([[10.0, 20, 8, 3]], dtype=torch.float64)
    iou = (4 * 3) / (4 * 6 + 8 * 3 - 4 * 3)
    shape = (1 - math.exp(-4 / 8)) ** 4 + (1 - math.exp(-3 / 6)) ** 4
    torch.testing.assert_close(box_iou_loss(pred, target, "siou"), torch.tensor([1 - iou + shape / 2],
                                                                                  dtype=torch.float64))


# ---- shapes, reductions, errors, module ---------------------------------------------------------

@pytest.mark.parametrize("kind", KINDS)
def test_shapes_and_reductions(kind):
    pred, target = random_pairs(24, 9, torch.float32)
    flat = box_iou_loss(pred, target, kind)
    assert flat.shape == (24,)
    batched = box_iou_loss(pred.reshape(2, 3, 4, 4), target.reshape(2, 3, 4, 4), kind)
    assert batched.shape == (2, 3, 4) and torch.equal(batched.reshape(-1), flat)
    torch.testing.assert_close(box_iou_loss(pred, target, kind, "sum"), flat.sum())
    torch.testing.assert_close(box_iou_loss(pred, target, kind, "mean"), flat.mean())
    single = box_iou_loss(pred[0], target[0], kind)
    assert single.shape == () and torch.equal(single, flat[0])
    empty = torch.zeros(0, 4, requires_grad=True)
    out = box_iou_loss(empty, torch.zeros(0, 4), kind)
    assert out.shape == (0,)
    total = box_iou_loss(empty, torch.zeros(0, 4), kind, "sum")
    total.backward()
    assert total.item() == 0 and empty.grad.shape == (0, 4)


@pytest.mark.parametrize("call,pattern", [
    (lambda: box_iou_loss(torch.zeros(3, 4), torch.zeros(3, 4), "ciuo"), "kind must be one of.*'ciuo'"),
    (lambda: box_iou_loss(torch.zeros(3, 4), torch.zeros(3, 4), "focal"), "kind must be one of.*'focal'"),
    (lambda: box_iou_loss(torch.zeros(3, 4), torch.zeros(3, 4), "IoU"), "kind must be one of"),
    (lambda: box_iou_loss(torch.zeros(3, 4), torch.zeros(3, 4), "uiou"),
     r"^box loss kind 'uiou' needs progress: call uiou_loss\(pred, target, progress\) instead$"),
    (lambda: box_iou_loss(torch.zeros(3, 4), torch.zeros(3, 4), "mpdiou"), r"needs input_size: call mpdiou_loss"),
    (lambda: box_iou_loss(torch.zeros(3, 4), torch.zeros(4, 4)), r"same shape.*\(3, 4\).*\(4, 4\)"),
    (lambda: box_iou_loss(torch.zeros(3, 4), torch.zeros(1, 4)), r"same shape"),  # no broadcasting
    (lambda: box_iou_loss(torch.zeros(3, 5), torch.zeros(3, 5)), r"\(\.\.\., 4\).*\(3, 5\)"),
    (lambda: box_iou_loss(torch.zeros(3, 2), torch.zeros(3, 2)), r"\(\.\.\., 4\)"),
    (lambda: box_iou_loss(torch.zeros(3, 4, dtype=torch.long), torch.zeros(3, 4)), "floating-point"),
    (lambda: box_iou_loss(torch.zeros(3, 4), torch.zeros(3, 4), reduction="avg"), "reduction"),
    (lambda: CIoULoss(reduction="avg"), "reduction"),
    (lambda: SIoULoss(theta=0), r"siou theta must be a finite number > 0, got 0"),
    (lambda: siou_loss(torch.zeros(3, 4), torch.zeros(3, 4), theta=-1.0), r"siou theta must be"),
    (lambda: CIoULoss(inner_ratio=-1.0), r"ciou inner_ratio must be a finite number > 0, got -1.0"),
    (lambda: GIoULoss(focaler_low=0.7, focaler_high=0.3), r"giou focaler_low must be below giou focaler_high"),
])
def test_bad_arguments_one_line(call, pattern):
    with pytest.raises(ValueError, match=pattern) as info:
        call()
    assert "\n" not in str(info.value)


MODULES = {"iou": IoULoss, "giou": GIoULoss, "diou": DIoULoss, "ciou": CIoULoss, "eiou": EIoULoss, "siou": SIoULoss}


@pytest.mark.parametrize("kind", KINDS)
def test_module_is_the_registered_declaration(kind):
    pred, target = random_pairs(40, 10, torch.float32)
    module = MODULES[kind]
    assert LOSSES[kind] is module and module.iou_based and module.branches == ("box",)
    for reduction in ("none", "mean", "sum"):
        assert torch.equal(module(reduction=reduction)(pred, target), box_iou_loss(pred, target, kind, reduction))
        assert f"reduction={reduction!r}" in repr(module(reduction=reduction))
    assert module().name == kind and repr(module()).startswith(module.__name__)
    assert torch.equal(IoULoss()(pred, target), box_iou_loss(pred, target))  # YOLOX's default: iou
    assert set(KINDS) <= set(losses_for("box"))


@pytest.mark.parametrize("theta", [2.0, 4.0, 5.5])
def test_siou_theta_matches_reference(theta):
    pred, target = random_pairs(500, 11, torch.float64)
    ours, ours_grad = _grad(lambda p, t: siou_loss(p, t, theta=theta), pred, target)
    expected, expected_grad = _grad(lambda p, t: reference_siou(p, t, theta=theta), pred, target)
    torch.testing.assert_close(ours, expected, atol=1e-7, rtol=1e-7)
    torch.testing.assert_close(ours_grad, expected_grad, atol=1e-8, rtol=1e-6)
    assert torch.equal(SIoULoss(theta)(pred, target), ours)


# ---- Inner-IoU and Focaler-IoU, on any IoU-based box loss ---------------------------------------

# iou-based loss -> (its reference with IoU' in IoU's place, for the options; its module's arguments)
MODIFIED_REFERENCES = {
    "iou": lambda **o: reference_with_modified_iou("iou", **o),
    "giou": lambda **o: reference_with_modified_iou(
        "giou", lambda p, t: generalized_box_iou_loss(xyxy(p), xyxy(t)), **o),
    **{k: (lambda k: lambda **o: reference_with_modified_iou(k, REFERENCES[k], **o))(k) for k in REFERENCES},
    "alpha_iou": lambda **o: reference_with_modified_iou("alpha_iou", alpha=3.0, **o),
    "wiou": lambda **o: reference_with_modified_iou("wiou", **o),
    # eval mode: the running mean stays at its initial 1
    "wiou_v3": lambda **o: reference_with_modified_iou("wiou_v3", alpha=1.9, mean=1.0, delta=3.0, **o),
    "mpdiou": lambda **o: reference_with_modified_iou(
        "mpdiou", lambda p, t: reference_mpdiou(p, t, INPUT_SIZE), **o),
    "shape_iou": lambda **o: reference_with_modified_iou(
        "shape_iou", lambda p, t: reference_shape_iou(p, t, 0.0), **o),
    "piou": lambda **o: reference_with_modified_iou("piou", lambda p, t: reference_piou(p, t)[0], **o),
    # the focusing weight over the whole modified loss: u (L + IoU - IoU')
    "piou_v2": lambda **o: (lambda p, t: (reference_piou_v2(p, t) / reference_piou(p, t)[0]).detach()
                            * reference_with_modified_iou("piou_v2", lambda p, t: reference_piou(p, t)[0], **o)(p, t)),
    # eval mode without a progress: the end of training; IoU' of the scaled pair under the weight
    "uiou": lambda **o: (lambda p, t: reference_uiou(p, t, 1.0, **o)),
}
INPUT_SIZE = (640, 480)

MODIFIED = [dict(inner_ratio=0.7), dict(inner_ratio=1.25), dict(focaler_low=0.2, focaler_high=0.8),
            dict(inner_ratio=0.8, focaler_high=0.9)]


def _reference_args(options):
    return dict(ratio=options.get("inner_ratio", 1.0), low=options.get("focaler_low", 0.0),
                high=options.get("focaler_high", 1.0))


def test_every_iou_based_loss_has_a_modified_reference():
    assert set(MODIFIED_REFERENCES) == {name for name, cls in LOSSES.items() if cls.iou_based}


@pytest.mark.parametrize("kind", list(MODIFIED_REFERENCES))
@pytest.mark.parametrize("options", MODIFIED, ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()))
def test_modifiers_take_the_iou_s_place_in_each_loss(kind, options):
    pred, target = random_pairs(1500, 12, torch.float64)
    module = LOSSES[kind](**options).eval()
    context = {"input_size": INPUT_SIZE} if "input_size" in module.needs else {}
    ours, ours_grad = _grad(lambda p, t: module(p, t, **context), pred, target)
    expected, expected_grad = _grad(MODIFIED_REFERENCES[kind](**_reference_args(options)), pred, target)
    torch.testing.assert_close(ours, expected, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(ours_grad, expected_grad, atol=1e-7, rtol=1e-5)
    assert not torch.allclose(ours, LOSSES[kind]().eval()(pred, target, **context))


@pytest.mark.parametrize("kind", KINDS)
def test_modifiers_off_are_the_loss_bit_for_bit(kind):
    pred, target = random_pairs(500, 13, torch.float32)
    off = MODULES[kind](inner_ratio=1.0, focaler_low=0.0, focaler_high=1.0)
    assert torch.equal(off(pred, target), box_iou_loss(pred, target, kind))


# ---- half precision ----------------------------------------------------------------------------
# Under YOLOX's --fp16 (autocast) the head hands over float16 boxes; the loss must not compute their
# areas in float16, which overflows above 65504 px^2 (a 256 x 256 box). iou and giou are YOLOX's
# arithmetic in YOLOX's dtype (autocast computes its products of sizes in float32).

@pytest.mark.parametrize("kind", ["diou", "ciou", "eiou", "siou"])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_boxes_compute_in_float32(kind, dtype):
    pred, target = large_pairs(300, 14, dtype)
    assert (pred[:, 2].float() * pred[:, 3].float() > 65504).float().mean() > 0.4  # float16 cannot hold them
    half = pred.clone().requires_grad_()
    loss = box_iou_loss(half, target, kind)
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss, box_iou_loss(pred.float(), target.float(), kind), atol=0, rtol=0)
    loss.sum().backward()
    assert half.grad.dtype == dtype and torch.isfinite(half.grad).all()


@pytest.mark.parametrize("options", MODIFIED, ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()))
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_modifiers_compute_half_boxes_in_float32(options, dtype):
    pred, target = large_pairs(300, 15, dtype)
    module = MODULES["ciou"](**options)
    half = pred.clone().requires_grad_()
    loss = module(half, target)
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss, module(pred.float(), target.float()), atol=0, rtol=0)
    loss.sum().backward()
    assert torch.isfinite(half.grad).all()


@pytest.mark.parametrize("options", MODIFIED, ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()))
@pytest.mark.parametrize("case", list(DEGENERATE))
def test_modifiers_finite_on_degenerate_pairs(options, case):
    p, t = DEGENERATE[case]
    for kind in ("iou", "ciou"):
        pred = torch.tensor([p], dtype=torch.float32, requires_grad=True)
        loss = MODULES[kind](**options)(pred, torch.tensor([t], dtype=torch.float32))
        loss.sum().backward()
        assert torch.isfinite(loss).all() and torch.isfinite(pred.grad).all()


@pytest.mark.parametrize("options", MODIFIED[:3], ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()))
def test_modifiers_gradcheck(options):
    pred, target = random_pairs(30, 14, torch.float64)
    pred.requires_grad_()
    assert torch.autograd.gradcheck(DIoULoss(**options), (pred, target))
