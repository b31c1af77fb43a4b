"""VOC-format data through the data loader every YOLOX default exp builds (yolox-nano's mosaic_prob
0.5, tiny, s, m, l, x; mosaic on and off; mixup on and off), with a data-loader worker, on whichever
YOLOX is installed (Megvii's PyPI release or GitHub main, pixeltable-yolox). The loader is the one
the CPU trainer and YOLOX's own trainer (the GPU route) both get from the exp. Beyond the PyPI
release (tests/test_voc.py, tests/test_faults.py), also tools/train.py end to end on VOC data with
yolox-nano's mosaic_prob 0.5, evaluation included, and a Ctrl-C in it."""

import json
import os
import re
import textwrap

import pytest

from helpers import REPO
from run_helpers import Run
from yolox_focal.adapter import flavour
from yolox_focal.runtime.demo_data import CLASSES, VOC_SETS, make_demo_voc_data
from yolox_focal.runtime.voc import VOCExpMixin

pytestmark = pytest.mark.any_yolox

DEFAULT_EXPS = ["nano", "tiny", "s", "m", "l", "x"]
BATCHES = 3  # of 4 samples: with mosaic_prob 0.5, mosaic and plain samples share a batch


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("voc_any")
    make_demo_voc_data(str(root / "data"), train_images=32, val_images=2, size=128, progress=False, workers=1)
    return root / "data"


def voc_exp(name, data):
    """YOLOX's default exp ``name`` on VOC data, its augmentation settings untouched."""
    base = flavour.named_exp(f"yolox_{name}")
    exp = type(f"VOC{type(base).__name__}", (VOCExpMixin, type(base)), {})()
    exp.data_dir, exp.train_sets, exp.val_sets = str(data), [VOC_SETS["train"]], [VOC_SETS["val"]]
    exp.class_names, exp.num_classes = CLASSES, len(CLASSES)
    exp.input_size = exp.test_size = (128, 128)
    exp.data_num_workers = 1
    return exp


def draw(exp, no_aug=False):
    batches = iter(exp.get_data_loader(batch_size=4, is_distributed=False, no_aug=no_aug))
    for _ in range(BATCHES):
        images, targets, _, ids = next(batches)
        assert images.shape == (4, 3, 128, 128) and ids.shape == (4,)


@pytest.mark.parametrize("name", DEFAULT_EXPS)
def test_every_default_exps_augmentation_loads_voc_batches(data, name):
    exp = voc_exp(name, data)
    assert exp.mosaic_prob == (0.5 if name == "nano" else 1.0)  # YOLOX's own settings, as the exps ship
    draw(exp)


@pytest.mark.parametrize("mosaic_prob, mixup", [(0.5, True), (0.5, False), (1.0, True), (0.0, False)])
def test_mosaic_and_mixup_on_and_off(data, mosaic_prob, mixup):
    exp = voc_exp("nano", data)
    exp.mosaic_prob, exp.enable_mixup, exp.mixup_prob = mosaic_prob, mixup, 1.0
    draw(exp)
    draw(voc_exp("tiny", data), no_aug=True)  # the last epochs: no mosaic at all


PIXELTABLE_CONFIG = """
    from yolox_focal.pixeltable_configs import DemoFocal
    from yolox_focal.runtime.demo_data import CLASSES, VOC_SETS
    from yolox_focal.runtime.voc import VOCExpMixin

    class DemoVoc(VOCExpMixin, DemoFocal):
        def __init__(self):
            super().__init__()
            self.name = "demo_voc"
            self.train_sets, self.val_sets = [VOC_SETS["train"]], [VOC_SETS["val"]]
            self.class_names, self.num_classes = CLASSES, len(CLASSES)
"""
TINY = {"input_size": "(128, 128)", "test_size": "(128, 128)", "random_size": "(4, 4)", "data_num_workers": "1",
        "mosaic_prob": "0.5", "print_interval": "1", "no_aug_epochs": "0", "warmup_epochs": "1"}


def train_args(data, out, batch, resume=False, **opts):
    opts = dict(TINY, data_dir=str(data), output_dir=str(out), **opts)
    args = ["-b", str(batch), "--device", "cpu", *(["--resume"] if resume else [])]
    if flavour.flavour() == "pixeltable":
        return args + ["-c", "voc_cfg:DemoVoc"] + [f"-D{k}={v.strip('()').replace(' ', '')}" for k, v in opts.items()]
    return args + ["-f", str(REPO / "exps" / "demo" / "demo_voc.py")] + [x for kv in opts.items() for x in kv]


@pytest.mark.skipif(flavour.flavour() == "megvii-pypi", reason="tests/test_voc.py and test_faults.py cover it")
def test_train_voc_with_mosaic_prob_half_then_ctrl_c_in_a_resumed_run(data, tmp_path):
    (tmp_path / "voc_cfg.py").write_text(textwrap.dedent(PIXELTABLE_CONFIG))
    env = {"PYTHONPATH": os.pathsep.join([str(REPO), str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    out, folder = tmp_path / "out", tmp_path / "out" / "demo_voc"
    first = Run(tmp_path / "1", "train.py", *train_args(data, out, 8, max_epoch="1", eval_interval="1"), env=env,
                cwd=tmp_path)
    assert first.process.wait(timeout=600) == 0, first.stderr.read_text()[-3000:]
    (record,) = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    assert 0 <= record["ap50_95"] <= record["ap50"] <= 1
    # batch 1: 32 iterations an epoch, time enough for the signal to land in epoch 2 (in iteration 1 too,
    # when it arrives between that iteration's log line and the next one)
    run = Run(tmp_path / "2", "train.py", *train_args(data, out, 1, resume=True, max_epoch="3", eval_interval="5"),
              env=env, cwd=tmp_path)
    run.wait_for(run.in_stderr("epoch: 2/3, iter: 1/32"), "training in epoch 2")
    assert run.interrupt() == 130
    phase, state = run.stop_line()
    assert re.fullmatch(r"training \(epoch 2/3, iter ([1-9]|[12]\d|3[0-2])/32\)", phase)
    assert state == f"the last good state is {folder / 'latest_ckpt.pth'} (after epoch 1): continue with --resume"
