"""The label assignment core (yolox_focal/losses/assign.py) and the Gaussian distances
(yolox_focal/losses/gaussian.py) against references written here from the papers: similarity values
(IoU, NWD, GCD), task-aligned assignment (TOOD / YOLOv8), dynamic soft-label assignment (RTMDet) and
SimOTA with a Gaussian similarity, on hand-built scenes where the answer can be said in words and on
random scenes against plain-loop references; empty images; errors. The comparison with YOLOX's own
SimOTA is tests/test_assign_yolox.py."""

import math

import pytest
import torch

from yolox_focal.losses import gaussian
from yolox_focal.losses.assign import (DSL_PARAMS, SIMILARITIES, TAL_PARAMS, dsl_assign, dsl_cost_terms,
                                       pairwise_iou, pairwise_similarity, simota_assign, tal_assign)

pytestmark = pytest.mark.any_yolox

STRIDE = 8
ASSIGNERS = {"simota": simota_assign, "tal": tal_assign, "dsl": dsl_assign}


# ---- references, float64, from the papers -----------------------------------------------------


def ref_iou(a, b):
    ax0, ay0, ax1, ay1 = a[0] - a[2] / 2, a[1] - a[3] / 2, a[0] + a[2] / 2, a[1] + a[3] / 2
    bx0, by0, bx1, by1 = b[0] - b[2] / 2, b[1] - b[3] / 2, b[0] + b[2] / 2, b[1] + b[3] / 2
    inter = max(0.0, min(ax1, bx1) - max(ax0, bx0)) * max(0.0, min(ay1, by1) - max(ay0, by0))
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def ref_nwd(a, b, c):
    """Wang et al. 2021: exp(-W2 / C), W2^2 = ||(cx, cy, w/2, h/2)_a - (cx, cy, w/2, h/2)_b||^2."""
    w2 = (a[0] - b[0]) ** 2 + (a[1] - b[1]) ** 2 + (a[2] / 2 - b[2] / 2) ** 2 + (a[3] / 2 - b[3] / 2) ** 2
    return math.exp(-math.sqrt(w2) / c)


def ref_gcd_squared(a, b):
    """Guan et al. 2025 (the authors' code's four terms): the mean of the distance normalised by a's
    size for the centres and b's for the shapes, and the same with a and b swapped."""
    dx, dy, dw, dh = a[0] - b[0], a[1] - b[1], a[2] - b[2], a[3] - b[3]
    centres_by_a = (dx / a[2]) ** 2 + (dy / a[3]) ** 2
    shapes_by_b = ((dw / b[2]) ** 2 + (dh / b[3]) ** 2) / 4
    centres_by_b = (dx / b[2]) ** 2 + (dy / b[3]) ** 2
    shapes_by_a = ((dw / a[2]) ** 2 + (dh / a[3]) ** 2) / 4
    return (centres_by_a + shapes_by_b + centres_by_b + shapes_by_a) / 2


def sigmoid(x):
    return 1 / (1 + math.exp(-x))


