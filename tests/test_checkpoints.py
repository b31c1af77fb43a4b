"""The GPU route's trainer (``exp.get_trainer``: YOLOX's own ``Trainer`` with its checkpoints,
progress and metrics added) writes its checkpoints whole and each epoch's line of ``metrics.jsonl``,
under whichever YOLOX is installed. Built and run on the CPU: its ``__init__``, ``save_ckpt``,
``after_iter`` and ``after_epoch`` touch no GPU. Killing real runs mid-write: tests/test_faults.py."""

import argparse
import json
import signal
import sys

import pytest
import torch
from loguru import logger
from torch.utils.tensorboard import SummaryWriter

from yolox_focal.adapter import flavour
from yolox_focal.adapter.demo_exp import apply_demo_settings
from yolox_focal import FocalExpMixin
from yolox_focal.runtime import interrupt
from yolox_focal.runtime.checkpoints import WholeCheckpointTrainer
from yolox_focal.runtime.coco_scoring import PerClassCOCOEvaluator, with_per_class
from yolox_focal.runtime.cpu_evaluators import to_cpu_evaluator
from yolox_focal.runtime.demo_data import make_demo_data

pytestmark = pytest.mark.any_yolox


@pytest.fixture
def yolox_logger(monkeypatch):
    """YOLOX's trainer sets up its logger, which reroutes sys.stdout and sys.stderr, and the trainer
    handles Ctrl-C and SIGTERM: put them back."""
    monkeypatch.setattr(sys, "stdout", sys.stdout)
    monkeypatch.setattr(sys, "stderr", sys.stderr)
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGALRM)}
    yield
    for signum, handler in handlers.items():
        signal.signal(signum, handler)
    logger.remove()
    logger.add(sys.stderr)


def test_gpu_route_trainer_writes_whole_checkpoints(tmp_path, yolox_logger):
    base = flavour.named_exp("yolox_nano")
    exp = type("FocalNano", (FocalExpMixin, type(base)), {})()
    exp.output_dir = str(tmp_path)
    exp.box_loss = "wiou_v3"  # a loss that keeps state, which the checkpoints hold beside the weights
    args = argparse.Namespace(fp16=False, experiment_name="run", name="run", logger="tensorboard")
    trainer = exp.get_trainer(args)
    assert isinstance(trainer, WholeCheckpointTrainer) and isinstance(trainer, flavour.Trainer)
    assert signal.getsignal(signal.SIGTERM) is signal.getsignal(signal.SIGINT) is interrupt._on_signal
    trainer.model = exp.get_model()
    trainer.optimizer = torch.optim.SGD(trainer.model.parameters(), lr=0.01)
    trainer.use_model_ema, trainer.epoch, trainer.best_ap = False, 0, 0.5
    module = sys.modules[flavour.Trainer.__module__]
    yolox_writer = module.save_checkpoint
    folder = tmp_path / "run"
    interrupt.watch_run(str(folder))
    trainer.save_ckpt("latest", update_best_ckpt=True)
    assert module.save_checkpoint is yolox_writer  # YOLOX's own, outside the call
    assert sorted(p.name for p in folder.glob("*.pth*")) == ["best_ckpt.pth", "latest_ckpt.pth"]  # no .part left
    for name in ("latest", "best"):
        saved = torch.load(folder / f"{name}_ckpt.pth", map_location="cpu", weights_only=False)
        assert saved["start_epoch"] == 1 and saved["best_ap"] == 0.5
        assert saved["model"].keys() == trainer.model.state_dict().keys()
        assert saved["loss_kit"].keys() == {"box.wiou_v3.mean", "box.wiou_v3.updates"}
    # it went through the whole-file writer, which tells the Ctrl-C line about it
    assert interrupt.stop_line().endswith(f"the last good state is {folder / 'latest_ckpt.pth'} (after epoch 1): "
                                          "continue with --resume")


def test_gpu_route_trainer_resumes_the_loss_state(tmp_path, yolox_logger):
    base = flavour.named_exp("yolox_nano")
    exp = type("FocalNano", (FocalExpMixin, type(base)), {})()
    exp.output_dir, exp.box_loss = str(tmp_path), "wiou_v3"
    args = argparse.Namespace(fp16=False, experiment_name="run", name="run", logger="tensorboard", resume=False,
                              ckpt=None, start_epoch=None)
    trainer = exp.get_trainer(args)
    trainer.model = exp.get_model()
    trainer.optimizer = torch.optim.SGD(trainer.model.parameters(), lr=0.01)
    trainer.use_model_ema, trainer.epoch, trainer.best_ap = False, 0, 0.0
    kit = trainer.model.head.loss_kit
    kit.load_loss_state({"box.wiou_v3.mean": torch.tensor(0.25), "box.wiou_v3.updates": torch.tensor(7.0)})
    trainer.save_ckpt("latest")
    model = exp.get_model()  # the cached model with a new loss kit, its state afresh as in a new process
    assert float(model.head.loss_kit.loss_state()["box.wiou_v3.updates"]) == 0
    trainer.args.resume, trainer.device = True, "cpu"
    trainer.resume_train(model)
    assert {k: float(v) for k, v in model.head.loss_kit.loss_state().items()} == {"box.wiou_v3.mean": 0.25,
                                                                   "box.wiou_v3.updates": 7.0}


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo_data")
    make_demo_data(str(root), train_images=4, val_images=4, size=128, progress=False, workers=1)
    return root


