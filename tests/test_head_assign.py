"""The ``assigner`` setting through the head: at ``simota`` with the IoU (the default) the head is
YOLOXHead bit for bit and calls YOLOX's own get_assignments; ``tal``, ``dsl`` and ``simota`` with a
Gaussian similarity replace only the assignment, so the losses YOLOX's get_losses computes are the
ones of the assignment that the papers' references (tests/test_assign.py) give on hand-built scenes;
YOLOX's CPU retry; a get_assignments the head does not know; bad settings in one line."""

import functools
import inspect
import math

import pytest
import torch

from helpers import head_inputs
from test_head import under_fp16
from test_assign import (STRIDE, dsl_scene, random_scene, ref_iou, reference_dsl, reference_simota, reference_tal,
                         tal_scene)
from yolox_focal import FocalYOLOXHead, LossKit, UnsupportedYOLOXError, yolox_settings
from yolox_focal.adapter.flavour import HeadBase as YOLOXHead  # Megvii's YOLOXHead or pixeltable's YoloxHead

pytestmark = pytest.mark.any_yolox

WIDTH = 0.25
CHANNELS = [256, 512, 1024]
YOLOX = yolox_settings()


def make_heads(num_classes, **settings):
    torch.manual_seed(0)
    stock = YOLOXHead(num_classes, WIDTH, in_channels=CHANNELS)
    stock.initialize_biases(1e-2)
    ours = FocalYOLOXHead(num_classes, WIDTH, in_channels=CHANNELS, **dict(YOLOX, **settings))
    ours.load_state_dict(stock.state_dict(), strict=True)
    return stock.train(), ours.train()


class CountCalls:
    """Counts the calls of YOLOX's own get_assignments (patched on its class for one test)."""

    def __init__(self, monkeypatch):
        self.count = 0
        original = YOLOXHead.get_assignments

        @functools.wraps(original)  # its signature: the head binds YOLOX's arguments by name
        def counted(head, *args, **kwargs):
            self.count += 1
            return original(head, *args, **kwargs)

        monkeypatch.setattr(YOLOXHead, "get_assignments", counted)


# ---------------------------------------------------------------- the default: YOLOX's own


@pytest.mark.parametrize("gts", [(3, 0, 7, 1), (2, 5), (0,)])
def test_simota_with_iou_is_yolox_bit_for_bit_and_calls_yoloxs_own_assignment(gts, monkeypatch):
    assert (YOLOX["assigner"], YOLOX["assigner_similarity"]) == ("simota", "iou")
    stock, ours = make_heads(3, assigner="simota", assigner_similarity="iou")
    assert ours.loss_kit.assign is None
    feats, labels, imgs = head_inputs(3, gts_per_image=gts)
    expected = stock(feats, labels, imgs)
    calls = CountCalls(monkeypatch)
    got = ours(feats, labels, imgs)
    assert calls.count == sum(1 for i in range(4) if gts[i % len(gts)])  # one per image with ground truth
    for e, g in zip(expected, got):
        assert torch.equal(e, g) if torch.is_tensor(e) else e == g


@pytest.mark.parametrize("settings", [dict(assigner="tal"), dict(assigner="dsl"),
                                      dict(assigner="simota", assigner_similarity="nwd")])
def test_another_assigner_replaces_yoloxs_assignment(settings, monkeypatch):
    stock, ours = make_heads(3, **settings)
    feats, labels, imgs = head_inputs(3, gts_per_image=(4, 2))
    calls = CountCalls(monkeypatch)
    got = ours(feats, labels, imgs)
    assert calls.count == 0
    assert all(torch.isfinite(torch.as_tensor(v)).all() for v in got)
    got[0].backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in ours.parameters() if p.requires_grad)


@pytest.mark.parametrize("settings", [dict(assigner="tal"), dict(assigner="dsl", assigner_similarity="nwd"),
                                      dict(assigner="simota", assigner_similarity="gcd")])
def test_another_assigner_under_fp16_autocast_with_boxes_whose_areas_overflow_float16(settings):
    _, ours = make_heads(3, **settings)
    losses = under_fp16(ours)  # tests/test_head.py: 420 x 380 px ground truths, float16 labels
    assert all(torch.isfinite(torch.as_tensor(v)).all() for v in losses) and losses[5] > 0


# ---------------------------------------------------------------- hand-built scenes through get_losses


def scene_inputs(scene):
    """YOLOXHead.get_losses' arguments for one image holding ``scene`` (one level, stride 8): the
    predictions as decoded outputs (cx, cy, w, h, obj logit, class logits), labels (class, box)."""
    cells, num = scene.cells, scene.cells * scene.cells
    outputs = torch.tensor([box + [obj] + cls for box, obj, cls in
                            zip(scene.pred_boxes, scene.obj_logits, scene.cls_logits)]).unsqueeze(0)
    labels = torch.tensor([[float(c)] + box for c, box in zip(scene.gt_classes, scene.gt_boxes)]).unsqueeze(0)
    grid = torch.arange(num, dtype=torch.float32)
    return dict(imgs=torch.zeros(1, 3, cells * STRIDE, cells * STRIDE), x_shifts=[(grid % cells).unsqueeze(0)],
                y_shifts=[torch.div(grid, cells, rounding_mode="floor").unsqueeze(0)],
                expanded_strides=[torch.full((1, num), float(STRIDE))], labels=labels, outputs=outputs,
                origin_preds=[], dtype=torch.float32)


