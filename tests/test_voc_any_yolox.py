"""VOC-format data through the data loader every YOLOX default exp builds (yolox-nano's mosaic_prob
0.5, tiny, s, m, l, x; mosaic on and off; mixup on and off), with a data-loader worker, on whichever
YOLOX is installed (Megvii's PyPI release or GitHub main, pixeltable-yolox). The loader is the one
the CPU trainer and YOLOX's own trainer (the GPU route) both get from the exp."""

import pytest

from yolox_focal import flavour
from yolox_focal.runtime.demo_data import CLASSES, VOC_SETS, make_demo_voc_data
from yolox_focal.runtime.voc import VOCExpMixin

pytestmark = pytest.mark.any_yolox

DEFAULT_EXPS = ["nano", "tiny", "s", "m", "l", "x"]
BATCHES = 3  # of 4 samples: with mosaic_prob 0.5, mosaic and plain samples share a batch


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("voc_any")
    make_demo_voc_data(str(root / "data"), train_images=8, val_images=2, size=128, progress=False, workers=1)
    return root / "data"


def voc_exp(name, data):
    """YOLOX's default exp ``name`` on VOC data, its augmentation settings untouched."""
    base = flavour.named_exp(f"yolox_{name}")
    exp = type(f"VOC{type(base).__name__}", (VOCExpMixin, type(base)), {})()
    exp.data_dir, exp.train_sets, exp.val_sets = str(data), [VOC_SETS["train"]], [VOC_SETS["val"]]
    exp.class_names, exp.num_classes = CLASSES, len(CLASSES)
    exp.input_size = exp.test_size = (128, 128)
    exp.data_num_workers = 1
    return exp


def draw(exp, no_aug=False):
    batches = iter(exp.get_data_loader(batch_size=4, is_distributed=False, no_aug=no_aug))
    for _ in range(BATCHES):
        images, targets, _, ids = next(batches)
        assert images.shape == (4, 3, 128, 128) and ids.shape == (4,)


@pytest.mark.parametrize("name", DEFAULT_EXPS)
def test_every_default_exps_augmentation_loads_voc_batches(data, name):
    exp = voc_exp(name, data)
    assert exp.mosaic_prob == (0.5 if name == "nano" else 1.0)  # YOLOX's own settings, as the exps ship
    draw(exp)


@pytest.mark.parametrize("mosaic_prob, mixup", [(0.5, True), (0.5, False), (1.0, True), (0.0, False)])
def test_mosaic_and_mixup_on_and_off(data, mosaic_prob, mixup):
    exp = voc_exp("nano", data)
    exp.mosaic_prob, exp.enable_mixup, exp.mixup_prob = mosaic_prob, mixup, 1.0
    draw(exp)
    draw(voc_exp("tiny", data), no_aug=True)  # the last epochs: no mosaic at all
