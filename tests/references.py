"""Float64 reference formulas of every loss of the kit, written once, plainly from the papers (or,
where the kit follows an implementation, from that implementation's formula), with plain autograd
and independently of the package; and the random inputs the tests and benchmarks share.

The tests compare the kit's values and gradients with these; the benchmarks time them as the
formula written plainly. They are not guarded: at degenerate inputs (0 / 0, log 0) they may give
NaN or inf where the kit stays finite.
"""

import math

import torch

# ---- element-wise: logits x, targets t in [0, 1] -----------------------------------------------


def sigmoid(x):
    return 1 / (1 + torch.exp(-x))


def bce(x, t):
    """-(t log p + (1 - t) log(1 - p)), the textbook form."""
    p = sigmoid(x)
    return -(t * torch.log(p) + (1 - t) * torch.log(1 - p))


def one_minus_p_t(x, t):
    """1 - p_t with p_t = t p + (1 - t)(1 - p), for soft targets too."""
    p = sigmoid(x)
    return 1 - (t * p + (1 - t) * (1 - p))


def alpha_t(t, alpha):
    return 1.0 if alpha is None else t * alpha + (1 - t) * (1 - alpha)


def reference_focal(x, t, gamma, alpha):
    """Lin et al. 2017: BCE alpha_t (1 - p_t) ** gamma."""
    return bce(x, t) * alpha_t(t, alpha) * one_minus_p_t(x, t) ** gamma


def reference_quality_focal(x, t, beta, alpha):
    """Li et al. 2020 (GFL): BCE |t - p| ** beta [alpha_t]."""
    return bce(x, t) * torch.abs(t - sigmoid(x)) ** beta * alpha_t(t, alpha)


def reference_varifocal(x, t, alpha, gamma):
    """Zhang et al. 2021: BCE t where t > 0, BCE alpha p ** gamma where t = 0."""
    return bce(x, t) * torch.where(t > 0, t, alpha * sigmoid(x) ** gamma)


def reference_bce_blur(x, t, alpha):
    """YOLOv5's BCEBlurWithLogitsLoss: BCE (1 - exp((p - t - 1) / (alpha + 1e-4)))."""
    return bce(x, t) * (1 - torch.exp((sigmoid(x) - t - 1) / (alpha + 1e-4)))


def reference_smoothed_bce(x, t, epsilon):
    """BCE against targets smoothed t (1 - epsilon) + epsilon / 2."""
    return bce(x, t * (1 - epsilon) + epsilon / 2)


def reference_poly1(x, t, epsilon):
    """Leng et al. 2022, Poly-1 on BCE: BCE + epsilon (1 - p_t)."""
    return bce(x, t) + epsilon * one_minus_p_t(x, t)


def reference_poly1_focal(x, t, epsilon, gamma, alpha):
    """Leng et al. 2022, Poly-1 on focal: FL + epsilon (1 - p_t) ** (gamma + 1), the term unweighted."""
    return reference_focal(x, t, gamma, alpha) + epsilon * one_minus_p_t(x, t) ** (gamma + 1)


def reference_slide(x, t, mean=None):
    """Yu et al. 2022 (YOLO-FaceV2): BCE w(t), w = 1 for t <= mu - 0.1, e^(1 - mu) for
    mu - 0.1 < t < mu, e^(1 - t) for t >= mu; mu the mean of the nonzero targets (or ``mean``),
    at least 0.2 as in the authors' code."""
    if mean is None:
        mean = t[t > 0].mean().item() if bool((t > 0).any()) else 0.0
    mean = max(float(mean), 0.2)
    weight = torch.ones_like(t)
    weight[(t > mean - 0.1) & (t < mean)] = math.exp(1 - mean)
    high = t >= mean
    weight[high] = torch.exp(1 - t[high])
    return bce(x, t) * weight


# ---- boxes: (N, 4) (cx, cy, w, h) -----------------------------------------------------------


