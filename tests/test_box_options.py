"""The box options that reweight or mix an IoU-based box loss (yolox_focal/losses/box_weights.py):
the Wise-IoU focusing (box_wise_focusing v2/v3 with box_wise_alpha, box_wise_delta,
box_wise_momentum), Focal-EIoU's IoU ** gamma (box_focal_gamma) and the IoU + Gaussian mix
(box_gaussian_mix nwd/gcd, box_gaussian_mix_ratio, box_nwd_constant), through the kit's public
surface (``LOSSES[name](option=...)`` and ``LossKit(box_...=...)``), against float64 references
written from the papers' formulas (tests/references.py): ``wiou`` with v3 is ``wiou_v3`` bit for bit;
the order in which they compose with the Inner/Focaler modifiers and the weight; the one-line
refusals; the running mean as the kit's state; every option off is the loss bit for bit."""

import copy

import pytest
import torch
from torch import nn
from torchvision.ops import generalized_box_iou_loss

from helpers import head_inputs
from references import (DEGENERATE_PAIRS, geometry, large_pairs, random_pairs, reference_ciou, reference_diou,
                        reference_eiou, reference_gcd, reference_nwd, reference_wiou, reference_with_modified_iou,
                        xyxy)
from yolox_focal.losses import LOSSES
from yolox_focal.losses.declare import BOX_WEIGHTING, NEEDS, OPTIONS
from yolox_focal.losses.kit import LossKit
from yolox_focal.losses.wise_iou import wiou_loss

pytestmark = pytest.mark.any_yolox

INPUT_SIZE = (640, 480)  # for mpdiou, which reads the batch's input size
# what a loss may need besides the boxes (declare.NEEDS): mpdiou's input size, uiou's training progress
CONTEXT = {"input_size": INPUT_SIZE, "progress": 0.4}

# the plain losses, written from their papers (the options act on them)
BASE = {
    "iou": lambda p, t: 1 - geometry(p, t)[0] ** 2,  # YOLOX's
    "giou": lambda p, t: generalized_box_iou_loss(xyxy(p), xyxy(t)),
    "diou": reference_diou,
    "ciou": reference_ciou,
    "eiou": reference_eiou,
    "wiou": reference_wiou,
}


def _grad(fn, pred, target):
    p = pred.detach().clone().requires_grad_()
    loss = fn(p, target)
    (g,) = torch.autograd.grad(loss.sum(), p)
    return loss.detach(), g


def test_the_context_covers_everything_a_loss_may_need():
    assert set(CONTEXT) == set(NEEDS)


def _context(module):
    return {key: CONTEXT[key] for key in module.needs}


def _plain_iou(pred, target):
    """The pairs' IoU, out of the graph: what every weight reads."""
    return geometry(pred, target)[0].detach()


def box_losses():
    return [name for name, cls in LOSSES.items() if cls.is_box_loss()]


def iou_based():
    return [name for name, cls in LOSSES.items() if cls.is_box_loss() and cls.iou_based]


def test_the_loss_families_are_where_the_options_expect_them():
    # every loss the tests below name is registered, and the Gaussian ones are not IoU-based
    assert set(BASE) | {"nwd", "gcd", "wiou_v3"} <= set(box_losses())
    assert {"nwd", "gcd"} == set(box_losses()) - set(iou_based())
    assert set(BOX_WEIGHTING) == {"wise_focusing", "wise_alpha", "wise_delta", "wise_momentum", "focal_gamma",
                                  "gaussian_mix", "gaussian_mix_ratio", "nwd_constant"}


# ---- (a) wiou with the v3 focusing is wiou_v3 ---------------------------------------------------

WISE_SETS = [{}, dict(wise_alpha=1.7, wise_delta=2.7, wise_momentum=0.01),
             dict(wise_alpha=2.5, wise_delta=2.0, wise_momentum=0.3)]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("wise", WISE_SETS, ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()) or "defaults")
