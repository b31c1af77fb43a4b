"""The head: YOLOX's losses exactly at YOLOX's settings; a changed branch changes only that branch's
loss, which equals the formula on YOLOX's own targets; checkpoints, subclasses, unsupported YOLOX."""

import copy
import re

import pytest
import torch
from torchvision.ops import complete_box_iou_loss, distance_box_iou_loss, generalized_box_iou_loss

from helpers import REPO, Recorder, head_inputs
from references import (bce, geometry, reference_alpha_iou, reference_bce_blur, reference_eiou, reference_focal,
                        reference_mpdiou, reference_nwd, reference_poly1, reference_poly1_focal,
                        reference_quality_focal, reference_shape_iou, reference_siou, reference_slide,
                        reference_smoothed_bce, reference_varifocal, reference_wiou, reference_wiou_v3,
                        reference_with_modified_iou, xyxy)
from references import (reference_atfl, reference_gcd, reference_mal, reference_piou, reference_piou_v2, reference_uiou,
                        sigmoid)
from yolox_focal import FocalYOLOXHead, LossKit, UnsupportedYOLOXError, yolox_settings
from yolox_focal.adapter import flavour
from yolox_focal.adapter.flavour import HeadBase as YOLOXHead  # Megvii's YOLOXHead or pixeltable's YoloxHead
from yolox_focal.losses import losses_for

pytestmark = pytest.mark.any_yolox

WIDTH = 0.25
CHANNELS = [256, 512, 1024]
YOLOX = yolox_settings()
PROGRESS = 0.3  # the training progress the heads' kits are given, as a trainer gives it (uiou reads it)


def make_heads(num_classes, depthwise=False, **settings):
    torch.manual_seed(0)
    stock = YOLOXHead(num_classes, WIDTH, in_channels=CHANNELS, depthwise=depthwise)
    stock.initialize_biases(1e-2)
    ours = FocalYOLOXHead(num_classes, WIDTH, in_channels=CHANNELS, depthwise=depthwise, **settings)
    ours.load_state_dict(stock.state_dict(), strict=True)
    ours.loss_kit.set_progress(PROGRESS)
    return stock.train(), ours.train()


def losses_of(head, feats, labels, imgs, use_l1=False):
    head.use_l1 = use_l1
    return head(feats, labels, imgs)


CASES = [
    dict(num_classes=1, gts=(3, 0, 7, 1)),
    dict(num_classes=3, gts=(2, 5)),
    dict(num_classes=80, gts=(4, 0, 0, 9)),
    dict(num_classes=3, gts=(0,)),  # a batch without any ground truth
]
CASE_IDS = [f"{c['num_classes']}cls-gts{c['gts']}" for c in CASES]


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("use_l1", [False, True])
def test_yolox_settings_equal_yolox_exactly(case, use_l1):
    stock, ours = make_heads(case["num_classes"], **YOLOX)
    feats, labels, imgs = head_inputs(case["num_classes"], gts_per_image=case["gts"])
    expected = losses_of(stock, feats, labels, imgs, use_l1)
    got = losses_of(ours, feats, labels, imgs, use_l1)
    assert len(got) == len(expected) == 6
    for e, g in zip(expected, got):
        if torch.is_tensor(e):
            assert torch.equal(e, g)
        else:
            assert e == g


def test_yolox_settings_have_identical_gradients():
    stock, ours = make_heads(3, **YOLOX)
    feats, labels, imgs = head_inputs(3)
    losses_of(stock, feats, labels, imgs, use_l1=True)[0].backward()
    losses_of(ours, feats, labels, imgs, use_l1=True)[0].backward()
    for (name, a), (_, b) in zip(stock.named_parameters(), ours.named_parameters()):
        assert torch.equal(a.grad, b.grad), name


# ---------------------------------------------------------------- references, in float64
# (tests/references.py)

_bce, _xyxy = bce, xyxy
ref_focal, ref_qfocal, ref_varifocal = reference_focal, reference_quality_focal, reference_varifocal
ref_bce_blur, ref_smoothed_bce, ref_eiou, ref_siou = (reference_bce_blur, reference_smoothed_bce,
                                                      reference_eiou, reference_siou)


