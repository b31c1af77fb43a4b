"""End to end on the CPU: tools/train.py, --resume and tools/eval.py on a tiny demo data set."""

import json
import re

import numpy as np
import pytest
import torch

from cli_helpers import TINY, check_per_class, run_tool
from helpers import REPO
from yolox_focal.runtime.demo_data import CLASSES, make_demo_data

EXP = REPO / "exps" / "demo" / "demo_focal.py"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    make_demo_data(str(root / "data"), train_images=8, val_images=4, size=128, progress=False, workers=1)
    opts = ["data_dir", root / "data", "output_dir", root / "out", *TINY]
    first = run_tool("train.py", "-f", EXP, "-b", "4", "-expn", "run", "max_epoch", "1", *opts)
    return root, opts, first


def read_metrics(folder):
    return [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]


def test_train_writes_checkpoints_logs_and_evaluates(trained):
    root, _, first = trained
    folder = root / "out" / "run"
    for name in ("latest_ckpt.pth", "train_log.txt", "metrics.jsonl"):  # best_ckpt only once AP > 0
        assert (folder / name).is_file(), name
    assert list((folder / "tensorboard").iterdir())
    log = (folder / "train_log.txt").read_text()
    assert len(re.findall(r"epoch: 1/1, iter: \d/2", log)) == 2  # 8 images / batch 4
    assert "Training start on the CPU" in log
    checkpoint = torch.load(folder / "latest_ckpt.pth", map_location="cpu", weights_only=False)
    assert checkpoint["start_epoch"] == 1 and {"model", "optimizer", "best_ap"} <= set(checkpoint)
    (record,) = read_metrics(folder)
    assert record["epoch"] == 1 and record["obj_loss"] > 0 and "ap50_95" in record
    check_per_class(record, CLASSES)
    assert "best AP50:95" in first.stdout and str(folder / "latest_ckpt.pth") in first.stdout



def test_resume_continues_from_checkpoint(trained):
    root, opts, _ = trained
    folder = root / "out" / "run"
    # As YOLOX's trainer saves it after an evaluation: best_ap a numpy float64 from pycocotools,
    # which torch.load's default weights-only mode refuses unless the tools allow it.
    checkpoint = torch.load(folder / "latest_ckpt.pth", map_location="cpu", weights_only=False)
    checkpoint["best_ap"] = np.float64(0.5)
    torch.save(checkpoint, folder / "latest_ckpt.pth")
    with open(folder / "metrics.jsonl", "a") as f:  # an epoch past the checkpoint: trained again
        f.write(json.dumps({"epoch": 2, "stale": True}) + "\n")
    run_tool("train.py", "-f", EXP, "-b", "4", "-expn", "run", "--resume", "max_epoch", "2", *opts)
    log = (folder / "train_log.txt").read_text()
    assert "resume training" in log and "epoch: 2/2, iter: 2/2" in log
    assert "epoch: 1/2" not in log  # epoch 1 was not trained again
    assert [r["epoch"] for r in read_metrics(folder)] == [1, 2]
    assert not any("stale" in r for r in read_metrics(folder))
    checkpoint = torch.load(folder / "latest_ckpt.pth", map_location="cpu", weights_only=True)
    assert checkpoint["start_epoch"] == 2
    assert type(checkpoint["best_ap"]) is float and checkpoint["best_ap"] >= 0.5  # loadable by any tool


def test_eval_reports_pycocotools_ap(trained):
    root, opts, _ = trained
    folder = root / "out" / "run"
    result = run_tool("eval.py", "-f", EXP, "-b", "4", "-expn", "run", "-c", folder / "latest_ckpt.pth",
                      "--conf", "0.0", *opts)
    row = next(line for line in result.stdout.splitlines() if "latest_ckpt.pth" in line and "log:" not in line)
    ap50_95, ap50, ap_small = map(float, row.split()[1:4])
    assert 0 <= ap50_95 <= ap50 <= 1 and 0 <= ap_small <= 1
    val_log = (folder / "val_log.txt").read_text()
    assert "Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ]" in val_log


def test_seeded_run_repeats_and_a_new_run_restarts_its_metrics(trained):
    root, opts, _ = trained
    folder = root / "out" / "seeded"
    # Two loader workers: YOLOX reseeds them at random; exp.seed must reach them too.
    args = ("train.py", "-f", EXP, "-b", "4", "-expn", "seeded", "max_epoch", "1", *opts,
            "seed", "3", "data_num_workers", "2", "eval_interval", "10")
    run_tool(*args)
    first = read_metrics(folder)
    run_tool(*args)  # the same experiment name again, not --resume: a new run
    second = read_metrics(folder)
    assert len(first) == len(second) == 1
    assert first[0]["total_loss"] == second[0]["total_loss"] > 0


def test_every_branch_chosen_on_the_command_line_trains(trained, tmp_path):
    root, _, _ = trained
    opts = ["data_dir", root / "data", "output_dir", tmp_path, *TINY]
    kit = ["obj_loss", "varifocal", "focal_alpha", "none", "cls_loss", "qfocal", "cls_label_smoothing", "0.1",
           "box_loss", "siou", "box_loss_weight", "2"]
    result = run_tool("train.py", "-f", EXP, "-b", "4", "-expn", "kit", "max_epoch", "1", *kit, *opts)
    (record,) = read_metrics(tmp_path / "kit")
    losses = [record[k] for k in ("obj_loss", "iou_loss", "cls_loss")]
    assert all(np.isfinite(v) and v > 0 for v in losses), record
    assert "best AP50:95" in result.stdout


@pytest.mark.parametrize("assigner", [["assigner", "tal", "assigner_tal_topk", "13"],
                                      ["assigner", "dsl", "assigner_similarity", "gcd"]], ids=["tal", "dsl-gcd"])
def test_another_label_assignment_chosen_on_the_command_line_trains(trained, tmp_path, assigner):
    root, _, _ = trained
    opts = ["data_dir", root / "data", "output_dir", tmp_path, *TINY]
    result = run_tool("train.py", "-f", EXP, "-b", "4", "-expn", "assign", "max_epoch", "1", *assigner, *opts)
    (record,) = read_metrics(tmp_path / "assign")
    losses = [record[k] for k in ("obj_loss", "iou_loss", "cls_loss")]
    assert all(np.isfinite(v) and v > 0 for v in losses), record
    assert "best AP50:95" in result.stdout


def test_yolox_demo_labels_boxes_with_the_exps_class_names(trained, tmp_path):
    import os
    import subprocess
    import sys

    from yolox_focal.runtime.demo_data import CLASSES

    root, _, _ = trained
    image = sorted((root / "data" / "val2017").iterdir())[0]
    checkpoint = root / "out" / "run" / "latest_ckpt.pth"
    result = subprocess.run(
        [sys.executable, str(REPO / "tools" / "demo.py"), "image", "-f", str(EXP), "-c", str(checkpoint),
         "--path", str(image), "--conf", "0.0", "--tsize", "128", "--save_result", "-expn", "demo_run"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
        env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"labels: {', '.join(CLASSES)}" in result.stdout
    saved = list((tmp_path / "YOLOX_outputs" / "demo_run" / "vis_res").rglob(image.name))
    assert len(saved) == 1 and saved[0].stat().st_size > 0