@pytest.mark.parametrize("modifiers", [{}, dict(inner_ratio=0.8, focaler_low=0.1)], ids=["plain", "modified"])
def test_wiou_with_v3_focusing_is_wiou_v3_bit_for_bit(dtype, wise, modifiers):
    option = LOSSES["wiou"](wise_focusing="v3", **wise, **modifiers).train()
    own = LOSSES["wiou_v3"](**{k.removeprefix("wise_"): v for k, v in wise.items()}, **modifiers).train()
    assert option.loss_state()["wise_mean"].item() == own.loss_state()["mean"].item() == 1.0
    for seed in range(5):  # several training batches, one of them disjoint pairs, one empty
        n = 0 if seed == 3 else 300
        pred, target = random_pairs(n, 30 + seed, dtype, disjoint=seed == 2)
        ours, ours_grad = _grad(option, pred, target)
        theirs, their_grad = _grad(own, pred, target)
        assert ours.dtype == dtype and torch.equal(ours, theirs) and torch.equal(ours_grad, their_grad)
        state, own_state = option.loss_state(), own.loss_state()
        assert set(state) == {"wise_mean", "wise_updates"}
        assert torch.equal(state["wise_mean"], own_state["mean"])
        assert torch.equal(state["wise_updates"], own_state["updates"])
    assert own.loss_state()["updates"].item() == 4 and own.loss_state()["mean"].item() != 1.0
    pred, target = random_pairs(200, 39, dtype)
    option.eval(), own.eval()
    assert torch.equal(option(pred, target), own(pred, target))
    assert torch.equal(option.loss_state()["wise_mean"], own.loss_state()["mean"])  # eval moved neither
    # the focusing weighs the loss: not wiou's own
    assert not torch.allclose(option(pred, target), LOSSES["wiou"](**modifiers)(pred, target))


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_wiou_with_v3_focusing_reduces_as_wiou_v3(reduction):
    pred, target = random_pairs(100, 38, torch.float32)
    option = LOSSES["wiou"](wise_focusing="v3", reduction=reduction).train()
    own = LOSSES["wiou_v3"](reduction=reduction).train()
    ours, theirs = option(pred, target), own(pred, target)
    assert ours.shape == () and torch.equal(ours, theirs)


# ---- (b) the v2 and v3 weights against their float64 references ---------------------------------

def reference_focused(loss, version, momentum, alpha=1.9, delta=3.0):
    """``weight * loss``, the weight of the Wise focusing (Tong et al. 2023) of the outlier degree
    beta = (1 - IoU)* / mean: ``beta ** 0.5`` (v2) or ``beta / (delta alpha ** (beta - delta))``
    (v3). The mean starts at 1; each training batch moves it by ``momentum`` toward the batch's mean
    of 1 - IoU, before it is used. ``.mean``: the running mean now."""
    class Focused:
        mean = 1.0

        def __call__(self, p, t, training=True):
            iou_loss = 1 - _plain_iou(p, t)
            if training and iou_loss.numel():
                self.mean += momentum * (iou_loss.mean().item() - self.mean)
            beta = iou_loss / self.mean
            weight = beta**0.5 if version == "v2" else beta / (delta * alpha ** (beta - delta))
            return weight * loss(p, t)
    return Focused()


@pytest.mark.parametrize("version", ["v2", "v3"])
@pytest.mark.parametrize("name", ["iou", "giou", "ciou", "eiou"])
@pytest.mark.parametrize("momentum", [0.3, 1.0])
def test_wise_focusing_matches_its_reference_over_training_batches(version, name, momentum):
    alpha, delta = (1.9, 3.0) if version == "v2" else (1.7, 2.7)
    module = LOSSES[name](wise_focusing=version, wise_momentum=momentum, wise_alpha=alpha, wise_delta=delta).train()
    reference = reference_focused(BASE[name], version, momentum, alpha, delta)
    for seed in range(4):
        pred, target = random_pairs(800, 50 + seed, torch.float64, disjoint=seed == 1)
        ours, ours_grad = _grad(module, pred, target)
        expected, expected_grad = _grad(reference, pred, target)
        # the running mean is kept in float32 (a checkpoint's state is the same whatever the dtype)
        torch.testing.assert_close(ours, expected, atol=1e-6, rtol=1e-6)
        torch.testing.assert_close(ours_grad, expected_grad, atol=1e-7, rtol=1e-5)
        assert module.loss_state()["wise_mean"].item() == pytest.approx(reference.mean, rel=1e-6)
    assert module.loss_state()["wise_updates"].item() == 4
    # the comparison saw weights far from 1, not the plain loss
    assert not torch.allclose(ours, BASE[name](pred, target), rtol=1e-2)


