"""Label assignment as a choice: which anchors of one image are positives, for which ground truth,
and with which class target, as plain functions of that image's tensors.

Each strategy returns what YOLOX's SimOTA (``YOLOXHead.get_assignments``) hands to ``get_losses``,
with the same dtypes, shapes and meaning, so the rest of ``get_losses`` stays YOLOX's:

- ``gt_matched_classes`` ``(num_fg,)``: the class of each positive's ground truth (``gt_classes``'
  dtype, YOLOX's float class indices);
- ``fg_mask`` ``(num_anchors,)`` bool: the positives; YOLOX's objectness target;
- ``pred_ious_this_matching`` ``(num_fg,)``: the class target's value (one-hot times it), the IoU of
  the positive's prediction with its ground truth for ``simota`` and ``dsl``, the normalised
  task-aligned metric for ``tal``;
- ``matched_gt_inds`` ``(num_fg,)`` int64: each positive's ground truth;
- ``num_fg``: a Python int.

The tensors over positives are in anchor order. Every strategy takes, for one image:
``gt_boxes`` ``(G, 4)`` and ``pred_boxes`` ``(A, 4)`` ``(cx, cy, w, h)`` in input pixels,
``gt_classes`` ``(G,)``, ``cls_preds`` ``(A, num_classes)`` and ``obj_preds`` ``(A, 1)`` logits, and
the anchors' grid ``x_shifts``, ``y_shifts`` (cell indices) and ``strides``, each with ``A``
elements (YOLOX's ``x_shifts[0]``, ``y_shifts[0]``, ``expanded_strides[0]`` after ``get_losses``
concatenates the levels). An anchor's centre is YOLOX's, ``(shift + 0.5) * stride``.

Strategies:

- :func:`simota_assign`: YOLOX 0.3.0's SimOTA, the IoU in its cost and dynamic k replaceable by a
  Gaussian similarity (:func:`pairwise_similarity`: ``iou``, ``nwd``, ``gcd``);
- :func:`tal_assign`: task-aligned assignment (Feng et al., TOOD, ICCV 2021; YOLOv8's parameters);
- :func:`dsl_assign`: dynamic soft-label assignment (Lyu et al., RTMDet, arXiv 2212.07784).

They run without gradient (an assignment is a choice, not a function to differentiate), as
YOLOX's does.

Needs only torch: the patch series copies the losses folder into a YOLOX tree.
"""

import functools

import torch
import torch.nn.functional as F

from ._common import EPS, Param, compute_dtype
from .gaussian import gcd_similarity, nwd_similarity
from .gaussian import NWD_CONSTANT

__all__ = ["SIMILARITIES", "SIMILARITY_PARAMS", "TAL_PARAMS", "DSL_PARAMS", "ASSIGNERS", "ASSIGNER",
           "SIMILARITY_ASSIGNERS", "ASSIGNER_PARAMS", "Count", "check_assigner", "assigner_function", "yolox_assignments",
           "YOLOX_ASSIGNMENT_ARGUMENTS", "pairwise_iou",
           "pairwise_similarity", "simota_assign", "tal_assign", "dsl_assign", "dsl_cost_terms",
           "empty_assignment"]



class Count(Param):
    """A declared count (a top-k): a whole number from ``low`` up. Taken as a whole float too (the
    command line's "13" parses as 13.0); :func:`assigner_function` hands the assigners an int."""

    def allows(self, value):
        return super().allows(value) and value == int(value)

    def describe(self):
        return f"a whole number >= {self.low:g}"