def ref_iou(p, t):
    p, t = _xyxy(p), _xyxy(t)
    inter = (torch.min(p[:, 2:], t[:, 2:]) - torch.max(p[:, :2], t[:, :2])).clamp(min=0).prod(1)
    return inter / ((p[:, 2:] - p[:, :2]).prod(1) + (t[:, 2:] - t[:, :2]).prod(1) - inter)


def _mean_p_t(x, t):
    p = sigmoid(x)
    return (t * p + (1 - t) * (1 - p)).mean().item()


BOX_REFERENCES = {
    "iou": lambda p, t: 1 - ref_iou(p, t) ** 2,
    "giou": lambda p, t: generalized_box_iou_loss(_xyxy(p), _xyxy(t)),
    "diou": lambda p, t: distance_box_iou_loss(_xyxy(p), _xyxy(t)),
    "ciou": lambda p, t: complete_box_iou_loss(_xyxy(p), _xyxy(t)),
    "eiou": ref_eiou,
    "siou": ref_siou,
}

# (settings, branch changed, reference of the element-wise loss before the weight, weight)
BRANCH_CHANGES = [
    (dict(obj_loss="focal"), "obj", lambda x, t: ref_focal(x, t, 1.5, 0.25), 1.0),
    (dict(obj_loss="focal", obj_focal_gamma=2.0, obj_focal_alpha=None, obj_loss_weight=3.0), "obj",
     lambda x, t: ref_focal(x, t, 2.0, None), 3.0),
    (dict(obj_loss="qfocal", obj_qfocal_beta=1.5, obj_qfocal_alpha=0.25), "obj",
     lambda x, t: ref_qfocal(x, t, 1.5, 0.25), 1.0),
    (dict(obj_loss="varifocal"), "obj", lambda x, t: ref_varifocal(x, t, 0.75, 2.0), 1.0),
    (dict(obj_loss="bce_blur", obj_bce_blur_alpha=0.1), "obj", lambda x, t: ref_bce_blur(x, t, 0.1), 1.0),
    (dict(obj_loss_weight=2.0), "obj", lambda x, t: _bce(x, t), 2.0),
    (dict(cls_loss="focal", cls_focal_gamma=2.0), "cls", lambda x, t: ref_focal(x, t, 2.0, 0.25), 1.0),
    (dict(cls_loss="qfocal"), "cls", lambda x, t: ref_qfocal(x, t, 2.0, None), 1.0),
    (dict(cls_loss="varifocal", cls_varifocal_alpha=0.5, cls_loss_weight=0.5), "cls",
     lambda x, t: ref_varifocal(x, t, 0.5, 2.0), 0.5),
    (dict(cls_label_smoothing=0.1), "cls", lambda x, t: ref_smoothed_bce(x, t, 0.1), 1.0),
    (dict(box_loss="giou"), "box", BOX_REFERENCES["giou"], 1.0),
    (dict(box_loss="diou"), "box", BOX_REFERENCES["diou"], 1.0),
    (dict(box_loss="ciou", box_loss_weight=2.0), "box", BOX_REFERENCES["ciou"], 2.0),
    (dict(box_loss="eiou"), "box", BOX_REFERENCES["eiou"], 1.0),
    (dict(box_loss="siou"), "box", BOX_REFERENCES["siou"], 1.0),
    # the newer losses; the running means with momentum 1 are the batch's own (head_inputs: 64 px images)
    (dict(obj_loss="poly1", obj_poly1_epsilon=0.5), "obj", lambda x, t: reference_poly1(x, t, 0.5), 1.0),
    (dict(cls_loss="poly1_focal", cls_poly1_focal_epsilon=-0.5), "cls",
     lambda x, t: reference_poly1_focal(x, t, -0.5, 1.5, 0.25), 1.0),
    (dict(cls_loss="slide"), "cls", lambda x, t: reference_slide(x, t), 1.0),
    (dict(cls_loss="slide_ema"), "cls", lambda x, t: reference_slide(x, t), 1.0),  # the first batch sets it
    (dict(box_loss="alpha_iou"), "box", lambda p, t: reference_alpha_iou(p, t, 3.0), 1.0),
    (dict(box_loss="wiou"), "box", reference_wiou, 1.0),
    (dict(box_loss="wiou_v3", box_wiou_v3_momentum=1.0), "box",
     lambda p, t: reference_wiou_v3(p, t, (1 - geometry(p, t)[0]).mean(), 1.9, 3.0), 1.0),
    (dict(box_loss="mpdiou"), "box", lambda p, t: reference_mpdiou(p, t, (64, 64)), 1.0),
    (dict(box_loss="shape_iou", box_shape_iou_scale=1.0), "box", lambda p, t: reference_shape_iou(p, t, 1.0), 1.0),
    (dict(box_loss="nwd"), "box", lambda p, t: reference_nwd(p, t, 12.8), 1.0),
    (dict(box_loss="piou"), "box", lambda p, t: reference_piou(p, t)[0], 1.0),
    (dict(box_loss="piou_v2", box_piou_v2_lam=1.1), "box", lambda p, t: reference_piou_v2(p, t, 1.1), 1.0),
    (dict(box_loss="gcd"), "box", reference_gcd, 1.0),
    (dict(box_loss="uiou"), "box", lambda p, t: reference_uiou(p, t, PROGRESS), 1.0),
    (dict(box_loss="uiou", box_uiou_schedule="cosine", box_uiou_gamma=1.0, box_focaler_low=0.2), "box",
     lambda p, t: reference_uiou(p, t, PROGRESS, schedule="cosine", gamma=1.0, low=0.2), 1.0),
    (dict(obj_loss="mal"), "obj", lambda x, t: reference_mal(x, t, 1.5), 1.0),
    (dict(cls_loss="mal", cls_mal_gamma=2.0), "cls", lambda x, t: reference_mal(x, t, 2.0), 1.0),
    # the first training batch sets atfl's running mean to its own mean p_t
    (dict(obj_loss="atfl"), "obj", lambda x, t: reference_atfl(x, t, _mean_p_t(x, t), 1.5), 1.0),
    # the box modifiers: IoU' in IoU's place in each loss's formula
    (dict(box_inner_ratio=0.7), "box", reference_with_modified_iou("iou", ratio=0.7), 1.0),
    (dict(box_loss="ciou", box_focaler_low=0.2, box_focaler_high=0.8), "box",
     reference_with_modified_iou("ciou", BOX_REFERENCES["ciou"], low=0.2, high=0.8), 1.0),
    (dict(box_loss="giou", box_inner_ratio=1.3, box_focaler_high=0.9, box_loss_weight=2.0), "box",
     reference_with_modified_iou("giou", BOX_REFERENCES["giou"], ratio=1.3, high=0.9), 2.0),
    (dict(box_loss="alpha_iou", box_focaler_low=0.3), "box",
     reference_with_modified_iou("alpha_iou", low=0.3, alpha=3.0), 1.0),
    (dict(box_loss="wiou_v3", box_wiou_v3_momentum=1.0, box_inner_ratio=0.8), "box",
     lambda p, t: reference_with_modified_iou("wiou_v3", ratio=0.8, alpha=1.9, delta=3.0,
                                              mean=(1 - geometry(p, t)[0]).mean())(p, t), 1.0),
    # the box mix and weights (box_weights.py): IoU ** gamma, the Wise focusing (momentum 1: the
    # batch's own mean), the Gaussian mix, each over the whole loss
    (dict(box_loss="ciou", box_focal_gamma=0.5), "box",
     lambda p, t: geometry(p, t)[0].detach() ** 0.5 * BOX_REFERENCES["ciou"](p, t), 1.0),
    (dict(box_loss="giou", box_wise_focusing="v2", box_wise_momentum=1.0), "box",
     lambda p, t: ((1 - geometry(p, t)[0]) / (1 - geometry(p, t)[0]).mean()).detach() ** 0.5
     * BOX_REFERENCES["giou"](p, t), 1.0),
    (dict(box_loss="diou", box_gaussian_mix="nwd", box_gaussian_mix_ratio=0.7, box_nwd_constant=20.0), "box",
     lambda p, t: 0.7 * BOX_REFERENCES["diou"](p, t) + 0.3 * reference_nwd(p, t, 20.0), 1.0),
    (dict(box_loss="gcd", box_gaussian_mix="nwd", box_loss_weight=2.0), "box",
     lambda p, t: 0.5 * reference_gcd(p, t) + 0.5 * reference_nwd(p, t, 12.8), 2.0),
]
# get_losses' 6-tuple: total, 5 * box, obj, cls, l1, num_fg / num_gts
POSITION = {"box": 1, "obj": 2, "cls": 3}


