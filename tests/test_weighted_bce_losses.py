"""Slide loss, Poly-1 (on BCE and on focal), MAL and ATFL against float64 references written from their papers
(tests/references.py): values, gradients, gradcheck, extreme logits, half precision, errors."""

import math

import pytest
import torch
import torch.nn.functional as F

from references import (class_targets, mixed_targets, reference_atfl, reference_mal, reference_poly1,
                        reference_poly1_focal, reference_slide, sigmoid)
from yolox_focal.losses.atfl import MAX_WEIGHT, ATFLLoss, atfl_loss, max_exponent
from yolox_focal.losses.mal import MALLoss, mal_loss
from yolox_focal.losses.declare import LOSSES
from yolox_focal.losses.focal import focal_loss
from yolox_focal.losses.poly import Poly1FocalLoss, Poly1Loss, poly1_focal_loss, poly1_loss
from yolox_focal.losses.slide import SlideEMALoss, SlideLoss, slide_loss, slide_weight

pytestmark = pytest.mark.any_yolox

# name -> (function(x, t, **params), reference(x, t, **params), parameter sets)
ELEMENTWISE = {
    "poly1": (poly1_loss, reference_poly1, [dict(epsilon=1.0), dict(epsilon=-1.0), dict(epsilon=2.5),
                                             dict(epsilon=0.0)]),
    "poly1_focal": (poly1_focal_loss, reference_poly1_focal,
                    [dict(epsilon=1.0, gamma=1.5, alpha=0.25), dict(epsilon=-1.0, gamma=2.0, alpha=None),
                     dict(epsilon=0.5, gamma=0.5, alpha=0.75), dict(epsilon=2.0, gamma=0.0, alpha=None),
                     dict(epsilon=-0.3, gamma=0.3, alpha=0.5)]),
    "slide": (slide_loss, reference_slide, [{}, dict(mean_iou=0.6), dict(mean_iou=0.05)]),
    "mal": (mal_loss, reference_mal, [dict(gamma=1.5), dict(gamma=0.5), dict(gamma=0.0), dict(gamma=3.0)]),
    "atfl": (atfl_loss, reference_atfl, [dict(mean=0.3), dict(mean=0.9, lam=2.0), dict(mean=1.0)]),
}
CASES = [(name, params) for name, (_, _, sets) in ELEMENTWISE.items() for params in sets]
IDS = [f"{name}-{'-'.join(f'{k}={v}' for k, v in params.items())}" for name, params in CASES]


def _reference_args(name, params):
    # the reference of slide takes mu as "mean"; atfl caps -ln p_t (random logits stay below the cap)
    if name == "atfl":
        return dict(params, max_exponent=max_exponent(params.get("lam", 1.5)))
    return {"mean": params["mean_iou"]} if name == "slide" and params else params


