"""The assignment core against Megvii's YOLOX 0.3.0 itself: simota_assign with the IoU returns
YOLOXHead.get_assignments' output bit for bit, and pairwise_iou is yolox.utils.bboxes_iou's values
bit for bit. Needs Megvii's YOLOX (get_assignments' 0.3.0 signature)."""

import pytest
import torch
from yolox.models import YOLOXHead
from yolox.utils import bboxes_iou

from yolox_focal.losses.assign import pairwise_iou, simota_assign

STRIDES = (8, 16, 32)
SIZE = 160  # input side in pixels: 20x20 + 10x10 + 5x5 = 525 anchors
NUM_CLASSES = 4


def make_head():
    torch.manual_seed(0)
    return YOLOXHead(NUM_CLASSES, width=0.125, strides=list(STRIDES), in_channels=[256, 512, 1024])


def grid():
    """YOLOX's concatenated (1, A) x_shifts, y_shifts and expanded_strides for a SIZE input."""
    xs, ys, ss = [], [], []
    for stride in STRIDES:
        cells = SIZE // stride
        y, x = torch.meshgrid(torch.arange(cells), torch.arange(cells), indexing="ij")
        xs.append(x.reshape(1, -1).float())
        ys.append(y.reshape(1, -1).float())
        ss.append(torch.full((1, cells * cells), float(stride)))
    return torch.cat(xs, 1), torch.cat(ys, 1), torch.cat(ss, 1)


def random_scene(seed, num_gt, batch=2):
    """Ground truths of all sizes (tiny ones and overlapping ones included) and predictions spread
    around the anchors, with random class and objectness logits, for image 1 of a batch of 2."""
    g = torch.Generator().manual_seed(seed)
    x_shifts, y_shifts, strides = grid()
    num_anchors = strides.shape[1]
    centres = torch.stack([(x_shifts[0] + 0.5) * strides[0], (y_shifts[0] + 0.5) * strides[0]], 1)
    pred_boxes = torch.cat([centres + strides[0, :, None] * torch.randn(num_anchors, 2, generator=g),
                            strides[0, :, None] * torch.exp(torch.randn(num_anchors, 2, generator=g))], 1)
    gt_centres = torch.rand(num_gt, 2, generator=g) * SIZE
    gt_sizes = torch.exp(torch.rand(num_gt, 2, generator=g) * 4.5)  # 1 to 90 pixels
    if num_gt > 1:  # a second box on top of the first: contested anchors
        gt_centres[1] = gt_centres[0] + torch.randn(2, generator=g)
        gt_sizes[1] = gt_sizes[0] * (0.9 + 0.2 * torch.rand(2, generator=g))
    gt_boxes = torch.cat([gt_centres, gt_sizes], 1)
    # predictions near the ground truths where the anchor is near one: IoUs high enough for k > 1
    near = torch.cdist(centres, gt_centres).argmin(1)
    close = (torch.cdist(centres, gt_centres).amin(1) < 3 * strides[0]) & (torch.rand(num_anchors, generator=g) < 0.7)
    jitter = 1 + 0.15 * torch.randn(num_anchors, 4, generator=g)
    pred_boxes[close] = gt_boxes[near[close]] * jitter[close]
    gt_classes = torch.randint(0, NUM_CLASSES, (num_gt,), generator=g).float()
    bbox_preds = torch.randn(batch, num_anchors, 4, generator=g)
    bbox_preds[1] = pred_boxes
    cls_preds = torch.randn(batch, num_anchors, NUM_CLASSES, generator=g) * 3
    obj_preds = torch.randn(batch, num_anchors, 1, generator=g) * 3
    return dict(gt_boxes=gt_boxes, gt_classes=gt_classes, bbox_preds=bbox_preds, cls_preds=cls_preds,
                obj_preds=obj_preds, x_shifts=x_shifts, y_shifts=y_shifts, strides=strides)


def yolox_assignment(head, scene, batch_idx=1):
    labels = torch.zeros(scene["cls_preds"].shape[0], 8, 5)
    return head.get_assignments(
        batch_idx, scene["gt_boxes"].shape[0], scene["strides"].shape[1], scene["gt_boxes"], scene["gt_classes"],
        scene["bbox_preds"][batch_idx], scene["strides"], scene["x_shifts"], scene["y_shifts"], scene["cls_preds"],
        scene["bbox_preds"], scene["obj_preds"], labels, None)


def ours(scene, batch_idx=1):
    return simota_assign(scene["gt_boxes"], scene["gt_classes"], scene["bbox_preds"][batch_idx],
                         scene["cls_preds"][batch_idx], scene["obj_preds"][batch_idx], scene["x_shifts"][0],
                         scene["y_shifts"][0], scene["strides"][0])


def assert_same(theirs, mine):
    names = ("gt_matched_classes", "fg_mask", "pred_ious_this_matching", "matched_gt_inds")
    for name, a, b in zip(names, theirs[:4], mine[:4]):
        assert a.dtype == b.dtype and a.shape == b.shape, name
        assert torch.equal(a, b), name
    assert type(mine[4]) is int and mine[4] == theirs[4]


