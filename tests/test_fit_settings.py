"""Settings that do not fit the data are adjusted with a notice or refused; AP reads one way."""

import pytest

from helpers import REPO
from yolox_focal.runtime.ap_report import format_ap, parse_coco_summary
from yolox_focal.runtime.cli import load_exp
from yolox_focal.runtime.errors import FixableError
from yolox_focal.runtime.fit_settings import fit_training_settings, usable_cores

EXP = str(REPO / "exps" / "demo" / "demo_focal.py")


def test_print_interval_longer_than_an_epoch_and_too_many_workers_are_adjusted():
    exp = load_exp(EXP, None, ["print_interval", "10", "data_num_workers", str(usable_cores() + 3)])
    notices = fit_training_settings(exp, batch_size=4, train_images=8)
    assert exp.print_interval == 2 and exp.data_num_workers == usable_cores()
    assert any("print_interval 10 is longer than an epoch (2 iterations of batch 4 over 8 images)" in n
               for n in notices)
    assert any(f"data_num_workers {usable_cores() + 3} is more than" in n for n in notices)


def test_workers_are_shared_between_the_processes_of_a_machine():
    cores = usable_cores()
    exp = load_exp(EXP, None, ["data_num_workers", str(cores)])
    notices = fit_training_settings(exp, batch_size=4, train_images=8, processes=2)
    assert exp.data_num_workers == max(cores // 2, 1)
    assert any(f"data_num_workers {cores} is more than 2 processes' share of this machine's {cores} cores: "
               f"using {max(cores // 2, 1)}" in n for n in notices)
    many = load_exp(EXP, None, ["data_num_workers", "4"])
    fit_training_settings(many, batch_size=4, train_images=8, processes=cores + 1)
    assert many.data_num_workers == 1  # never 0: each process keeps a worker


def test_max_epoch_not_above_no_aug_epochs_is_refused():
    exp = load_exp(EXP, None, ["max_epoch", "2", "no_aug_epochs", "5"])
    with pytest.raises(FixableError, match="max_epoch 2 is not above no_aug_epochs 5"):
        fit_training_settings(exp, batch_size=4, train_images=8)


def test_an_area_without_objects_reads_as_a_dash():
    summary = (" Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 0.250\n"
               " Average Precision  (AP) @[ IoU=0.50:0.95 | area= small | maxDets=100 ] = -1.000\n")
    figures = parse_coco_summary(summary)
    assert figures == {"ap50_95": 0.25, "ap_small": None}
    assert [format_ap(v) for v in (0.25, None, -1.0, float("nan"))] == ["0.2500", "-", "-", "-"]