def _targets(name, n, generator, dtype=torch.float64):
    """Soft, hard and zero targets; for slide, YOLOX's class targets (one-hot times an IoU)."""
    if name == "slide":
        return class_targets(n // 8, 8, generator, dtype).reshape(-1)
    return mixed_targets(n, generator, dtype)


def _grad(fn, x, t):
    x = x.detach().clone().requires_grad_()
    loss = fn(x, t)
    (g,) = torch.autograd.grad(loss.sum(), x)
    return loss.detach(), g


@pytest.mark.parametrize("name,params", CASES, ids=IDS)
def test_matches_float64_reference(name, params):
    fn, ref, _ = ELEMENTWISE[name]
    g = torch.Generator().manual_seed(11)
    x = torch.randn(4000, generator=g, dtype=torch.float64) * 4
    t = _targets(name, 4000, g)
    ours, ours_grad = _grad(lambda z, t: fn(z, t, **params), x, t)
    expected, expected_grad = _grad(lambda z, t: ref(z, t, **_reference_args(name, params)), x, t)
    assert ours.dtype == torch.float64
    torch.testing.assert_close(ours, expected, atol=1e-9, rtol=1e-7)
    torch.testing.assert_close(ours_grad, expected_grad, atol=1e-9, rtol=1e-7)


@pytest.mark.parametrize("name,params", CASES, ids=IDS)
def test_float32_matches_float64_reference(name, params):
    fn, ref, _ = ELEMENTWISE[name]
    g = torch.Generator().manual_seed(5)
    x = torch.randn(64 * 800, generator=g) * 3 - 2
    t = _targets(name, 64 * 800, g, torch.float32)
    ours, ours_grad = _grad(lambda z, t: fn(z, t, **params), x, t)
    expected, expected_grad = _grad(lambda z, t: ref(z, t, **_reference_args(name, params)), x.double(),
                                    t.double())
    assert ours.dtype == torch.float32
    torch.testing.assert_close(ours.double(), expected, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(ours_grad.double(), expected_grad, atol=1e-5, rtol=1e-4)


# ATFL's exponents are out of the graph by design (numerical differentiation sees them move): its
# gradient is checked against its reference, which detaches them too.
@pytest.mark.parametrize("name,params", [c for c in CASES if c[0] != "atfl"],
                         ids=[i for c, i in zip(CASES, IDS) if c[0] != "atfl"])
def test_gradcheck(name, params):
    fn = ELEMENTWISE[name][0]
    g = torch.Generator().manual_seed(3)
    x = (torch.randn(64, generator=g, dtype=torch.float64) * 3).requires_grad_()
    t = _targets(name, 64, g)
    assert torch.autograd.gradcheck(lambda z: fn(z, t, **params), (x,))


EXTREME = torch.tensor([-1e4, -1e3, -90.0, -20.0, -1e-6, 0.0, 1e-6, 20.0, 90.0, 1e3, 1e4])
ALL_DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]


@pytest.mark.parametrize("name,params", CASES, ids=IDS)
@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_finite_for_extreme_logits(name, params, dtype):
    fn, ref, _ = ELEMENTWISE[name]
    x = EXTREME.repeat(4).to(dtype).requires_grad_()
    t = torch.cat([torch.zeros(11), torch.ones(11), torch.full((11,), 0.3), torch.full((11,), 0.8)]).to(dtype)
    loss = fn(x, t, **params)
    loss.sum().backward()
    assert torch.isfinite(loss).all() and torch.isfinite(x.grad).all()
    # where the plain float64 reference is finite (|x| <= 20), the values agree with it
    moderate = EXTREME.abs().repeat(4) <= 20
    expected = ref(x.detach().double(), t.double(), **_reference_args(name, params))
    torch.testing.assert_close(loss.double()[moderate], expected[moderate], atol=2e-2, rtol=2e-2)


@pytest.mark.parametrize("name,params", CASES, ids=IDS)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_input_computes_in_float32(name, params, dtype):
    fn = ELEMENTWISE[name][0]
    g = torch.Generator().manual_seed(2)
    x = torch.randn(2000, generator=g) * 4
    t = _targets(name, 2000, g, torch.float32)
    xh = x.to(dtype).requires_grad_()
    loss = fn(xh, t.to(dtype), **params)
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss, fn(x.to(dtype).float(), t.to(dtype).float(), **params), atol=0, rtol=0)
    loss.sum().backward()
    assert xh.grad.dtype == dtype and torch.isfinite(xh.grad).all()


@pytest.mark.parametrize("name,params", CASES, ids=IDS)
def test_reductions_target_constant_and_module(name, params):
    fn = ELEMENTWISE[name][0]
    g = torch.Generator().manual_seed(4)
    x = torch.randn(8, 70, generator=g, requires_grad=True)
    t = _targets(name, 560, g, torch.float32).reshape(8, 70).requires_grad_()
    none = fn(x, t, **params)
    assert none.shape == x.shape
    torch.testing.assert_close(fn(x, t, **params, reduction="sum"), none.sum())
    torch.testing.assert_close(fn(x, t, **params, reduction="mean"), none.mean())
    none.sum().backward()
    assert t.grad is None and x.grad is not None
    settings = {k: v for k, v in params.items() if k not in ("mean_iou", "mean")}  # slide's mu, atfl's mean: state
    # atfl's module: its first training batch sets the running mean to that batch's mean p_t
    state = {"mean": _mean_p_t(x.detach(), t.detach())} if name == "atfl" else {}
    torch.testing.assert_close(LOSSES[name](**settings)(x, t), fn(x, t, **settings, **state), atol=0, rtol=1e-6)


