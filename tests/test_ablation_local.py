"""tools/ablate.py on this machine for real, on a tiny demo data set: --jobs 2 runs two runs at once
(their train logs' times overlap), each on its share of the cores; a run that dies is retried once
from its last checkpoint, one that fails twice is reported as failed while the other goes on; a
Ctrl-C stops every run with one line, and the same command resumes them."""

import json
import os
import re
import signal
from datetime import datetime

import pytest

from cli_helpers import TINY, check_per_class
from run_helpers import Run
from yolox_focal.ablation import cli, grid, runs
from yolox_focal.runtime.demo_data import CLASSES

EXP = runs.REPO / "exps" / "demo" / "demo_focal.py"
STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)", re.M)


@pytest.fixture(scope="module")
def data(tiny_demo_data):
    return tiny_demo_data


def grid_args(out, data, *more, epochs=1, variants=("yolox", "focal")):
    return ["-f", EXP, "--out", out, "--seeds", "0", "-b", "4", "--device", "cpu", "--variants", *variants, *more,
            "--opts", "data_dir", data, "max_epoch", str(epochs), *TINY]


def log_span(directory):
    """The first and last time stamps of a run's train_log.txt."""
    stamps = [datetime.strptime(s, "%Y-%m-%d %H:%M:%S") for s in STAMP.findall((directory / "train_log.txt").read_text())]
    return min(stamps), max(stamps)


def test_two_jobs_train_two_runs_at_once_each_recorded_as_with_one(tmp_path, data):
    out = tmp_path / "grid"
    run = Run(tmp_path, "ablate.py", *grid_args(out, data, "--jobs", "2", epochs=2))
    assert run.process.wait(timeout=600) == 0, run.stderr.read_text()[-3000:]
    (yolox_start, yolox_end), (focal_start, focal_end) = (log_span(grid.run_dir(out, v, 0)) for v in ("yolox", "focal"))
    assert max(yolox_start, focal_start) <= min(yolox_end, focal_end)  # both logged within one span (1 s stamps)
    yolox, focal = (json.loads((grid.run_dir(out, v, 0) / "done").read_text()) for v in ("yolox", "focal"))
    assert max(yolox["started"], focal["started"]) < min(yolox["ended"], focal["ended"])  # both alive at once
    cores = len(os.sched_getaffinity(0))
    one_job = cli.parse_args([str(a) for a in grid_args(out, data, epochs=2)])
    for variant in ("yolox", "focal"):
        directory = grid.run_dir(out, variant, 0)
        settings = json.loads((directory / "settings.json").read_text())
        assert settings == runs.settings_of(out, variant, 0, one_job)  # what --jobs 1 records
        assert settings["exp"]["max_epoch"] == 2 and settings["batch_size"] == 4 and settings["fp16"] is False
        assert settings["exp"]["obj_loss"] == ("bce" if variant == "yolox" else "focal")
        done = json.loads((directory / "done").read_text())
        share = cores // 2
        assert done["train_seconds"] == pytest.approx(done["ended"] - done["started"], abs=1.0) and done["train_seconds"] > 0
        assert done["trained_on"] == runs.trained_on("cpu", False, share if share else None)
        records = [json.loads(line) for line in (directory / "metrics.jsonl").read_text().splitlines()]
        assert [r["epoch"] for r in records] == [1, 2] and records[-1]["total_loss"] > 0
        check_per_class(records[-1], CLASSES)
        assert "Training start on the CPU" in (directory / "train_output.txt").read_text()
    stdout = run.stdout.read_text()
    assert stdout.count(": training (") == 2 and stdout.count(": finished (") == 2
    report = (out / "ablation.md").read_text()
    assert "| yolox | YOLOX's losses | 0 |" in report and "| focal | obj_loss=focal | 0 |" in report
    assert "--jobs 2" in report


def children_of(pid):
    found = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as f:
            found += [int(p) for p in f.read().split()]
    return found