def xyxy(box):
    """(cx, cy, w, h) -> (x1, y1, x2, y2)."""
    return torch.cat([box[..., :2] - box[..., 2:] / 2, box[..., :2] + box[..., 2:] / 2], -1)


def geometry(pred, target):
    """IoU, enclosing width and height, squared centre distance: the papers' quantities."""
    (px, py, pw, ph), (tx, ty, tw, th) = pred.unbind(-1), target.unbind(-1)
    iw = (torch.min(px + pw / 2, tx + tw / 2) - torch.max(px - pw / 2, tx - tw / 2)).clamp(min=0)
    ih = (torch.min(py + ph / 2, ty + th / 2) - torch.max(py - ph / 2, ty - th / 2)).clamp(min=0)
    inter = iw * ih
    iou = inter / (pw * ph + tw * th - inter)
    cw = torch.max(px + pw / 2, tx + tw / 2) - torch.min(px - pw / 2, tx - tw / 2)
    ch = torch.max(py + ph / 2, ty + th / 2) - torch.min(py - ph / 2, ty - th / 2)
    rho2 = (px - tx) ** 2 + (py - ty) ** 2
    return iou, cw, ch, rho2


def reference_diou(pred, target):
    """Zheng et al. 2020: 1 - IoU + rho^2 / c^2."""
    iou, cw, ch, rho2 = geometry(pred, target)
    return 1 - iou + rho2 / (cw**2 + ch**2)


def reference_ciou(pred, target, detach_alpha=True):
    """Zheng et al. 2020: DIoU + alpha v, v = 4/pi^2 (atan(wt/ht) - atan(w/h))^2, alpha = v / (1 - IoU + v)."""
    iou, cw, ch, rho2 = geometry(pred, target)
    v = 4 / math.pi**2 * (torch.atan(target[..., 2] / target[..., 3]) - torch.atan(pred[..., 2] / pred[..., 3])) ** 2
    alpha = v / (1 - iou + v)
    if detach_alpha:
        alpha = alpha.detach()
    return 1 - iou + rho2 / (cw**2 + ch**2) + alpha * v


def reference_eiou(pred, target):
    """Zhang et al. 2021: 1 - IoU + rho^2 / c^2 + (w - wt)^2 / cw^2 + (h - ht)^2 / ch^2."""
    iou, cw, ch, rho2 = geometry(pred, target)
    return (1 - iou + rho2 / (cw**2 + ch**2) + (pred[..., 2] - target[..., 2]) ** 2 / cw**2
            + (pred[..., 3] - target[..., 3]) ** 2 / ch**2)


