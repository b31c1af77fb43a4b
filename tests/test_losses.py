import math

import pytest
import torch
import torch.nn.functional as F
from torchvision.ops import sigmoid_focal_loss

from references import (mixed_targets, reference_bce_blur, reference_focal, reference_quality_focal,
                        reference_varifocal)
from yolox_focal import FocalLoss, focal_loss


PAIRS = [(0.0, None), (0.0, 0.25), (0.5, 0.25), (1.0, 0.5), (1.5, 0.25), (2.0, 0.75), (2.5, None),
         (0.3, 0.9), (3.7, 0.1)]


@pytest.mark.parametrize("gamma,alpha", PAIRS)
def test_matches_reference_on_soft_targets(gamma, alpha):
    g = torch.Generator().manual_seed(int(gamma * 10) + 1)
    x = (torch.randn(4000, generator=g, dtype=torch.float64) * 4).requires_grad_()
    t = torch.rand(4000, generator=g, dtype=torch.float64)
    t[:1000] = (t[:1000] > 0.5).double()  # hard targets mixed in
    ours = focal_loss(x, t, gamma, alpha)
    (ours_grad,) = torch.autograd.grad(ours.sum(), x)
    xr = x.detach().clone().requires_grad_()
    ref = reference_focal(xr, t, gamma, alpha)
    (ref_grad,) = torch.autograd.grad(ref.sum(), xr)
    torch.testing.assert_close(ours, ref, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(ours_grad, ref_grad, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("gamma,alpha", PAIRS)
def test_float32_matches_reference(gamma, alpha):
    g = torch.Generator().manual_seed(7)
    x = torch.randn(64, 8400, generator=g) * 3 - 4
    t = (torch.rand(64, 8400, generator=g) < 0.01).float()
    torch.testing.assert_close(focal_loss(x, t, gamma, alpha).double(),
                               reference_focal(x.double(), t.double(), gamma, alpha), atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("gamma,alpha", [(0.5, 0.25), (1.5, 0.25), (2.0, None), (0.3, 0.6)])
def test_gradcheck(gamma, alpha):
    g = torch.Generator().manual_seed(3)
    x = (torch.randn(40, generator=g, dtype=torch.float64) * 3).requires_grad_()
    t = torch.rand(40, generator=g, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda z: focal_loss(z, t, gamma, alpha), (x,))


def test_matches_torchvision_at_gamma_2():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 500, generator=g) * 3
    t = (torch.rand(3, 500, generator=g) > 0.8).float()
    for reduction in ("none", "mean", "sum"):
        torch.testing.assert_close(focal_loss(x, t, 2.0, 0.25, reduction),
                                   sigmoid_focal_loss(x, t, 0.25, 2.0, reduction),
                                   atol=1e-6, rtol=1e-5)


def test_gamma0_without_alpha_is_exactly_bce():
    x = torch.randn(1000) * 5
    t = torch.rand(1000)
    assert torch.equal(focal_loss(x, t, 0.0, None),
                       F.binary_cross_entropy_with_logits(x, t, reduction="none"))


@pytest.mark.parametrize("gamma", [0.0, 1e-3, 0.2, 0.5, 0.99, 1.0, 1.5, 2.0, 5.0])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
def test_finite_for_extreme_logits(gamma, dtype):
    big = torch.tensor([-1e4, -1e3, -90.0, -20.0, -1e-6, 0.0, 1e-6, 20.0, 90.0, 1e3, 1e4])
    x = big.repeat(3).to(dtype).requires_grad_()
    t = torch.cat([torch.zeros(11), torch.ones(11), torch.full((11,), 0.3)]).to(dtype)
    loss = focal_loss(x, t, gamma, 0.25)
    loss.sum().backward()
    assert torch.isfinite(loss).all() and torch.isfinite(x.grad).all()
    assert (loss >= 0).all()


def test_half_input_computes_in_float32():
    x = torch.randn(2000) * 4
    t = (torch.rand(2000) < 0.1).float()
    xh = x.half().requires_grad_()
    loss = focal_loss(xh, t.half())
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss, focal_loss(x.half().float(), t), atol=0, rtol=0)
    loss.sum().backward()
    assert xh.grad.dtype == torch.float16


def test_autocast_like_bce():
    x = torch.randn(8, 100)
    t = (torch.rand(8, 100) < 0.1).float()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = torch.nn.functional.linear(x, torch.eye(100))
        assert logits.dtype == torch.bfloat16
        loss = focal_loss(logits, t)
    assert loss.dtype == torch.float32 and torch.isfinite(loss).all()


def test_reductions_and_module():
    x = torch.randn(50)
    t = torch.rand(50)
    none = focal_loss(x, t, 2.0, 0.5)
    assert torch.allclose(focal_loss(x, t, 2.0, 0.5, "sum"), none.sum())
    assert torch.allclose(focal_loss(x, t, 2.0, 0.5, "mean"), none.mean())
    assert torch.equal(FocalLoss(2.0, 0.5)(x, t), none)
    assert "gamma=2.0" in repr(FocalLoss(2.0, 0.5))


def test_gradient_does_not_flow_into_targets_and_backward_twice():
    x = torch.randn(20, requires_grad=True)
    t = torch.rand(20, requires_grad=True)
    loss = focal_loss(x, t).sum()
    loss.backward(retain_graph=True)
    first = x.grad.clone()
    loss.backward()
    torch.testing.assert_close(x.grad, 2 * first)
    assert t.grad is None


@pytest.mark.parametrize("kwargs,words", [
    (dict(gamma=-0.5), "gamma"),
    (dict(gamma=float("nan")), "gamma"),
    (dict(gamma="2"), "gamma"),
    (dict(alpha=1.5), "alpha"),
    (dict(alpha=-0.1), "alpha"),
    (dict(reduction="avg"), "reduction"),
])
def test_bad_arguments(kwargs, words):
    with pytest.raises(ValueError, match=words):
        focal_loss(torch.zeros(3), torch.zeros(3), **kwargs)
    with pytest.raises(ValueError, match=words):
        FocalLoss(**kwargs)


def test_bad_inputs():
    with pytest.raises(ValueError, match=r"same shape.*\(3,\).*\(4,\)"):
        focal_loss(torch.zeros(3), torch.zeros(4))
    with pytest.raises(ValueError, match=r"\[0, 1\].*-1 to 0"):
        focal_loss(torch.zeros(3), torch.tensor([0.0, -1.0, 0.0]))
    with pytest.raises(ValueError, match=r"\[0, 1\].*2"):
        focal_loss(torch.zeros(3), torch.tensor([0.0, 2.0, 0.0]))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        focal_loss(torch.zeros(3), torch.tensor([0.0, math.nan, 0.0]))


def test_down_weights_easy_negatives():
    x = torch.tensor([-6.0, 0.0])  # an easy negative and an uncertain one
    t = torch.zeros(2)
    ratio = focal_loss(x, t) / F.binary_cross_entropy_with_logits(x, t, reduction="none")
    assert ratio[0] < 1e-3 * ratio[1]


# ---- quality focal, varifocal, BCE-blur, label smoothing ---------------------------------------
# References: the float64 formulas of tests/references.py.

from yolox_focal.losses import (BCEBlurLoss, QualityFocalLoss, VarifocalLoss,  # noqa: E402
                                bce_blur_loss, quality_focal_loss, smooth_targets, varifocal_loss)
from yolox_focal.losses import focal_loss as kit_focal_loss  # noqa: E402


def _call(fn, params):
    return lambda x, t, **kw: fn(x, t, *params, **kw)


# (name, our function, reference, module class, parameter sets)
KIT = {
    "qfocal": (quality_focal_loss, reference_quality_focal, QualityFocalLoss,
               [(2.0, None), (1.5, 0.25), (1.0, 0.5), (0.5, None), (0.25, 0.75), (3.0, 0.1), (0.0, None)]),
    "varifocal": (varifocal_loss, reference_varifocal, VarifocalLoss,
                  [(0.75, 2.0), (0.25, 1.5), (1.0, 1.0), (0.5, 0.5), (2.0, 0.3), (0.75, 0.0), (0.1, 3.7)]),
    "bce_blur": (bce_blur_loss, reference_bce_blur, BCEBlurLoss, [(0.05,), (0.0,), (0.2,), (1.0,), (7.5,)]),
}
KIT_CASES = [(name, params) for name, (_, _, _, sets) in KIT.items() for params in sets]


_mixed_targets = mixed_targets


@pytest.mark.parametrize("name,params", KIT_CASES)
def test_kit_matches_float64_reference(name, params):
    fn, ref, _, _ = KIT[name]
    g = torch.Generator().manual_seed(11)
    x = (torch.randn(4000, generator=g, dtype=torch.float64) * 4).requires_grad_()
    t = _mixed_targets(4000, g)
    ours = fn(x, t, *params)
    (ours_grad,) = torch.autograd.grad(ours.sum(), x)
    xr = x.detach().clone().requires_grad_()
    expected = ref(xr, t, *params)
    (expected_grad,) = torch.autograd.grad(expected.sum(), xr)
    assert ours.dtype == torch.float64
    torch.testing.assert_close(ours, expected, atol=1e-9, rtol=1e-7)
    torch.testing.assert_close(ours_grad, expected_grad, atol=1e-9, rtol=1e-7)


@pytest.mark.parametrize("name,params", KIT_CASES)
def test_kit_float32_matches_float64_reference(name, params):
    fn, ref, _, _ = KIT[name]
    g = torch.Generator().manual_seed(5)
    x = (torch.randn(64, 800, generator=g) * 3 - 2).requires_grad_()
    t = _mixed_targets(64 * 800, g, torch.float32).reshape(64, 800)
    ours = fn(x, t, *params)
    (ours_grad,) = torch.autograd.grad(ours.sum(), x)
    xr = x.detach().double().requires_grad_()
    expected = ref(xr, t.double(), *params)
    (expected_grad,) = torch.autograd.grad(expected.sum(), xr)
    assert ours.dtype == torch.float32
    # ill-conditioned cases amplify float32's rounding of p - t: for beta < 1 the gradient goes as
    # |p - t| ** (beta - 1), and BCE-blur at alpha = 0 has exp((p - t - 1) / 1e-4)
    rtol = 2e-3 if (name, params[0] < 1) == ("qfocal", True) or params == (0.0,) else 1e-4
    torch.testing.assert_close(ours.double(), expected, atol=1e-5, rtol=rtol)
    torch.testing.assert_close(ours_grad.double(), expected_grad, atol=1e-5, rtol=rtol)


@pytest.mark.parametrize("name,params", [c for c in KIT_CASES if c[1] != (0.0, None)])
def test_kit_gradcheck(name, params):
    fn = KIT[name][0]
    g = torch.Generator().manual_seed(3)
    x = (torch.randn(60, generator=g, dtype=torch.float64) * 3).requires_grad_()
    t = _mixed_targets(60, g)
    assert torch.autograd.gradcheck(lambda z: fn(z, t, *params), (x,))


EXTREME = torch.tensor([-1e4, -1e3, -90.0, -20.0, -1e-6, 0.0, 1e-6, 20.0, 90.0, 1e3, 1e4])
ALL_DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]


