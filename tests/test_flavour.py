"""yolox_focal.flavour tells the three YOLOXes apart by what they contain and gives each one's names."""

import importlib.metadata
import os
import subprocess
import sys

import pytest
from torch import nn

from helpers import REPO
from yolox_focal import flavour

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


def test_yolox_src_tree_is_megvii_main():
    src = os.environ.get("YOLOX_SRC")
    if not src:
        pytest.skip("set YOLOX_SRC to a checkout of Megvii's GitHub main to run")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([src, str(REPO)]))
    out = subprocess.run([sys.executable, "-c", "from yolox_focal import flavour; print(flavour.flavour())"],
                         env=env, capture_output=True, text=True, check=True).stdout.strip()
    assert out == "megvii-main"
