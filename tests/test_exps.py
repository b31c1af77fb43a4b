import subprocess
import sys

import pytest
import torch
from yolox.exp import get_exp

from helpers import REPO
from yolox_focal.losses import losses_for
from yolox_focal import FOCAL_OVERRIDES, FocalYOLOXHead, all_settings, yolox_settings

SETTING_NAMES = {s.name for s in all_settings()}
FOCAL = dict(yolox_settings(), **FOCAL_OVERRIDES)  # the focal exps' settings

SIZES = ["nano", "tiny", "s", "m", "l", "x"]


def focal_exp(size):
    return get_exp(str(REPO / "exps" / f"yolox_{size}_focal.py"))


@pytest.mark.parametrize("size", SIZES)
def test_exp_matches_official_but_for_the_loss_settings(size):
    ours, official = focal_exp(size), get_exp(exp_name=f"yolox-{size}")
    ours_vars = {k: v for k, v in vars(ours).items() if k not in SETTING_NAMES}
    official_vars = dict(vars(official))
    assert ours_vars.pop("exp_name") == f"yolox_{size}_focal"
    official_vars.pop("exp_name")
    assert ours_vars == official_vars
    assert ours.loss_settings() == FOCAL
    assert (ours.obj_loss, ours.focal_gamma, ours.focal_alpha, ours.obj_loss_weight) == ("focal", 1.5, 0.25, 1.0)
    assert (ours.cls_loss, ours.box_loss, ours.cls_label_smoothing) == ("bce", "iou", 0.0)


@pytest.mark.parametrize("size", SIZES)
def test_exp_builds_and_trains_one_step(size):
    exp = focal_exp(size)
    model = exp.get_model()
    assert isinstance(model.head, FocalYOLOXHead)
    official = get_exp(exp_name=f"yolox-{size}").get_model()
    assert [(k, v.shape) for k, v in model.state_dict().items()] == [
        (k, v.shape) for k, v in official.state_dict().items()]
    images = torch.rand(2, 3, 64, 64)
    labels = torch.zeros(2, 5, 5)
    labels[0, 0] = torch.tensor([3.0, 20, 24, 12, 16])
    labels[1, :2] = torch.tensor([[0.0, 40, 40, 20, 10], [7.0, 10, 50, 6, 8]])
    outputs = model(images, labels)
    assert set(outputs) >= {"total_loss", "iou_loss", "conf_loss", "cls_loss", "num_fg"}
    outputs["total_loss"].backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_cli_opts_set_objectness_keys():
    exp = focal_exp("s")
    exp.merge(["focal_gamma", "2.0", "focal_alpha", "none", "obj_loss_weight", "2", "max_epoch", "7"])
    assert dict(exp.loss_settings(), obj_focal_gamma=1.5, obj_focal_alpha=0.25, obj_loss_weight=1.0) == FOCAL
    assert (exp.focal_gamma, exp.focal_alpha, exp.obj_loss_weight) == (2.0, None, 2.0)
    assert (exp.obj_focal_gamma, exp.obj_focal_alpha) == (2.0, None)  # the aliases name these settings
    exp.merge(["obj_focal_gamma", "2.5"])
    assert exp.focal_gamma == 2.5 and "focal_gamma" not in vars(exp)
    assert exp.max_epoch == 7
    exp.merge(["seed", "3"])  # a key whose default is None: YOLOX would keep the string "3"
    assert exp.seed == 3
    exp.merge(["input_size", "(320, 256)", "data_dir", "/data/coco", "ema", "False", "warmup_epochs", "2"])
    assert exp.input_size == (320, 256) and exp.data_dir == "/data/coco"
    assert exp.ema is False and exp.warmup_epochs == 2
    # lower-case booleans, numbers written as literals, lists for tuples, None taking a literal
    exp.merge(["ema", "true", "enable_mixup", "false", "max_epoch", "1e2", "mosaic_scale", "[0.5, 1.5]"])
    assert exp.ema is True and exp.enable_mixup is False
    assert exp.max_epoch == 100 and type(exp.max_epoch) is int and exp.mosaic_scale == (0.5, 1.5)
    exp.merge(["obj_loss", "BCE", "focal_alpha", "0.5", "cls_loss", "varifocal", "cls_varifocal_alpha", "0.5",
               "cls_label_smoothing", "0.1", "box_loss", "siou", "box_siou_theta", "3", "box_loss_weight", "2",
               "box_inner_ratio", "0.8", "box_focaler_high", "0.9"])
    assert exp.obj_loss == "bce" and exp.focal_alpha == 0.5
    kit = exp.get_model().head.loss_kit
    assert kit.obj.name == "bce" and kit.settings["obj_focal_alpha"] == 0.5
    assert kit.cls.name == "varifocal" and kit.cls.values == {"alpha": 0.5, "gamma": 2.0}
    assert kit.cls.label_smoothing == 0.1 and (kit.box.name, kit.box.values, kit.box.weight) == ("siou", {"theta": 3.0}, 2.0)
    assert kit.box.modifiers == {"inner_ratio": 0.8, "focaler_low": 0.0, "focaler_high": 0.9}


