"""The losses that keep state (wiou_v3: the running mean IoU loss; slide_ema: the running mean IoU of
the positives): the state moves only in training and without gradient, per instance, round-trips
through loss_state / load_loss_state, stays out of the state dict, and is the same on every
process of a distributed run."""

import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from references import class_targets, geometry, random_pairs, reference_slide, reference_wiou_v3
from yolox_focal.losses.slide import SlideEMALoss
from yolox_focal.losses.wise_iou import WIoUv3Loss

pytestmark = pytest.mark.any_yolox


def _boxes(seed, n=64):
    return random_pairs(n, seed, torch.float64)


def _iou_loss_mean(pred, target):
    return (1 - geometry(pred, target)[0]).mean().item()


def _cls(seed, rows=40, classes=5):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(rows, classes, generator=g, dtype=torch.float64) * 2, class_targets(rows, classes, g)


def _positive_mean(t):
    return t[t > 0].mean().item()


# ---- wiou_v3 ------------------------------------------------------------------------------

def test_wiou_v3_mean_starts_at_1_and_moves_in_training_before_it_is_used():
    loss = WIoUv3Loss(momentum=0.1).train()
    assert loss.mean.item() == 1.0 and loss.updates.item() == 0
    expected_mean = 1.0
    for seed in (1, 2, 3):
        pred, target = _boxes(seed)
        p = pred.clone().requires_grad_()
        out = loss(p, target)
        expected_mean += 0.1 * (_iou_loss_mean(pred, target) - expected_mean)
        assert loss.mean.item() == pytest.approx(expected_mean, rel=1e-6)
        torch.testing.assert_close(out, reference_wiou_v3(pred, target, expected_mean, 1.9, 3.0), atol=1e-6,
                                   rtol=1e-5)
        (grad,) = torch.autograd.grad(out.sum(), p)
        q = pred.clone().requires_grad_()
        (expected_grad,) = torch.autograd.grad(reference_wiou_v3(q, target, expected_mean, 1.9, 3.0).sum(), q)
        torch.testing.assert_close(grad, expected_grad, atol=1e-7, rtol=1e-5)
        assert not loss.mean.requires_grad and loss.mean.grad_fn is None
    assert loss.updates.item() == 3


def test_wiou_v3_state_does_not_move_in_eval_or_on_an_empty_batch():
    loss = WIoUv3Loss(momentum=0.5)
    pred, target = _boxes(4)
    loss.eval()
    out = loss(pred, target)
    assert loss.mean.item() == 1.0 and loss.updates.item() == 0
    torch.testing.assert_close(out, reference_wiou_v3(pred, target, 1.0, 1.9, 3.0))
    loss.train()
    loss(torch.zeros(0, 4), torch.zeros(0, 4))
    assert loss.mean.item() == 1.0 and loss.updates.item() == 0


def test_wiou_v3_momentum_1_is_each_batchs_own_mean():
    loss = WIoUv3Loss(momentum=1.0).train()
    pred, target = _boxes(5)
    loss(pred, target)
    assert loss.mean.item() == pytest.approx(_iou_loss_mean(pred, target), rel=1e-6)


def test_wiou_v3_paper_default_momentum():
    assert WIoUv3Loss().values["momentum"] == pytest.approx(1 - 0.5 ** (1 / 7000))
    assert WIoUv3Loss().values["alpha"] == 1.9 and WIoUv3Loss().values["delta"] == 3.0


# ---- slide_ema ----------------------------------------------------------------------------

def test_slide_ema_first_batch_sets_the_mean_then_averages():
    loss = SlideEMALoss(momentum=0.01).train()
    means = []
    for seed in (1, 2, 3):
        x, t = _cls(seed)
        means.append(_positive_mean(t))
        xr = x.clone().requires_grad_()
        out = loss(xr, t)
        expected = sum(means) / len(means)  # fewer batches than 1 / momentum: their plain average
        assert loss.mean.item() == pytest.approx(expected, rel=1e-6)
        torch.testing.assert_close(out, reference_slide(x, t, expected), atol=1e-6, rtol=1e-5)
    assert loss.updates.item() == 3


def test_slide_ema_runs_with_its_momentum_after_1_over_momentum_batches():
    loss = SlideEMALoss(momentum=0.5).train()
    x, t = _cls(1)
    loss(x, t)  # first batch: the mean is its own
    x2, t2 = _cls(2)
    loss(x2, t2)  # second: max(0.5, 1 / 2) = 0.5
    x3, t3 = _cls(3)
    loss(x3, t3)  # third: 0.5, not 1 / 3
    a, b, c = _positive_mean(t), _positive_mean(t2), _positive_mean(t3)
    assert loss.mean.item() == pytest.approx(((a + b) / 2 + c) / 2, rel=1e-6)


def test_slide_ema_before_any_training_uses_the_batchs_mean():
    loss = SlideEMALoss().eval()
    x, t = _cls(4)
    torch.testing.assert_close(loss(x, t), reference_slide(x, t))
    assert loss.updates.item() == 0