def test_v2_weight_is_out_of_the_graph():
    pred, target = random_pairs(500, 55, torch.float64)
    module = LOSSES["ciou"](wise_focusing="v2", wise_momentum=1.0).train()
    _, ours_grad = _grad(module, pred, target)

    def attached(p, t):  # the same weight left in the graph
        iou_loss = 1 - geometry(p, t)[0]
        return (iou_loss / iou_loss.mean().detach()) ** 0.5 * reference_ciou(p, t)

    _, attached_grad = _grad(attached, pred, target)
    _, detached_grad = _grad(reference_focused(reference_ciou, "v2", 1.0), pred, target)
    torch.testing.assert_close(ours_grad, detached_grad, atol=1e-7, rtol=1e-5)
    assert (ours_grad - attached_grad).abs().max() > 1e-3


def test_v3_is_non_monotonic_and_v2_monotonic_in_the_outlier_degree():
    # one batch: a few pairs from near-perfect to disjoint; the weight is loss / plain loss
    target = torch.tensor([[100.0, 100, 40, 40]] * 6, dtype=torch.float64)
    pred = target.clone()
    pred[:, 0] += torch.tensor([1.0, 6, 14, 24, 34, 90], dtype=torch.float64)
    plain = LOSSES["giou"]()(pred, target)
    v2 = LOSSES["giou"](wise_focusing="v2", wise_momentum=1.0).train()(pred, target) / plain
    v3 = LOSSES["giou"](wise_focusing="v3", wise_momentum=1.0).train()(pred, target) / plain
    assert (v2.diff() > 0).all()  # beta ** 0.5 rises with beta
    assert (v3[:3].diff() > 0).all() and v3[-1] < v3.max()  # r rises, then falls for the outliers


# ---- (c) Focal-EIoU's IoU ** gamma ---------------------------------------------------------------

@pytest.mark.parametrize("name", ["eiou", "ciou", "giou", "wiou"])
@pytest.mark.parametrize("gamma", [0.5, 1.0, 2.0])
def test_focal_gamma_is_iou_to_the_gamma_times_the_loss(name, gamma):
    pred, target = random_pairs(1500, 60, torch.float64)
    module = LOSSES[name](focal_gamma=gamma)
    ours, ours_grad = _grad(module, pred, target)
    expected, expected_grad = _grad(lambda p, t: _plain_iou(p, t) ** gamma * BASE[name](p, t), pred, target)
    torch.testing.assert_close(ours, expected, atol=1e-7, rtol=1e-6)
    torch.testing.assert_close(ours_grad, expected_grad, atol=1e-8, rtol=1e-5)
    assert module.loss_state() == {}  # no running mean without the Wise focusing
    assert (ours < BASE[name](pred, target) - 1e-6).float().mean() > 0.9  # IoU < 1 lowers nearly every pair


@pytest.mark.parametrize("name", iou_based())
def test_focal_gamma_gives_disjoint_pairs_no_loss_and_no_gradient(name):
    far, far_target = random_pairs(300, 61, torch.float64, disjoint=True)
    near, near_target = random_pairs(300, 62, torch.float64)
    pred, target = torch.cat([far, near]), torch.cat([far_target, near_target])
    overlapping = _plain_iou(pred, target) > 1e-3
    assert not overlapping[:300].any() and overlapping[300:].sum() > 250
    module = LOSSES[name](focal_gamma=0.5).eval()
    loss, grad = _grad(lambda p, t: module(p, t, **_context(module)), pred, target)
    assert torch.equal(loss[:300], torch.zeros(300, dtype=torch.float64))
    assert torch.equal(grad[:300], torch.zeros(300, 4, dtype=torch.float64))
    assert (grad[overlapping].abs().sum(1) > 0).all()  # the overlapping pairs still learn


# ---- (d) the IoU + Gaussian mix --------------------------------------------------------------------

# (box loss, its reference, mix, ratio, box_nwd_constant); the reference of 1 - S: 1 - NWD or the GCD loss
MIX_CASES = [
    ("ciou", reference_ciou, "nwd", 0.5, 12.8),
    ("ciou", reference_ciou, "nwd", 0.3, 40.0),
    ("giou", BASE["giou"], "gcd", 0.75, 12.8),
    ("eiou", reference_eiou, "gcd", 0.2, 12.8),
    ("iou", BASE["iou"], "gcd", 0.5, 12.8),
    ("gcd", reference_gcd, "nwd", 0.6, 20.0),  # the mix is no IoU option: the Gaussian losses take it too
    ("nwd", lambda p, t: reference_nwd(p, t, 25.0), "gcd", 0.4, 25.0),  # box_nwd_constant: the loss's C too
]