SIMILARITIES = ("iou", "nwd", "gcd")
SIMILARITY_PARAMS = {
    "similarity": Param("iou", choices=SIMILARITIES, doc=(
        "what the assignment's cost and dynamic k measure a prediction against a ground truth with: "
        "iou (YOLOX's), nwd (Wang et al. 2021, with nwd_constant) or gcd (Guan et al. 2025); the class "
        "target stays the IoU")),
    "nwd_constant": NWD_CONSTANT,
}
TAL_PARAMS = {
    "alpha": Param(0.5, 0, doc="exponent of the predicted score s in the alignment metric s^alpha u^beta "
                   "(YOLOv8 0.5; TOOD 1)"),
    "beta": Param(6.0, 0, doc="exponent of the IoU u in the alignment metric (YOLOv8 and TOOD 6)"),
    "topk": Count(10, 1, doc="positives per ground truth at most: its top k by the metric among the anchors "
                  "whose centre lies inside it (YOLOv8 10; TOOD 13)"),
}
DSL_PARAMS = {
    "topk": Count(13, 1, doc="dynamic k of a ground truth is the sum of its 13 largest IoUs (or similarities), "
                  "at least 1 (RTMDet 13)"),
    "iou_weight": Param(3.0, 0, doc="weight of the IoU cost -log(IoU + eps) (RTMDet 3)"),
    "center_base": Param(10.0, 1, low_open=True, doc="base of the soft centre prior "
                         "base^(distance / stride - offset) (RTMDet 10)"),
    "center_offset": Param(3.0, 0, doc="offset of the soft centre prior, in strides (RTMDet 3)"),
}
ASSIGNERS = ("simota", "tal", "dsl")
ASSIGNER = Param("simota", choices=ASSIGNERS, doc=(
    "label assignment, which anchors are positives for which ground truth: simota (YOLOX's own "
    "get_assignments), tal (task-aligned, TOOD / YOLOv8), dsl (RTMDet's dynamic soft labels)"))
# The assigners a similarity applies to (tal measures with the IoU alone)
SIMILARITY_ASSIGNERS = ("simota", "dsl")
# The parameters of one assigner: {assigner: {argument: Param}}; the settings assigner_{name}_{argument}
ASSIGNER_PARAMS = {"tal": TAL_PARAMS, "dsl": DSL_PARAMS}

# YOLOX 0.3.0's constants of SimOTA (get_in_boxes_info, get_assignments, dynamic_k_matching)
SIMOTA_CENTER_RADIUS = 2.5  # in strides; GitHub main's get_geometry_constraint uses 1.5
SIMOTA_IOU_WEIGHT = 3.0
SIMOTA_OUTSIDE_COST = 100000.0  # GitHub main: 1e6
SIMOTA_TOPK = 10
SIMOTA_LOG_EPS = 1e-8
TAL_EPS = 1e-9  # YOLOv8's guard of the division by a ground truth's largest metric


