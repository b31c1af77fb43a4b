"""The GPU route's trainer (``exp.get_trainer``: YOLOX's own ``Trainer`` with only ``save_ckpt``
changed) writes its checkpoints whole, under whichever YOLOX is installed. Built and saved on the
CPU: its ``__init__`` and ``save_ckpt`` touch no GPU. Killing real runs mid-write: tests/test_faults.py."""

import argparse
import signal
import sys

import pytest
import torch
from loguru import logger

from yolox_focal.adapter import flavour
from yolox_focal import FocalExpMixin
from yolox_focal.runtime import interrupt
from yolox_focal.runtime.checkpoints import WholeCheckpointTrainer

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