@pytest.mark.parametrize("opts,words", [
    (["focal_gama", "2.0"], "unknown exp option 'focal_gama': did you mean 'focal_gamma'"),
    (["focal_gamma", "-1"], "focal_gamma must be a finite number >= 0, got -1.0"),
    (["focal_gamma", "big"], "focal_gamma takes a number, got 'big'"),
    (["obj_loss", "qfl"], "obj_loss must be one of " + ", ".join(losses_for("obj")) + "; got 'qfl'"),
    (["focal_alpha", "1.5"], "focal_alpha must be in [0, 1] or None (no balancing), got 1.5"),
    (["box_loss", "ciuo"], "box_loss must be one of iou, giou, diou, ciou, eiou, siou"),
    (["obj_focal_gamma", "-1"], "obj_focal_gamma must be a finite number >= 0, got -1.0"),
    (["box_focaler_low", "0.9", "box_focaler_high", "0.5"], "box_focaler_low must be below box_focaler_high"),
    (["cls_varifocal_alpha", "0"], "cls_varifocal_alpha must be a finite number > 0, got 0.0"),
    (["cls_label_smoothing", "none"], "cls_label_smoothing takes a number, got 'none'"),
    (["max_epoch"], "pairs"),
    (["max_epoch", "ten"], "exp option max_epoch takes a whole number, got 'ten'"),
    (["max_epoch", "2.5"], "exp option max_epoch takes a whole number, got '2.5'"),
    (["max_epoch", "1e999"], "exp option max_epoch takes a whole number, got '1e999'"),
    (["ema", "yes"], "exp option ema takes true or false, got 'yes'"),
    (["basic_lr_per_img", "True"], "exp option basic_lr_per_img takes a number, got 'True'"),
    (["input_size", "(320, 320, 3)"], "exp option input_size takes a tuple like (640, 640), got '(320, 320, 3)'"),
])
def test_cli_opts_rejected_with_clear_message(opts, words):
    exp = focal_exp("s")
    with pytest.raises(ValueError) as info:
        exp.merge(opts)
    assert words in str(info.value) and "\n" not in str(info.value)


def test_bad_setting_in_exp_fails_before_model_is_built():
    exp = focal_exp("nano")
    exp.focal_gamma = -2
    with pytest.raises(ValueError, match="gamma"):
        exp.get_model()
    assert getattr(exp, "model", None) is None


def test_yolox_loader_imports_exp_from_any_directory(tmp_path):
    code = (
        "from yolox.exp import get_exp; import sys; "
        "e = get_exp(sys.argv[1]); print(type(e).__mro__[1].__name__, e.exp_name)"
    )
    out = subprocess.run([sys.executable, "-c", code, str(REPO / "exps" / "yolox_s_focal.py")],
                         cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["FocalExpMixin", "yolox_s_focal"]


def test_exp_mixin_without_yolox_says_how_to_install():
    code = "import sys; sys.modules['yolox'] = None; from yolox_focal import FocalExpMixin"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert "pip install --no-deps --no-build-isolation yolox==0.3.0" in last