def _extreme_inputs(dtype):
    x = EXTREME.repeat(4).to(dtype).requires_grad_()
    t = torch.cat([torch.zeros(11), torch.ones(11), torch.full((11,), 0.3), torch.full((11,), 1e-3)]).to(dtype)
    return x, t


@pytest.mark.parametrize("name,params", KIT_CASES)
@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_kit_finite_for_extreme_logits(name, params, dtype):
    fn, ref = KIT[name][:2]
    x, t = _extreme_inputs(dtype)
    loss = fn(x, t, *params)
    loss.sum().backward()
    assert torch.isfinite(loss).all() and torch.isfinite(x.grad).all()
    assert (loss >= 0).all()
    # where the plain float64 reference is finite (|x| <= 20), the values agree with it
    moderate = EXTREME.abs().repeat(4) <= 20
    expected = ref(x.detach().double(), t.double(), *params)
    torch.testing.assert_close(loss.double()[moderate], expected[moderate], atol=2e-2, rtol=2e-2)


@pytest.mark.parametrize("gamma", [0.0, 0.4])  # 0: the plain-BCE path
@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_focal_without_alpha_finite_for_extreme_logits(gamma, dtype):
    x, t = _extreme_inputs(dtype)
    loss = kit_focal_loss(x, t, gamma, None)
    loss.sum().backward()
    assert loss.dtype == (torch.float64 if dtype == torch.float64 else torch.float32)
    assert torch.isfinite(loss).all() and torch.isfinite(x.grad).all() and (loss >= 0).all()