def _one_minus_similarity(mix, constant):
    return (lambda p, t: reference_nwd(p, t, constant)) if mix == "nwd" else reference_gcd


@pytest.mark.parametrize("name,reference,mix,ratio,constant", MIX_CASES,
                         ids=[f"{c[0]}-{c[2]}-{c[3]}-{c[4]}" for c in MIX_CASES])
@pytest.mark.parametrize("disjoint", [False, True])
def test_the_mix_is_r_times_the_loss_plus_1_minus_r_times_1_minus_s(name, reference, mix, ratio, constant, disjoint):
    kit = LossKit(box_loss=name, box_gaussian_mix=mix, box_gaussian_mix_ratio=ratio, box_nwd_constant=constant)
    pred, target = random_pairs(1500, 70, torch.float64, disjoint)
    ours, ours_grad = _grad(kit.box, pred, target)
    gaussian = _one_minus_similarity(mix, constant)
    expected, expected_grad = _grad(lambda p, t: ratio * reference(p, t) + (1 - ratio) * gaussian(p, t),
                                    pred, target)
    torch.testing.assert_close(ours, expected, atol=1e-7, rtol=1e-6)
    torch.testing.assert_close(ours_grad, expected_grad, atol=1e-8, rtol=1e-5)
    assert kit.loss_state() == {}
    assert (ours - reference(pred, target)).abs().max() > 1e-3  # the mix changed the loss


def test_nwd_mixed_with_nwd_is_nwd_the_constant_being_one_setting():
    # box_nwd_constant is the nwd loss's C and the mix's: r (1 - S) + (1 - r)(1 - S), whatever r
    pred, target = random_pairs(500, 72, torch.float64)
    kit = LossKit(box_loss="nwd", box_gaussian_mix="nwd", box_gaussian_mix_ratio=0.4, box_nwd_constant=25.0)
    assert kit.box.values["constant"] == kit.box.box_weighting.nwd_constant == 25.0
    torch.testing.assert_close(kit.box(pred, target), reference_nwd(pred, target, 25.0), atol=1e-12, rtol=1e-12)


def test_the_mix_gives_disjoint_pairs_the_gaussian_gradient():
    # YOLOX's IoU loss is flat where the boxes are apart; the Gaussian part still pulls them together
    pred, target = random_pairs(300, 71, torch.float64, disjoint=True)
    _, plain = _grad(LOSSES["iou"](), pred, target)
    _, mixed = _grad(LOSSES["iou"](gaussian_mix="gcd", gaussian_mix_ratio=0.5), pred, target)
    _, gaussian = _grad(reference_gcd, pred, target)
    assert torch.equal(plain, torch.zeros_like(plain))
    torch.testing.assert_close(mixed, 0.5 * gaussian, atol=1e-10, rtol=1e-6)
    assert (mixed.abs().sum(1) > 0).all()


# ---- (e) the order in which they compose ------------------------------------------------------------

MODIFIERS = dict(inner_ratio=0.8, focaler_low=0.1, focaler_high=0.9)


def _modified(reference):
    """The loss with IoU' (Inner, then Focaler) in IoU's place: L + IoU - IoU' for ciou and diou."""
    return reference_with_modified_iou("ciou", reference, ratio=0.8, low=0.1, high=0.9)


