"""The settings derive from the declared losses: complete, named by one rule, in the written order,
self-consistent (the docs' settings table is checked in test_docs.py); one set of defaults, YOLOX's;
one gate checks them; a loss registered later has its settings at once; today's keys keep their
meaning."""

import pytest
import torch

from yolox_focal.losses import LOSSES, KitLoss, Param, register
from yolox_focal.losses.assign import ASSIGNER, ASSIGNER_PARAMS, SIMILARITY_PARAMS
from yolox_focal.losses.box_weights import BOX_WEIGHT_OPTIONS
from yolox_focal.losses.declare import BRANCH_OPTIONS, OPTIONS
from yolox_focal.losses.gaussian import NWD_CONSTANT
from yolox_focal.losses.kit import LossKit
from yolox_focal.adapter.head import FOCAL_OVERRIDES
from yolox_focal.losses.settings import (ALIASES, ASSIGNMENT, BRANCHES, CheckedSettings, all_settings, option_setting,
                                         parse_setting, resolve_settings, settings_by_name, settings_table,
                                         yolox_settings)

pytestmark = pytest.mark.any_yolox

# The keys of the README's settings table before the settings were derived from the declarations.
EARLIER_KEYS = [
    "obj_loss", "focal_gamma", "focal_alpha", "obj_qfocal_beta", "obj_qfocal_alpha", "obj_varifocal_alpha",
    "obj_varifocal_gamma", "obj_bce_blur_alpha", "obj_loss_weight", "cls_loss", "cls_focal_gamma", "cls_focal_alpha",
    "cls_qfocal_beta", "cls_qfocal_alpha", "cls_varifocal_alpha", "cls_varifocal_gamma", "cls_label_smoothing",
    "cls_loss_weight", "box_loss", "box_loss_weight",
]


def test_the_settings_follow_the_written_order():
    """Branch by branch; in each, the loss, its losses' parameters in registration order (the import
    line of losses/__init__.py), then the options; then the label assignment's."""
    names = [s.name for s in all_settings()]
    assert [n for n in names if n.endswith("_loss")] == ["obj_loss", "cls_loss", "box_loss"]
    assert names.index("cls_loss") > names.index("obj_loss_weight")
    assert names[names.index("box_loss_weight"):] == [
        "box_loss_weight", "assigner", "assigner_similarity", "assigner_nwd_constant", "assigner_tal_alpha",
        "assigner_tal_beta", "assigner_tal_topk", "assigner_dsl_topk", "assigner_dsl_iou_weight",
        "assigner_dsl_center_base", "assigner_dsl_center_offset"]
    assert settings_by_name()["obj_loss"].choices == ("bce", "bce_blur", "focal", "qfocal", "varifocal", "poly1",
                                                      "poly1_focal", "mal", "atfl")
    assert settings_by_name()["box_loss"].choices[:7] == ("iou", "giou", "diou", "ciou", "eiou", "siou", "alpha_iou")
    assert names.index("obj_focal_gamma") < names.index("obj_qfocal_beta") < names.index("obj_poly1_epsilon")