def reference_siou(pred, target, eps=1e-7, theta=4):
    """SIoU (Gevorgyan 2022) as YOLOv6's yolov6/utils/figure_iou.py computes it (its eps included),
    pred = box1."""
    b1_x1, b1_x2 = pred[..., 0] - pred[..., 2] / 2, pred[..., 0] + pred[..., 2] / 2
    b1_y1, b1_y2 = pred[..., 1] - pred[..., 3] / 2, pred[..., 1] + pred[..., 3] / 2
    b2_x1, b2_x2 = target[..., 0] - target[..., 2] / 2, target[..., 0] + target[..., 2] / 2
    b2_y1, b2_y2 = target[..., 1] - target[..., 3] / 2, target[..., 1] + target[..., 3] / 2
    inter = ((torch.min(b1_x2, b2_x2) - torch.max(b1_x1, b2_x1)).clamp(0)
             * (torch.min(b1_y2, b2_y2) - torch.max(b1_y1, b2_y1)).clamp(0))
    w1, h1 = b1_x2 - b1_x1, b1_y2 - b1_y1 + eps
    w2, h2 = b2_x2 - b2_x1, b2_y2 - b2_y1 + eps
    iou = inter / (w1 * h1 + w2 * h2 - inter + eps)
    cw = torch.max(b1_x2, b2_x2) - torch.min(b1_x1, b2_x1)
    ch = torch.max(b1_y2, b2_y2) - torch.min(b1_y1, b2_y1)
    s_cw = (b2_x1 + b2_x2 - b1_x1 - b1_x2) * 0.5
    s_ch = (b2_y1 + b2_y2 - b1_y1 - b1_y2) * 0.5
    sigma = torch.pow(s_cw**2 + s_ch**2, 0.5)
    sin_alpha_1, sin_alpha_2 = torch.abs(s_cw) / sigma, torch.abs(s_ch) / sigma
    sin_alpha = torch.where(sin_alpha_1 > pow(2, 0.5) / 2, sin_alpha_2, sin_alpha_1)
    angle_cost = torch.cos(torch.arcsin(sin_alpha) * 2 - math.pi / 2)
    gamma = angle_cost - 2
    distance_cost = 2 - torch.exp(gamma * (s_cw / cw) ** 2) - torch.exp(gamma * (s_ch / ch) ** 2)
    omiga_w = torch.abs(w1 - w2) / torch.max(w1, w2)
    omiga_h = torch.abs(h1 - h2) / torch.max(h1, h2)
    shape_cost = torch.pow(1 - torch.exp(-omiga_w), theta) + torch.pow(1 - torch.exp(-omiga_h), theta)
    return 1.0 - (iou - 0.5 * (distance_cost + shape_cost))


def reference_alpha_iou(pred, target, alpha):
    """He et al. 2021: 1 - IoU ** alpha."""
    return 1 - geometry(pred, target)[0] ** alpha


def reference_wiou(pred, target):
    """Tong et al. 2023, Wise-IoU v1: exp(rho^2 / (W_g^2 + H_g^2)*) (1 - IoU), * detached."""
    iou, cw, ch, rho2 = geometry(pred, target)
    return torch.exp(rho2 / (cw**2 + ch**2).detach()) * (1 - iou)


def reference_wiou_v3(pred, target, mean, alpha, delta):
    """Tong et al. 2023, Wise-IoU v3: r L_v1, r = beta / (delta alpha ** (beta - delta)),
    beta = (1 - IoU)* / mean."""
    beta = (1 - geometry(pred, target)[0]).detach() / mean
    return beta / (delta * alpha ** (beta - delta)) * reference_wiou(pred, target)


def reference_mpdiou(pred, target, input_size):
    """Ma & Xu 2023: 1 - IoU + d1^2 / (w^2 + h^2) + d2^2 / (w^2 + h^2), (h, w) = input_size."""
    height, width = input_size
    p, t = xyxy(pred), xyxy(target)
    d1 = (p[..., 0] - t[..., 0]) ** 2 + (p[..., 1] - t[..., 1]) ** 2
    d2 = (p[..., 2] - t[..., 2]) ** 2 + (p[..., 3] - t[..., 3]) ** 2
    return 1 - geometry(pred, target)[0] + d1 / (width**2 + height**2) + d2 / (width**2 + height**2)


def reference_shape_iou(pred, target, scale):
    """Zhang & Zhang 2023, Shape-IoU: 1 - IoU + distance_shape + 0.5 Omega_shape."""
    iou, cw, ch, _ = geometry(pred, target)
    (px, py, pw, ph), (tx, ty, tw, th) = pred.unbind(-1), target.unbind(-1)
    ww = 2 * tw**scale / (tw**scale + th**scale)
    hh = 2 * th**scale / (tw**scale + th**scale)
    distance = hh * (px - tx) ** 2 / (cw**2 + ch**2) + ww * (py - ty) ** 2 / (cw**2 + ch**2)
    omega_w = hh * torch.abs(pw - tw) / torch.max(pw, tw)
    omega_h = ww * torch.abs(ph - th) / torch.max(ph, th)
    shape = (1 - torch.exp(-omega_w)) ** 4 + (1 - torch.exp(-omega_h)) ** 4
    return 1 - iou + distance + 0.5 * shape


