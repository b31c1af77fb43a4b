import json

import numpy as np
import pytest
from yolox.data import COCODataset

from yolox_focal.runtime.demo_data import CLASSES, make_demo_data


def make(path, seed=0, **kwargs):
    make_demo_data(str(path), seed=seed, progress=False, workers=1,
                   **{"train_images": 12, "val_images": 4, **kwargs})
    return path


def test_same_seed_same_bytes(tmp_path):
    a, b, c = make(tmp_path / "a"), make(tmp_path / "b"), make(tmp_path / "c", seed=1)
    for split in ("train2017", "val2017"):
        name = f"annotations/instances_{split}.json"
        assert (a / name).read_bytes() == (b / name).read_bytes()
        assert (a / name).read_bytes() != (c / name).read_bytes()
    image = "train2017/000000000007.jpg"
    assert (a / image).read_bytes() == (b / image).read_bytes()


def test_read_by_yolox_coco_dataset(tmp_path):
    root = make(tmp_path / "d", size=256)
    dataset = COCODataset(data_dir=str(root), json_file="instances_train2017.json", name="train2017",
                          img_size=(256, 256))
    assert len(dataset) == 12
    image, boxes, info, _ = dataset.pull_item(0)
    assert image.shape[:2] == (256, 256) and info == (256, 256)
    assert len(boxes) >= 1 and boxes.shape[1] == 5
    assert ((boxes[:, 4] >= 0) & (boxes[:, 4] < len(CLASSES))).all()
    assert (boxes[:, :4] >= 0).all() and (boxes[:, [0, 2]] <= 256).all()


def test_objects_are_few_and_mostly_small(tmp_path):
    root = make(tmp_path / "e", train_images=60)
    coco = json.loads((root / "annotations/instances_train2017.json").read_text())
    sides = np.sqrt([a["area"] for a in coco["annotations"]])
    per_image = len(coco["annotations"]) / len(coco["images"])
    assert 1 <= per_image <= 6
    assert np.median(sides) < 40 and sides.min() >= 4 and sides.max() <= 130
    assert {a["category_id"] for a in coco["annotations"]} == set(range(1, len(CLASSES) + 1))


@pytest.mark.parametrize("kwargs,words", [
    (dict(size=100), "size must be a multiple of 32"),
    (dict(train_images=0), "train_images must be a whole number >= 1, got 0"),
])
def test_bad_arguments(tmp_path, kwargs, words):
    with pytest.raises(ValueError, match=words):
        make(tmp_path / "f", **kwargs)
    assert not (tmp_path / "f").exists()