def test_every_parameter_of_every_declared_loss_and_branch_has_one_setting_by_the_rule():
    expected = set()
    for branch in BRANCHES:
        for name, cls in LOSSES.items():
            if branch not in cls.branches:
                continue
            for arg, param in cls.params.items():
                setting = settings_by_name()[f"{branch}_{name}_{arg}"]
                assert (setting.branch, setting.loss, setting.arg) == (branch, name, arg)
                assert setting.param is param and setting.yolox == param.default
                expected.add(setting.name)
        assert settings_by_name()[f"{branch}_loss"].choices == tuple(n for n, c in LOSSES.items() if branch in c.branches)
        expected |= {f"{branch}_loss", f"{branch}_loss_weight"}
        # the branch's options, by the rule ({branch}_loss_weight for the weight, {branch}_{option} else)
        expected |= {option_setting(branch, option) for option in BRANCH_OPTIONS[branch]}
    assert {"cls_label_smoothing", "box_inner_ratio", "box_focaler_low", "box_focaler_high", "box_wise_focusing",
            "box_focal_gamma", "box_gaussian_mix", "box_gaussian_mix_ratio", "box_nwd_constant"} <= expected
    # the assignment's: the choice, the similarity simota and dsl share, each assigner's own parameters
    assert settings_by_name()["assigner"].param is ASSIGNER and settings_by_name()["assigner"].yolox == "simota"
    expected.add("assigner")
    for arg, param in SIMILARITY_PARAMS.items():
        assert settings_by_name()[f"assigner_{arg}"].param is param
        expected.add(f"assigner_{arg}")
    for assigner, params in ASSIGNER_PARAMS.items():
        for arg, param in params.items():
            setting = settings_by_name()[f"assigner_{assigner}_{arg}"]
            assert (setting.branch, setting.loss, setting.arg, setting.param) == (ASSIGNMENT, assigner, arg, param)
            expected.add(setting.name)
    names = [s.name for s in all_settings()]
    assert len(names) == len(set(names)) and set(names) == expected
    assert set(settings_by_name()) == expected | set(ALIASES)


def test_earlier_keys_keep_their_meaning():
    for key in EARLIER_KEYS:
        assert key in settings_by_name(), key
    assert ALIASES == {"focal_gamma": "obj_focal_gamma", "focal_alpha": "obj_focal_alpha"}
    kit = LossKit(obj_loss="focal", focal_gamma=2.0, focal_alpha=None)
    assert kit.settings["obj_focal_gamma"] == 2.0 and kit.settings["obj_focal_alpha"] is None
    assert kit.obj.values == {"gamma": 2.0, "alpha": None}
    assert resolve_settings({"focal_gamma": 3.0})["obj_focal_gamma"] == 3.0


def test_one_set_of_defaults_yoloxs_and_the_focal_exps_change_only_objectness():
    assert resolve_settings({}) == yolox_settings() == {s.name: s.param.default for s in all_settings()}
    assert (yolox_settings()["obj_loss"], yolox_settings()["cls_loss"], yolox_settings()["box_loss"]) == (
        "bce", "bce", "iou")
    assert yolox_settings()["cls_label_smoothing"] == 0
    assert [yolox_settings()[k] for k in ("box_inner_ratio", "box_focaler_low", "box_focaler_high")] == [1, 0, 1]
    assert [yolox_settings()[k] for k in ("box_wise_focusing", "box_focal_gamma", "box_gaussian_mix")] == ["off", 0, "off"]
    assert FOCAL_OVERRIDES == {"obj_loss": "focal"}
    resolve_settings(FOCAL_OVERRIDES)
    assert not hasattr(all_settings()[0], "default")  # no second default layer


def test_the_gate_returns_settings_a_kit_takes_without_checking_again():
    checked = resolve_settings({"box_loss": "ciou", "focal_gamma": 2.0})
    assert isinstance(checked, CheckedSettings) and list(checked) == [s.name for s in all_settings()]
    assert (checked["box_loss"], checked["obj_focal_gamma"]) == ("ciou", 2.0)
    kit = LossKit(checked)
    assert kit.settings is checked and kit.box.name == "ciou"
    with pytest.raises(TypeError, match="CheckedSettings"):
        LossKit(dict(checked))  # a plain mapping was not checked
    with pytest.raises(TypeError, match="CheckedSettings"):
        LossKit(checked, box_loss="giou")


@pytest.mark.parametrize("name,text,value", [
    ("obj_loss", "Focal", "focal"), ("box_loss", " ciou ", "ciou"), ("focal_gamma", "2", 2.0),
    ("obj_focal_gamma", "2", 2.0), ("focal_alpha", "None", None), ("obj_qfocal_alpha", "none", None),
    ("cls_label_smoothing", "0.1", 0.1), ("box_loss_weight", 3, 3), ("box_siou_theta", "5", 5.0),
    ("box_inner_ratio", "0.75", 0.75), ("box_wise_focusing", "V3", "v3"), ("box_gaussian_mix", " gcd ", "gcd"),
    ("box_focal_gamma", "0.5", 0.5), ("box_gaussian_mix_ratio", "0.3", 0.3), ("box_nwd_constant", "20", 20.0),
])
def test_command_line_values_parse_by_their_declared_type(name, text, value):
    assert parse_setting(name, text) == value


