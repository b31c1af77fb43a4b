"""VOC-format data end to end on the CPU (tools/train.py, tools/eval.py with exps/demo/demo_voc.py),
and the scoring with YOLOX's voc_eval, also without numpy's bool alias.

The data are written as other annotation tools write VOC: some images are .png, the objects have
no <pose> and <truncated>, some no <difficult>; training uses yolox_nano's mosaic_prob 0.5 with a
data-loader worker (mosaic and plain samples in one batch)."""

import json
import re

import cv2
import numpy as np
import pytest

from cli_helpers import TINY, check_per_class, run_tool
from helpers import REPO
from yolox_focal.runtime.demo_data import CLASSES, VOC_SETS, make_demo_voc_data
from yolox_focal.runtime.voc import NamedVOCDetection

EXP = REPO / "exps" / "demo" / "demo_voc.py"


@pytest.fixture(scope="module")
def voc(tmp_path_factory):
    root = tmp_path_factory.mktemp("voc")
    make_demo_voc_data(str(root / "data"), train_images=8, val_images=4, size=128, progress=False, workers=1)
    as_other_tools_write_it(root / "data" / "VOC2007")
    return root


def as_other_tools_write_it(folder):
    """Every other image as .png; no <pose> or <truncated>; <difficult> only in every other file."""
    for index, jpg in enumerate(sorted((folder / "JPEGImages").glob("*.jpg"))):
        if index % 2:
            cv2.imwrite(str(jpg.with_suffix(".png")), cv2.imread(str(jpg)))
            jpg.unlink()
    for index, xml in enumerate(sorted((folder / "Annotations").glob("*.xml"))):
        text = re.sub(r"<pose>.*?</pose>|<truncated>.*?</truncated>", "", xml.read_text())
        xml.write_text(re.sub(r"<difficult>.*?</difficult>", "", text) if index % 2 else text)


def test_train_and_evaluate_voc_data_on_the_cpu(voc):
    opts = ["data_dir", voc / "data", "output_dir", voc / "out", *TINY]
    trained = run_tool("train.py", "-f", EXP, "-b", "4", "--device", "cpu", "-expn", "run", "max_epoch", "1", *opts,
                       "mosaic_prob", "0.5", "data_num_workers", "1")
    assert "Training of experiment is done" in trained.stderr
    missing = [line for line in trained.stderr.splitlines() if "without <pose>, <truncated> or <difficult>" in line]
    assert len(missing) == 1 and re.match(r"warning: .*/Annotations: \d+ objects without", missing[0])
    folder = voc / "out" / "run"
    (record,) = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    assert 0 <= record["ap50_95"] <= record["ap50"] <= 1 and record["ap_small"] is None  # VOC has no areas
    check_per_class(record, CLASSES)
    result = run_tool("eval.py", "-f", EXP, "-b", "4", "--device", "cpu", "-expn", "run", "--conf", "0.0",
                      "-c", folder / "latest_ckpt.pth", *opts)
    val_log = (folder / "val_log.txt").read_text()
    assert "per class AP:" in val_log
    for name in CLASSES:  # the exp's class names reach the per-class table
        assert f"\n{name} " in val_log
    row = next(line for line in result.stdout.splitlines() if "latest_ckpt.pth" in line and "log:" not in line)
    ap50_95, ap50 = map(float, row.split()[1:3])
    assert 0 <= ap50_95 <= ap50 <= 1
    assert row.split()[3] == "-"  # AP_small: nothing to score in VOC's metric


@pytest.mark.parametrize("without_numpy_bool", [False, True])
def test_perfect_detections_score_one(voc, monkeypatch, without_numpy_bool):
    if without_numpy_bool:  # as on NumPy 1.24-1.26, where YOLOX 0.3.0's np.bool fails
        monkeypatch.delattr(np, "bool")
    dataset = NamedVOCDetection(str(voc / "data"), [VOC_SETS["val"]], CLASSES, (128, 128))
    all_boxes = [[np.empty((0, 5)) for _ in dataset.ids] for _ in CLASSES]
    for image, (boxes, _, _) in enumerate(dataset.annotations):  # ground truth as detections, score 1
        for cls in range(len(CLASSES)):
            mine = boxes[boxes[:, 4] == cls]
            all_boxes[cls][image] = np.concatenate([mine[:, :4], np.ones((len(mine), 1))], axis=1)
    ap50_95, ap50 = dataset.evaluate_detections(all_boxes)
    assert ap50_95 == pytest.approx(1.0) and ap50 == pytest.approx(1.0)
    scored = {name: v for name, v in dataset.last_per_class.items() if v is not None}
    assert scored and all(v == pytest.approx((1.0, 1.0)) for v in scored.values())
    assert not hasattr(np, "bool") if without_numpy_bool else hasattr(np, "bool")  # the alias is removed after