def test_the_weights_multiply_the_whole_modified_and_mixed_loss():
    pred, target = random_pairs(1500, 80, torch.float64)
    r, gamma, weight = 0.6, 0.5, 3.0
    module = LOSSES["ciou"](**MODIFIERS, focal_gamma=gamma, gaussian_mix="gcd", gaussian_mix_ratio=r, weight=weight)
    modified = _modified(reference_ciou)

    def expected(p, t):
        return weight * _plain_iou(p, t) ** gamma * (r * modified(p, t) + (1 - r) * reference_gcd(p, t))

    ours, ours_grad = _grad(module, pred, target)
    want, want_grad = _grad(expected, pred, target)
    torch.testing.assert_close(ours, want, atol=1e-7, rtol=1e-6)
    torch.testing.assert_close(ours_grad, want_grad, atol=1e-8, rtol=1e-5)
    # the orders it is not: the weight on the plain loss with the modifiers' term added after, the
    # mix inside the weight's reach only partly, or the weight read from the modified IoU
    iou = _plain_iou(pred, target)
    inner = reference_with_modified_iou("iou", ratio=0.8, low=0.1, high=0.9)
    modified_iou = (1 - inner(pred, target)).sqrt().detach()  # IoU' from 1 - IoU'^2
    wrong = [
        weight * (iou**gamma * r * reference_ciou(pred, target) + r * (iou - modified_iou)
                  + (1 - r) * reference_gcd(pred, target)),
        weight * (iou**gamma * r * modified(pred, target) + (1 - r) * reference_gcd(pred, target)),
        weight * modified_iou**gamma * (r * modified(pred, target) + (1 - r) * reference_gcd(pred, target)),
    ]
    for other in wrong:
        assert (ours - other).abs().max() > 1e-3