@pytest.mark.parametrize("name", list(KIT) + ["focal"])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_kit_half_input_computes_in_float32(name, dtype):
    fn = kit_focal_loss if name == "focal" else KIT[name][0]
    params = (0.0, None) if name == "focal" else KIT[name][3][0]  # focal's plain-BCE path too
    g = torch.Generator().manual_seed(2)
    x = torch.randn(2000, generator=g) * 4
    t = _mixed_targets(2000, g, torch.float32)
    xh = x.to(dtype).requires_grad_()
    loss = fn(xh, t.to(dtype), *params)
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss, fn(x.to(dtype).float(), t.to(dtype).float(), *params), atol=0, rtol=0)
    loss.sum().backward()
    assert xh.grad.dtype == dtype and torch.isfinite(xh.grad).all()


@pytest.mark.parametrize("name", list(KIT))
def test_kit_reductions_and_module(name):
    fn, _, module, sets = KIT[name]
    params = sets[1]
    g = torch.Generator().manual_seed(4)
    x = torch.randn(3, 70, generator=g)
    t = _mixed_targets(210, g, torch.float32).reshape(3, 70)
    none = fn(x, t, *params)
    assert none.shape == x.shape
    torch.testing.assert_close(fn(x, t, *params, reduction="sum"), none.sum())
    torch.testing.assert_close(fn(x, t, *params, reduction="mean"), none.mean())
    for reduction in ("none", "mean", "sum"):
        assert torch.equal(module(*params, reduction=reduction)(x, t), fn(x, t, *params, reduction=reduction))
    names = list(KIT[name][2].params)
    text = repr(module(*params, reduction="sum"))
    for key, value in zip(names, params):
        assert f"{key}={value}" in text
    assert "reduction='sum'" in text and text.startswith(module.__name__)
    assert torch.equal(module()(x, t), fn(x, t))  # defaults shared with the function