def bce_logits(x, t):
    """BCE-with-logits written stably, max(x, 0) - x t + log(1 + e^-|x|): at logit 30 the BCE of
    sigmoid(x) would round 1 - sigmoid(30) to a few digits."""
    return max(x, 0.0) - x * t + math.log1p(math.exp(-abs(x)))


def reference_losses(scene, assignment):
    """What YOLOX's get_losses computes from an assignment {anchor: (gt, class target)}, written
    plainly: 5 x sum of 1 - IoU^2 (YOLOX's IOUloss), BCE of the objectness against the positives,
    BCE of the classes against one-hot x target, each over the number of positives."""
    num_fg = max(len(assignment), 1)
    box = sum(1 - ref_iou(scene.pred_boxes[a], scene.gt_boxes[g]) ** 2 for a, (g, _) in assignment.items())
    obj = sum(bce_logits(x, float(a in assignment)) for a, x in enumerate(scene.obj_logits))
    cls = sum(bce_logits(x, t * (c == scene.gt_classes[g]))
              for a, (g, t) in assignment.items() for c, x in enumerate(scene.cls_logits[a]))
    box, obj, cls = 5 * box / num_fg, obj / num_fg, cls / num_fg
    return [box + obj + cls, box, obj, cls]


def assert_losses(head, scene, expected_assignment):
    got = head.get_losses(**scene_inputs(scene))
    expected = reference_losses(scene, expected_assignment)
    for name, g, e in zip(("total", "iou", "obj", "cls"), got, expected):
        assert g.item() == pytest.approx(e, rel=2e-5, abs=1e-6), name
    assert got[5] == max(len(expected_assignment), 1) / len(scene.gt_boxes)  # YOLOX's num_fg (at least 1) / num_gts
    return got


def head_for(scene, **settings):
    head = FocalYOLOXHead(len(scene.cls_logits[0]), WIDTH, in_channels=CHANNELS, **dict(YOLOX, **settings))
    return head.train()


def test_tal_through_the_head_gives_the_contested_anchor_to_the_higher_iou():
    scene = tal_scene(second_gt=True)
    expected = reference_tal(scene, topk=4)
    # the scene in words: gt 0 takes anchors 5, 6 and 9; anchor 10, inside both, goes to gt 1 (higher IoU)
    assert {a: g for a, (g, _) in expected.items()} == {5: 0, 6: 0, 9: 0, 10: 1}
    got = head_for(scene, assigner="tal", assigner_tal_topk=4).get_losses(**scene_inputs(scene))
    losses = reference_losses(scene, expected)
    for g, e in zip(got, losses):
        assert g.item() == pytest.approx(e, rel=2e-5, abs=1e-6)
    assert got[5] == 4 / 2  # positives per ground truth


def test_tal_parameters_reach_the_assignment():
    scene = tal_scene()
    # alpha 1, beta 1: t = s u; anchors 6 and 9 beat anchor 5 (tests/test_assign.py says why)
    expected = reference_tal(scene, alpha=1.0, beta=1.0, topk=2)
    assert sorted(expected) == [6, 9]
    assert_losses(head_for(scene, assigner="tal", assigner_tal_alpha=1.0, assigner_tal_beta=1.0,
                           assigner_tal_topk=2), scene, expected)
    default = reference_tal(scene)  # YOLOv8's 0.5, 6, 10: all four anchors inside
    assert sorted(default) == [5, 6, 9, 10]
    assert_losses(head_for(scene, assigner="tal"), scene, default)


@pytest.mark.parametrize("iou_sum_high,k", [(True, 2), (False, 1)])
def test_dsl_through_the_head_takes_dynamic_k_positives(iou_sum_high, k):
    scene = dsl_scene(iou_sum_high)
    expected = reference_dsl(scene)
    assert sorted(expected) == [5, 6][:k]  # the highest IoUs, nearest the centre
    assert_losses(head_for(scene, assigner="dsl"), scene, expected)


@pytest.mark.parametrize("seed", range(3))
def test_dsl_through_the_head_equals_the_reference_on_random_scenes(seed):
    scene = random_scene(300 + seed, num_gt=1)
    assert_losses(head_for(scene, assigner="dsl"), scene, reference_dsl(scene))


@pytest.mark.parametrize("kind", ["nwd", "gcd"])
def test_simota_with_a_gaussian_similarity_through_the_head(kind):
    scene = random_scene(7, num_gt=1)
    expected = reference_simota(scene, kind, constant=20.0)
    assert_losses(head_for(scene, assigner="simota", assigner_similarity=kind, assigner_nwd_constant=20.0),
                  scene, expected)


@pytest.mark.parametrize("settings", [dict(assigner="tal"), dict(assigner="dsl"),
                                      dict(assigner="simota", assigner_similarity="gcd")])
