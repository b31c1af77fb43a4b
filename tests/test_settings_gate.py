"""From the command line to the loss kit, a setting is parsed once, where it enters, and checked once,
by the gate (``resolve_settings``), with one default layer: YOLOX's values, and the focal exps'
``obj_loss`` override."""

import sys
from contextlib import contextmanager

import pytest
import torch

from helpers import REPO
from yolox_focal.losses import settings
from yolox_focal.runtime.cli import load_exp


@contextmanager
def calls(*functions):
    """{function name: how many times it ran} while the block runs, however it was imported."""
    codes = {f.__code__: f.__name__ for f in functions}
    counts = dict.fromkeys(codes.values(), 0)

    def profile(frame, event, arg):
        if event == "call" and frame.f_code in codes:
            counts[codes[frame.f_code]] += 1

    sys.setprofile(profile)
    try:
        yield counts
    finally:
        sys.setprofile(None)


def test_train_command_line_parses_once_and_gates_once():
    """What ``tools/train.py -f exps/yolox_s_focal.py box_loss ciou`` does to the setting before the
    first batch: the exp loaded and its options merged as the tool does, then the model built."""
    with calls(settings.resolve_settings, settings.parse_setting) as counts:
        exp = load_exp(str(REPO / "exps" / "yolox_s_focal.py"), None, ["box_loss", "ciou"])
        model = exp.get_model()
    assert counts == {"resolve_settings": 1, "parse_setting": 1}
    kit = model.head.loss_kit
    assert kit.changed() == {"obj_loss": "focal", "box_loss": "ciou"}  # YOLOX's but for the focal exp's override
    assert (kit.obj.name, kit.cls.name, kit.box.name) == ("focal", "bce", "ciou")


def test_a_training_step_builds_no_settings():
    """The settings are built when the kit is, not per batch: a forward and backward pass of the
    head touches neither the settings nor the gate."""
    exp = load_exp(str(REPO / "exps" / "yolox_nano_focal.py"), None, ["box_loss", "ciou"])
    model = exp.get_model().train()
    images, labels = torch.rand(2, 3, 64, 64), torch.zeros(2, 3, 5)
    labels[0, 0] = torch.tensor([3.0, 20, 24, 12, 16])
    labels[1, :2] = torch.tensor([[0.0, 40, 40, 20, 10], [7.0, 10, 50, 6, 8]])
    with calls(settings.all_settings, settings.settings_by_name, settings.resolve_settings) as counts:
        model(images, labels)["total_loss"].backward()
    assert counts == {"all_settings": 0, "settings_by_name": 0, "resolve_settings": 0}


def test_a_setting_changed_after_merge_goes_through_the_gate_again():
    exp = load_exp(str(REPO / "exps" / "yolox_s_focal.py"), None, ["box_loss", "ciou"])
    exp.focal_gamma = -1.0
    with pytest.raises(ValueError) as info:
        exp.get_model()
    assert str(info.value) == "obj_focal_gamma must be a finite number >= 0, got -1.0"
    exp.focal_gamma = 2.0
    with calls(settings.resolve_settings) as counts:
        kit = exp.get_model().head.loss_kit
    assert counts == {"resolve_settings": 1} and kit.obj.values["gamma"] == 2.0


def test_a_bad_command_line_value_leaves_the_exp_unchanged():
    exp = load_exp(str(REPO / "exps" / "yolox_s_focal.py"), None, [])
    with pytest.raises(ValueError, match="box_focaler_low must be below box_focaler_high"):
        exp.merge(["box_loss", "ciou", "box_focaler_low", "0.9", "box_focaler_high", "0.5"])
    assert (exp.box_loss, exp.box_focaler_low, exp.box_focaler_high) == ("iou", 0.0, 1.0)
