"""A loss that keeps state: updated only in training and without gradient, kept out of the model's
state dict (stock checkpoints still load strictly, both ways), saved beside it in the checkpoint and
restored by --resume, and equal on every process of a distributed run.

The loss is a small stateful box loss declared here (registered for each test that needs it and
removed afterwards): the IoU loss, scaled by a running mean of the batch's mean IoU loss, the
statistic Wise-IoU v3 keeps."""

import copy
import socket
import sys

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from cli_helpers import TINY, run_tool
from helpers import REPO, head_inputs
from yolox_focal.adapter import flavour
from yolox_focal.losses import LOSSES, KitLoss, Param, iou_loss, register
from yolox_focal.losses.declare import all_reduce_sum
from yolox_focal.losses.kit import LossKit

pytestmark = pytest.mark.any_yolox


class RunningMeanIoULoss(KitLoss):
    """``iou_loss / mean``, ``mean`` a running mean (momentum ``momentum``) of the batches' mean IoU
    loss over every process; ``batches`` counts the updates."""

    name, branches, stateful = "test_running_iou", ("box",), True
    params = {"momentum": Param(0.5, 0, 1, low_open=True)}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.mean = torch.ones((), dtype=torch.float64)
        self.batches = torch.zeros((), dtype=torch.int64)

    def base_loss(self, pred, target):
        loss = iou_loss(pred, target)
        if self.training:
            with torch.no_grad():
                total = all_reduce_sum(torch.stack([loss.detach().double().sum(), loss.new_tensor(loss.numel(), dtype=torch.float64)]))
                momentum = 1.0 if self.batches == 0 else self.values["momentum"]
                self.mean = self.mean.to(loss.device) * (1 - momentum) + momentum * total[0] / total[1].clamp(min=1)
                self.batches = self.batches.to(loss.device) + 1
        return loss / self.mean.to(loss.dtype)

    def loss_state(self):
        return {"mean": self.mean, "batches": self.batches}

    def load_loss_state(self, state):
        self.mean, self.batches = state["mean"].clone(), state["batches"].clone()


@pytest.fixture
def stateful():
    register(RunningMeanIoULoss)
    yield RunningMeanIoULoss.name
    del LOSSES[RunningMeanIoULoss.name]


def boxes(n, seed):
    g = torch.Generator().manual_seed(seed)
    target = torch.cat([torch.rand(n, 2, generator=g) * 100, torch.rand(n, 2, generator=g) * 30 + 2], 1)
    pred = target + torch.randn(n, 4, generator=g) * 3
    pred[:, 2:] = pred[:, 2:].abs() + 1
    return pred, target


def test_state_changes_only_in_training_and_without_gradient():
    loss = RunningMeanIoULoss()
    pred, target = boxes(20, 0)
    pred.requires_grad_()
    loss.eval()
    loss(pred, target).sum().backward()
    assert loss.batches == 0 and loss.mean == 1
    loss.train()
    loss(pred, target).sum().backward()
    assert loss.batches == 1 and not loss.mean.requires_grad and loss.mean.grad_fn is None
    torch.testing.assert_close(loss.mean, iou_loss(pred, target).detach().double().mean())
    first = loss.mean.clone()
    with torch.no_grad():
        loss(*boxes(20, 1))  # training without gradient (as under YOLOX's autocast) still updates
    assert loss.batches == 2 and not torch.equal(loss.mean, first)


def test_kit_state_round_trip_and_one_line_mismatch(stateful):
    kit = LossKit(box_loss=stateful, box_test_running_iou_momentum=0.25).train()
    assert set(kit.loss_state()) == {f"box.{stateful}.mean", f"box.{stateful}.batches"}
    for seed in range(3):
        kit.box(*boxes(16, seed))
    saved = {k: v.clone() for k, v in kit.loss_state().items()}
    fresh = LossKit(box_loss=stateful, box_test_running_iou_momentum=0.25)
    assert not torch.equal(fresh.loss_state()[f"box.{stateful}.mean"], saved[f"box.{stateful}.mean"])
    fresh.load_loss_state(saved)
    for key, value in kit.loss_state().items():
        assert torch.equal(fresh.loss_state()[key], value)
    pred, target = boxes(16, 9)
    assert torch.equal(fresh.train().box(pred, target), kit.box(pred, target))  # and it goes on the same
    for bad in ({}, {"box.ciou.mean": torch.ones(())}, dict(saved, extra=torch.ones(()))):
        with pytest.raises(ValueError, match="does not fit this loss kit") as info:
            fresh.load_loss_state(bad)
        assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match="does not fit this loss kit, which keeps no state"):
        LossKit().load_loss_state(saved)
    assert LossKit(box_loss="ciou").loss_state() == {}


def test_state_stays_out_of_the_state_dict_and_loads_strictly_both_ways(stateful):
    from yolox_focal import FocalYOLOXHead
    from yolox_focal.adapter.flavour import HeadBase as YOLOXHead

    torch.manual_seed(0)
    stock = YOLOXHead(3, 0.25)
    ours = FocalYOLOXHead(3, 0.25, box_loss=stateful).train()
    ours.load_state_dict(stock.state_dict(), strict=True)
    feats, labels, imgs = head_inputs(3)
    ours(feats, labels, imgs)[0].backward()
    assert ours.loss_kit.loss_state()[f"box.{stateful}.batches"] == 1
    assert list(ours.state_dict()) == list(stock.state_dict())
    stock.load_state_dict(ours.state_dict(), strict=True)
    twin = copy.deepcopy(ours)  # as YOLOX's ModelEMA copies the model: a state of its own
    twin.loss_kit.box(*boxes(8, 0))
    assert ours.loss_kit.loss_state()[f"box.{stateful}.batches"] == 1