def _check_count(label, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{label} must be a whole number >= 1, got {value!r}")


def _check_params(assigner, params, values):
    for key, param in params.items():
        if key == "topk":  # torch.topk takes an int; the settings (Count) take 13.0 too and hand on 13
            _check_count(f"{assigner} topk", values[key])
        else:
            param.check(f"{assigner} {key}", values[key])


def _check_inputs(assigner, gt_boxes, gt_classes, pred_boxes, cls_preds, obj_preds, x_shifts, y_shifts, strides):
    """One-line ValueErrors for tensors of shapes that do not belong to one image."""
    if gt_boxes.dim() != 2 or gt_boxes.shape[-1] != 4 or pred_boxes.dim() != 2 or pred_boxes.shape[-1] != 4:
        raise ValueError(f"{assigner} needs gt_boxes (G, 4) and pred_boxes (A, 4), got {tuple(gt_boxes.shape)} "
                         f"and {tuple(pred_boxes.shape)}")
    num_anchors = pred_boxes.shape[0]
    if gt_classes.shape != gt_boxes.shape[:1]:
        raise ValueError(f"{assigner} needs one class per ground truth, got gt_classes {tuple(gt_classes.shape)} "
                         f"for {gt_boxes.shape[0]} boxes")
    if cls_preds.dim() != 2 or cls_preds.shape[0] != num_anchors or obj_preds.numel() != num_anchors:
        raise ValueError(f"{assigner} needs cls_preds (A, num_classes) and obj_preds (A, 1) for A = {num_anchors} "
                         f"anchors, got {tuple(cls_preds.shape)} and {tuple(obj_preds.shape)}")
    for name, grid in (("x_shifts", x_shifts), ("y_shifts", y_shifts), ("strides", strides)):
        if grid.numel() != num_anchors:
            raise ValueError(f"{assigner} needs {name} with one value per anchor ({num_anchors}), "
                             f"got shape {tuple(grid.shape)}")


def empty_assignment(gt_boxes, gt_classes, pred_boxes):
    """No positives (no ground truth, or no anchor a candidate): what YOLOX's get_losses builds for
    an image without ground truth, in get_assignments' form."""
    return (gt_classes.new_zeros(0), torch.zeros(pred_boxes.shape[0], dtype=torch.bool, device=pred_boxes.device),
            torch.zeros(0, dtype=torch.promote_types(gt_boxes.dtype, pred_boxes.dtype), device=pred_boxes.device),
            torch.zeros(0, dtype=torch.int64, device=pred_boxes.device), 0)


# ---- similarity -----------------------------------------------------------------------------


def pairwise_iou(gt_boxes, pred_boxes):
    """IoU of every ``(cx, cy, w, h)`` ground truth with every prediction, ``(G, P)``: the values of
    YOLOX's ``bboxes_iou(gt_boxes, pred_boxes, xyxy=False)``, bit for bit (the same operations in
    the same order; yolox/utils/boxes.py, YOLOX 0.3.0, Apache-2.0). Disjoint boxes: 0; two
    zero-size boxes: 0 / 0, as in YOLOX."""
    a_centre, a_size = gt_boxes[:, None, :2], gt_boxes[:, None, 2:]
    top_left = torch.max(a_centre - a_size / 2, pred_boxes[:, :2] - pred_boxes[:, 2:] / 2)
    bottom_right = torch.min(a_centre + a_size / 2, pred_boxes[:, :2] + pred_boxes[:, 2:] / 2)
    area_a = torch.prod(gt_boxes[:, 2:], 1)
    area_b = torch.prod(pred_boxes[:, 2:], 1)
    overlapping = (top_left < bottom_right).to(top_left.dtype).prod(dim=2)
    area_i = torch.prod(bottom_right - top_left, 2) * overlapping
    return area_i / (area_a[:, None] + area_b - area_i)


def pairwise_similarity(kind, gt_boxes, pred_boxes, nwd_constant=12.8):
    """``(G, P)`` similarity in [0, 1] of every ``(cx, cy, w, h)`` ground truth with every prediction:

    - ``iou``: YOLOX's ``bboxes_iou(gt, pred, False)``, bit for bit (:func:`pairwise_iou`);
    - ``nwd``: exp(-W2 / C) (Wang et al. 2021), W2 the Wasserstein distance of the boxes' Gaussians,
      ``sqrt(dcx^2 + dcy^2 + dw^2 / 4 + dh^2 / 4)``, C = ``nwd_constant`` pixels (the data set's
      average object size; 12.8 on AI-TOD);
    - ``gcd``: exp(-sqrt(D^2)) (Guan et al., GRSL 2025, arXiv 2510.27649), the Gaussian Combined
      Distance ``D^2 = 1/2 [(dcx^2 + dw^2/4)(1/w_g^2 + 1/w_p^2) + (dcy^2 + dh^2/4)(1/h_g^2 + 1/h_p^2)]``,
      symmetric in both boxes' sizes and free of a data set constant.

    The Gaussian formulas are yolox_focal.losses.gaussian's, the ones the box losses use; they are
    computed in float32 for half-precision boxes (a squared distance in pixels overflows float16).
    """
    SIMILARITY_PARAMS["similarity"].check("similarity", kind)
    if kind == "iou":
        return pairwise_iou(gt_boxes, pred_boxes)
    NWD_CONSTANT.check("nwd constant", nwd_constant)
    dtype = compute_dtype(pred_boxes)
    gt_boxes, pred_boxes = gt_boxes.to(dtype)[:, None, :], pred_boxes.to(dtype)[None, :, :]
    diff = pred_boxes - gt_boxes  # (G, P, 4)
    if kind == "nwd":
        return nwd_similarity(diff, nwd_constant)
    return gcd_similarity(diff, gt_boxes[..., 2:], pred_boxes[..., 2:])


# ---- what the strategies share --------------------------------------------------------------


def anchor_centres(x_shifts, y_shifts, strides):
    """``(x, y)`` of every anchor's centre, ``(A,)`` each, computed as YOLOX's get_in_boxes_info does."""
    strides = strides.reshape(-1)
    return (x_shifts.reshape(-1) * strides + 0.5 * strides, y_shifts.reshape(-1) * strides + 0.5 * strides)


def centres_in_boxes(gt_boxes, x_centres, y_centres):
    """``(G, A)`` bool: the anchor's centre lies strictly inside the ground truth box (YOLOX's and
    TOOD's test, all four distances to the edges > 0: in floating point x - l > 0 is x > l)."""
    half = gt_boxes[:, 2:] / 2
    left, right = gt_boxes[:, 0:1] - half[:, 0:1], gt_boxes[:, 0:1] + half[:, 0:1]
    top, bottom = gt_boxes[:, 1:2] - half[:, 1:2], gt_boxes[:, 1:2] + half[:, 1:2]
    return ((x_centres > left) & (x_centres < right) & (y_centres > top) & (y_centres < bottom))


def yolox_scores(cls_preds, obj_preds, gt_classes):
    """``(G, C)``: YOLOX's score sqrt(sigmoid(cls) sigmoid(obj)) of each ground truth's class at each
    of the C candidate anchors, in float32 (float64 for float64 logits), as get_assignments computes
    the score it puts in its cost."""
    dtype = torch.promote_types(cls_preds.dtype, torch.float32)
    probs = cls_preds.to(dtype).sigmoid() * obj_preds.reshape(-1, 1).to(dtype).sigmoid()
    return probs[:, gt_classes.long()].t().sqrt()


def dynamic_k_matching(cost, similarity, topk):
    """SimOTA's matching (YOLOX's dynamic_k_matching, YOLOX 0.3.0): each ground truth takes its
    dynamic k = max(1, int(sum of its ``topk`` largest similarities)) lowest-cost candidates; a
    candidate taken by several goes to the one of lowest cost. Returns the ``(G, C)`` uint8 matching."""
    matching = torch.zeros_like(cost, dtype=torch.uint8)
    top_similarities, _ = torch.topk(similarity, min(topk, similarity.size(1)), dim=1)
    dynamic_ks = torch.clamp(top_similarities.sum(1).int(), min=1).tolist()
    for gt_index, k in enumerate(dynamic_ks):
        # one topk per ground truth, as YOLOX: with ties (equal costs, common at initialisation) a
        # single topk of the largest k, cut to each k, need not pick the same anchors
        _, chosen = torch.topk(cost[gt_index], k=k, largest=False)
        matching[gt_index][chosen] = 1
    claims = matching.sum(0)
    if (claims > 1).sum() > 0:
        _, cheapest = torch.min(cost[:, claims > 1], dim=0)
        matching[:, claims > 1] *= 0
        matching[cheapest, claims > 1] = 1
    return matching


def assignment_from_matching(matching, candidates, targets, gt_classes):
    """get_assignments' 5-tuple from a ``(G, C)`` matching (at most one ground truth per candidate),
    the ``(A,)`` bool mask of the candidates and the ``(G, C)`` class target of each pair."""
    positive = matching.sum(0) > 0
    num_fg = positive.sum().item()
    fg_mask = candidates.clone()
    fg_mask[candidates.clone()] = positive
    matched_gt_inds = matching[:, positive].argmax(0)
    pred_ious_this_matching = (matching * targets).sum(0)[positive]
    return gt_classes[matched_gt_inds], fg_mask, pred_ious_this_matching, matched_gt_inds, num_fg


# ---- SimOTA ---------------------------------------------------------------------------------


def simota_candidates(gt_boxes, x_centres, y_centres, strides):
    """SimOTA's candidates (YOLOX 0.3.0's get_in_boxes_info): ``(A,)`` bool, the anchors whose centre
    lies in some ground truth box or within 2.5 strides of its centre, and ``(G, C)`` bool over those,
    in that box *and* that centre region."""
    in_boxes = centres_in_boxes(gt_boxes, x_centres, y_centres)
    radius = SIMOTA_CENTER_RADIUS * strides.reshape(-1)
    # YOLOX's tests (centre - (c - r) > 0 and (c + r) - centre > 0) on the same rounded bounds
    in_centres = ((x_centres - (gt_boxes[:, 0:1] - radius) > 0) & ((gt_boxes[:, 0:1] + radius) - x_centres > 0)
                  & (y_centres - (gt_boxes[:, 1:2] - radius) > 0) & ((gt_boxes[:, 1:2] + radius) - y_centres > 0))
    candidates = in_boxes.any(0) | in_centres.any(0)
    return candidates, in_boxes[:, candidates] & in_centres[:, candidates]


def simota_class_cost(cls_preds, obj_preds, gt_classes, num_gt):
    """``(G, C)``: SimOTA's class cost, BCE(sqrt(sigmoid(cls) sigmoid(obj)), one-hot) summed over the
    classes, with YOLOX 0.3.0's operations on its (G, C, classes) layout (the same values bit for bit)."""
    num_candidates, num_classes = cls_preds.shape
    one_hot = F.one_hot(gt_classes.to(torch.int64), num_classes).float().unsqueeze(1).repeat(1, num_candidates, 1)
    with torch.autocast(cls_preds.device.type, enabled=False):
        scores = (cls_preds.float().unsqueeze(0).repeat(num_gt, 1, 1).sigmoid_()
                  * obj_preds.float().unsqueeze(0).repeat(num_gt, 1, 1).sigmoid_())
        return F.binary_cross_entropy(scores.sqrt_(), one_hot, reduction="none").sum(-1)


@torch.no_grad()
def simota_assign(gt_boxes, gt_classes, pred_boxes, cls_preds, obj_preds, x_shifts, y_shifts, strides,
                  similarity="iou", nwd_constant=12.8):
    """YOLOX's SimOTA for one image, with ``similarity`` (:func:`pairwise_similarity`) in place of
    the IoU in the cost and in dynamic k; the class target stays the matched IoU. With ``iou`` it
    returns YOLOX 0.3.0's ``get_assignments`` output bit for bit.

    Follows yolox/models/yolo_head.py get_assignments / get_in_boxes_info / dynamic_k_matching,
    YOLOX 0.3.0 (Megvii, Apache-2.0): candidates in some box or within 2.5 strides of some centre;
    cost = class BCE + 3 (-log(sim + 1e-8)) + 1e5 outside the pair's box-and-centre region; dynamic
    k from the top-10 similarities. (GitHub main's get_geometry_constraint / simota_matching: centre
    region alone, radius 1.5, penalty 1e6.) Where no anchor is a candidate it returns no positives
    (YOLOX 0.3.0 raises there: its topk of 1 over no column; pixeltable-yolox returns early).
    """
    _check_inputs("simota", gt_boxes, gt_classes, pred_boxes, cls_preds, obj_preds, x_shifts, y_shifts, strides)
    SIMILARITY_PARAMS["similarity"].check("simota similarity", similarity)
    num_gt = gt_boxes.shape[0]
    if num_gt == 0:
        return empty_assignment(gt_boxes, gt_classes, pred_boxes)
    x_centres, y_centres = anchor_centres(x_shifts, y_shifts, strides)
    candidates, in_box_and_centre = simota_candidates(gt_boxes, x_centres, y_centres, strides)
    if not candidates.any():
        return empty_assignment(gt_boxes, gt_classes, pred_boxes)
    boxes = pred_boxes[candidates]
    ious = pairwise_iou(gt_boxes, boxes)
    sim = ious if similarity == "iou" else pairwise_similarity(similarity, gt_boxes, boxes, nwd_constant)
    class_cost = simota_class_cost(cls_preds[candidates], obj_preds[candidates], gt_classes, num_gt)
    cost = (class_cost + SIMOTA_IOU_WEIGHT * -torch.log(sim + SIMOTA_LOG_EPS)
            + SIMOTA_OUTSIDE_COST * (~in_box_and_centre))
    matching = dynamic_k_matching(cost, sim, SIMOTA_TOPK)
    return assignment_from_matching(matching, candidates, ious, gt_classes)


# ---- task-aligned assignment ----------------------------------------------------------------


@torch.no_grad()
def tal_assign(gt_boxes, gt_classes, pred_boxes, cls_preds, obj_preds, x_shifts, y_shifts, strides,
               alpha=0.5, beta=6.0, topk=10):
    """Task-aligned assignment (Feng et al., "TOOD", ICCV 2021), in the form YOLOv6, PP-YOLOE and
    YOLOv8 use, for one image:

    - metric t = s^alpha u^beta per pair, s YOLOX's score sqrt(sigmoid(cls) sigmoid(obj)) of the
      ground truth's class, u the IoU of the prediction with the ground truth;
    - each ground truth takes its ``topk`` anchors of largest t among those whose centre lies inside
      it (all of them where fewer lie inside);
    - an anchor taken by several ground truths goes to the one of largest IoU among them (TOOD's
      rule; YOLOv8 and PP-YOLOE take the largest IoU over every ground truth containing the anchor,
      which can hand it to one that did not take it);
    - class target (returned as ``pred_ious_this_matching``, which YOLOX's get_losses multiplies the
      one-hot class by): t / max t * max u, the maxima over the ground truth's positives (YOLOv8's
      normalisation, its eps 1e-9).

    YOLOv8's defaults (alpha 0.5, beta 6, top-k 10); TOOD's are 1, 6, 13. YOLOv8 measures u with
    CIoU clamped at 0; this is TOOD's plain IoU. A ground truth no anchor centre lies inside (smaller
    than a stride) gets no positive, as in TOOD and YOLOv8.
    """
    _check_inputs("tal", gt_boxes, gt_classes, pred_boxes, cls_preds, obj_preds, x_shifts, y_shifts, strides)
    _check_params("tal", TAL_PARAMS, dict(alpha=alpha, beta=beta, topk=topk))
    if gt_boxes.shape[0] == 0:
        return empty_assignment(gt_boxes, gt_classes, pred_boxes)
    x_centres, y_centres = anchor_centres(x_shifts, y_shifts, strides)
    in_boxes = centres_in_boxes(gt_boxes, x_centres, y_centres)
    candidates = in_boxes.any(0)
    if not candidates.any():
        return empty_assignment(gt_boxes, gt_classes, pred_boxes)
    in_boxes = in_boxes[:, candidates]
    ious = pairwise_iou(gt_boxes, pred_boxes[candidates])
    scores = yolox_scores(cls_preds[candidates], obj_preds[candidates], gt_classes)
    metric = scores.pow(alpha) * ious.to(scores.dtype).pow(beta) * in_boxes
    chosen = top_k_inside(metric, in_boxes, topk)
    chosen = highest_iou_claim(chosen, ious)
    targets = normalised_metric(metric * chosen, ious.to(metric.dtype) * chosen)
    return assignment_from_matching(chosen.to(torch.uint8), candidates, targets, gt_classes)


def top_k_inside(metric, inside, k):
    """``(G, C)`` bool: each ground truth's ``k`` candidates of largest metric among those inside it."""
    ranked = torch.where(inside, metric, torch.full_like(metric, -1.0))  # inside first, even at metric 0
    _, chosen = torch.topk(ranked, min(k, ranked.shape[1]), dim=1)
    return torch.zeros_like(inside).scatter_(1, chosen, True) & inside


def highest_iou_claim(chosen, ious):
    """Each candidate taken by several ground truths kept by the one of largest IoU among them (the
    first of equals)."""
    claimed_ious = torch.where(chosen, ious, torch.full_like(ious, -1.0))
    best = claimed_ious.argmax(0)
    return chosen & (torch.arange(chosen.shape[0], device=chosen.device)[:, None] == best)


def normalised_metric(metric, ious):
    """YOLOv8's soft class target of each positive: t / max t * max u over its ground truth's
    positives (``metric``, ``ious`` zero off the positives)."""
    largest_metric = metric.amax(1, keepdim=True)
    largest_iou = ious.amax(1, keepdim=True)
    return metric * largest_iou / (largest_metric + TAL_EPS)


# ---- dynamic soft-label assignment ----------------------------------------------------------


def dsl_cost_terms(sim, scores, distances, strides, iou_weight=3.0, center_base=10.0, center_offset=3.0):
    """The three ``(G, C)`` terms of RTMDet's cost (Lyu et al. 2022, eq. 2-4):

    - soft class cost BCE(p, q) |q - p|^2: p the predicted score of the ground truth's class, q the
      similarity (IoU) as the soft target; the BCE's logs are clamped at -100 as torch's are;
    - IoU cost ``iou_weight`` (-log(q + EPS)), EPS 1e-7 (the authors' guard);
    - soft centre prior ``center_base^(distance / stride - center_offset)``, the distance from the
      anchor's centre to the ground truth's centre in units of the anchor's stride.
    """
    q = sim.to(scores.dtype)
    # autocast refuses binary_cross_entropy on CUDA (YOLOX's SimOTA turns it off around its own)
    with torch.autocast(scores.device.type, enabled=False):
        class_cost = F.binary_cross_entropy(scores, q, reduction="none") * (q - scores).square()
    iou_cost = iou_weight * -torch.log(q + EPS)
    centre_prior = torch.pow(center_base, distances / strides - center_offset)
    return class_cost, iou_cost, centre_prior


@torch.no_grad()
def dsl_assign(gt_boxes, gt_classes, pred_boxes, cls_preds, obj_preds, x_shifts, y_shifts, strides,
               similarity="iou", nwd_constant=12.8, topk=13, iou_weight=3.0, center_base=10.0, center_offset=3.0):
    """Dynamic soft-label assignment (Lyu et al., "RTMDet", arXiv 2212.07784; mmdetection's
    DynamicSoftLabelAssigner is the authors' code) for one image: SimOTA's structure with RTMDet's
    cost (:func:`dsl_cost_terms`).

    Candidates: the anchors whose centre lies inside some ground truth box (the soft centre prior,
    not a fixed region, keeps far anchors out). Cost per pair: soft class cost + 3 (-log IoU) +
    10^(distance / stride - 3); dynamic k = max(1, int(sum of the ground truth's 13 largest IoUs));
    each ground truth takes its k lowest-cost candidates, an anchor taken by several goes to the
    lowest cost. p is YOLOX's score sqrt(sigmoid(cls) sigmoid(obj)) of the ground truth's class
    (RTMDet has no objectness; its cost also adds BCE(p_c, 0) p_c^2 of every other class c, which is
    left out here). ``similarity`` replaces the IoU throughout the cost and in dynamic k; the class
    target handed on is the matched IoU, as in RTMDet.
    """
    _check_inputs("dsl", gt_boxes, gt_classes, pred_boxes, cls_preds, obj_preds, x_shifts, y_shifts, strides)
    SIMILARITY_PARAMS["similarity"].check("dsl similarity", similarity)
    _check_params("dsl", DSL_PARAMS, dict(topk=topk, iou_weight=iou_weight, center_base=center_base,
                                          center_offset=center_offset))
    if gt_boxes.shape[0] == 0:
        return empty_assignment(gt_boxes, gt_classes, pred_boxes)
    x_centres, y_centres = anchor_centres(x_shifts, y_shifts, strides)
    candidates = centres_in_boxes(gt_boxes, x_centres, y_centres).any(0)
    if not candidates.any():
        return empty_assignment(gt_boxes, gt_classes, pred_boxes)
    boxes = pred_boxes[candidates]
    ious = pairwise_iou(gt_boxes, boxes)
    sim = ious if similarity == "iou" else pairwise_similarity(similarity, gt_boxes, boxes, nwd_constant)
    scores = yolox_scores(cls_preds[candidates], obj_preds[candidates], gt_classes)
    dtype = scores.dtype
    distances = torch.hypot(x_centres[candidates].to(dtype) - gt_boxes[:, 0:1].to(dtype),
                            y_centres[candidates].to(dtype) - gt_boxes[:, 1:2].to(dtype))
    terms = dsl_cost_terms(sim, scores, distances, strides.reshape(-1)[candidates].to(dtype), iou_weight,
                           center_base, center_offset)
    class_cost, iou_cost, centre_prior = terms
    matching = dynamic_k_matching(class_cost + iou_cost + centre_prior, sim, topk)
    return assignment_from_matching(matching, candidates, ious, gt_classes)


# ---- the choice, as settings and as YOLOX's get_assignments ---------------------------------


def check_assigner(assigner, similarity, label="similarity"):
    """The rule between the assignment settings, a one-line ``ValueError``: a similarity other than
    the IoU only for an assigner it applies to (``label`` names the similarity's setting)."""
    if similarity != "iou" and assigner not in SIMILARITY_ASSIGNERS:
        raise ValueError(f"{label} {similarity} applies to the assigners {' and '.join(SIMILARITY_ASSIGNERS)}, "
                         f"not {assigner}; leave it at iou")


def assigner_function(assigner, similarity="iou", nwd_constant=12.8, **params):
    """The assignment of one image for the chosen ``assigner`` and its parameters, a function of
    :func:`simota_assign`'s arguments; None for ``simota`` with the IoU, which is YOLOX's own
    get_assignments (called, not replaced)."""
    if assigner == "simota" and similarity == "iou":
        return None
    counts = {k: int(v) if k == "topk" else v for k, v in params.items()}
    if assigner == "tal":
        return functools.partial(tal_assign, **counts)
    similar = dict(similarity=similarity, nwd_constant=nwd_constant)
    if assigner == "dsl":
        return functools.partial(dsl_assign, **similar, **counts)
    return functools.partial(simota_assign, **similar)


# The arguments of YOLOXHead.get_assignments that an assignment reads, named alike in YOLOX 0.3.0
# (PyPI), GitHub main and pixeltable-yolox (whose other arguments differ).
YOLOX_ASSIGNMENT_ARGUMENTS = ("batch_idx", "gt_bboxes_per_image", "gt_classes", "bboxes_preds_per_image",
                              "expanded_strides", "x_shifts", "y_shifts", "cls_preds", "obj_preds", "mode")


def yolox_assignments(assign, batch_idx, gt_bboxes_per_image, gt_classes, bboxes_preds_per_image, expanded_strides,
                      x_shifts, y_shifts, cls_preds, obj_preds, mode="gpu"):
    """``assign`` (:func:`assigner_function`'s) on YOLOXHead.get_assignments' arguments, returning
    what it returns: ``(gt_matched_classes, fg_mask, pred_ious_this_matching, matched_gt_inds, num_fg)``.
    ``cls_preds``, ``obj_preds`` are the batch's ``(B, A, ...)``, the grids ``(1, A)``, as get_losses
    hands them. ``mode="cpu"`` (get_losses' retry after running out of GPU memory) computes on the
    CPU in float32, as YOLOX does, and hands the results back on the ground truths' device."""
    device = gt_bboxes_per_image.device
    tensors = dict(gt_boxes=gt_bboxes_per_image, gt_classes=gt_classes, pred_boxes=bboxes_preds_per_image,
                   cls_preds=cls_preds[batch_idx], obj_preds=obj_preds[batch_idx], x_shifts=x_shifts[0],
                   y_shifts=y_shifts[0], strides=expanded_strides[0])
    if mode == "cpu":
        tensors = {k: v.cpu().float() for k, v in tensors.items()}
    result = assign(**tensors)
    if mode == "cpu":
        result = tuple(t.to(device) for t in result[:4]) + result[4:]
    return result