def test_slide_ema_takes_the_mean_of_half_targets_in_float32():
    # 3001 positives: float16 counts only to 2048 exactly (3001 would round to 3000), and its sum
    # of thousands of IoUs keeps few digits
    g = torch.Generator().manual_seed(5)
    t = torch.zeros(4000, 80)
    rows = torch.arange(3001)
    t[rows, torch.randint(80, (3001,), generator=g)] = torch.rand(3001, generator=g) * 0.6 + 0.35
    half = t.half()
    loss = SlideEMALoss().train()
    loss(torch.zeros(4000, 80, dtype=torch.float16), half)
    assert loss.mean.item() == pytest.approx(half.float().sum().item() / 3001, rel=1e-6)

# ---- both -----------------------------------------------------------------------------------

def _batch(name, seed):
    return _boxes(seed) if name == "wiou_v3" else _cls(seed)


LOSSES = {"wiou_v3": lambda: WIoUv3Loss(momentum=0.2), "slide_ema": lambda: SlideEMALoss(momentum=0.2)}


@pytest.mark.parametrize("name", list(LOSSES))
def test_state_is_per_instance_and_out_of_the_state_dict(name):
    first, second = LOSSES[name]().train(), LOSSES[name]().train()
    before = second.loss_state()
    first(*_batch(name, 1))
    assert first.loss_state()["updates"].item() == 1
    assert all(torch.equal(second.loss_state()[k], before[k]) for k in before)
    assert first.state_dict() == {} and list(first.buffers()) == [] and list(first.parameters()) == []


@pytest.mark.parametrize("name", list(LOSSES))
def test_state_round_trip(name):
    trained = LOSSES[name]().train()
    for seed in (1, 2):
        trained(*_batch(name, seed))
    state = trained.loss_state()
    assert set(state) == {"mean", "updates"} and state["updates"].item() == 2
    restored = LOSSES[name]()
    restored.load_loss_state(state)
    assert all(torch.equal(restored.loss_state()[k], state[k]) for k in state)
    state["mean"] += 1  # a copy: changing it changes nothing in the loss
    assert not torch.equal(trained.loss_state()["mean"], state["mean"])
    trained.eval(), restored.eval()
    batch = _batch(name, 3)
    assert torch.equal(trained(*batch), restored(*batch))


@pytest.mark.parametrize("name", list(LOSSES))
@pytest.mark.parametrize("state,pattern", [
    ({"mean": torch.tensor(0.5)}, r"keeps mean, updates; got \['mean'\]"),
    ({"mean": torch.tensor(float("nan")), "updates": torch.tensor(1.0)}, "mean must be one finite number"),
    ({"mean": torch.ones(2), "updates": torch.tensor(1.0)}, "mean must be one finite number"),
    ({"mean": torch.tensor(0.5), "updates": torch.tensor(-1.0)}, "updates must be one finite number >= 0"),
])
def test_bad_state_one_line(name, state, pattern):
    with pytest.raises(ValueError, match=pattern) as info:
        LOSSES[name]().load_loss_state(state)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("name", list(LOSSES))
def test_forward_under_autograd_leaves_the_state_without_a_graph(name):
    loss = LOSSES[name]().train()
    pred, target = _batch(name, 1)
    pred = pred.clone().requires_grad_()
    with torch.enable_grad():
        loss(pred, target).sum().backward()
    assert loss.mean.grad_fn is None and not loss.mean.requires_grad


# ---- two processes --------------------------------------------------------------------------

def _rank_worker(rank, world, init_file, name, out_dir):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        loss = LOSSES[name]().train()
        n = 64 if rank == 0 else 16  # unequal batches: the mean is over every element, not of means
        if name == "wiou_v3":
            batch = random_pairs(n, 10 + rank, torch.float64)
        else:
            batch = _cls(10 + rank, rows=n)
        loss(*batch)
        torch.save(loss.loss_state(), os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("name", list(LOSSES))
def test_every_process_holds_the_same_mean_of_all_processes_elements(name, tmp_path):
    mp.spawn(_rank_worker, args=(2, str(tmp_path / "init"), name, str(tmp_path)), nprocs=2, join=True)
    states = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    assert torch.equal(states[0]["mean"], states[1]["mean"])
    if name == "wiou_v3":
        (p0, t0), (p1, t1) = random_pairs(64, 10, torch.float64), random_pairs(16, 11, torch.float64)
        statistic = (1 - geometry(torch.cat([p0, p1]), torch.cat([t0, t1]))[0]).mean().item()
        expected = 1 + 0.2 * (statistic - 1)
    else:
        targets = torch.cat([_cls(10, rows=64)[1], _cls(11, rows=16)[1]])
        expected = _positive_mean(targets)  # the first batch sets it
    assert states[0]["mean"].item() == pytest.approx(expected, rel=1e-5)