BAD_PARAMS = {
    "qfocal": [(dict(beta=-0.5), "beta"), (dict(beta=math.nan), "beta"), (dict(beta=math.inf), "beta"),
               (dict(beta="2"), "beta"), (dict(beta=None), "beta"), (dict(beta=True), "beta"),
               (dict(alpha=1.5), "alpha"), (dict(alpha=-0.1), "alpha"), (dict(alpha=math.nan), "alpha")],
    "varifocal": [(dict(alpha=0.0), "alpha"), (dict(alpha=-1.0), "alpha"), (dict(alpha=None), "alpha"),
                  (dict(alpha=math.inf), "alpha"), (dict(gamma=-0.1), "gamma"), (dict(gamma=math.nan), "gamma"),
                  (dict(gamma="2"), "gamma")],
    "bce_blur": [(dict(alpha=-0.01), "alpha"), (dict(alpha=math.inf), "alpha"), (dict(alpha=None), "alpha"),
                 (dict(alpha=math.nan), "alpha")],
}


@pytest.mark.parametrize("name,kwargs,word", [(n, k, w) for n, cases in BAD_PARAMS.items() for k, w in cases])
def test_kit_bad_parameters_one_line(name, kwargs, word):
    fn, _, module, _ = KIT[name]
    for build in (lambda: fn(torch.zeros(3), torch.zeros(3), **kwargs), lambda: module(**kwargs)):
        with pytest.raises(ValueError, match=word) as info:
            build()
        # one line naming the parameter, its range and the bad value
        assert "\n" not in str(info.value) and " must be " in str(info.value)
        assert repr(list(kwargs.values())[0]) in str(info.value)


@pytest.mark.parametrize("name", list(KIT))
def test_kit_bad_reduction_one_line(name):
    fn, _, module, _ = KIT[name]
    for build in (lambda: fn(torch.zeros(3), torch.zeros(3), reduction="avg"), lambda: module(reduction="avg")):
        with pytest.raises(ValueError, match="reduction must be one of.*'avg'") as info:
            build()
        assert "\n" not in str(info.value)


@pytest.mark.parametrize("name", list(KIT) + ["focal"])
def test_kit_bad_inputs_one_line(name):
    fn = kit_focal_loss if name == "focal" else KIT[name][0]
    params = (0.0, None) if name == "focal" else ()  # focal: also the plain-BCE path
    cases = [
        ((torch.zeros(3), torch.zeros(4)), r"same shape.*\(3,\).*\(4,\)"),
        ((torch.zeros(3, 1), torch.zeros(3)), r"same shape.*\(3, 1\).*\(3,\)"),  # no broadcasting
        ((torch.zeros(3), torch.tensor([0.0, -1.0, 0.0])), r"\[0, 1\].*-1 to 0"),
        ((torch.zeros(3), torch.tensor([0.0, 2.0, 0.0])), r"\[0, 1\].*0 to 2"),
        ((torch.zeros(3), torch.tensor([0.0, math.nan, 0.5])), r"\[0, 1\]"),
        ((torch.zeros(3, dtype=torch.long), torch.zeros(3)), r"floating-point logits.*int64"),
    ]
    for (x, t), pattern in cases:
        with pytest.raises(ValueError, match=pattern) as info:
            fn(x, t, *params)
        assert "\n" not in str(info.value)