def reference_nwd(pred, target, constant):
    """Wang et al. 2021: 1 - exp(-sqrt(W2^2) / C),
    W2^2 = ||(cx, cy, w / 2, h / 2) - (cx_gt, cy_gt, w_gt / 2, h_gt / 2)||^2."""
    a = torch.cat([pred[..., :2], pred[..., 2:] / 2], -1)
    b = torch.cat([target[..., :2], target[..., 2:] / 2], -1)
    return 1 - torch.exp(-torch.sqrt(((a - b) ** 2).sum(-1)) / constant)


def reference_gcd(pred, target):
    """Guan et al. 2025 (Gaussian Combined Distance, arXiv 2510.27649): 1 - exp(-sqrt(D^2)),
    D^2 = 1/2 [(dcx^2 + dw^2 / 4)(1 / w^2 + 1 / w_gt^2) + (dcy^2 + dh^2 / 4)(1 / h^2 + 1 / h_gt^2)]."""
    (px, py, pw, ph), (tx, ty, tw, th) = pred.unbind(-1), target.unbind(-1)
    x_term = ((px - tx) ** 2 + (pw - tw) ** 2 / 4) * (1 / pw**2 + 1 / tw**2)
    y_term = ((py - ty) ** 2 + (ph - th) ** 2 / 4) * (1 / ph**2 + 1 / th**2)
    return 1 - torch.exp(-torch.sqrt((x_term + y_term) / 2))


def reference_piou(pred, target):
    """Liu et al. 2024, Powerful-IoU: 2 - IoU - exp(-P^2), P the matching edges' distances over the
    target's width (x) and height (y), each pair of edges / 4."""
    p, t = xyxy(pred), xyxy(target)
    penalty = ((p[..., 0] - t[..., 0]).abs() + (p[..., 2] - t[..., 2]).abs()) / (4 * target[..., 2]) + (
        (p[..., 1] - t[..., 1]).abs() + (p[..., 3] - t[..., 3]).abs()) / (4 * target[..., 3])
    return 2 - geometry(pred, target)[0] - torch.exp(-penalty**2), penalty


def reference_piou_v2(pred, target, lam=1.3):
    """PIoU v2: u(lam exp(-P)) L_PIoU, u(x) = 3 x exp(-x^2), u out of the graph."""
    loss, penalty = reference_piou(pred, target)
    x = lam * torch.exp(-penalty)
    return (3 * x * torch.exp(-x**2)).detach() * loss


def reference_uiou_ratio(progress, start=2.0, end=0.5, schedule="linear"):
    """Luo et al. 2024, the ratio's annealing, the authors' three forms (linear, cosine, fraction)
    over the progress instead of 300 epochs, from start to end."""
    if schedule == "linear":
        return (1 - progress) * start + progress * end
    if schedule == "cosine":
        return end + (start - end) * 0.5 * (1 + math.cos(math.pi * progress))
    return start * end / (end + (start - end) * progress)  # 1 / r linear in the progress


def reference_uiou(pred, target, progress, start=2.0, end=0.5, schedule="linear", gamma=0.5, ratio=1.0, low=0.0,
                   high=1.0):
    """Luo et al. 2024, Unified-IoU as its authors' code computes it: both boxes' width and height times
    r about their centres, the CIoU loss of that pair weighted by (1 - IoU ** gamma)*, the IoU of the
    scaled pair, * out of the graph; with the Inner/Focaler options (``ratio``, ``low``, ``high``)
    IoU' of the scaled pair in the place of its IoU, ``L + IoU - IoU'``, under the same weight."""
    r = reference_uiou_ratio(progress, start, end, schedule)
    scale = torch.tensor([1.0, 1.0, r, r], dtype=pred.dtype)
    p, t = pred * scale, target * scale
    iou = geometry(p, t)[0]
    weight = (1 - iou**gamma).detach()
    return weight * (reference_ciou(p, t) + iou - reference_modified_iou(p, t, ratio, low, high))