@pytest.mark.parametrize("case", [CASES[0], CASES[2]], ids=[CASE_IDS[0], CASE_IDS[2]])
@pytest.mark.parametrize("change", BRANCH_CHANGES, ids=lambda c: "-".join(f"{k}={v}" for k, v in c[0].items()))
def test_a_changed_branch_changes_only_its_loss(case, change):
    settings, branch, reference, weight = change
    stock, ours = make_heads(case["num_classes"], **dict(YOLOX, **settings))
    bce_calls, box_calls = Recorder(stock.bcewithlog_loss), Recorder(stock.iou_loss)
    stock.bcewithlog_loss, stock.iou_loss = bce_calls, box_calls
    feats, labels, imgs = head_inputs(case["num_classes"], gts_per_image=case["gts"])
    expected = losses_of(stock, feats, labels, imgs, use_l1=True)
    got = losses_of(ours, feats, labels, imgs, use_l1=True)

    for name, i in POSITION.items():
        if name != branch:
            assert torch.equal(got[i], expected[i]), name
    assert got[4] == expected[4] if not torch.is_tensor(got[4]) else torch.equal(got[4], expected[4])
    assert got[5] == expected[5]
    # YOLOX's own targets for the branch: objectness mask, one-hot x IoU classes, matched boxes.
    (obj_pred, obj_target), (cls_pred, cls_target) = bce_calls.calls
    ((box_pred, box_target),) = box_calls.calls
    pred, target = {"obj": (obj_pred, obj_target), "cls": (cls_pred, cls_target),
                    "box": (box_pred, box_target)}[branch]
    assert pred.shape[0] > 0
    num_fg = max(obj_target.sum().item(), 1)
    scale = 5.0 if branch == "box" else 1.0
    want = scale * weight * reference(pred.double(), target.double()).sum() / num_fg
    torch.testing.assert_close(got[POSITION[branch]].double(), want, atol=1e-5, rtol=1e-5)
    assert not torch.equal(got[POSITION[branch]], expected[POSITION[branch]])
    torch.testing.assert_close(got[0], got[1] + got[2] + got[3] + got[4])


