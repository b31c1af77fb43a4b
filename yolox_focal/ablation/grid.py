"""The grid: variants x seeds. A variant is a named set of loss settings on top of YOLOX's own
losses (``yolox_settings()``), so each differs from the baseline ``yolox`` in exactly the keys it
names: the built-in ones (``VARIANTS``, one line each) or the user's (``--variant NAME KEY VALUE ...``)."""

from pathlib import Path

from ..runtime.errors import UsageError

__all__ = ["BASELINE", "VARIANTS", "DEFAULT_VARIANTS", "METRICS", "DEFAULT_MIN_EFFECT", "parse_variants", "variant_opts", "describe",
           "run_dir", "grid_runs"]

BASELINE = "yolox"

# name -> the loss settings that differ from YOLOX's; the baseline changes nothing. Adding a
# variant is adding a line here.
VARIANTS = {
    BASELINE: {},
    "focal": {"obj_loss": "focal"},
    "focal-g2": {"obj_loss": "focal", "focal_gamma": 2.0},
    "focal-noalpha": {"obj_loss": "focal", "focal_alpha": None},
    "focal-w4": {"obj_loss": "focal", "obj_loss_weight": 4.0},
    "obj-qfocal": {"obj_loss": "qfocal"},
    "obj-varifocal": {"obj_loss": "varifocal"},
    "bce-blur": {"obj_loss": "bce_blur"},
    "cls-focal": {"cls_loss": "focal"},
    "cls-qfocal": {"cls_loss": "qfocal"},
    "cls-varifocal": {"cls_loss": "varifocal"},
    "smooth-0.1": {"cls_label_smoothing": 0.1},
    "giou": {"box_loss": "giou"},
    "diou": {"box_loss": "diou"},
    "ciou": {"box_loss": "ciou"},
    "eiou": {"box_loss": "eiou"},
    "siou": {"box_loss": "siou"},
    "alpha-iou": {"box_loss": "alpha_iou"},
    "wiou": {"box_loss": "wiou"},
    "wiou-v3": {"box_loss": "wiou_v3"},
    "mpdiou": {"box_loss": "mpdiou"},
    "shape-iou": {"box_loss": "shape_iou"},
    "nwd": {"box_loss": "nwd"},
    "cls-slide": {"cls_loss": "slide"},
    "cls-slide-ema": {"cls_loss": "slide_ema"},
    "obj-poly1": {"obj_loss": "poly1"},
    "obj-poly1-focal": {"obj_loss": "poly1_focal"},
    "cls-poly1": {"cls_loss": "poly1"},
    "cls-poly1-focal": {"cls_loss": "poly1_focal"},
    "piou": {"box_loss": "piou"},
    "piou-v2": {"box_loss": "piou_v2"},
    "gcd": {"box_loss": "gcd"},
    "uiou": {"box_loss": "uiou"},
    "wise-ciou": {"box_loss": "ciou", "box_wise_focusing": "v3"},
    "wise-v2-ciou": {"box_loss": "ciou", "box_wise_focusing": "v2"},
    "focal-eiou": {"box_loss": "eiou", "box_focal_gamma": 0.5},
    "ciou-nwd-mix": {"box_loss": "ciou", "box_gaussian_mix": "nwd"},
    "ciou-gcd-mix": {"box_loss": "ciou", "box_gaussian_mix": "gcd"},
    "obj-mal": {"obj_loss": "mal"},
    "cls-mal": {"cls_loss": "mal"},
    "obj-atfl": {"obj_loss": "atfl"},
    "cls-atfl": {"cls_loss": "atfl"},
    "tal": {"assigner": "tal"},
    "dsl": {"assigner": "dsl"},
    "simota-nwd": {"assigner_similarity": "nwd"},
    "simota-gcd": {"assigner_similarity": "gcd"},
    "dsl-gcd": {"assigner": "dsl", "assigner_similarity": "gcd"},
}
# The grid the documentation reports: the baseline and one change of each kind.
DEFAULT_VARIANTS = [BASELINE, "focal", "focal-w4", "bce-blur", "cls-varifocal", "smooth-0.1", "ciou"]
METRICS = ("ap50_95", "ap50", "ap_small")
DEFAULT_MIN_EFFECT = 0.01  # AP: the difference the seeds line sizes the grid for


def parse_variants(specs):
    """--variant NAME KEY VALUE ... -> the built-in variants and these, {name: {key: value}}; values
    stay strings (the exp parses them)."""
    table = dict(VARIANTS)
    for spec in specs:
        if len(spec) < 3 or len(spec) % 2 == 0:
            raise UsageError(f"--variant takes a name, then key value pairs; got {' '.join(spec)}")
        name, pairs = spec[0], spec[1:]
        if name in VARIANTS:
            raise UsageError(f"--variant {name}: that is a built-in variant's name; choose another")
        table[name] = dict(zip(pairs[0::2], pairs[1::2]))
    return table


def variant_opts(variants, name):
    """The exp options of a variant: YOLOX's loss settings, then the variant's own keys."""
    from .. import yolox_settings

    settings = dict(yolox_settings(), **variants[name])
    return [str(v) for item in settings.items() for v in item]


def describe(settings):
    return ", ".join(f"{k}={v}" for k, v in settings.items()) or "YOLOX's losses"


def run_dir(out, variant, seed):
    return Path(out) / f"{variant}-seed{seed}"


def grid_runs(variants, seeds):
    """The grid's runs as (seed, variant), seed-major: an early stop leaves whole seeds to compare."""
    return [(seed, variant) for seed in seeds for variant in variants]
