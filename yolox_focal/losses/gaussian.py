"""The Gaussian distances between boxes, each written once, for the box losses (per matched pair)
and the label assignment (per pair of every ground truth and every prediction) alike.

A ``(cx, cy, w, h)`` box is modelled as the 2-D Gaussian N(mu, Sigma), mu = (cx, cy),
Sigma = diag(w^2 / 4, h^2 / 4). Both distances are functions of the difference ``diff`` of the two
boxes' ``(cx, cy, w, h)`` (in either order: only its squares enter) and, for GCD, of both boxes'
sizes, so the same function serves ``(N, 4)`` pairs and ``(G, P, 4)`` broadcast matrices.

- Wasserstein (Wang et al. 2021, "A Normalized Gaussian Wasserstein Distance for Tiny Object
  Detection"): ``W2^2 = dcx^2 + dcy^2 + dw^2 / 4 + dh^2 / 4``; NWD = exp(-W2 / C), C in pixels.
- Gaussian Combined Distance (Guan et al., IEEE GRSL 2025, arXiv 2510.27649; the formula as the
  authors' code computes it, github.com/MArKkwanGuan/mmdet-GCD, ``bbox_overlaps`` mode "gcd"): the
  Wasserstein terms of each axis normalised by *both* boxes' sizes on that axis, averaged:

      D^2 = 1/2 [ (dcx^2 + dw^2 / 4) (1 / w_a^2 + 1 / w_b^2) + (dcy^2 + dh^2 / 4) (1 / h_a^2 + 1 / h_b^2) ]

  that is the mean of the two one-sided distances, ``dcx^2 / w_a^2 + dcy^2 / h_a^2 + (dw^2 / w_b^2 +
  dh^2 / h_b^2) / 4`` and the same with a and b swapped. The similarity is exp(-sqrt(D^2)): no
  dataset constant, unchanged when both boxes are scaled alike, and symmetric. A circulating copy
  keeps only one of the two one-sided distances (normalised by one box alone), which is neither.

Needs only torch.
"""

import torch

from ._common import EPS, Param

__all__ = ["wasserstein_distance", "gcd_axis_terms", "gcd_distance", "nwd_similarity", "gcd_similarity", "NWD_CONSTANT"]

# NWD's C, one setting (box_nwd_constant) for the nwd loss, the IoU + NWD mix and the assignment's nwd
NWD_CONSTANT = Param(12.8, 0, low_open=True, doc="normalising constant C in pixels: the dataset's average "
                     "absolute object size (paper: 12.8 on AI-TOD); also the NWD of box_gaussian_mix")


def _guarded_sqrt(squared):
    """sqrt of a squared distance, clamped to the smallest normal number first: the derivative of
    sqrt is infinite at 0, so identical boxes get distance ~0 and gradient 0 instead of NaN."""
    return squared.clamp(min=torch.finfo(squared.dtype).tiny).sqrt()


def wasserstein_distance(diff):
    """W2 between the Gaussians of two boxes whose ``(cx, cy, w, h)`` differ by ``diff`` ``(..., 4)``;
    shape ``diff.shape[:-1]``."""
    # (dcx^2 + dcy^2 + dw^2 / 4 + dh^2 / 4) as one matrix-vector product, kept in float32 under
    # autocast (YOLOX's --fp16), which runs products of matrices in float16, where squared
    # distances in pixels overflow above 65504
    with torch.autocast(diff.device.type, enabled=False):
        squared = diff.square() @ diff.new_tensor([1.0, 1.0, 0.25, 0.25])
    return _guarded_sqrt(squared)


def gcd_axis_terms(centre_diff, size_diff, size_a, size_b):
    """Per axis, element-wise (any layout): ``dc^2 + ds^2 / 4`` and the two boxes' ``1 / (size^2 +
    EPS)``, whose products summed over the two axes and halved are D^2 (see the module docstring).
    Each size's square is guarded by EPS (a zero-width box gives a large, finite distance); for
    boxes of a pixel or more that changes D^2 by less than one part in 10^7."""
    per_axis = torch.addcmul(centre_diff.square(), size_diff, size_diff, value=0.25)
    return per_axis, size_a.square().add_(EPS).reciprocal_(), size_b.square().add_(EPS).reciprocal_()


def gcd_distance(diff, size_a, size_b):
    """sqrt(D^2), the Gaussian Combined Distance (see the module docstring) of two boxes whose
    ``(cx, cy, w, h)`` differ by ``diff`` ``(..., 4)``, with ``(w, h)`` ``size_a`` and ``size_b``
    (each broadcastable to ``(..., 2)``); shape ``diff.shape[:-1]``."""
    per_axis, inverse_a, inverse_b = gcd_axis_terms(diff[..., :2], diff[..., 2:], size_a, size_b)
    return _guarded_sqrt((per_axis * (inverse_a + inverse_b)).sum(-1) / 2)


def nwd_similarity(diff, constant):
    """NWD = exp(-W2 / C) of boxes differing by ``diff`` (Wang et al. 2021), in (0, 1]."""
    return torch.exp(wasserstein_distance(diff) / -constant)


def gcd_similarity(diff, size_a, size_b):
    """exp(-sqrt(D^2)), the GCD similarity (Guan et al. 2025), in (0, 1]."""
    return torch.exp(-gcd_distance(diff, size_a, size_b))