@pytest.mark.parametrize("name,text,words", [
    ("focal_gamma", "two", "focal_gamma takes a number, got 'two'"),
    ("obj_focal_gamma", "two", "obj_focal_gamma takes a number, got 'two'"),
    ("cls_label_smoothing", "none", "cls_label_smoothing takes a number, got 'none'"),
])
def test_unparseable_values_are_one_line(name, text, words):
    with pytest.raises(ValueError) as info:
        parse_setting(name, text)
    assert str(info.value) == words


def test_every_setting_rejects_a_value_outside_its_range():
    for key, setting in settings_by_name().items():
        bad = "no-such-loss" if setting.choices else setting.param.low - 1.0  # below every range
        with pytest.raises(ValueError, match=key) as info:
            resolve_settings({key: bad})
        assert "\n" not in str(info.value)


@pytest.mark.parametrize("values,words", [
    (dict(box_focaler_low=0.5, box_focaler_high=0.5), "box_focaler_low must be below box_focaler_high, got 0.5 and 0.5"),
    (dict(focal_gamma=1.0, obj_focal_gamma=2.0), "focal_gamma and obj_focal_gamma are one setting, given 1.0 and 2.0"),
    (dict(box_inner_ratio=0), "box_inner_ratio must be a finite number > 0, got 0"),
    (dict(focal_gama=1.0), "unknown loss setting 'focal_gama'; did you mean 'focal_gamma'?"),
])
def test_combinations_are_checked_in_one_line(values, words):
    with pytest.raises(ValueError) as info:
        resolve_settings(values)
    assert str(info.value).startswith(words) and "\n" not in str(info.value)


@pytest.fixture
def registered():
    """Register the given loss classes for one test, and remove them afterwards."""
    added = []

    def add(cls):
        added.append(register(cls).name)
        return cls

    yield add
    for name in added:
        del LOSSES[name]


def _plain_l1(pred, target, scale=2.0, reduction="none"):
    loss = (pred - target).abs().sum(-1) * scale
    return loss.sum() if reduction == "sum" else loss.mean() if reduction == "mean" else loss


def test_a_registered_loss_gets_its_settings_parsing_checks_and_table_row(registered):
    @registered
    class ScaledL1(KitLoss):
        name, branches = "scaled_l1", ("box",)
        params = {"scale": Param(2.0, 0, 10, doc="multiplies the distance")}
        function = staticmethod(_plain_l1)

    setting = settings_by_name()["box_scaled_l1_scale"]
    assert setting.yolox == 2.0 and setting.doc == "scaled_l1: multiplies the distance"
    assert "scaled_l1" in settings_by_name()["box_loss"].choices
    assert "| `box_scaled_l1_scale` | box | `2.0` | in [0, 10] | scaled_l1: multiplies the distance |" in settings_table()
    assert parse_setting("box_scaled_l1_scale", "3") == 3.0
    with pytest.raises(ValueError, match=r"box_scaled_l1_scale must be in \[0, 10\], got 11"):
        resolve_settings({"box_loss": "scaled_l1", "box_scaled_l1_scale": 11})
    # not IoU-based: the IoU modifiers are refused in one line, not applied
    with pytest.raises(ValueError) as info:
        LossKit(box_loss="scaled_l1", box_inner_ratio=0.8)
    assert str(info.value) == ("box_inner_ratio modifies an IoU-based box loss, and scaled_l1 is not one; "
                               "leave it at 1.0")
    kit = LossKit(box_loss="scaled_l1", box_scaled_l1_scale=3.0, box_loss_weight=0.5)
    pred, target = torch.rand(5, 4), torch.rand(5, 4)
    torch.testing.assert_close(kit.box(pred, target), 1.5 * (pred - target).abs().sum(-1))


