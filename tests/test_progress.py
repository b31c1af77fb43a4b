"""The training progress a loss's schedule follows (uiou's ratio): both routes' trainers hand it to the
loss kit before each iteration, ``(epoch * iters_per_epoch + iter) / (max_epoch * iters_per_epoch)``;
a real CPU run hands each iteration its own.

The CPU run trains with a box loss declared here: uiou that also keeps, as its loss state (saved in
the checkpoints), every progress it was given in training."""

import argparse
import sys

import pytest
import torch

from cli_helpers import TINY, run_tool
from helpers import REPO, head_inputs
from test_checkpoints import yolox_logger  # noqa: F401 (a fixture)
from yolox_focal import FocalExpMixin
from yolox_focal.adapter import flavour
from yolox_focal.losses.uiou import UIoULoss, uiou_loss
from yolox_focal.runtime.checkpoints import training_progress

pytestmark = pytest.mark.any_yolox


class ProgressLogUIoULoss(UIoULoss):
    """uiou, keeping the progress of each training call in ``seen`` (its loss state)."""

    name, stateful = "test_uiou_progress_log", True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.seen = torch.zeros(0, dtype=torch.float64)

    def base_loss(self, pred, target, progress):
        if self.training:
            self.seen = torch.cat([self.seen, torch.tensor([progress], dtype=torch.float64)])
        return super().base_loss(pred, target, progress=progress)

    def loss_state(self):
        return {"seen": self.seen}

    def load_loss_state(self, state):
        self.seen = state["seen"].clone()


def test_training_progress_counts_iterations_over_the_whole_run():
    assert training_progress(0, 0, 300, 100) == 0.0
    assert training_progress(0, 50, 300, 100) == pytest.approx(50 / 30000)
    assert training_progress(150, 0, 300, 100) == pytest.approx(0.5)
    assert training_progress(299, 99, 300, 100) == pytest.approx(29999 / 30000)
    assert [training_progress(e, i, 2, 3) for e in range(2) for i in range(3)] == pytest.approx(
        [0, 1 / 6, 2 / 6, 3 / 6, 4 / 6, 5 / 6])
    assert training_progress(0, 0, 0, 0) == 0.0  # nothing to train: the start


def test_gpu_route_trainer_hands_the_kit_the_progress_before_each_iteration(tmp_path, yolox_logger):  # noqa: F811
    base = flavour.named_exp("yolox_nano")
    exp = type("FocalNano", (FocalExpMixin, type(base)), {})()
    exp.output_dir, exp.box_loss, exp.max_epoch = str(tmp_path), "uiou", 4
    args = argparse.Namespace(fp16=False, experiment_name="run", name="run", logger="tensorboard")
    trainer = exp.get_trainer(args)
    trainer.model = exp.get_model()
    kit = trainer.model.head.loss_kit
    assert kit.progress is None
    trainer.max_iter = 5
    seen = []
    for trainer.epoch, trainer.iter in ((0, 0), (1, 3), (3, 4)):
        trainer.before_iter()
        seen.append(kit.progress)
        assert kit.box.batch_context["progress"] == kit.progress
    assert seen == pytest.approx([0.0, 8 / 20, 19 / 20])
    # the head's training step reads it: uiou at the progress given
    head = trainer.model.head.train()
    feats, labels, imgs = head_inputs(head.num_classes)
    head.use_l1 = False
    loss = head(feats, labels, imgs)[1]
    assert torch.isfinite(loss) and loss > 0


EXP = """
import sys

sys.path.insert(0, {tests!r})
from yolox.exp.default.yolox_nano import Exp as YOLOXNanoExp

from test_progress import ProgressLogUIoULoss
from yolox_focal import FocalExpMixin
from yolox_focal.adapter.demo_exp import apply_demo_settings
from yolox_focal.losses import register

register(ProgressLogUIoULoss)


class Exp(FocalExpMixin, YOLOXNanoExp):
    def __init__(self):
        super().__init__()
        self.exp_name = "progress"
        apply_demo_settings(self, "")
        self.box_loss = ProgressLogUIoULoss.name
"""


@pytest.mark.skipif(flavour.flavour() == "pixeltable", reason="the exp is a Megvii YOLOX exp")
def test_cpu_training_hands_each_iteration_its_progress(tmp_path):
    from yolox_focal.runtime.demo_data import make_demo_data

    make_demo_data(str(tmp_path / "data"), train_images=8, val_images=4, size=128, progress=False, workers=1)
    exp = tmp_path / "progress_exp.py"
    exp.write_text(EXP.format(tests=str(REPO / "tests")))
    opts = ["data_dir", tmp_path / "data", "output_dir", tmp_path / "out", *TINY]
    # 8 images in batches of 4: 2 iterations an epoch, 2 epochs
    run_tool("train.py", "-f", exp, "-b", "4", "-expn", "run", "max_epoch", "2", "eval_interval", "5",
             f"box_{ProgressLogUIoULoss.name}_schedule", "cosine", *opts)
    state = torch.load(tmp_path / "out" / "run" / "latest_ckpt.pth", map_location="cpu")["loss_kit"]
    seen = state[f"box.{ProgressLogUIoULoss.name}.seen"]
    assert seen.tolist() == pytest.approx([0.0, 0.25, 0.5, 0.75])
    log = (tmp_path / "out" / "run" / "train_log.txt").read_text()
    assert "epoch: 2/2, iter: 2/2" in log and "iou_loss: " in log


def test_the_logged_progress_gives_uiou_at_that_progress():
    # what the run above computes at each step: the declared loss at the progress it was handed
    loss = ProgressLogUIoULoss(schedule="cosine")
    pred, target = torch.tensor([[10.0, 10, 4, 6], [0, 0, 2, 2]]), torch.tensor([[11.0, 10, 5, 5], [1, 1, 3, 3]])
    for progress in (0.0, 0.25):
        assert torch.equal(loss(pred, target, progress=progress), uiou_loss(pred, target, progress, schedule="cosine"))
    assert loss.seen.tolist() == [0.0, 0.25]


if __name__ == "__main__":
    sys.exit(pytest.main([__file__]))