@pytest.mark.parametrize("version", ["v2", "v3"])
def test_the_wise_weight_multiplies_the_whole_modified_and_mixed_loss(version):
    pred, target = random_pairs(1500, 81, torch.float64)
    r, constant = 0.7, 30.0
    kit = LossKit(box_loss="diou", box_inner_ratio=0.8, box_focaler_low=0.1, box_focaler_high=0.9,
                  box_wise_focusing=version, box_wise_momentum=1.0, box_gaussian_mix="nwd",
                  box_gaussian_mix_ratio=r, box_nwd_constant=constant, box_focal_gamma=1.0, box_loss_weight=2.0)
    modified = _modified(reference_diou)
    focused = reference_focused(lambda p, t: 2.0 * _plain_iou(p, t) * (
        r * modified(p, t) + (1 - r) * reference_nwd(p, t, constant)), version, 1.0)
    ours, ours_grad = _grad(kit.box.train(), pred, target)
    want, want_grad = _grad(focused, pred, target)
    torch.testing.assert_close(ours, want, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(ours_grad, want_grad, atol=1e-7, rtol=1e-5)
    # the outlier degree is the plain IoU's: its batch mean is the state
    assert kit.loss_state()["box.diou.wise_mean"].item() == pytest.approx(
        (1 - _plain_iou(pred, target)).mean().item(), rel=1e-6)


# ---- (f) refused in one line, naming the setting ---------------------------------------------------

@pytest.mark.parametrize("name", ["nwd", "gcd"])
@pytest.mark.parametrize("option,value,default", [("wise_focusing", "v3", "off"), ("wise_focusing", "v2", "off"),
                                                  ("focal_gamma", 0.5, 0.0)])
def test_the_weights_are_refused_for_the_gaussian_losses(name, option, value, default):
    with pytest.raises(ValueError) as info:
        LossKit(box_loss=name, **{f"box_{option}": value})
    assert str(info.value) == (f"box_{option} weights an IoU-based box loss, and {name} is not one; "
                               f"leave it at {default}")
    with pytest.raises(ValueError) as info:
        LOSSES[name](**{option: value})
    assert str(info.value) == f"{name} {option} weights an IoU-based box loss, and {name} is not one; leave it at {default}"


@pytest.mark.parametrize("version", ["v2", "v3"])
def test_wise_focusing_is_refused_for_wiou_v3(version):
    words = "adds Wise-IoU's focusing, which wiou_v3 has of its own; leave it at off (wiou_v3 is wiou with it at v3)"
    with pytest.raises(ValueError) as info:
        LossKit(box_loss="wiou_v3", box_wise_focusing=version)
    assert str(info.value) == f"box_wise_focusing {words}"
    with pytest.raises(ValueError) as info:
        LOSSES["wiou_v3"](wise_focusing=version)
    assert str(info.value) == f"wiou_v3 wise_focusing {words}"
    # its other options it takes
    LossKit(box_loss="wiou_v3", box_focal_gamma=0.5, box_gaussian_mix="gcd")


@pytest.mark.parametrize("settings,words", [
    (dict(box_wise_focusing="v4"), "box_wise_focusing must be one of off, v2, v3; got 'v4'"),
    (dict(box_gaussian_mix="wasserstein"), "box_gaussian_mix must be one of off, nwd, gcd; got 'wasserstein'"),
    (dict(box_gaussian_mix_ratio=0.0), r"box_gaussian_mix_ratio must be in (0, 1), got 0.0"),
    (dict(box_gaussian_mix_ratio=1.0), r"box_gaussian_mix_ratio must be in (0, 1), got 1.0"),
    (dict(box_focal_gamma=-0.5), "box_focal_gamma must be a finite number >= 0, got -0.5"),
    (dict(box_focal_gamma=float("inf")), "box_focal_gamma must be a finite number >= 0, got inf"),
    (dict(box_wise_alpha=0.0), "box_wise_alpha must be a finite number > 0, got 0.0"),
    (dict(box_wise_delta=-1.0), "box_wise_delta must be a finite number > 0, got -1.0"),
    (dict(box_wise_momentum=0.0), "box_wise_momentum must be in (0, 1], got 0.0"),
    (dict(box_wise_momentum=1.5), "box_wise_momentum must be in (0, 1], got 1.5"),
    (dict(box_nwd_constant=0.0), "box_nwd_constant must be a finite number > 0, got 0.0"),
])
def test_bad_values_are_one_line_naming_the_setting(settings, words):
    with pytest.raises(ValueError) as info:
        LossKit(box_loss="ciou", **settings)
    assert str(info.value) == words and "\n" not in str(info.value)


@pytest.mark.parametrize("options,words", [
    (dict(wise_focusing="v4"), "ciou wise_focusing must be one of off, v2, v3, got 'v4'"),
    (dict(gaussian_mix_ratio=2.0), "ciou gaussian_mix_ratio must be in (0, 1), got 2.0"),
    (dict(focal_gamma=-1.0), "ciou focal_gamma must be a finite number >= 0, got -1.0"),
])
def test_bad_module_options_are_one_line_naming_the_option(options, words):
    with pytest.raises(ValueError) as info:
        LOSSES["ciou"](**options)
    assert str(info.value) == words


# ---- (g) the Wise focusing's running mean: the kit's state -----------------------------------------

def test_the_running_mean_is_the_kits_state_saved_and_loaded():
    settings = dict(box_loss="ciou", box_wise_focusing="v3", box_wise_momentum=0.2)
    kit = LossKit(**settings).train()
    assert {k: v.item() for k, v in kit.loss_state().items()} == {"box.ciou.wise_mean": 1.0,
                                                                 "box.ciou.wise_updates": 0.0}
    expected = 1.0
    for seed in range(3):
        pred, target = random_pairs(64, 90 + seed, torch.float64)
        kit.box(pred, target)
        expected += 0.2 * ((1 - _plain_iou(pred, target)).mean().item() - expected)
    state = kit.loss_state()
    assert state["box.ciou.wise_updates"].item() == 3
    assert state["box.ciou.wise_mean"].item() == pytest.approx(expected, rel=1e-6)
    saved = {k: v.clone() for k, v in state.items()}
    fresh = LossKit(**settings)
    assert not torch.equal(fresh.loss_state()["box.ciou.wise_mean"], saved["box.ciou.wise_mean"])
    fresh.load_loss_state(saved)
    assert all(torch.equal(fresh.loss_state()[k], v) for k, v in saved.items())
    saved["box.ciou.wise_mean"] += 1  # a copy: changing it changes nothing in the kit
    assert not torch.equal(fresh.loss_state()["box.ciou.wise_mean"], saved["box.ciou.wise_mean"])
    pred, target = random_pairs(64, 99, torch.float64)
    assert torch.equal(fresh.train().box(pred, target), kit.box(pred, target))  # and it goes on the same
    assert all(torch.equal(fresh.loss_state()[k], v) for k, v in kit.loss_state().items())


def test_a_state_that_does_not_fit_is_refused_in_one_line():
    trained = LossKit(box_loss="giou", box_wise_focusing="v2").train()
    trained.box(*random_pairs(16, 1))
    state = trained.loss_state()
    for kit, words in [(LossKit(box_loss="giou"), "which keeps no state"),
                       (LossKit(box_loss="giou", box_focal_gamma=0.5), "which keeps no state"),
                       (LossKit(box_loss="ciou", box_wise_focusing="v2"), "which keeps ['box.ciou.wise_mean'"),
                       (LossKit(box_loss="giou", box_wise_focusing="v2"), "(none) does not fit")]:
        with pytest.raises(ValueError) as info:
            kit.load_loss_state({} if "(none)" in words else state)
        assert words in str(info.value) and "\n" not in str(info.value)
    # the loss's own check: the keys and the values
    loss = LOSSES["giou"](wise_focusing="v2")
    for bad, words in [({"wise_mean": torch.tensor(0.5)}, "the giou loss's Wise focusing keeps mean, updates"),
                       ({"wise_mean": torch.tensor(float("nan")), "wise_updates": torch.tensor(1.0)},
                        "the giou loss's Wise focusing's mean must be one finite number >= 0"),
                       ({"wise_mean": torch.tensor(0.5), "wise_updates": torch.tensor(-1.0)},
                        "the giou loss's Wise focusing's updates must be one finite number >= 0")]:
        with pytest.raises(ValueError) as info:
            loss.load_loss_state(bad)
        assert str(info.value).startswith(words) and "\n" not in str(info.value)
    with pytest.raises(ValueError) as info:
        LOSSES["giou"](focal_gamma=0.5).load_loss_state({"wise_mean": torch.tensor(0.5)})
    assert str(info.value) == "the giou loss keeps no state, but was given ['wise_mean']"


def test_eval_mode_and_empty_batches_leave_the_running_mean():
    loss = LOSSES["giou"](wise_focusing="v2", wise_momentum=0.5).eval()
    pred, target = random_pairs(200, 95, torch.float64)
    out = loss(pred, target)
    assert {k: v.item() for k, v in loss.loss_state().items()} == {"wise_mean": 1.0, "wise_updates": 0.0}
    torch.testing.assert_close(out, reference_focused(BASE["giou"], "v2", 0.5)(pred, target, training=False))
    loss.train()
    empty = torch.zeros(0, 4, dtype=torch.float64, requires_grad=True)
    total = loss(empty, torch.zeros(0, 4, dtype=torch.float64)).sum()
    total.backward()
    assert total.item() == 0 and loss.loss_state()["wise_updates"].item() == 0
    with torch.no_grad():  # training without gradient (as under YOLOX's autocast) still moves it
        loss(pred, target)
    assert loss.loss_state()["wise_updates"].item() == 1 and loss.loss_state()["wise_mean"].item() != 1.0
    assert loss.box_weighting.running.mean.grad_fn is None


def test_the_head_keeps_yoloxs_state_dict_and_checkpoints_the_running_mean():
    from yolox_focal import FocalYOLOXHead
    from yolox_focal.adapter.flavour import HeadBase as YOLOXHead
    from yolox_focal.runtime.loss_state import put_loss_state, restore_loss_state

    def model(**settings):
        torch.manual_seed(0)
        wrapper = nn.Module()
        wrapper.head = FocalYOLOXHead(3, 0.25, **settings)
        return wrapper

    settings = dict(box_loss="ciou", box_wise_focusing="v3", box_gaussian_mix="gcd")
    trained = model(**settings)
    stock = YOLOXHead(3, 0.25)
    stock.load_state_dict(trained.head.state_dict(), strict=True)
    trained.head.load_state_dict(stock.state_dict(), strict=True)
    assert list(trained.head.state_dict()) == list(stock.state_dict())
    feats, labels, imgs = head_inputs(3)
    trained.head.train()(feats, labels, imgs)[0].backward()
    assert trained.head.loss_kit.loss_state()["box.ciou.wise_updates"].item() == 1
    twin = copy.deepcopy(trained.head)  # as YOLOX's ModelEMA copies the model: a state of its own
    twin.loss_kit.box.train()(*random_pairs(8, 3, torch.float32))
    assert trained.head.loss_kit.loss_state()["box.ciou.wise_updates"].item() == 1
    ckpt = put_loss_state({"model": trained.state_dict()}, trained)
    assert set(ckpt["loss_kit"]) == {"box.ciou.wise_mean", "box.ciou.wise_updates"}
    resumed = model(**settings)
    restore_loss_state(ckpt, resumed)
    assert all(torch.equal(resumed.head.loss_kit.loss_state()[k], v) for k, v in ckpt["loss_kit"].items())
    assert resumed.head.loss_kit.loss_state()["box.ciou.wise_mean"].item() != 1.0
    with pytest.raises(ValueError, match="does not fit this loss kit, which keeps no state"):
        restore_loss_state(ckpt, model(box_loss="ciou", box_gaussian_mix="gcd"))


# ---- (h) every option off is the loss, bit for bit ---------------------------------------------------

OFF = {option: OPTIONS[option].default for option in BOX_WEIGHTING}
# the options that only matter with another on, changed: still off
IDLE = dict(OFF, wise_alpha=2.5, wise_delta=2.0, wise_momentum=0.3, gaussian_mix_ratio=0.2, nwd_constant=40.0)


@pytest.mark.parametrize("name", box_losses())
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("setting", [OFF, IDLE], ids=["off", "idle"])
def test_every_option_off_is_the_loss_bit_for_bit(name, dtype, setting):
    cls = LOSSES[name]
    options = {k: v for k, v in setting.items() if k in cls.options()}
    assert set(options) == set(BOX_WEIGHTING)  # every box loss takes them (and refuses them on)
    module, plain = cls(**options).train(), cls().train()
    assert module.box_weighting is None
    for seed in range(2):
        pred, target = random_pairs(300, 100 + seed, dtype, disjoint=seed == 1)
        ours, ours_grad = _grad(lambda p, t: module(p, t, **_context(module)), pred, target)
        theirs, their_grad = _grad(lambda p, t: plain(p, t, **_context(plain)), pred, target)
        assert torch.equal(ours, theirs) and torch.equal(ours_grad, their_grad)
    assert set(module.loss_state()) == set(plain.loss_state())
    assert all(torch.equal(module.loss_state()[k], v) for k, v in plain.loss_state().items())


@pytest.mark.parametrize("name", box_losses())
def test_the_kit_with_every_box_option_at_yoloxs_value_is_the_loss(name):
    kit = LossKit(box_loss=name, **{f"box_{k}": v for k, v in OFF.items()})
    plain = LossKit(box_loss=name)
    assert kit.settings == plain.settings and kit.box.box_weighting is None
    pred, target = random_pairs(200, 110, torch.float32)
    assert torch.equal(kit.box.eval()(pred, target, input_size=INPUT_SIZE),
                       plain.box.eval()(pred, target, input_size=INPUT_SIZE))
    assert torch.equal(kit.box.eval()(pred, target, input_size=INPUT_SIZE),
                       LOSSES[name]().eval()(pred, target, input_size=INPUT_SIZE))


# ---- half precision and degenerate pairs -------------------------------------------------------------

ALL_ON = dict(wise_focusing="v3", focal_gamma=0.5, gaussian_mix="gcd", gaussian_mix_ratio=0.3)


@pytest.mark.parametrize("options", [ALL_ON, dict(ALL_ON, wise_focusing="v2", gaussian_mix="nwd"),
                                     dict(ALL_ON, **MODIFIERS)], ids=["v3-gcd", "v2-nwd", "modified"])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_boxes_compute_in_float32(options, dtype):
    pred, target = large_pairs(300, 120, dtype)  # areas float16 cannot hold
    module = LOSSES["ciou"](**options).eval()
    half = pred.clone().requires_grad_()
    loss = module(half, target)
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss, module(pred.float(), target.float()), atol=0, rtol=0)
    loss.sum().backward()
    assert half.grad.dtype == dtype and torch.isfinite(half.grad).all()


@pytest.mark.parametrize("options", [ALL_ON, dict(ALL_ON, wise_focusing="v2", gaussian_mix="nwd"),
                                     dict(ALL_ON, **MODIFIERS)], ids=["v3-gcd", "v2-nwd", "modified"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_degenerate_pairs_stay_finite(options, dtype):
    for case, (p, t) in DEGENERATE_PAIRS.items():
        module = LOSSES["ciou"](**options).train()
        pred = torch.tensor([p], dtype=dtype, requires_grad=True)
        loss = module(pred, torch.tensor([t], dtype=dtype))
        loss.sum().backward()
        assert torch.isfinite(loss).all() and torch.isfinite(pred.grad).all() and (loss >= 0).all(), case
        assert torch.isfinite(module.loss_state()["wise_mean"]), case


def test_wiou_v1_reference_is_what_the_focusing_multiplies():
    # the references above build on these: wiou's own against its reference, so (a) compares like with like
    pred, target = random_pairs(300, 130, torch.float64)
    torch.testing.assert_close(wiou_loss(pred, target), reference_wiou(pred, target), atol=1e-7, rtol=1e-7)