def test_a_run_that_dies_is_retried_from_its_checkpoint_and_one_failing_twice_is_reported(tmp_path, data):
    out = tmp_path / "grid"
    args = grid_args(out, data, "--jobs", "2", "--variant", "nodata", "val_ann", "no_such.json",
                     epochs=2, variants=("yolox", "nodata"))
    run = Run(tmp_path, "ablate.py", *args)
    checkpoint = grid.run_dir(out, "yolox", 0) / "latest_ckpt.pth"
    metrics = grid.run_dir(out, "yolox", 0) / "metrics.jsonl"
    run.wait_for(checkpoint.exists, "the first epoch's checkpoint (written after its record)")
    assert json.loads(metrics.read_text().splitlines()[0])["epoch"] == 1  # its record is there already
    output = grid.run_dir(out, "yolox", 0) / "train_output.txt"
    (child,) = [p for p in children_of(run.process.pid) if str(grid.run_dir(out, "yolox", 0).name)
                in open(f"/proc/{p}/cmdline").read()]
    os.kill(child, signal.SIGKILL)  # as the kernel's OOM killer would
    assert run.process.wait(timeout=600) == 1, run.stderr.read_text()[-3000:]
    stdout = run.stdout.read_text()
    assert f"yolox-seed0: failed (exit status -9); retrying once from {checkpoint}" in stdout
    assert "nodata-seed0: failed again (exit status 2); reported as failed, the other runs go on" in stdout
    assert run.stderr.read_text().strip().splitlines()[-1] == (
        "error: 1 run failed twice: nodata-seed0; their output says why; run the same command again to retry them")
    directory = grid.run_dir(out, "yolox", 0)
    assert (directory / "done").exists()
    assert [json.loads(line)["epoch"] for line in (directory / "metrics.jsonl").read_text().splitlines()] == [1, 2]
    assert "resume training" in (directory / "train_log.txt").read_text()
    assert "Training start on the CPU" in output.read_text()
    failed = json.loads((grid.run_dir(out, "nodata", 0) / "failed").read_text())
    assert failed["exit_statuses"] == [2, 2]
    report = (out / "ablation.md").read_text()
    assert "Failed (twice, left out of the tables): nodata-seed0, exit statuses 2, 2, output in " in report
    assert "| yolox | YOLOX's losses | 0 |" in report and "| nodata |" not in report


def test_ctrl_c_stops_every_run_with_one_line_and_the_same_command_resumes(tmp_path, data):
    out = tmp_path / "grid"
    args = grid_args(out, data, "--jobs", "2", epochs=2)
    run = Run(tmp_path, "ablate.py", *args)
    logs = [grid.run_dir(out, v, 0) / "train_log.txt" for v in ("yolox", "focal")]
    run.wait_for(lambda: all(p.exists() and "epoch: 1/2" in p.read_text() for p in logs), "both runs training")
    assert run.interrupt(signal.SIGINT) == 130
    lines = run.stderr.read_text().strip().splitlines()
    assert sum(line.startswith(("interrupted", "terminated")) for line in lines) == 1
    assert "Traceback" not in run.stderr.read_text()
    assert re.fullmatch(r"interrupted: stopped the ablation's runs: (yolox|focal)-seed0 \((after epoch \d|no checkpoint "
                        r"yet)\), (yolox|focal)-seed0 \((after epoch \d|no checkpoint yet)\); 0 finished runs kept; "
                        r"run the same command again to resume", lines[-1]), lines[-1]
    for variant in ("yolox", "focal"):
        assert not (grid.run_dir(out, variant, 0) / ".claim").exists()  # free for the next command
        assert not (grid.run_dir(out, variant, 0) / "done").exists()
    again = Run(tmp_path / "again", "ablate.py", *args)
    assert again.process.wait(timeout=600) == 0, again.stderr.read_text()[-3000:]
    for variant in ("yolox", "focal"):
        directory = grid.run_dir(out, variant, 0)
        assert (directory / "done").exists()
        epochs = [json.loads(line)["epoch"] for line in (directory / "metrics.jsonl").read_text().splitlines()]
        # each epoch once, in order, whenever the stop came: a checkpoint is written after its epoch's record
        assert epochs == [1, 2], epochs


def test_jobs_and_gpus_are_checked_before_any_work(tmp_path, data):
    for more, line in [(["--jobs", "0"], "error: --jobs 0: give 1 or more runs at once"),
                       (["--gpus-per-run", "2"], "error: --gpus-per-run 2 is for GPUs, and this grid trains on the "
                                                 "CPU (--device cpu, or no CUDA device): leave it out")]:
        run = Run(tmp_path, "ablate.py", *grid_args(tmp_path / "grid", data, *more))
        assert run.process.wait(timeout=300) == 2
        assert run.stderr.read_text().strip().splitlines() == [line]
        assert not (tmp_path / "grid").exists()