# ---- what each loss is ------------------------------------------------------------------------

def test_epsilon_0_is_bce_and_focal():
    g = torch.Generator().manual_seed(6)
    x = torch.randn(3000, generator=g) * 4
    t = mixed_targets(3000, g, torch.float32)
    torch.testing.assert_close(poly1_loss(x, t, epsilon=0), F.binary_cross_entropy_with_logits(x, t, reduction="none"))
    assert torch.equal(poly1_focal_loss(x, t, epsilon=0, gamma=2.0, alpha=0.25), focal_loss(x, t, 2.0, 0.25))


@pytest.mark.parametrize("epsilon", [-1.0, -0.5])
def test_poly1_stays_non_negative_down_to_epsilon_minus_1(epsilon):
    x = torch.linspace(-30, 30, 2001, dtype=torch.float64).repeat(3)
    t = torch.cat([torch.zeros(2001), torch.ones(2001), torch.full((2001,), 0.4)]).double()
    # down to float64 rounding: at epsilon -1 the loss is BCE - (1 - p_t), a difference of two equal
    # values where p_t is near 1; BCE keeps its log(1 + e^-|x|) term there (softplus would drop it
    # beyond x = 20 and leave -e^-x ~ -2e-9)
    assert (poly1_loss(x, t, epsilon=epsilon) >= -1e-15).all()


def test_slide_weights_by_where_the_iou_lies_against_the_mean():
    # mu = 0.6: below 0.5 weight 1, in (0.5, 0.6) e^(1 - mu), from 0.6 on e^(1 - t); negatives 1
    t = torch.tensor([0.0, 0.3, 0.5, 0.55, 0.6, 0.9, 1.0])
    expected = torch.tensor([1, 1, 1, math.exp(0.4), math.exp(0.4), math.exp(0.1), 1.0])
    torch.testing.assert_close(slide_weight(t, torch.tensor(0.6)), expected)
    x = torch.zeros(7)
    torch.testing.assert_close(slide_loss(x, t, 0.6), expected * F.binary_cross_entropy_with_logits(x, t, reduction="none"))


def test_slide_mean_is_that_of_the_nonzero_targets_floored_at_0_2():
    x = torch.zeros(2, 4)
    t = torch.tensor([[0.0, 0.7, 0.0, 0.0], [0.0, 0.0, 0.0, 0.5]])  # two positives: mu = 0.6
    assert torch.equal(slide_loss(x, t), slide_loss(x, t, 0.6))
    low = torch.tensor([[0.0, 0.05, 0.0, 0.0]])  # mu 0.05 would weigh the negatives e^0.95: floored
    weight = slide_loss(torch.zeros(1, 4), low) / F.binary_cross_entropy_with_logits(torch.zeros(1, 4), low,
                                                                                    reduction="none")
    torch.testing.assert_close(weight, torch.ones(1, 4))
    empty, x = torch.zeros(3, 4), torch.randn(3, 4)  # no positive at all: every weight 1
    torch.testing.assert_close(slide_loss(x, empty), F.binary_cross_entropy_with_logits(x, empty, reduction="none"))


def test_slide_is_bce_on_hard_targets():
    # why it serves classification only: on YOLOX's hard objectness targets every weight is 1
    g = torch.Generator().manual_seed(7)
    x = torch.randn(4000, generator=g) * 3
    t = (torch.rand(4000, generator=g) < 0.05).float()
    torch.testing.assert_close(slide_loss(x, t), F.binary_cross_entropy_with_logits(x, t, reduction="none"))


BAD = [
    (lambda: poly1_loss(torch.zeros(3), torch.zeros(3), epsilon=-1.5), r"poly1 epsilon must be a finite number >= -1, got -1.5"),
    (lambda: Poly1Loss(epsilon=float("nan")), "poly1 epsilon"),
    (lambda: Poly1FocalLoss(gamma=-1), "poly1_focal gamma"),
    (lambda: poly1_focal_loss(torch.zeros(3), torch.zeros(3), alpha=2), "poly1_focal alpha"),
    (lambda: poly1_focal_loss(torch.zeros(3), torch.zeros(3), epsilon="1"), "poly1_focal epsilon"),
    (lambda: SlideEMALoss(momentum=0), r"slide_ema momentum must be in \(0, 1\], got 0"),
    (lambda: poly1_loss(torch.zeros(3), torch.zeros(4)), r"same shape.*\(3,\).*\(4,\)"),
    (lambda: slide_loss(torch.zeros(3), torch.tensor([0.0, 1.5, 0.0])), r"\[0, 1\]"),
    (lambda: poly1_focal_loss(torch.zeros(3), torch.tensor([0.0, -1.0, 0.0])), r"\[0, 1\]"),
    (lambda: slide_loss(torch.zeros(3), torch.zeros(3), reduction="avg"), "reduction"),
]


