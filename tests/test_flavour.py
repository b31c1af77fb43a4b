"""yolox_focal.adapter.flavour tells the three YOLOXes apart by what they contain and gives each one's names."""

import importlib.metadata
import os
import subprocess
import sys

import pytest
import torch
from torch import nn

from helpers import REPO
from yolox_focal.adapter import flavour

pytestmark = pytest.mark.any_yolox


def expected_flavour():
    """Independently of flavour.py: pixeltable-yolox by its distribution, Megvii's main by its API."""
    try:
        importlib.metadata.version("pixeltable-yolox")
        return "pixeltable"
    except importlib.metadata.PackageNotFoundError:
        import yolox.exp

        return "megvii-main" if hasattr(yolox.exp, "check_exp_value") else "megvii-pypi"


def test_detects_the_installed_yolox():
    assert flavour.flavour() == expected_flavour()


def test_names_are_the_installed_yolox_classes():
    import yolox.models

    assert issubclass(flavour.HeadBase, nn.Module) and hasattr(flavour.HeadBase, "get_losses")
    assert flavour.HeadBase.__module__ == "yolox.models.yolo_head"
    assert getattr(yolox.models, flavour.HeadBase.__name__) is flavour.HeadBase
    assert hasattr(flavour.ExpBase, "get_model") and hasattr(flavour.ExpBase, "get_trainer")
    assert flavour.Trainer.__module__ == "yolox.core.trainer"
    assert hasattr(flavour.COCOEvaluator, "evaluate_prediction")
    assert callable(flavour.launch) and callable(flavour.get_yolox_datadir)


def test_named_exp_builds_yolox_nano():
    exp = flavour.named_exp("yolox-nano")
    assert isinstance(exp, flavour.ExpBase)
    assert (exp.depth, exp.width, exp.input_size) == (0.33, 0.25, (416, 416))
    assert flavour.named_exp("yolox-huge") is None


def test_entry_parsers_are_yolox_own():
    option = "--config" if flavour.flavour() == "pixeltable" else "--exp_file"
    for tool in ("train", "eval"):
        parser = flavour.make_parser(tool)
        assert option in parser._option_string_actions
        assert os.path.isfile(flavour.entry_file(tool))


def test_without_yolox_one_line_says_how_to_install(tmp_path):
    with pytest.raises(ImportError, match=r"^yolox_focal needs YOLOX, which is not installed: install YOLOX first"):
        flavour._detect(None)
    (tmp_path / "yolox").mkdir()
    with pytest.raises(ImportError, match=r"is no YOLOX that yolox_focal knows"):
        flavour._detect(str(tmp_path / "yolox"))


WITHOUT_YOLOX = """
import sys
class NoYOLOX:
    def find_spec(self, name, path=None, target=None):
        if name == "yolox" or name.startswith("yolox."):
            raise ModuleNotFoundError(f"No module named {name!r}")
sys.meta_path.insert(0, NoYOLOX())
"""


def test_loss_core_imports_with_torch_alone_and_the_glue_says_what_it_needs():
    code = WITHOUT_YOLOX + """
import torch
from yolox_focal.losses import focal_loss
from yolox_focal.losses.kit import LossKit
import yolox_focal
kit = yolox_focal.LossKit(obj_loss="focal")
x = torch.zeros(3, 1)
print(float(focal_loss(x, x).sum()), float(kit.obj(x, x).sum()), "yolox" in sys.modules)
try:
    yolox_focal.FocalYOLOXHead
except ImportError as error:
    print("ImportError:", error)
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    expected = float(torch.nn.functional.binary_cross_entropy_with_logits(torch.zeros(3), torch.zeros(3), reduction="sum")
                     * 0.75 * 0.5**1.5)
    values = lines[0].split()
    assert abs(float(values[0]) - expected) < 1e-6 and abs(float(values[1]) - expected) < 1e-6
    assert values[2] == "False"
    assert len(lines) == 2 and lines[1].startswith("ImportError: yolox_focal needs YOLOX, which is not installed")


def test_yolox_src_tree_is_megvii_main():
    src = os.environ.get("YOLOX_SRC")
    if not src:
        pytest.skip("set YOLOX_SRC to a checkout of Megvii's GitHub main to run")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([src, str(REPO)]))
    out = subprocess.run([sys.executable, "-c", "from yolox_focal.adapter import flavour; print(flavour.flavour())"],
                         env=env, capture_output=True, text=True, check=True).stdout.strip()
    assert out == "megvii-main"


def test_head_base_computes_objectness_then_classification_through_bcewithlog_loss():
    """What a loss head built on HeadBase relies on, in every flavour: get_losses calls
    ``bcewithlog_loss`` twice, first for objectness over every anchor of the batch, then for the
    classes of the foreground anchors; total = 5 * iou + obj + cls + l1."""
    import torch

    from helpers import Recorder, head_inputs

    torch.manual_seed(0)
    head = flavour.HeadBase(3, 0.25, in_channels=[256, 512, 1024]).train()
    head.initialize_biases(1e-2)
    head.bcewithlog_loss = recorder = Recorder(head.bcewithlog_loss)
    feats, labels, imgs = head_inputs(3)
    total, iou, obj, cls, l1, _ = head(feats, labels, imgs)
    anchors = sum(f.shape[2] * f.shape[3] for f in feats)
    (obj_pred, obj_target), (cls_pred, cls_target) = recorder.calls
    assert obj_pred.shape == obj_target.shape == (feats[0].shape[0] * anchors, 1)
    num_fg = int(obj_target.sum())
    assert num_fg > 0 and cls_pred.shape == cls_target.shape == (num_fg, 3)
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    assert torch.allclose(obj, bce(obj_pred, obj_target, reduction="sum") / num_fg)
    assert torch.allclose(cls, bce(cls_pred, cls_target, reduction="sum") / num_fg)
    assert l1 == 0.0 and torch.allclose(total, iou + obj + cls)