@pytest.mark.parametrize("name,params", [(n, KIT[n][3][0]) for n in KIT] + [("focal", (0.0, None)),
                                                                            ("focal", (2.0, 0.25))])
def test_kit_no_gradient_into_target(name, params):
    fn = kit_focal_loss if name == "focal" else KIT[name][0]
    x = torch.randn(20, requires_grad=True)
    t = torch.rand(20).requires_grad_()
    loss = fn(x, t, *params).sum()
    assert torch.autograd.grad(loss, t, allow_unused=True, retain_graph=True) == (None,)
    loss.backward(retain_graph=True)
    first = x.grad.clone()
    loss.backward()  # the saved gradient survives a second backward
    torch.testing.assert_close(x.grad, 2 * first)
    assert t.grad is None


def test_varifocal_gradient_flows_through_the_negative_weight():
    # on a negative, d/dx [softplus(x) alpha p^gamma] differs from the detached-weight alpha p^gamma p
    x = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64, requires_grad=True)
    t = torch.zeros(3, dtype=torch.float64)
    (grad,) = torch.autograd.grad(varifocal_loss(x, t, 0.75, 2.0).sum(), x)
    p = torch.sigmoid(x.detach())
    detached = 0.75 * p**2 * p
    full = 0.75 * p**2 * (p + 2 * (1 - p) * F.softplus(x.detach()))
    torch.testing.assert_close(grad, full)
    assert (grad - detached).abs().min() > 1e-3


def test_yolov5_qfocal_configuration():
    """YOLOv5's QFocalLoss(nn.BCEWithLogitsLoss(), gamma=1.5, alpha=0.25), its formula written plainly."""
    g = torch.Generator().manual_seed(9)
    pred = (torch.randn(16, 80, generator=g) * 3 - 2).requires_grad_()
    true = _mixed_targets(16 * 80, g, torch.float32).reshape(16, 80)

    def yolov5(pred, true, gamma=1.5, alpha=0.25):
        loss = F.binary_cross_entropy_with_logits(pred, true, reduction="none")
        pred_prob = torch.sigmoid(pred)
        alpha_factor = true * alpha + (1 - true) * (1 - alpha)
        modulating_factor = torch.abs(true - pred_prob) ** gamma
        return (loss * alpha_factor * modulating_factor).mean()

    ours = quality_focal_loss(pred, true, beta=1.5, alpha=0.25, reduction="mean")
    (ours_grad,) = torch.autograd.grad(ours, pred)
    theirs = yolov5(pred, true)
    (their_grad,) = torch.autograd.grad(theirs, pred)
    torch.testing.assert_close(ours, theirs, atol=1e-7, rtol=1e-6)
    torch.testing.assert_close(ours_grad, their_grad, atol=1e-9, rtol=1e-5)
    assert torch.equal(QualityFocalLoss(1.5, 0.25, reduction="mean")(pred, true), ours)


def test_yolov5_bce_blur_formula():
    """YOLOv5's BCEBlurWithLogitsLoss(alpha=0.05), its formula written plainly (it averages)."""
    g = torch.Generator().manual_seed(10)
    pred = (torch.randn(4000, generator=g) * 4).requires_grad_()
    true = (torch.rand(4000, generator=g) < 0.3).float()

    def yolov5(pred, true, alpha=0.05):
        loss = F.binary_cross_entropy_with_logits(pred, true, reduction="none")
        dx = torch.sigmoid(pred) - true
        alpha_factor = 1 - torch.exp((dx - 1) / (alpha + 1e-4))
        return (loss * alpha_factor).mean()

    ours = bce_blur_loss(pred, true, reduction="mean")
    (ours_grad,) = torch.autograd.grad(ours, pred)
    theirs = yolov5(pred, true)
    (their_grad,) = torch.autograd.grad(theirs, pred)
    torch.testing.assert_close(ours, theirs, atol=1e-7, rtol=1e-6)
    torch.testing.assert_close(ours_grad, their_grad, atol=1e-8, rtol=1e-5)