def reference_mal(x, t, gamma):
    """Huang et al. 2025 (DEIM), MAL: -[q^g log p + (1 - q^g) log(1 - p)] where t = q > 0,
    -p^g log(1 - p) where t = 0."""
    p = sigmoid(x)
    q = t**gamma
    return torch.where(t > 0, -(q * torch.log(p) + (1 - q) * torch.log(1 - p)), -(p**gamma) * torch.log(1 - p))


def reference_atfl(x, t, mean, lam=1.5, max_exponent=math.inf):
    """Yang et al. 2024 (EFLNet), ATFL: BCE (1 - p_t) ** -ln(mean) where p_t > 0.5,
    BCE (lam - p_t) ** -ln(p_t) where p_t <= 0.5, the exponents out of the graph (-ln p_t at most
    ``max_exponent``)."""
    p = sigmoid(x)
    p_t = t * p + (1 - t) * (1 - p)
    gamma = -math.log(mean)
    weight = torch.where(p_t > 0.5, (1 - p_t) ** gamma, (lam - p_t) ** (-torch.log(p_t)).clamp(max=max_exponent).detach())
    return bce(x, t) * weight


def reference_modified_iou(pred, target, ratio=1.0, low=0.0, high=1.0):
    """IoU': Inner-IoU (Zhang et al. 2023), the IoU of the boxes with width and height times ratio
    about their centres, then Focaler-IoU (Zhang & Zhang 2024), mapped linearly from [low, high]
    onto [0, 1] and clamped."""
    scale = torch.tensor([1.0, 1.0, ratio, ratio], dtype=pred.dtype)
    inner = geometry(pred * scale, target * scale)[0]
    return ((inner - low) / (high - low)).clamp(0, 1)


def reference_with_modified_iou(kind, penalty_loss=None, ratio=1.0, low=0.0, high=1.0, alpha=None, mean=None,
                                delta=3.0):
    """Box loss ``kind`` with IoU' in the place of the IoU in its formula, as the papers put it:
    ``1 - IoU'**2`` (iou, YOLOX's 1 - IoU**2), ``1 - IoU'**alpha`` (alpha_iou), ``R (1 - IoU')``
    (wiou), ``r R (1 - IoU')`` with r of the plain IoU (wiou_v3: alpha, mean, delta), and for a loss
    ``1 - IoU + penalty`` (``penalty_loss``, its reference) ``L + IoU - IoU'``."""
    def loss(pred, target):
        iou, cw, ch, rho2 = geometry(pred, target)
        modified = reference_modified_iou(pred, target, ratio, low, high)
        attention = torch.exp(rho2 / (cw**2 + ch**2).detach())  # Wise-IoU's R
        if kind == "iou":
            return 1 - modified**2
        if kind == "alpha_iou":
            return 1 - modified**alpha
        if kind == "wiou":
            return attention * (1 - modified)
        if kind == "wiou_v3":
            beta = (1 - iou).detach() / mean
            return beta / (delta * alpha ** (beta - delta)) * attention * (1 - modified)
        return penalty_loss(pred, target) + iou - modified
    return loss