# ---- under --fp16 ----------------------------------------------------------------------------------
# YOLOX's --fp16 runs get_losses under autocast: the matched boxes reach the box loss in float16, and
# a ground truth above 256 x 256 px has an area float16 cannot hold. CPU autocast computes torch.prod
# in float32 as CUDA's does (YOLOX's iou and giou rely on it). One 448 px image: float16 convolutions
# are slow on CPUs without float16 instructions.

def under_fp16(head):
    feats, labels, imgs = head_inputs(3, size=448, batch=1, gts_per_image=(6,))
    labels[:, :3, 3:] = torch.tensor([420.0, 380.0])  # 159600 px^2
    with torch.autocast("cpu", dtype=torch.float16):
        return losses_of(head, feats, labels.half(), imgs, use_l1=True)


@pytest.fixture(scope="module")
def stock_fp16():
    """YOLOXHead's losses under autocast float16 and the (pred, target) of each loss call."""
    stock, _ = make_heads(3, **YOLOX)
    stock.bcewithlog_loss, stock.iou_loss = Recorder(stock.bcewithlog_loss), Recorder(stock.iou_loss)
    losses = under_fp16(stock)
    (obj, cls), (box,) = stock.bcewithlog_loss.calls, stock.iou_loss.calls
    return losses, {"obj": obj, "cls": cls, "box": box}


def test_yolox_settings_equal_yolox_exactly_under_fp16(stock_fp16):
    expected, calls = stock_fp16
    _, ours = make_heads(3, **YOLOX)
    got = under_fp16(ours)
    assert torch.isfinite(expected[0])
    for e, g in zip(expected, got):
        assert torch.equal(e, g) if torch.is_tensor(e) else e == g