@pytest.mark.parametrize("seed", range(12))
def test_simota_with_iou_is_yoloxs_get_assignments_bit_for_bit(seed):
    head = make_head()
    scene = random_scene(seed, num_gt=1 + seed % 6)
    theirs = yolox_assignment(head, scene)
    assert theirs[4] > 0
    assert_same(theirs, ours(scene))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_simota_with_iou_is_yoloxs_in_every_float_dtype(dtype):
    # YOLOX's trainer casts the targets to the training dtype (float16 with --fp16): the IoUs, and
    # so pred_ious_this_matching, are computed in the boxes' dtype, the class cost in float32
    head = make_head()
    for seed in range(4):
        scene = {k: v.to(dtype) if v.is_floating_point() else v
                 for k, v in random_scene(seed, num_gt=2 + seed).items()}
        theirs = yolox_assignment(head, scene)
        assert theirs[2].dtype == dtype and theirs[4] > 0
        assert_same(theirs, ours(scene))


def contested_anchors(scene):
    """Anchors that several ground truths take before SimOTA resolves the conflict, counted with
    YOLOX's own pieces: get_in_boxes_info, bboxes_iou and the class cost as get_assignments builds it."""
    head = make_head()
    gt_boxes, num_gt = scene["gt_boxes"], scene["gt_boxes"].shape[0]
    candidates, in_both = head.get_in_boxes_info(gt_boxes, scene["strides"], scene["x_shifts"], scene["y_shifts"],
                                                 scene["strides"].shape[1], num_gt)
    ious = bboxes_iou(gt_boxes, scene["bbox_preds"][1][candidates], False)
    scores = (scene["cls_preds"][1][candidates].sigmoid() * scene["obj_preds"][1][candidates].sigmoid()).sqrt()
    one_hot = torch.nn.functional.one_hot(scene["gt_classes"].long(), NUM_CLASSES).float()
    class_cost = torch.nn.functional.binary_cross_entropy(
        scores[None].expand(num_gt, -1, -1), one_hot[:, None].expand(-1, scores.shape[0], -1), reduction="none").sum(-1)
    cost = class_cost + 3.0 * -torch.log(ious + 1e-8) + 100000.0 * ~in_both
    ks = torch.clamp(ious.topk(min(10, ious.shape[1]), dim=1)[0].sum(1).int(), min=1)
    claims = torch.zeros(ious.shape[1], dtype=torch.int64)
    for gt_index, k in enumerate(ks.tolist()):
        claims[cost[gt_index].topk(k, largest=False)[1]] += 1
    return int((claims > 1).sum()), int(ks.max())


def test_the_random_scenes_contest_anchors_and_give_several_per_ground_truth():
    # what the bit-for-bit comparison above must cover: conflicts resolved by cost, dynamic k > 1
    counts = [contested_anchors(random_scene(seed, num_gt=1 + seed % 6)) for seed in range(12)]
    assert sum(contested > 0 for contested, _ in counts) >= 4
    assert sum(k > 1 for _, k in counts) >= 6


def test_simota_with_iou_matches_a_real_training_forward():
    # the head's own outputs, grids and strides at initialisation: near-equal scores, so costs tie
    head = make_head()
    head.train()
    torch.manual_seed(1)
    channels = [int(c * 0.125) for c in (256, 512, 1024)]
    xin = [torch.randn(2, c, SIZE // s, SIZE // s) for c, s in zip(channels, STRIDES)]
    labels = torch.zeros(2, 6, 5)
    labels[0, :3] = torch.tensor([[1, 40, 50, 30, 20], [2, 44, 52, 26, 24], [0, 120, 100, 6, 5]])
    labels[1, :1] = torch.tensor([[3, 80, 80, 70, 90]])
    calls = []
    original = head.get_assignments

    def recording(*args, **kwargs):
        result = original(*args, **kwargs)
        calls.append((args, result))
        return result

    head.get_assignments = recording
    with torch.no_grad():
        head(xin, labels, torch.zeros(2, 3, SIZE, SIZE))
    assert len(calls) == 2
    for args, theirs in calls:
        (batch_idx, _, _, gt_boxes, gt_classes, boxes, strides, x_shifts, y_shifts, cls_preds, _, obj_preds,
         _, _) = args
        mine = simota_assign(gt_boxes, gt_classes, boxes, cls_preds[batch_idx], obj_preds[batch_idx],
                             x_shifts[0], y_shifts[0], strides[0])
        assert_same(theirs, mine)
        assert theirs[4] > 0


@pytest.mark.parametrize("seed", range(4))
def test_pairwise_iou_is_bboxes_iou_bit_for_bit(seed):
    g = torch.Generator().manual_seed(seed)
    gt = torch.cat([torch.rand(7, 2, generator=g) * 100, torch.rand(7, 2, generator=g) * 40], 1)
    pred = torch.cat([torch.rand(300, 2, generator=g) * 100, torch.rand(300, 2, generator=g) * 40], 1)
    pred[:5] = gt[:5]  # identical pairs
    pred[5:10, 2:] = 0  # zero-size predictions
    expected = bboxes_iou(gt, pred, False)
    assert torch.equal(pairwise_iou(gt, pred), expected)
    assert (expected == 0).any() and (expected[range(5), range(5)] > 0.9999).all()


def test_no_candidate_yolox_raises_and_simota_assign_gives_no_positives():
    # a ground truth no anchor centre lies in or within 2.5 strides of: YOLOX 0.3.0's topk of
    # k = 1 over no column fails; the core returns the assignment of an image without positives
    scene = random_scene(0, num_gt=1)
    scene["gt_boxes"] = torch.tensor([[900.0, 900.0, 10.0, 10.0]])
    with pytest.raises(RuntimeError, match="selected index k out of range"):
        yolox_assignment(make_head(), scene)
    classes, fg_mask, targets, matched, num_fg = ours(scene)
    assert not fg_mask.any() and fg_mask.shape == (scene["strides"].shape[1],)
    assert classes.numel() == targets.numel() == matched.numel() == num_fg == 0