class Scene:
    """One image as plain Python numbers: anchors on a cells x cells grid of STRIDE, their predicted
    boxes and logits, ground truths; ``tensors()`` the same as the assigners take them."""

    def __init__(self, gt_boxes, gt_classes, pred_boxes, cls_logits, obj_logits, cells):
        self.gt_boxes, self.gt_classes, self.pred_boxes = gt_boxes, gt_classes, pred_boxes
        self.cls_logits, self.obj_logits, self.cells = cls_logits, obj_logits, cells
        self.centres = [((i % cells + 0.5) * STRIDE, (i // cells + 0.5) * STRIDE) for i in range(cells * cells)]

    def tensors(self, dtype=torch.float64):
        num = self.cells * self.cells
        return dict(gt_boxes=torch.tensor(self.gt_boxes, dtype=dtype).reshape(-1, 4),
                    gt_classes=torch.tensor(self.gt_classes, dtype=dtype),
                    pred_boxes=torch.tensor(self.pred_boxes, dtype=dtype),
                    cls_preds=torch.tensor(self.cls_logits, dtype=dtype),
                    obj_preds=torch.tensor(self.obj_logits, dtype=dtype).reshape(-1, 1),
                    x_shifts=torch.arange(num, dtype=dtype) % self.cells,
                    y_shifts=torch.div(torch.arange(num), self.cells, rounding_mode="floor").to(dtype),
                    strides=torch.full((num,), float(STRIDE), dtype=dtype))

    def score(self, g, a):
        """YOLOX's score of ground truth g's class at anchor a: sqrt(sigmoid(cls) sigmoid(obj))."""
        return math.sqrt(sigmoid(self.cls_logits[a][self.gt_classes[g]]) * sigmoid(self.obj_logits[a]))

    def inside(self, g, a):
        (x, y), (cx, cy, w, h) = self.centres[a], self.gt_boxes[g]
        return cx - w / 2 < x < cx + w / 2 and cy - h / 2 < y < cy + h / 2

    def iou(self, g, a):
        return ref_iou(self.gt_boxes[g], self.pred_boxes[a])


def boxes_with_logits(num_anchors, num_classes):
    """Filler predictions: tiny boxes far from everything, low scores."""
    return ([[-500.0, -500.0, 1.0, 1.0] for _ in range(num_anchors)],
            [[-9.0] * num_classes for _ in range(num_anchors)], [-9.0] * num_anchors)


def logit(p):
    return math.log(p / (1 - p))


def result_as_python(result):
    classes, fg_mask, targets, matched, num_fg = result
    anchors = fg_mask.nonzero().flatten().tolist()
    return {a: (int(g), t) for a, g, t in zip(anchors, matched.tolist(), targets.tolist())}, num_fg


def reference_tal(scene, alpha=0.5, beta=6.0, topk=10):
    """TOOD / YOLOv8, from the papers: t = s^alpha u^beta; each gt its top-k by t among the anchors
    inside it; an anchor taken twice to the gt of larger IoU; target t / max t * max u over the gt's
    positives (eps 1e-9). Returns {anchor: (gt, target)}."""
    num_gt, num_anchors = len(scene.gt_boxes), len(scene.pred_boxes)
    metric = [[scene.score(g, a) ** alpha * scene.iou(g, a) ** beta for a in range(num_anchors)] for g in range(num_gt)]
    claims = {}
    for g in range(num_gt):
        inside = [a for a in range(num_anchors) if scene.inside(g, a)]
        for a in sorted(inside, key=lambda a: -metric[g][a])[:topk]:
            claims.setdefault(a, []).append(g)
    owner = {a: max(gs, key=lambda g: (scene.iou(g, a), -g)) for a, gs in claims.items()}
    result = {}
    for g in range(num_gt):
        mine = [a for a, o in owner.items() if o == g]
        if mine:
            top_t, top_u = max(metric[g][a] for a in mine), max(scene.iou(g, a) for a in mine)
            result.update({a: (g, metric[g][a] / (top_t + 1e-9) * top_u) for a in mine})
    return result


class Owners(dict):
    """{anchor: gt}, and how many anchors several ground truths took before the conflicts were resolved."""
    contested = 0


def reference_dynamic_k(cost, sim, topk, candidates):
    """SimOTA's matching over plain lists: k = max(1, int(sum of the topk largest similarities)),
    each gt its k lowest costs, an anchor taken twice to the lower cost."""
    claims = {}
    for g in range(len(cost)):
        k = max(1, int(sum(sorted((sim[g][a] for a in candidates), reverse=True)[:topk])))
        for a in sorted(candidates, key=lambda a: cost[g][a])[:k]:
            claims.setdefault(a, []).append(g)
    owners = Owners({a: min(gs, key=lambda g: cost[g][a]) for a, gs in claims.items()})
    owners.contested = sum(len(gs) > 1 for gs in claims.values())
    return owners


def bce(p, q):
    return -(q * max(math.log(p), -100) + (1 - q) * max(math.log(1 - p), -100))


def reference_dsl(scene, topk=13):
    """RTMDet, from the paper: candidates inside some gt; cost BCE(p, u) |u - p|^2 + 3 (-log(u + 1e-7))
    + 10^(distance / stride - 3); SimOTA's dynamic-k matching; target the matched IoU."""
    num_gt, num_anchors = len(scene.gt_boxes), len(scene.pred_boxes)
    candidates = [a for a in range(num_anchors) if any(scene.inside(g, a) for g in range(num_gt))]
    sim = [[scene.iou(g, a) for a in range(num_anchors)] for g in range(num_gt)]
    cost = [[0.0] * num_anchors for _ in range(num_gt)]
    for g in range(num_gt):
        for a in candidates:
            p, u = scene.score(g, a), sim[g][a]
            distance = math.dist(scene.centres[a], scene.gt_boxes[g][:2])
            cost[g][a] = bce(p, u) * (u - p) ** 2 + 3 * -math.log(u + 1e-7) + 10 ** (distance / STRIDE - 3)
    owners = reference_dynamic_k(cost, sim, topk, candidates)
    result = Owners({a: (g, sim[g][a]) for a, g in owners.items()})
    result.contested = owners.contested
    return result


def reference_simota(scene, kind, constant=12.8):
    """YOLOX's SimOTA (0.3.0) with similarity ``kind`` in the cost and dynamic k, written plainly:
    candidates in some box or within 2.5 strides of some centre; cost = sum over classes of
    BCE(score, one-hot) + 3 (-log(sim + 1e-8)) + 1e5 outside the pair's box-and-centre region."""
    num_gt, num_anchors = len(scene.gt_boxes), len(scene.pred_boxes)

    def in_centre(g, a):
        (x, y), (cx, cy) = scene.centres[a], scene.gt_boxes[g][:2]
        return abs(x - cx) < 2.5 * STRIDE and abs(y - cy) < 2.5 * STRIDE

    similarity = {"iou": ref_iou, "nwd": lambda a, b: ref_nwd(a, b, constant),
                  "gcd": lambda a, b: math.exp(-math.sqrt(ref_gcd_squared(a, b)))}[kind]
    candidates = [a for a in range(num_anchors)
                  if any(scene.inside(g, a) or in_centre(g, a) for g in range(num_gt))]
    sim = [[similarity(scene.gt_boxes[g], scene.pred_boxes[a]) for a in range(num_anchors)] for g in range(num_gt)]
    cost = [[0.0] * num_anchors for _ in range(num_gt)]
    for g in range(num_gt):
        for a in candidates:
            scores = [math.sqrt(sigmoid(x) * sigmoid(scene.obj_logits[a])) for x in scene.cls_logits[a]]
            class_cost = sum(bce(p, float(c == scene.gt_classes[g])) for c, p in enumerate(scores))
            outside = not (scene.inside(g, a) and in_centre(g, a))
            cost[g][a] = class_cost + 3 * -math.log(sim[g][a] + 1e-8) + 1e5 * outside
    owners = reference_dynamic_k(cost, sim, 10, candidates)
    result = Owners({a: (g, scene.iou(g, a)) for a, g in owners.items()})
    result.contested = owners.contested
    return result


def random_scene(seed, num_gt, cells=8, num_classes=3):
    g = torch.Generator().manual_seed(seed)
    num = cells * cells
    centres = torch.tensor([((i % cells + 0.5) * STRIDE, (i // cells + 0.5) * STRIDE) for i in range(num)],
                           dtype=torch.float64)
    gt_centres = 8 + torch.rand(num_gt, 2, generator=g, dtype=torch.float64) * (cells * STRIDE - 16)
    gt_sizes = 6 + torch.rand(num_gt, 2, generator=g, dtype=torch.float64) * 30
    if num_gt > 1:  # two overlapping ground truths: contested anchors
        gt_centres[1] = gt_centres[0] + 4 * torch.randn(2, generator=g, dtype=torch.float64)
    gt = torch.cat([gt_centres, gt_sizes], 1)
    nearest = torch.cdist(centres, gt_centres).argmin(1)
    pred = gt[nearest] * (1 + 0.2 * torch.randn(num, 4, generator=g, dtype=torch.float64))
    pred[:, 2:] = pred[:, 2:].abs() + 1
    cls = 3 * torch.randn(num, num_classes, generator=g, dtype=torch.float64)
    obj = 3 * torch.randn(num, generator=g, dtype=torch.float64)
    classes = torch.randint(0, num_classes, (num_gt,), generator=g).tolist()
    return Scene(gt.tolist(), classes, pred.tolist(), cls.tolist(), obj.tolist(), cells)


def assert_matches(result, expected):
    got, num_fg = result_as_python(result)
    assert num_fg == len(expected) and sorted(got) == sorted(expected)
    for anchor, (gt, target) in expected.items():
        assert got[anchor][0] == gt, anchor
        assert got[anchor][1] == pytest.approx(target, rel=1e-9, abs=1e-12), anchor


# gcd guards each size's square by EPS 1e-7 (a zero-width box stays finite): about 1e-8 relative to
# the unguarded formula for these boxes of 1 to 30 px
GCD_RTOL = 1e-6


# ---- similarity ------------------------------------------------------------------------------


def random_boxes(n, seed, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    centres = torch.rand(n, 2, generator=g, dtype=dtype) * 60
    return torch.cat([centres, 1 + torch.rand(n, 2, generator=g, dtype=dtype) * 30], 1)


@pytest.mark.parametrize("kind", SIMILARITIES)
def test_pairwise_similarity_is_the_papers_formula(kind):
    gt, pred = random_boxes(5, 0), random_boxes(40, 1)
    pred[:5] = gt  # identical pairs: similarity 1
    formula = {"iou": ref_iou, "nwd": lambda a, b: ref_nwd(a, b, 12.8),
               "gcd": lambda a, b: math.exp(-math.sqrt(ref_gcd_squared(a, b)))}[kind]
    expected = torch.tensor([[formula(a, b) for b in pred.tolist()] for a in gt.tolist()], dtype=torch.float64)
    got = pairwise_similarity(kind, gt, pred)
    assert got.shape == (5, 40) and got.dtype == torch.float64
    torch.testing.assert_close(got, expected, rtol=GCD_RTOL if kind == "gcd" else 1e-12, atol=1e-12)
    torch.testing.assert_close(got[range(5), range(5)], torch.ones(5, dtype=torch.float64))


def test_nwd_constant_is_the_similarity_scale():
    gt, pred = random_boxes(3, 2), random_boxes(7, 3)
    expected = torch.tensor([[ref_nwd(a, b, 50.0) for b in pred.tolist()] for a in gt.tolist()], dtype=torch.float64)
    torch.testing.assert_close(pairwise_similarity("nwd", gt, pred, nwd_constant=50.0), expected)


def test_gcd_values_worked_by_hand():
    # centres 1 px apart on boxes 2 px wide: D^2 = 1/2 * 1 * (1/4 + 1/4) = 0.25
    a = torch.tensor([[0.0, 0.0, 2.0, 2.0]], dtype=torch.float64)
    b = torch.tensor([[1.0, 0.0, 2.0, 2.0]], dtype=torch.float64)
    assert pairwise_similarity("gcd", a, b).item() == pytest.approx(math.exp(-0.5), rel=GCD_RTOL)
    # same centre, widths 2 and 4: D^2 = 1/2 * (2^2 / 4) * (1/4 + 1/16) = 0.15625
    c = torch.tensor([[0.0, 0.0, 4.0, 2.0]], dtype=torch.float64)
    assert pairwise_similarity("gcd", a, c).item() == pytest.approx(math.exp(-math.sqrt(0.15625)), rel=GCD_RTOL)


def test_gcd_is_symmetric_and_scale_invariant_nwd_is_not_scale_invariant():
    # a one-sided copy (normalised by one box's size alone) is not symmetric for boxes of other sizes
    a, b = random_boxes(6, 4), random_boxes(9, 5)
    torch.testing.assert_close(pairwise_similarity("gcd", a, b), pairwise_similarity("gcd", b, a).t(), rtol=1e-12,
                               atol=0)
    torch.testing.assert_close(pairwise_similarity("gcd", 7 * a, 7 * b), pairwise_similarity("gcd", a, b),
                               rtol=GCD_RTOL, atol=0)
    assert not torch.allclose(pairwise_similarity("nwd", 7 * a, 7 * b), pairwise_similarity("nwd", a, b))


def test_gcd_distance_float64_reference_and_gradient():
    pred, target = random_boxes(30, 6), random_boxes(30, 7)
    got = gaussian.gcd_distance(pred - target, pred[:, 2:], target[:, 2:])
    expected = torch.tensor([math.sqrt(ref_gcd_squared(p, t)) for p, t in zip(pred.tolist(), target.tolist())],
                            dtype=torch.float64)
    torch.testing.assert_close(got, expected, rtol=GCD_RTOL, atol=1e-12)
    pred.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda p: gaussian.gcd_distance(p - target, p[:, 2:], target[:, 2:]), (pred,))
    same = gaussian.gcd_distance(torch.zeros(1, 4, requires_grad=True), torch.ones(1, 2), torch.ones(1, 2))
    same.sum().backward()
    assert same.item() == pytest.approx(0, abs=1e-18)


def test_half_precision_boxes_give_float32_gaussian_similarities():
    gt, pred = random_boxes(3, 8, torch.float16) * 10, random_boxes(5, 9, torch.float16) * 10  # overflow in float16
    for kind in ("nwd", "gcd"):
        got = pairwise_similarity(kind, gt, pred)
        assert got.dtype == torch.float32 and torch.isfinite(got).all()
        torch.testing.assert_close(got, pairwise_similarity(kind, gt.float(), pred.float()))


def test_pairwise_iou_is_the_plain_formula():
    gt, pred = random_boxes(4, 10), random_boxes(30, 11)
    expected = torch.tensor([[ref_iou(a, b) for b in pred.tolist()] for a in gt.tolist()], dtype=torch.float64)
    torch.testing.assert_close(pairwise_iou(gt, pred), expected, rtol=1e-12, atol=1e-12)


def test_unknown_similarity_is_a_one_line_error_naming_the_choices():
    boxes = random_boxes(2, 0)
    with pytest.raises(ValueError, match=r"^similarity must be one of iou, nwd, gcd, got 'giou'$"):
        pairwise_similarity("giou", boxes, boxes)


# ---- task-aligned assignment -------------------------------------------------------------------


def tal_scene(second_gt=False):
    """A 4x4 grid of stride 8 (centres 4, 12, 20, 28). Ground truth 0, class 1, (16, 16, 16, 16)
    holds the centres of anchors 5, 6, 9 and 10. Anchor 0, outside it, predicts it exactly with
    the highest score: never a candidate. With ``second_gt``, ground truth 1, class 2, (22, 22, 12,
    12) holds anchor 10 alone, whose prediction overlaps it more than ground truth 0."""
    pred, cls, obj = boxes_with_logits(16, 3)
    gt = [[16.0, 16.0, 16.0, 16.0]]
    # (anchor, predicted box, score of class 1): IoUs with gt 0 of 1, 0.78, 0.6 and 0.25
    for anchor, box, score in ((0, [16, 16, 16, 16], 0.99), (5, [16, 16, 16, 16], 0.1), (6, [18, 16, 16, 16], 0.9),
                               (9, [16, 20, 16, 16], 0.99), (10, [21, 21, 12, 12], 0.5)):
        pred[anchor], cls[anchor], obj[anchor] = [float(v) for v in box], [-9.0, logit(score ** 2), -9.0], 30.0
    if second_gt:
        gt.append([22.0, 22.0, 12.0, 12.0])
        cls[10][2] = logit(0.8 ** 2)
    return Scene(gt, [1, 2][:len(gt)], pred, cls, obj, 4)


def test_tal_takes_the_top_k_by_the_metric_inside_the_ground_truth():
    scene = tal_scene()
    t = {a: scene.score(0, a) ** 0.5 * scene.iou(0, a) ** 6 for a in (5, 6, 9, 10)}
    # the order the scene is built for: anchor 9, of the highest score, ranks third by its IoU
    assert t[5] > t[6] > t[9] > t[10] and scene.score(0, 9) > scene.score(0, 6) > scene.score(0, 5)
    result = tal_assign(**scene.tensors(), topk=2)
    got, num_fg = result_as_python(result)
    assert sorted(got) == [5, 6] and num_fg == 2  # anchor 0 has the largest metric but lies outside
    # targets t / max t * max u over gt 0's positives {5, 6}: max t = t[5], max u = 1 (anchor 5)
    assert got[5][1] == pytest.approx(t[5] / (t[5] + 1e-9), rel=1e-9)
    assert got[6][1] == pytest.approx(t[6] / (t[5] + 1e-9), rel=1e-9)
    assert_matches(result, reference_tal(scene, topk=2))


def test_tal_gives_a_contested_anchor_to_the_higher_iou_and_normalises_after():
    scene = tal_scene(second_gt=True)
    assert scene.iou(1, 10) > scene.iou(0, 10) and scene.inside(1, 10) and scene.inside(0, 10)
    result = tal_assign(**scene.tensors(), topk=4)  # gt 0 takes all four of its anchors, gt 1 its one
    got, num_fg = result_as_python(result)
    assert num_fg == 4 and got[10][0] == 1 and all(got[a][0] == 0 for a in (5, 6, 9))
    t10 = scene.score(1, 10) ** 0.5 * scene.iou(1, 10) ** 6
    assert got[10][1] == pytest.approx(t10 / (t10 + 1e-9) * scene.iou(1, 10), rel=1e-12)  # alone: ~u
    t = {a: scene.score(0, a) ** 0.5 * scene.iou(0, a) ** 6 for a in (5, 6, 9)}
    assert got[9][1] == pytest.approx(t[9] / (t[5] + 1e-9) * 1.0, rel=1e-9)
    assert result[0].tolist() == [1.0, 1.0, 1.0, 2.0]  # gt_matched_classes in anchor order
    assert_matches(result, reference_tal(scene, topk=4))


def test_tal_parameters_change_the_metric_as_the_formula():
    scene = tal_scene()
    # alpha 1 beta 1: t = s u; anchors 6 (0.9 * 0.78) and 9 (0.99 * 0.6) now beat 5 (0.1 * 1)
    result = tal_assign(**scene.tensors(), alpha=1.0, beta=1.0, topk=2)
    assert sorted(result_as_python(result)[0]) == [6, 9]
    assert_matches(result, reference_tal(scene, alpha=1.0, beta=1.0, topk=2))


@pytest.mark.parametrize("seed", range(6))
def test_tal_equals_the_reference_on_random_scenes(seed):
    scene = random_scene(seed, num_gt=1 + seed % 4)
    expected = reference_tal(scene, topk=4)
    assert len(expected) >= 2
    assert_matches(tal_assign(**scene.tensors(), topk=4), expected)


# ---- dynamic soft-label assignment -------------------------------------------------------------


def test_dsl_cost_terms_are_rtmdets_formula():
    sim = torch.tensor([[0.5, 0.9]], dtype=torch.float64)
    scores = torch.tensor([[0.8, 0.3]], dtype=torch.float64)
    distances = torch.tensor([[12.0, 30.0]], dtype=torch.float64)
    strides = torch.tensor([8.0, 16.0], dtype=torch.float64)
    class_cost, iou_cost, prior = dsl_cost_terms(sim, scores, distances, strides)
    for j, (q, p, d, s) in enumerate(((0.5, 0.8, 12.0, 8.0), (0.9, 0.3, 30.0, 16.0))):
        assert class_cost[0, j].item() == pytest.approx(bce(p, q) * (q - p) ** 2, rel=1e-12)
        assert iou_cost[0, j].item() == pytest.approx(3 * -math.log(q + 1e-7), rel=1e-12)
        assert prior[0, j].item() == pytest.approx(10 ** (d / s - 3), rel=1e-12)
    _, iou_cost, prior = dsl_cost_terms(sim, scores, distances, strides, iou_weight=2.0, center_base=4.0,
                                        center_offset=1.0)
    assert iou_cost[0, 0].item() == pytest.approx(2 * -math.log(0.5 + 1e-7), rel=1e-12)
    assert prior[0, 1].item() == pytest.approx(4 ** (30 / 16 - 1), rel=1e-12)


def dsl_scene(iou_sum_high):
    """One ground truth (15, 15, 22, 22) on a 4x4 grid of stride 8 holding the centres of anchors
    5, 6, 9, 10 (at distances 4.2, 5.8, 5.8, 7.1 from its centre). They predict it, centred on it,
    with IoUs 0.9, 0.85, 0.8, 0.3 (sum 2.85: dynamic k 2) or shrunk to IoUs 0.12 each (sum < 1:
    dynamic k 1)."""
    pred, cls, obj = boxes_with_logits(16, 2)
    gt = [[15.0, 15.0, 22.0, 22.0]]
    sides = (22 * 0.9 ** 0.5, 22 * 0.85 ** 0.5, 22 * 0.8 ** 0.5, 22 * 0.3 ** 0.5) if iou_sum_high else (7.5,) * 4
    for anchor, side in zip((5, 6, 9, 10), sides):
        pred[anchor], cls[anchor], obj[anchor] = [15.0, 15.0, side, side], [2.0, -2.0], 2.0
    return Scene(gt, [0], pred, cls, obj, 4)


@pytest.mark.parametrize("iou_sum_high,k", [(True, 2), (False, 1)])
def test_dsl_dynamic_k_is_the_whole_part_of_the_summed_top_ious(iou_sum_high, k):
    scene = dsl_scene(iou_sum_high)
    ious = sorted((scene.iou(0, a) for a in (5, 6, 9, 10)), reverse=True)
    assert max(1, int(sum(ious))) == k
    result = dsl_assign(**scene.tensors())
    assert result[4] == k
    assert_matches(result, reference_dsl(scene))
    # equal scores: the highest IoUs and nearest centres cost least
    assert sorted(result_as_python(result)[0]) == [5, 6][:k]


def test_the_random_scenes_contest_anchors():
    # what the comparisons with the references must cover: conflicts resolved by cost
    assert sum(reference_dsl(random_scene(100 + seed, num_gt=1 + seed % 4)).contested > 0 for seed in range(6)) >= 1
    assert sum(reference_simota(random_scene(200 + seed, num_gt=2 + seed), kind).contested > 0
               for seed in range(3) for kind in SIMILARITIES) >= 5


@pytest.mark.parametrize("seed", range(6))
def test_dsl_equals_the_reference_on_random_scenes(seed):
    scene = random_scene(100 + seed, num_gt=1 + seed % 4)
    expected = reference_dsl(scene)
    assert len(expected) >= 1 + seed % 4
    assert_matches(dsl_assign(**scene.tensors()), expected)


# ---- SimOTA with a Gaussian similarity ---------------------------------------------------------


@pytest.mark.parametrize("kind", SIMILARITIES)
@pytest.mark.parametrize("seed", range(3))
def test_simota_with_each_similarity_equals_the_reference(kind, seed):
    scene = random_scene(200 + seed, num_gt=2 + seed)
    expected = reference_simota(scene, kind)
    assert len(expected) >= 2 + seed
    assert_matches(simota_assign(**scene.tensors(), similarity=kind), expected)


def test_gaussian_similarity_gives_a_tiny_object_more_than_one_positive():
    # a 4x4 px object: predictions a pixel or two off have IoU < 0.4, so IoU's dynamic k is 1;
    # NWD (C 12.8) stays near 0.9 and gives k > 1; the class target stays the IoU
    pred, cls, obj = boxes_with_logits(16, 1)
    for anchor, (dx, dy) in zip((5, 6, 9, 10), ((1, 0), (0, 1), (1, 1), (2, 0))):
        pred[anchor], cls[anchor], obj[anchor] = [16.0 + dx, 16.0 + dy, 4.0, 4.0], [2.0], 2.0
    scene = Scene([[16.0, 16.0, 4.0, 4.0]], [0], pred, cls, obj, 4)
    assert sum(scene.iou(0, a) for a in (5, 6, 9, 10)) < 2 and simota_assign(**scene.tensors())[4] == 1
    result = simota_assign(**scene.tensors(), similarity="nwd")
    assert result[4] == 3
    assert_matches(result, reference_simota(scene, "nwd"))


# ---- empty images, dtypes, errors --------------------------------------------------------------


@pytest.mark.parametrize("name", ASSIGNERS)
def test_no_ground_truth_and_no_candidate_give_no_positives(name):
    scene = tal_scene()
    no_gt = dict(scene.tensors(torch.float32), gt_boxes=torch.zeros(0, 4), gt_classes=torch.zeros(0))
    # a box far outside the grid: no anchor centre inside it, nor within 2.5 strides of its centre
    far = dict(scene.tensors(torch.float32), gt_boxes=torch.tensor([[900.0, 900.0, 10.0, 10.0]]))
    for tensors in (no_gt, far):
        classes, fg_mask, targets, matched, num_fg = ASSIGNERS[name](**tensors)
        assert fg_mask.shape == (16,) and fg_mask.dtype == torch.bool and not fg_mask.any()
        assert classes.shape == targets.shape == matched.shape == (0,)
        assert classes.dtype == torch.float32 and matched.dtype == torch.int64 and targets.dtype == torch.float32
        assert num_fg == 0 and type(num_fg) is int


@pytest.mark.parametrize("name", ASSIGNERS)
def test_outputs_have_get_assignments_dtypes(name):
    scene = tal_scene(second_gt=True)
    classes, fg_mask, targets, matched, num_fg = ASSIGNERS[name](**scene.tensors(torch.float32))
    assert fg_mask.dtype == torch.bool and fg_mask.shape == (16,)
    assert classes.dtype == torch.float32 and targets.dtype == torch.float32 and matched.dtype == torch.int64
    assert type(num_fg) is int and num_fg == int(fg_mask.sum()) == classes.numel() == targets.numel() > 0
    assert torch.equal(classes, torch.tensor([1.0, 2.0])[matched])


@pytest.mark.parametrize("kind", SIMILARITIES)
def test_autocast_changes_no_similarity(kind):
    # YOLOX's --fp16 runs get_losses under autocast, which would run the Wasserstein distance's
    # matrix product in low precision (bfloat16 on the CPU, float16 on CUDA)
    gt, pred = random_boxes(4, 12, torch.float32) * 5, random_boxes(50, 13, torch.float32) * 5
    expected = pairwise_similarity(kind, gt, pred)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = pairwise_similarity(kind, gt, pred)
    assert got.dtype == torch.float32 and torch.equal(got, expected)


@pytest.mark.parametrize("name,similarity", [("simota", "nwd"), ("simota", "gcd"), ("tal", None), ("dsl", "nwd")])
def test_autocast_changes_no_assignment(name, similarity):
    tensors = random_scene(300, num_gt=3).tensors(torch.float32)
    options = {} if similarity is None else {"similarity": similarity}
    expected = ASSIGNERS[name](**tensors, **options)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = ASSIGNERS[name](**tensors, **options)
    assert expected[4] > 0 and got[4] == expected[4]
    for a, b in zip(expected[:4], got[:4]):
        assert torch.equal(a, b)


def test_parameters_are_declared_with_the_papers_defaults():
    assert {k: p.default for k, p in TAL_PARAMS.items()} == {"alpha": 0.5, "beta": 6.0, "topk": 10}
    assert {k: p.default for k, p in DSL_PARAMS.items()} == {"topk": 13, "iou_weight": 3.0, "center_base": 10.0,
                                                             "center_offset": 3.0}
    assert all(p.doc for p in (*TAL_PARAMS.values(), *DSL_PARAMS.values()))


@pytest.mark.parametrize("call,message", [
    (lambda t: tal_assign(**t, topk=0), r"^tal topk must be a whole number >= 1, got 0$"),
    (lambda t: tal_assign(**t, topk=2.5), r"^tal topk must be a whole number >= 1, got 2.5$"),
    (lambda t: tal_assign(**t, alpha=-1.0), r"^tal alpha must be a finite number >= 0, got -1.0$"),
    (lambda t: dsl_assign(**t, center_base=1.0), r"^dsl center_base must be a finite number > 1, got 1.0$"),
    (lambda t: dsl_assign(**t, similarity="diou"), r"^dsl similarity must be one of iou, nwd, gcd, got 'diou'$"),
    (lambda t: simota_assign(**t, similarity="ciou"), r"^simota similarity must be one of iou, nwd, gcd"),
    (lambda t: simota_assign(**t, similarity="nwd", nwd_constant=0.0), r"^nwd constant must be"),
    (lambda t: simota_assign(**dict(t, strides=t["strides"][:3])), r"^simota needs strides with one value per anchor"),
    (lambda t: tal_assign(**dict(t, gt_classes=t["gt_classes"][:0])), r"^tal needs one class per ground truth"),
    (lambda t: dsl_assign(**dict(t, pred_boxes=t["pred_boxes"][:, :3])), r"^dsl needs gt_boxes \(G, 4\)"),
])
def test_bad_arguments_are_one_line_errors(call, message):
    with pytest.raises(ValueError, match=message) as error:
        call(tal_scene().tensors(torch.float32))
    assert "\n" not in str(error.value)