FP16_BOX = {
    "diou": ({}, BOX_REFERENCES["diou"]),
    "ciou-focaler": (dict(box_focaler_low=0.1, box_focaler_high=0.9),
                     reference_with_modified_iou("ciou", BOX_REFERENCES["ciou"], low=0.1, high=0.9)),
    "eiou": ({}, BOX_REFERENCES["eiou"]),
    "siou": ({}, BOX_REFERENCES["siou"]),
    "alpha_iou": ({}, lambda p, t: reference_alpha_iou(p, t, 3.0)),
    "wiou": ({}, reference_wiou),
    "wiou_v3": (dict(box_wiou_v3_momentum=1.0), lambda p, t: reference_wiou_v3(p, t, (1 - geometry(p, t)[0]).mean(),
                                                                                1.9, 3.0)),
    "mpdiou": ({}, lambda p, t: reference_mpdiou(p, t, (448, 448))),
    "shape_iou": ({}, lambda p, t: reference_shape_iou(p, t, 0.0)),
    "nwd": ({}, lambda p, t: reference_nwd(p, t, 12.8)),
    "gcd": ({}, reference_gcd),
    "uiou": ({}, lambda p, t: reference_uiou(p, t, PROGRESS)),
}


@pytest.mark.parametrize("name", FP16_BOX)
def test_box_losses_under_fp16_compute_the_float16_boxes_in_float32(name, stock_fp16):
    settings, reference = FP16_BOX[name]
    expected, calls = stock_fp16
    _, ours = make_heads(3, **dict(YOLOX, box_loss=name.split("-")[0], **settings))
    got = under_fp16(ours)
    pred, target = calls["box"]  # the matched boxes YOLOX hands over
    assert pred.dtype == target.dtype == torch.float16
    assert (target[:, 2].float() * target[:, 3].float() > 65504).any()
    want = 5 * reference(pred.double(), target.double()).sum() / pred.shape[0]  # 5 * sum / num_fg
    assert torch.isfinite(got[1])
    torch.testing.assert_close(got[1].double(), want, atol=1e-5, rtol=1e-5)
    assert all(torch.equal(got[i], expected[i]) for i in (2, 3))  # objectness and classes: YOLOX's


@pytest.mark.parametrize("change", [c for c in BRANCH_CHANGES if c[1] != "box"],
                         ids=lambda c: "-".join(f"{k}={v}" for k, v in c[0].items()))
def test_objectness_and_class_losses_under_fp16_compute_in_float32(change, stock_fp16):
    settings, branch, reference, weight = change
    expected, calls = stock_fp16
    _, ours = make_heads(3, **dict(YOLOX, **settings))
    got = under_fp16(ours)
    pred, target = calls[branch]
    assert pred.dtype == torch.float16
    want = weight * reference(pred.double(), target.double()).sum() / max(calls["obj"][1].sum().item(), 1)
    assert got[POSITION[branch]].dtype == torch.float32
    torch.testing.assert_close(got[POSITION[branch]].double(), want, atol=1e-5, rtol=1e-5)
    assert torch.equal(got[1], expected[1])  # the box loss: YOLOX's


def test_every_branch_changed_trains_every_output():
    _, ours = make_heads(3, obj_loss="varifocal", cls_loss="qfocal", cls_label_smoothing=0.05, box_loss="siou")
    feats, labels, imgs = head_inputs(3)
    losses_of(ours, feats, labels, imgs)[0].backward()
    for name, p in ours.named_parameters():
        if "obj_preds" in name or "cls_preds" in name or "reg_preds" in name:
            assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


def test_state_dict_and_inference_equal_yolox():
    stock, ours = make_heads(5, depthwise=True, obj_loss="focal", cls_loss="varifocal", box_loss="ciou")
    a, b = stock.state_dict(), ours.state_dict()
    assert list(a) == list(b)
    assert all(a[k].shape == b[k].shape for k in a)
    feats, _, _ = head_inputs(5)
    stock.eval(), ours.eval()
    with torch.no_grad():
        assert torch.equal(stock(feats), ours(feats))


def nano_exps():
    """YOLOX's own yolox-nano exp (config) and ours, in the installed YOLOX's kind."""
    if flavour.flavour() == "pixeltable":
        from yolox.config import YoloxNano

        from yolox_focal.pixeltable_configs import YoloxNanoFocal

        return YoloxNano(), YoloxNanoFocal()
    from yolox.exp import get_exp

    return get_exp(exp_name="yolox-nano"), get_exp(str(REPO / "exps" / "yolox_nano_focal.py"))


