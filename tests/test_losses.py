import math

import pytest
import torch
import torch.nn.functional as F
from torchvision.ops import sigmoid_focal_loss

from yolox_focal import FocalLoss, focal_loss


def reference_focal(pred, target, gamma, alpha):
    """Textbook formula in float64, written independently of the package."""
    x, t = pred.double(), target.double()
    p = 1 / (1 + torch.exp(-x))
    bce = -(t * torch.log(p) + (1 - t) * torch.log(1 - p))
    p_t = t * p + (1 - t) * (1 - p)
    alpha_t = 1.0 if alpha is None else t * alpha + (1 - t) * (1 - alpha)
    return bce * alpha_t * (1 - p_t) ** gamma


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
                               reference_focal(x, t, gamma, alpha), atol=1e-6, rtol=1e-5)


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
