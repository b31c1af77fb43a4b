"""The declared settings are the one source: complete, self-consistent, and what the README shows."""

import pytest

from helpers import REPO
from yolox_focal.losses._common import defaults_of
from yolox_focal.losses.settings import (BRANCH_LOSSES, ELEMENTWISE_LOSSES, SETTINGS, SETTINGS_BY_NAME, check_settings,
                                  default_settings, parse_setting, settings_table, yolox_settings)

pytestmark = pytest.mark.any_yolox


def test_readme_shows_the_generated_settings_table():
    table = settings_table()
    readme = (REPO / "README.md").read_text()
    assert table in readme, "README's settings table differs from the declaration; put this in it:\n" + table


def test_every_parameter_of_every_branch_loss_has_exactly_one_setting():
    for branch in ("obj", "cls"):
        for loss in BRANCH_LOSSES[branch]:
            function, params = ELEMENTWISE_LOSSES[loss]
            for arg in params:
                owners = [s for s in SETTINGS if (s.branch, s.loss, s.arg) == (branch, loss, arg)]
                assert len(owners) == 1, (branch, loss, arg)
                assert owners[0].default == defaults_of(function)[arg]
                assert owners[0].number is params[arg]
    for branch in ("obj", "cls", "box"):
        assert f"{branch}_loss" in SETTINGS_BY_NAME and f"{branch}_loss_weight" in SETTINGS_BY_NAME
    assert len(SETTINGS_BY_NAME) == len(SETTINGS)


def test_defaults_are_the_missions_and_yolox_values_are_yoloxs():
    check_settings(default_settings())
    check_settings(yolox_settings())
    changed = {k for k, v in default_settings().items() if v != yolox_settings()[k]}
    assert changed == {"obj_loss"} and default_settings()["obj_loss"] == "focal"
    assert (yolox_settings()["obj_loss"], yolox_settings()["cls_loss"], yolox_settings()["box_loss"]) == (
        "bce", "bce", "iou")
    assert yolox_settings()["cls_label_smoothing"] == 0


@pytest.mark.parametrize("name,text,value", [
    ("obj_loss", "Focal", "focal"), ("box_loss", " ciou ", "ciou"), ("focal_gamma", "2", 2.0),
    ("focal_alpha", "None", None), ("obj_qfocal_alpha", "none", None), ("cls_label_smoothing", "0.1", 0.1),
    ("box_loss_weight", 3, 3),
])
def test_command_line_values_parse_by_their_declared_type(name, text, value):
    assert parse_setting(name, text) == value


@pytest.mark.parametrize("name,text,words", [
    ("focal_gamma", "two", "focal_gamma takes a number, got 'two'"),
    ("cls_label_smoothing", "none", "cls_label_smoothing takes a number, got 'none'"),
])
def test_unparseable_values_are_one_line(name, text, words):
    with pytest.raises(ValueError) as info:
        parse_setting(name, text)
    assert str(info.value) == words


def test_every_setting_rejects_a_value_outside_its_range():
    for setting in SETTINGS:
        bad = "no-such-loss" if setting.choices else -1.0
        with pytest.raises(ValueError, match=setting.name):
            check_settings({setting.name: bad})