def test_checkpoints_move_both_ways_between_full_models():
    official_exp, exp = nano_exps()
    official = official_exp.get_model()
    exp.cls_loss, exp.box_loss = "varifocal", "giou"
    ours = exp.get_model()
    assert ours.head.loss_kit.changed() == {"obj_loss": "focal", "cls_loss": "varifocal", "box_loss": "giou"}
    assert isinstance(ours.head, FocalYOLOXHead) and not isinstance(official.head, FocalYOLOXHead)
    ours.load_state_dict(official.state_dict(), strict=True)  # fine-tune from COCO weights
    official.load_state_dict(ours.state_dict(), strict=True)  # deploy a model trained with the kit
    official.eval(), ours.eval()
    x = torch.rand(1, 3, 96, 96)
    with torch.no_grad():
        assert torch.equal(official(x), ours(x))


def test_convert_keeps_weights_and_switches_losses():
    stock, _ = make_heads(3)
    before = {k: v.clone() for k, v in stock.state_dict().items()}
    head = FocalYOLOXHead.convert(stock, obj_loss="focal", focal_gamma=2.0, box_loss="diou")
    assert head is stock and type(head) is FocalYOLOXHead
    assert head.loss_kit.settings["obj_focal_gamma"] == 2.0 and head.loss_kit.box.name == "diou"
    assert all(torch.equal(before[k], v) for k, v in head.state_dict().items())
    FocalYOLOXHead.convert(head, **YOLOX)
    assert head.loss_kit.changed() == {}


class ScaledHead(YOLOXHead):
    """A user's own head: doubles the total loss."""

    def get_losses(self, *args, **kwargs):
        total, *rest = super().get_losses(*args, **kwargs)
        return (2 * total, *rest)


def test_convert_keeps_a_user_subclass_and_its_overrides():
    torch.manual_seed(0)
    users = ScaledHead(3, WIDTH, in_channels=CHANNELS).train()
    _, plain = make_heads(3, obj_loss="focal")
    plain.load_state_dict(users.state_dict())
    FocalYOLOXHead.convert(users, obj_loss="focal")
    assert isinstance(users, ScaledHead) and isinstance(users, FocalYOLOXHead)
    feats, labels, imgs = head_inputs(3)
    scaled, single = losses_of(users, feats, labels, imgs), losses_of(plain, feats, labels, imgs)
    torch.testing.assert_close(scaled[0], 2 * single[0])
    assert torch.equal(scaled[2], single[2])
    assert type(FocalYOLOXHead.convert(ScaledHead(3, WIDTH, in_channels=CHANNELS))) is type(users)


def test_deep_copy_as_ema_does_computes_the_same_losses():
    _, ours = make_heads(3, obj_loss="qfocal", box_loss="eiou")
    twin = copy.deepcopy(ours)
    feats, labels, imgs = head_inputs(3)
    for a, b in zip(losses_of(ours, feats, labels, imgs), losses_of(twin, feats, labels, imgs)):
        assert torch.equal(torch.as_tensor(a), torch.as_tensor(b))


class ExtraLossCall(YOLOXHead):
    """Stands for a YOLOX whose get_losses computes one more loss through bcewithlog_loss."""

    def get_losses(self, *args, **kwargs):
        losses = super().get_losses(*args, **kwargs)
        self.bcewithlog_loss(torch.zeros(4, 2), torch.zeros(4, 2))
        return losses


class InlineObjectness(YOLOXHead):
    """Stands for a YOLOX whose get_losses no longer calls its loss modules."""

    def get_losses(self, *args, **kwargs):
        bce, iou = self.bcewithlog_loss, self.iou_loss
        self.bcewithlog_loss, self.iou_loss = bce.original, iou.original
        try:
            return super().get_losses(*args, **kwargs)
        finally:
            self.bcewithlog_loss, self.iou_loss = bce, iou


@pytest.mark.parametrize("head_type,words", [(ExtraLossCall, "called bcewithlog_loss more than 2"),
                                             (InlineObjectness, "called iou_loss 0 time(s), not 1")])
def test_a_yolox_that_computes_losses_otherwise_raises(head_type, words):
    head = FocalYOLOXHead.convert(head_type(3, WIDTH, in_channels=CHANNELS).train(), obj_loss="focal")
    feats, labels, imgs = head_inputs(3)
    with pytest.raises(UnsupportedYOLOXError, match=re.escape(words)):
        losses_of(head, feats, labels, imgs)