@pytest.mark.parametrize("call,pattern", BAD)
def test_bad_arguments_one_line(call, pattern):
    with pytest.raises(ValueError, match=pattern) as info:
        call()
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("name,branches", [("poly1", ("obj", "cls")), ("poly1_focal", ("obj", "cls")),
                                           ("slide", ("cls",)), ("slide_ema", ("cls",)), ("mal", ("cls", "obj")),
                                           ("atfl", ("obj", "cls"))])
def test_declared_and_registered(name, branches):
    cls = LOSSES[name]
    assert cls.branches == branches
    assert cls.stateful == (name in ("slide_ema", "atfl"))
    for param in cls.params.values():
        assert param.allows(param.default) and param.doc
    assert cls().state_dict() == {}
    assert {SlideLoss, SlideEMALoss, Poly1Loss, Poly1FocalLoss, MALLoss, ATFLLoss} <= set(LOSSES.values())


def _mean_p_t(x, t):
    p = sigmoid(x.double())
    return (t * p + (1 - t) * (1 - p)).mean()


def test_mal_targets_q_to_the_gamma_on_positives_and_weighs_negatives_by_p_to_the_gamma():
    x = torch.tensor([0.3, -1.2, 2.0, 0.5], dtype=torch.float64)
    t = torch.tensor([0.8, 0.4, 0.0, 0.0], dtype=torch.float64)
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    expected = torch.cat([bce(x[:2], t[:2] ** 1.5, reduction="none"),
                          torch.sigmoid(x[2:]) ** 1.5 * bce(x[2:], t[2:], reduction="none")])
    torch.testing.assert_close(mal_loss(x, t), expected, atol=1e-12, rtol=1e-12)


def test_atfl_keeps_a_running_mean_of_p_t_with_the_authors_momentum():
    g = torch.Generator().manual_seed(5)
    loss = ATFLLoss()
    batches = [(torch.randn(500, generator=g) * 2 + shift, (torch.rand(500, generator=g) > 0.9).float())
               for shift in (-3.0, 1.0, 0.0)]
    expected = None
    for x, t in batches:
        loss(x, t)
        batch = _mean_p_t(x, t).item()
        expected = batch if expected is None else 0.05 * expected + 0.95 * batch  # the first batch sets it
        assert loss.mean.item() == pytest.approx(expected, rel=1e-5)
    state = loss.loss_state()
    assert int(state["updates"]) == 3
    restored = ATFLLoss().eval()
    restored.load_loss_state(state)
    x, t = batches[0]
    torch.testing.assert_close(restored(x, t), atfl_loss(x, t, state["mean"]))  # eval: the mean stays


def test_atfl_splits_at_p_t_one_half_and_caps_the_hard_weight():
    # p_t > 0.5: (1 - p_t) ** -ln(mean); p_t <= 0.5: (lambda - p_t) ** -ln(p_t), -ln(p_t) capped so
    # that lambda ** -ln(p_t) is at most 1024
    x = torch.tensor([2.0, -0.5, -200.0], dtype=torch.float64)
    t = torch.ones(3, dtype=torch.float64)
    loss = atfl_loss(x, t, 0.5)
    p = torch.sigmoid(x)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(x, t, reduction="none")
    expected = bce * torch.stack([(1 - p[0]) ** -math.log(0.5), (1.5 - p[1]) ** -torch.log(p[1]),
                                  (1.5 - p[2]) ** (math.log(MAX_WEIGHT) / math.log(1.5))])
    torch.testing.assert_close(loss, expected, atol=0, rtol=1e-10)