def test_a_ground_truth_no_anchor_can_take_gives_no_positives_through_the_head(settings):
    # a box far outside the grid: no anchor centre inside it, nor within 2.5 strides of its centre
    # (YOLOX 0.3.0's own SimOTA raises there: its topk of 1 over no column)
    scene = tal_scene()
    scene.gt_boxes = [[900.0, 900.0, 10.0, 10.0]]
    losses = assert_losses(head_for(scene, **settings), scene, {})
    assert losses[1] == losses[3] == 0 and losses[2] > 0  # objectness alone: every anchor a negative


def test_dsl_with_a_similarity_differs_from_dsl_with_the_iou():
    feats, labels, imgs = head_inputs(3, gts_per_image=(4, 2, 1, 3), seed=1)
    _, iou = make_heads(3, assigner="dsl")
    _, gcd = make_heads(3, assigner="dsl", assigner_similarity="gcd")
    assert not torch.equal(iou(feats, labels, imgs)[0], gcd(feats, labels, imgs)[0])


# ---------------------------------------------------------------- YOLOX's arguments


def assignment_arguments(head, scene, mode=None):
    """get_assignments' arguments, by the installed YOLOX's names, as its get_losses passes them."""
    inputs = scene_inputs(scene)
    outputs, labels = inputs["outputs"], inputs["labels"]
    values = dict(batch_idx=0, num_gt=labels.shape[1], total_num_anchors=outputs.shape[1],
                  gt_bboxes_per_image=labels[0, :, 1:5], gt_classes=labels[0, :, 0],
                  bboxes_preds_per_image=outputs[0, :, :4], expanded_strides=inputs["expanded_strides"][0],
                  x_shifts=inputs["x_shifts"][0], y_shifts=inputs["y_shifts"][0], cls_preds=outputs[:, :, 5:],
                  bbox_preds=outputs[:, :, :4], obj_preds=outputs[:, :, 4:5], labels=labels, imgs=inputs["imgs"])
    names = [n for n in inspect.signature(YOLOXHead.get_assignments).parameters if n not in ("self", "mode")]
    args = [values[n] for n in names]
    return args + [mode] if mode else args


def test_yoloxs_cpu_retry_gives_the_same_assignment():
    scene = tal_scene(second_gt=True)
    head = head_for(scene, assigner="tal", assigner_tal_topk=4)
    first = head.get_assignments(*assignment_arguments(head, scene))
    again = head.get_assignments(*assignment_arguments(head, scene, mode="cpu"))
    assert first[4] == again[4] == 4
    for a, b in zip(first[:4], again[:4]):
        assert torch.equal(a, b)


class OtherAssignments(YOLOXHead):
    """A YOLOX whose get_assignments takes its arguments in a way the head does not know."""

    def get_assignments(self, *args):
        return super().get_assignments(*args)


def test_a_get_assignments_the_head_does_not_know_raises_in_one_line():
    feats, labels, imgs = head_inputs(3)
    torch.manual_seed(0)
    head = FocalYOLOXHead.convert(OtherAssignments(3, WIDTH, in_channels=CHANNELS), LossKit(**YOLOX)).train()
    head(feats, labels, imgs)  # YOLOX's own assignment: nothing to recognise
    head.set_loss_kit(LossKit(**dict(YOLOX, assigner="tal")))
    with pytest.raises(UnsupportedYOLOXError) as error:
        head(feats, labels, imgs)
    message = str(error.value)
    assert "\n" not in message and "get_assignments takes no batch_idx" in message and "'tal'" in message


# ---------------------------------------------------------------- settings


@pytest.mark.parametrize("settings,message", [
    (dict(assigner="tall"), "assigner must be one of simota, tal, dsl; got 'tall'"),
    (dict(assigner="tal", assigner_similarity="nwd"),
     "assigner_similarity nwd applies to the assigners simota and dsl, not tal; leave it at iou"),
    (dict(assigner_tal_topk=2.5), "assigner_tal_topk must be a whole number >= 1, got 2.5"),
    (dict(assigner_dsl_topk=0), "assigner_dsl_topk must be a whole number >= 1, got 0"),
    (dict(assigner_similarity="giou"), "assigner_similarity must be one of iou, nwd, gcd; got 'giou'"),
    (dict(assigner_tal_beta=-1.0), "assigner_tal_beta must be a finite number >= 0, got -1.0"),
    (dict(assigner_dsl_center_base=1.0), "assigner_dsl_center_base must be a finite number > 1, got 1.0"),
])
def test_bad_assignment_settings_fail_in_one_line_when_built(settings, message):
    with pytest.raises(ValueError) as error:
        FocalYOLOXHead(3, WIDTH, in_channels=CHANNELS, **settings)
    assert str(error.value) == message


def test_whole_numbers_from_the_command_line_are_counts():
    kit = LossKit(assigner="tal", assigner_tal_topk=13.0)  # "13" on the command line parses as 13.0
    assert kit.assign.keywords == dict(alpha=0.5, beta=6.0, topk=13) and isinstance(kit.assign.keywords["topk"], int)
    assert math.isclose(LossKit(assigner="dsl").assign.keywords["center_base"], 10.0)