@pytest.mark.parametrize("settings,words", [
    (dict(obj_loss="fcal"), "obj_loss must be one of " + ", ".join(losses_for("obj")) + "; got 'fcal'"),
    (dict(focal_gamma=-1), "focal_gamma must be a finite number >= 0, got -1"),
    (dict(focal_alpha=2), "focal_alpha must be in [0, 1] or None (no balancing), got 2"),
    (dict(obj_loss_weight=0), "obj_loss_weight must be a finite number > 0, got 0"),
    (dict(box_loss="ciuo"), "box_loss must be one of " + ", ".join(losses_for("box")) + "; got 'ciuo'"),
    (dict(box_siou_theta=0), "box_siou_theta must be a finite number > 0, got 0"),
    (dict(box_focaler_low=0.6, box_focaler_high=0.4), "box_focaler_low must be below box_focaler_high, got 0.6 and 0.4"),
    (dict(obj_focal_gamma=2.0, focal_gamma=1.0), "obj_focal_gamma and focal_gamma are one setting, given 2.0 and 1.0; "
                                                 "give one of them"),
    (dict(cls_label_smoothing=1.0), "cls_label_smoothing must be in [0, 1), got 1.0"),
    (dict(cls_loss="bce_blur"), "cls_loss must be one of " + ", ".join(losses_for("cls")) + "; got 'bce_blur'"),
    (dict(focal_gama=2.0), "unknown loss setting 'focal_gama'; did you mean 'focal_gamma'?"),
])
def test_invalid_settings_fail_when_built(settings, words):
    with pytest.raises(ValueError) as built:
        FocalYOLOXHead(3, WIDTH, in_channels=CHANNELS, **settings)
    with pytest.raises(ValueError) as converted:
        FocalYOLOXHead.convert(YOLOXHead(3, WIDTH, in_channels=CHANNELS), **settings)
    for info in (built, converted):
        assert str(info.value) == words


def test_loss_kit_alone_is_yolox_unless_told():
    kit = LossKit()
    assert kit.changed() == {} and kit.obj.name == "bce" and kit.box.name == "iou"
    assert LossKit(cls_loss="focal").changed() == {"cls_loss": "focal"}
    assert not list(LossKit(obj_loss="focal", box_loss="ciou").state_dict())


def test_a_loss_that_needs_the_input_size_gets_the_batchs():
    """A loss declaring ``needs = ("input_size",)`` is handed the (height, width) of the images the head
    computes the losses for (multiscale training changes it batch by batch)."""
    from yolox_focal.losses import LOSSES, KitLoss, iou_loss, register

    seen = []

    @register
    class SizeNormalisedL1(KitLoss):
        name, branches, needs = "test_size_l1", ("box",), ("input_size",)

        def base_loss(self, pred, target, input_size):
            seen.append(input_size)
            return iou_loss(pred, target)

    try:
        _, ours = make_heads(3, **dict(YOLOX, box_loss="test_size_l1"))
        for size in (64, 96):
            feats, labels, imgs = head_inputs(3, size=size)
            losses_of(ours, feats, labels, imgs)
        assert seen == [(64, 64), (96, 96)]
        loss = SizeNormalisedL1()
        with pytest.raises(ValueError, match=r"^the test_size_l1 loss needs the batch's input_size: pass "):
            loss(torch.ones(2, 4), torch.ones(2, 4))
        loss(torch.ones(2, 4), torch.ones(2, 4), input_size=(32, 48))
        assert seen[-1] == (32, 48)
    finally:
        del LOSSES["test_size_l1"]


def test_a_loss_that_reads_the_progress_stops_a_training_step_without_it_in_one_line():
    # what a trainer that gives no progress (a patched YOLOX tree's own) meets at its first step
    _, ours = make_heads(3, **dict(YOLOX, box_loss="uiou"))
    ours.set_loss_kit(LossKit(box_loss="uiou", obj_loss="focal"))  # a fresh kit: no progress given
    feats, labels, imgs = head_inputs(3)
    with pytest.raises(ValueError) as info:
        losses_of(ours, feats, labels, imgs)
    message = str(info.value)
    assert message.startswith("the uiou loss needs the training progress, and none was given: train with "
                              "yolox-focal's trainer (tools/train.py") and "set_progress(fraction)" in message
    assert "\n" not in message
    ours.loss_kit.set_progress(1.0)
    assert torch.isfinite(losses_of(ours, feats, labels, imgs)[1])