def test_checkpoint_dict_holds_the_state_beside_the_model(stateful):
    from torch import nn

    from yolox_focal import FocalYOLOXHead
    from yolox_focal.runtime.loss_state import put_loss_state, restore_loss_state

    def model(**settings):
        torch.manual_seed(0)
        wrapper = nn.Module()
        wrapper.head = FocalYOLOXHead(3, 0.25, **settings)
        return wrapper

    trained = model(box_loss=stateful)
    trained.head.loss_kit.box(*boxes(8, 0))
    ckpt = put_loss_state({"model": trained.state_dict()}, trained)
    assert set(ckpt) == {"model", "loss_kit"} and ckpt["loss_kit"][f"box.{stateful}.batches"] == 1
    resumed = model(box_loss=stateful)
    ddp = nn.Module()
    ddp.module = resumed  # found through a DistributedDataParallel-like wrapper too
    restore_loss_state(ckpt, ddp)
    assert resumed.head.loss_kit.loss_state()[f"box.{stateful}.batches"] == 1
    stock_checkpoint = {"model": trained.state_dict()}  # no loss state: the loss starts afresh
    fresh = model(box_loss=stateful)
    restore_loss_state(stock_checkpoint, fresh)
    assert fresh.head.loss_kit.loss_state()[f"box.{stateful}.batches"] == 0
    with pytest.raises(ValueError, match="does not fit this loss kit, which keeps no state") as info:
        restore_loss_state(ckpt, model(box_loss="ciou"))
    assert "\n" not in str(info.value)
    assert put_loss_state({}, model()) == {"loss_kit": {}}
    assert put_loss_state({}, nn.Linear(2, 2)) == {}  # no loss kit, nothing added


EXP = """
import sys

sys.path.insert(0, {tests!r})
from yolox.exp.default.yolox_nano import Exp as YOLOXNanoExp

from test_loss_state import RunningMeanIoULoss
from yolox_focal import FocalExpMixin
from yolox_focal.adapter.demo_exp import apply_demo_settings
from yolox_focal.losses import register

register(RunningMeanIoULoss)


class Exp(FocalExpMixin, YOLOXNanoExp):
    def __init__(self):
        super().__init__()
        self.exp_name = "stateful"
        apply_demo_settings(self, "")
        self.box_loss = RunningMeanIoULoss.name
"""


@pytest.mark.skipif(flavour.flavour() == "pixeltable", reason="the exp is a Megvii YOLOX exp")
def test_cpu_training_saves_the_state_and_resume_restores_it(tmp_path):
    from yolox_focal.runtime.demo_data import make_demo_data

    make_demo_data(str(tmp_path / "data"), train_images=8, val_images=4, size=128, progress=False, workers=1)
    exp = tmp_path / "stateful_exp.py"
    exp.write_text(EXP.format(tests=str(REPO / "tests")))
    opts = ["data_dir", tmp_path / "data", "output_dir", tmp_path / "out", *TINY]
    run_tool("train.py", "-f", exp, "-b", "4", "-expn", "run", "max_epoch", "1", "eval_interval", "5", *opts)
    latest = tmp_path / "out" / "run" / "latest_ckpt.pth"
    first = torch.load(latest, map_location="cpu")["loss_kit"]
    key = f"box.{RunningMeanIoULoss.name}"
    assert first[f"{key}.batches"] == 2  # 8 images in batches of 4
    assert set(first) == {f"{key}.mean", f"{key}.batches"} and first[f"{key}.mean"] != 1
    run_tool("train.py", "-f", exp, "-b", "4", "-expn", "run", "--resume", "max_epoch", "2", "eval_interval", "5", *opts)
    second = torch.load(latest, map_location="cpu")["loss_kit"]
    assert second[f"{key}.batches"] == 4  # went on from 2, not from 0
    assert second[f"{key}.mean"] != first[f"{key}.mean"]


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _train_on_process(rank, world_size, port, batches, out):
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size)
    try:
        loss = RunningMeanIoULoss(momentum=0.3).train()
        for pred, target in batches[rank]:
            loss(pred.requires_grad_(), target).sum().backward()
        torch.save(loss.loss_state(), f"{out}.{rank}")
    finally:
        dist.destroy_process_group()


@pytest.mark.skipif(not dist.is_available(), reason="torch without torch.distributed")
def test_two_processes_end_with_equal_state_equal_to_one_process_on_both_batches(tmp_path):
    steps = [(boxes(12, 2 * i), boxes(20, 2 * i + 1)) for i in range(3)]  # different sizes per process
    per_process = [[step[rank] for step in steps] for rank in range(2)]
    out = str(tmp_path / "state")
    mp.spawn(_train_on_process, args=(2, _free_port(), per_process, out), nprocs=2, join=True)
    states = [torch.load(f"{out}.{rank}") for rank in range(2)]
    assert torch.equal(states[0]["mean"], states[1]["mean"]) and states[0]["batches"] == 3
    single = RunningMeanIoULoss(momentum=0.3).train()
    for (pred_a, target_a), (pred_b, target_b) in steps:
        single(torch.cat([pred_a, pred_b]), torch.cat([target_a, target_b]))
    torch.testing.assert_close(states[0]["mean"], single.mean, rtol=1e-12, atol=0)
    alone = RunningMeanIoULoss(momentum=0.3).train()
    for pred, target in per_process[0]:
        alone(pred, target)
    assert not torch.allclose(alone.mean, single.mean)  # the reduction is what made them equal


if __name__ == "__main__":
    sys.exit(pytest.main([__file__]))