# Degenerate pairs (pred, target) on which every box loss must stay finite, loss and gradient.
DEGENERATE_PAIRS = {
    "identical": ([10, 20, 4, 6], [10, 20, 4, 6]),
    "same centre, other size": ([10, 20, 4, 6], [10, 20, 8, 3]),
    "same centre, one zero-size": ([10, 20, 0, 0], [10, 20, 8, 3]),
    "zero width": ([10, 20, 0, 6], [11, 20, 4, 6]),
    "both zero width": ([10, 20, 0, 6], [10, 21, 0, 5]),
    "zero height": ([10, 20, 4, 0], [11, 21, 4, 6]),
    "both zero height": ([10, 20, 4, 0], [12, 20, 3, 0]),
    "both zero size, same point": ([10, 20, 0, 0], [10, 20, 0, 0]),
    "both zero size, apart": ([10, 20, 0, 0], [13, 24, 0, 0]),
    "disjoint far apart": ([0, 0, 2, 2], [1e4, -1e4, 3, 5]),
    "touching": ([0, 0, 2, 2], [2, 0, 2, 2]),
    "touching corners": ([0, 0, 2, 2], [2, 2, 2, 2]),
    "huge coordinates": ([1e6, 5e5, 1e5, 2e5], [1.01e6, 5.2e5, 1.2e5, 1.5e5]),
    "huge, disjoint": ([1e6, 1e6, 1e5, 1e5], [-1e6, 1e5, 3e5, 1e5]),
    "huge, identical": ([1e6, 1e6, 1e5, 1e5], [1e6, 1e6, 1e5, 1e5]),
    "tiny": ([1e-3, 1e-3, 1e-4, 1e-4], [1.1e-3, 1e-3, 2e-4, 1e-4]),
}


# ---- random inputs --------------------------------------------------------------------------


def random_pairs(n, seed, dtype=torch.float64, disjoint=False):
    """(cx, cy, w, h) predictions and targets: predictions near their targets (overlapping) or
    shifted far away (disjoint)."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.rand(n, 2, generator=g, dtype=dtype) * 600
    sizes = torch.rand(n, 2, generator=g, dtype=dtype) * 150 + 2
    target = torch.cat([centres, sizes], 1)
    shift = torch.randn(n, 2, generator=g, dtype=dtype) * sizes / 5
    if disjoint:
        shift = shift.sign() * (sizes * 2 + 10)
    pred = torch.cat([centres + shift, sizes * torch.exp(torch.randn(n, 2, generator=g, dtype=dtype) * 0.4)], 1)
    return pred, target



def large_pairs(n, seed, dtype):
    """random_pairs with every side four times as long (up to about 600 px), in ``dtype``: about half
    the box areas lie beyond float16's largest number, 65504."""
    pred, target = random_pairs(n, seed, torch.float32)
    pred[:, 2:] *= 4
    target[:, 2:] *= 4
    return pred.to(dtype), target.to(dtype)

def mixed_targets(n, generator, dtype=torch.float64):
    """Soft targets in (0, 1), with a quarter hard 0/1 and a quarter exactly 0 (varifocal's negatives)."""
    t = torch.rand(n, generator=generator, dtype=dtype)
    t[: n // 4] = (t[: n // 4] > 0.5).to(dtype)
    t[n // 4: n // 2] = 0
    return t


def class_targets(rows, classes, generator, dtype=torch.float64):
    """YOLOX's classification targets: one-hot times the IoU of the match, one class a row."""
    t = torch.zeros(rows, classes, dtype=dtype)
    t[torch.arange(rows), torch.randint(classes, (rows,), generator=generator)] = torch.rand(
        rows, generator=generator, dtype=dtype)
    return t


def random_labels(batch, size, generator, boxes=7, max_labels=50, num_classes=80):
    """YOLOX's padded labels (batch, max_labels, 5): class, cx, cy, w, h, 1 to 2 * boxes - 1 an image."""
    labels = torch.zeros(batch, max_labels, 5)
    for i in range(batch):
        n = int(torch.randint(1, 2 * boxes, (1,), generator=generator))
        wh = torch.rand(n, 2, generator=generator) * size * 0.3 + 8
        centre = wh / 2 + torch.rand(n, 2, generator=generator) * (size - wh)
        labels[i, :n, 0] = torch.randint(num_classes, (n,), generator=generator).float()
        labels[i, :n, 1:3], labels[i, :n, 3:5] = centre, wh
    return labels