def test_bce_blur_fades_out_overshoot_on_negatives_only():
    x = torch.tensor([9.0, 5.0, -1.0])  # confident on a 0 label (likely missing), right on a 1, mild
    t = torch.tensor([0.0, 1.0, 0.0])
    ratio = bce_blur_loss(x, t) / F.binary_cross_entropy_with_logits(x, t, reduction="none")
    assert ratio[0] < 0.2 and ratio[1] > 0.999 and ratio[2] > 0.999


@pytest.mark.parametrize("eps", [1e-3, 0.1, 0.5, 0.9])
def test_smooth_targets(eps):
    t = torch.tensor([0.0, 0.25, 0.5, 1.0], dtype=torch.float64)
    out = smooth_targets(t, eps)
    torch.testing.assert_close(out[0], torch.tensor(eps / 2, dtype=torch.float64))
    torch.testing.assert_close(out[-1], torch.tensor(1 - eps / 2, dtype=torch.float64))
    # linear between: equal steps for equal steps of t, slope 1 - eps
    torch.testing.assert_close(out[1:] - out[:-1], (t[1:] - t[:-1]) * (1 - eps))
    assert out.dtype == t.dtype and out is not t and torch.equal(t, torch.tensor([0.0, 0.25, 0.5, 1.0],
                                                                                  dtype=torch.float64))


def test_smooth_targets_zero_is_identity_and_bad_eps_rejected():
    t = torch.rand(5)
    assert smooth_targets(t, 0) is t and smooth_targets(t, 0.0) is t
    for bad in (-0.1, 1.0, 1.5, math.nan, math.inf, None, "0.1"):
        with pytest.raises(ValueError, match="label smoothing") as info:
            smooth_targets(t, bad)
        assert "\n" not in str(info.value) and repr(bad) in str(info.value)


# ---- the registered modules: YOLOX's BCE, the options every element-wise loss takes -------------

from yolox_focal.losses import LOSSES, BCELoss, CIoULoss, FocalLoss as KitFocalLoss, losses_for  # noqa: E402
from yolox_focal.losses.declare import BRANCH_OPTIONS, OPTIONS  # noqa: E402


def test_bce_is_yoloxs_bce_with_logits_exactly():
    g = torch.Generator().manual_seed(12)
    x = (torch.randn(64, 300, generator=g) * 5).requires_grad_()
    t = (torch.rand(64, 300, generator=g) < 0.2).float() * torch.rand(64, 300, generator=g)
    ours = BCELoss()(x, t)
    (ours_grad,) = torch.autograd.grad(ours.sum(), x)
    yolox = torch.nn.BCEWithLogitsLoss(reduction="none")(x, t)
    (yolox_grad,) = torch.autograd.grad(yolox.sum(), x)
    assert torch.equal(ours, yolox) and torch.equal(ours_grad, yolox_grad)
    assert LOSSES["bce"] is BCELoss and losses_for("obj")[0] == losses_for("cls")[0] == "bce"


@pytest.mark.parametrize("name", ["bce", "focal", "qfocal", "varifocal"])
def test_weight_and_label_smoothing_options(name):
    module = LOSSES[name]
    g = torch.Generator().manual_seed(13)
    x = torch.randn(300, generator=g) * 3
    t = _mixed_targets(300, g, torch.float32)
    plain = module()(x, smooth_targets(t, 0.2))
    torch.testing.assert_close(module(weight=3.0, label_smoothing=0.2)(x, t), 3 * plain, atol=0, rtol=1e-6)
    torch.testing.assert_close(module(weight=3.0, label_smoothing=0.2, reduction="sum")(x, t), 3 * plain.sum(),
                               atol=1e-5, rtol=1e-6)
    assert torch.equal(module(weight=1.0, label_smoothing=0.0)(x, t), module()(x, t))
    assert "weight=3.0" in repr(module(weight=3.0)) and "weight" not in repr(module())