def test_gpu_route_trainer_writes_metrics_jsonl_at_yoloxs_epoch_end(tmp_path, demo_data, yolox_logger):
    """YOLOX's own after_iter, after_epoch and evaluate_and_save_model (the GPU route's), on the CPU:
    only the evaluator's inference loop is the CPU one; its scoring is the GPU route's evaluator's."""
    base = flavour.named_exp("yolox_nano")  # Megvii's exp or pixeltable-yolox's config
    exp = type("FocalNano", (FocalExpMixin, type(base)), {})()
    apply_demo_settings(exp, str(tmp_path))
    exp.data_dir, exp.output_dir, exp.data_num_workers, exp.eval_interval = str(demo_data), str(tmp_path), 0, 1
    exp.input_size = exp.test_size = (128, 128)
    exp.print_interval = 100  # no log line (it reads timing meters this test does not fill)
    args = argparse.Namespace(fp16=False, experiment_name="run", name="run", logger="tensorboard", resume=False,
                              ckpt=None, start_epoch=None, batch_size=4)
    trainer = exp.get_trainer(args)
    evaluator = with_per_class(exp.get_evaluator(batch_size=4, is_distributed=False))
    assert isinstance(evaluator, PerClassCOCOEvaluator)  # what the trainer's before_train makes it on GPUs
    trainer.evaluator = to_cpu_evaluator(evaluator)
    trainer.model = exp.get_model()
    trainer.optimizer = torch.optim.SGD(trainer.model.parameters(), lr=0.01)
    trainer.use_model_ema, trainer.epoch, trainer.iter, trainer.max_iter, trainer.best_ap = False, 0, 0, 2, 0.0
    trainer.tblogger = SummaryWriter(str(tmp_path / "tensorboard"))
    trainer.epoch_metrics.start(resume=False, start_epoch=0)  # what before_train does, past its CUDA lines
    for step, total in enumerate((3.0, 5.0)):
        trainer.iter = step
        trainer.meter.update(total_loss=total, iou_loss=1.0, conf_loss=total / 2, cls_loss=0.25, l1_loss=0.0)
        trainer.after_iter()
    trainer.after_epoch()
    assert "eval" not in vars(exp)  # the exp's own method again
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    (record,) = [json.loads(line) for line in lines]
    assert record["epoch"] == 1 and record["total_loss"] == 4.0 and record["obj_loss"] == record["conf_loss"] == 2.0
    ap50_95, ap50, _ = exp.eval(trainer.model, trainer.evaluator, False)  # the same model, scored again
    assert (record["ap50_95"], record["ap50"]) == (float(ap50_95), float(ap50))
    names = [c["name"] for c in trainer.evaluator.dataloader.dataset.coco.dataset["categories"]]
    assert sorted(record["per_class"]) == sorted(names)
    assert all(set(v) == {"ap50_95", "ap50"} for v in record["per_class"].values() if v is not None)
    assert (tmp_path / "run" / "last_epoch_ckpt.pth").is_file()  # YOLOX's evaluate_and_save_model ran
    latest = tmp_path / "run" / "latest_ckpt.pth"
    assert torch.load(latest, map_location="cpu", weights_only=False)["start_epoch"] == 1

    # The next epoch's evaluation fails (or is stopped): YOLOX would have written latest_ckpt.pth for
    # epoch 2 before it; here it is written after the record, so it still holds epoch 1, whose record
    # is the last, and a resumed run trains epoch 2 again instead of going on without its record.
    def fails(*args, **kwargs):
        raise KeyboardInterrupt

    exp.eval = fails
    trainer.epoch = 1
    trainer.after_iter()
    with pytest.raises(KeyboardInterrupt):
        trainer.after_epoch()
    del exp.eval
    assert torch.load(latest, map_location="cpu", weights_only=False)["start_epoch"] == 1
    assert [json.loads(line)["epoch"] for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()] == [1]
    assert trainer._latest_held is None  # save_ckpt("latest") writes again outside after_epoch
    trainer.save_ckpt(ckpt_name="latest")
    assert torch.load(latest, map_location="cpu", weights_only=False)["start_epoch"] == 2