def test_a_removed_loss_takes_its_settings_with_it(registered):
    before = [s.name for s in all_settings()]

    @registered
    class Twice(KitLoss):
        name, branches = "twice", ("obj", "cls")
        params = {"factor": Param(2.0, 0)}

        def base_loss(self, pred, target):
            return self.values["factor"] * torch.nn.functional.binary_cross_entropy_with_logits(
                pred, target, reduction="none")

    assert {"obj_twice_factor", "cls_twice_factor"} <= set(settings_by_name())
    del LOSSES["twice"]
    assert [s.name for s in all_settings()] == before
    LOSSES["twice"] = Twice  # for the fixture to remove


@pytest.mark.parametrize("cls,words", [
    (type("NoName", (KitLoss,), {"branches": ("obj",), "function": staticmethod(_plain_l1)}), "needs a new name"),
    (type("Both", (KitLoss,), {"name": "both", "branches": ("obj", "box"), "function": staticmethod(_plain_l1)}),
     "a box loss serves only the box branch"),
    (type("Nothing", (KitLoss,), {"name": "nothing", "branches": ("box",)}), "declare a function or override base_loss"),
    (type("Whole", (KitLoss,), {"name": "whole", "branches": ("box",), "function": staticmethod(_plain_l1),
                                "forward": lambda self, pred, target: pred}), "forward is the whole loss"),
    (type("Drift", (KitLoss,), {"name": "drift", "branches": ("box",), "function": staticmethod(_plain_l1),
                                "params": {"scale": Param(3.0, 0)}}), "_plain_l1's scale must default to 3.0"),
    (type("focal2", (KitLoss,), {"name": "focal", "branches": ("obj",), "function": staticmethod(_plain_l1)}),
     "needs a new name, got 'focal'"),
])
def test_a_bad_declaration_is_refused_at_registration(cls, words):
    before = dict(LOSSES)
    with pytest.raises(ValueError, match=words):
        register(cls)
    assert LOSSES == before


def test_options_are_declared_once():
    # every option serves a branch, and the box mix and weights are the box branch's
    assert set(OPTIONS) == {o for options in BRANCH_OPTIONS.values() for o in options}
    assert set(BOX_WEIGHT_OPTIONS) <= set(BRANCH_OPTIONS["box"]) and set(BOX_WEIGHT_OPTIONS) <= set(OPTIONS)
    assert {"label_smoothing", "inner_ratio", "focaler_low", "focaler_high", "weight", "wise_focusing",
            "focal_gamma", "gaussian_mix", "gaussian_mix_ratio", "nwd_constant"} <= set(OPTIONS)
    for option in BOX_WEIGHT_OPTIONS:
        setting = settings_by_name()[f"box_{option}"]
        assert setting.param is OPTIONS[option] is BOX_WEIGHT_OPTIONS[option] and setting.branch == "box"
    # the mix's NWD constant is the nwd loss's own setting: one setting, one Param, in one place
    shared = settings_by_name()["box_nwd_constant"]
    assert (shared.loss, shared.arg) == ("nwd", "constant") and shared.param is NWD_CONSTANT is OPTIONS["nwd_constant"]
    assert [s.name for s in all_settings()].count("box_nwd_constant") == 1
    kit = LossKit(box_loss="nwd", box_nwd_constant=30.0, box_gaussian_mix="nwd")
    assert kit.box.values["constant"] == 30.0 and kit.box.box_weighting.nwd_constant == 30.0
    for branch, option, name in [("cls", "label_smoothing", "cls_label_smoothing"), ("box", "inner_ratio", "box_inner_ratio"),
                                 ("obj", "weight", "obj_loss_weight")]:
        assert settings_by_name()[name].param is OPTIONS[option] and settings_by_name()[name].branch == branch