@pytest.mark.parametrize("build,words", [
    (lambda: KitFocalLoss(inner_ratio=0.5), "FocalLoss takes gamma, alpha, label_smoothing, weight, reduction; got 'inner_ratio'"),
    # a box loss takes the box branch's options (modifiers, mix and weights, weight), in OPTIONS' order
    (lambda: CIoULoss(label_smoothing=0.1), "CIoULoss takes " + ", ".join(o for o in OPTIONS if o in BRANCH_OPTIONS["box"])
                                            + ", reduction; got 'label_smoothing'"),
    (lambda: KitFocalLoss(1.0, 0.5, 3.0), "FocalLoss takes gamma, alpha, label_smoothing, weight, reduction; "
                                          "got 3 positional values"),
    # bce_blur serves objectness only, whose options (BRANCH_OPTIONS) have no label smoothing
    (lambda: LOSSES["bce_blur"](label_smoothing=0.1), "BCEBlurLoss takes alpha, weight, reduction; "
                                                      "got 'label_smoothing'"),
])
def test_an_option_a_loss_does_not_take_is_refused_in_one_line(build, words):
    with pytest.raises(TypeError) as info:
        build()
    assert str(info.value) == words


@pytest.mark.parametrize("kwargs,words", [
    (dict(weight=0), "focal weight must be a finite number > 0, got 0"),
    (dict(label_smoothing=1.0), "focal label_smoothing must be in [0, 1), got 1.0"),
])
def test_bad_options_one_line(kwargs, words):
    with pytest.raises(ValueError) as info:
        KitFocalLoss(**kwargs)
    assert str(info.value) == words


@pytest.mark.parametrize("name", sorted(set(losses_for("obj")) | set(losses_for("cls"))))
def test_strided_logits_give_what_contiguous_ones_give(name):
    # YOLOX hands the objectness logits over as a view of its head's outputs: every 85th element
    g = torch.Generator().manual_seed(3)
    outputs = (torch.randn(2, 300, 85, generator=g) * 4).requires_grad_()
    strided = outputs[..., 4:5].reshape(-1, 1)
    assert not strided.is_contiguous()
    copy = strided.detach().clone().requires_grad_()
    target = (torch.rand(600, 1, generator=g) < 0.3) * torch.rand(600, 1, generator=g)
    loss = LOSSES[name]()
    # to rounding: torch's own BCE takes another (vectorised) path on contiguous input
    torch.testing.assert_close(loss(strided, target), loss(copy, target), atol=1e-6, rtol=1e-6)
    loss(strided, target).sum().backward()
    loss(copy, target).sum().backward()
    torch.testing.assert_close(outputs.grad[..., 4:5].reshape(-1, 1), copy.grad, atol=1e-6, rtol=1e-6)
    assert (outputs.grad[..., :4] == 0).all() and (outputs.grad[..., 5:] == 0).all()


# ---- every error names the loss by its registry name --------------------------------------------

def _inputs(cls, rows, columns=None):
    if cls.is_box_loss():
        return torch.rand(rows, 4) * 10 + 1
    return torch.rand(rows) if columns is None else torch.rand(rows, columns)


@pytest.mark.parametrize("name", [n for n in LOSSES if n != "bce"])  # bce: YOLOX's BCEWithLogitsLoss, unchecked
def test_every_error_of_a_loss_starts_with_its_registry_name(name):
    cls = LOSSES[name]
    context = {"input_size": (64, 64)} if "input_size" in cls.needs else {}
    context.update({"progress": 0.5} if "progress" in cls.needs else {})
    with pytest.raises(ValueError) as info:  # inputs of two shapes
        cls().eval()(_inputs(cls, 3), _inputs(cls, 2), **context)
    assert str(info.value).startswith(f"{name} loss needs pred and target of the same shape"), str(info.value)
    if not cls.is_box_loss():
        with pytest.raises(ValueError) as info:  # a target outside [0, 1]
            cls().eval()(torch.rand(3), torch.full((3,), 2.0))
        assert str(info.value).startswith(f"{name} loss targets must lie in [0, 1]"), str(info.value)
    for key, param in cls.params.items():
        bad = param.low - 1.0 if param.choices is None else "no such choice"
        with pytest.raises(ValueError) as info:  # the module
            cls(**{key: bad})
        assert str(info.value).startswith(f"{name} {key} must be"), str(info.value)
        if cls.function is not None:
            with pytest.raises(ValueError) as info:  # the function
                cls.function(_inputs(cls, 3), _inputs(cls, 3).clamp(0, 1), **{key: bad}, **context)
            assert str(info.value).startswith(f"{name} {key} must be"), str(info.value)
