"""Real faults on real runs: Ctrl-C and SIGTERM at several moments (start-up, training, evaluation, a
checkpoint write) of tools/train.py (one process or -d 2), tools/eval.py and tools/check_data.py,
and kill -9 during checkpoint writes followed by --resume. Each stopped process must be gone within
EXIT_BOUND seconds with exit status 130 (Ctrl-C) or 143 (SIGTERM) and one line saying where it
stopped and which checkpoint holds the last good state.

The runs are real tools in their own process group, stopped as a terminal does (SIGINT to the
group: the data-loader workers get it too) or as a cluster's scheduler does (SIGTERM to the group,
or to the process alone). Moments are found by watching the run (its log, its files), not by
timing; a checkpoint write is slowed down by yolox_focal's test setting so that a signal can land
inside it."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time

import psutil
import pytest
import torch

from cli_helpers import TINY
from helpers import REPO
from run_helpers import Run
from yolox_focal.runtime.checkpoint_files import SLOW_WRITE_ENV
from yolox_focal.runtime.demo_data import make_demo_voc_data

EXP = REPO / "exps" / "demo" / "demo_voc.py"
UNBUFFERED = {"PYTHONUNBUFFERED": "1"}  # YOLOX's evaluators print their progress bar to stdout: see it at once

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="watches /proc for the signal handler")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("faults")
    make_demo_voc_data(str(root / "data"), train_images=32, val_images=16, size=128, progress=False, workers=1)
    return root


def train_args(data, out, *opts, resume=False, batch=1):
    return ["-f", EXP, "-b", batch, "--device", "cpu", "-expn", "run", *(["--resume"] if resume else []),
            "data_dir", data / "data", "output_dir", out, *TINY, "data_num_workers", "1", "mosaic_prob", "0.5", *opts]


def partial_files(folder, name="*"):
    """The temporary files of writes of ``name`` in progress (each writer's own name), or left behind."""
    return sorted(folder.glob(f".{name}.*.part"))


def epochs_in(checkpoint):
    return torch.load(checkpoint, map_location="cpu", weights_only=True)["start_epoch"]


def test_ctrl_c_during_start_up(data, tmp_path):
    run = Run(tmp_path, "train.py", *train_args(data, tmp_path / "out", "max_epoch", "1"))
    run.wait_for(run.handler_installed(), "signal handler")
    assert run.interrupt() == 130
    phase, state = run.stop_line()
    assert phase == "start-up" and state == "no checkpoint was changed"
    assert not (tmp_path / "out" / "run" / "latest_ckpt.pth").exists()


def test_ctrl_c_during_training_names_the_iteration(data, tmp_path):
    # batch 1: 32 iterations an epoch, time enough for the signal to land in this one
    run = Run(tmp_path, "train.py", *train_args(data, tmp_path / "out", "max_epoch", "3", "eval_interval", "5"))
    run.wait_for(run.in_stderr("epoch: 1/3, iter: 1/32"), "training")
    assert run.interrupt() == 130
    phase, state = run.stop_line()
    assert re.fullmatch(r"training \(epoch 1/3, iter ([1-9]|[12]\d|3[0-2])/32\)", phase)
    assert state == "no checkpoint was written yet"
    assert not (tmp_path / "out" / "run" / "latest_ckpt.pth").exists()


def test_ctrl_c_during_evaluation_then_resume(data, tmp_path):
    # batch 2: 16 iterations an epoch; after the second (and last), 8 evaluation batches for the signal to land in
    opts = ("max_epoch", "2", "eval_interval", "2")
    run = Run(tmp_path, "train.py", *train_args(data, tmp_path / "out", *opts, batch=2), env=UNBUFFERED)
    run.wait_for(run.in_stdout("evaluating"), "evaluation")
    assert run.interrupt() == 130
    phase, state = run.stop_line()
    folder = tmp_path / "out" / "run"
    latest = folder / "latest_ckpt.pth"  # written once the epoch is evaluated and recorded (YOLOX: before)
    assert phase == "the evaluation after epoch 2"
    assert state == f"the last good state is {latest} (after epoch 1): continue with --resume"
    assert epochs_in(latest) == 1
    assert [json.loads(line)["epoch"] for line in (folder / "metrics.jsonl").read_text().splitlines()] == [1]
    # resumed, it trains the last epoch again and ends with that epoch's evaluation in its record
    result = subprocess.run([sys.executable, str(REPO / "tools" / "train.py"),
                             *map(str, train_args(data, tmp_path / "out", *opts, resume=True, batch=2))],
                            cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    records = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2]
    assert records[0].get("ap50_95") is None and isinstance(records[1]["ap50_95"], float)
    assert epochs_in(latest) == 2


def test_ctrl_c_and_kill_during_checkpoint_writes_then_resume(data, tmp_path):
    out = tmp_path / "out"
    folder = out / "run"
    latest = folder / "latest_ckpt.pth"
    slow = {SLOW_WRITE_ENV: "3"}
    # Ctrl-C while epoch 1's checkpoint is being written: the write finishes first, then the run stops
    opts = ("max_epoch", "2", "eval_interval", "5")
    run = Run(tmp_path / "1", "train.py", *train_args(data, out, *opts, batch=8), env=slow)
    run.wait_for(lambda: partial_files(folder, latest.name), "a checkpoint write")
    assert run.interrupt() == 130
    phase, state = run.stop_line()
    assert phase == f"writing {latest} (finished first)"
    assert state == f"the last good state is {latest} (after epoch 1): continue with --resume"
    assert epochs_in(latest) == 1 and not partial_files(folder)
    assert not (folder / ".claim").exists()  # the stopped run let the folder go
    # kill -9 while the resumed run writes epoch 2's: the file on disk is still epoch 1's, whole
    run = Run(tmp_path / "2", "train.py", *train_args(data, out, *opts, resume=True, batch=8), env=slow)
    run.wait_for(lambda: partial_files(folder, latest.name), "the resumed run's checkpoint write")
    left = partial_files(folder)
    assert [p.name for p in left] == [f".latest_ckpt.pth.{socket.gethostname()}.{run.process.pid}.part"]
    assert run.interrupt(signal.SIGKILL) == -signal.SIGKILL
    assert epochs_in(latest) == 1 and partial_files(folder) == left and (folder / ".claim").exists()
    # and the run resumes from it to the end, taking the killed run's folder over and its partial file away
    result = subprocess.run([sys.executable, str(REPO / "tools" / "train.py"),
                             *map(str, train_args(data, out, *opts, resume=True, batch=8))],
                            cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert epochs_in(latest) == 2 and not partial_files(folder)
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert warnings[-2:] == [
        f"warning: took over {folder} from a run that is gone (host {socket.gethostname()}, pid {run.process.pid}: "
        f"process {run.process.pid} no longer runs)",
        f"warning: removed 1 partial file that a stopped run left in {folder} (written when it stopped; the "
        f"finished files are intact)"]


@pytest.mark.parametrize("sig, status, word", [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")],
                         ids=["ctrl-c", "sigterm"])
def test_ctrl_c_and_sigterm_in_eval_and_check_data(data, tmp_path, sig, status, word):
    run = Run(tmp_path, "check_data.py", "-f", EXP, "data_dir", data / "data")
    run.wait_for(run.handler_installed(), "signal handler")
    assert run.interrupt(sig) == status
    assert run.stop_line(word) == ("start-up", "no checkpoint was changed")

    checkpoint = tmp_path / "model.pth"
    model = __import__("yolox_focal.runtime.cli", fromlist=["load_exp"]).load_exp(str(EXP), None, []).get_model()
    torch.save({"model": model.state_dict()}, checkpoint)
    run = Run(tmp_path, "eval.py", "-f", EXP, "-b", "1", "--device", "cpu", "-c", checkpoint, "data_dir",
              data / "data", "output_dir", tmp_path / "out", *TINY, env=UNBUFFERED)
    run.wait_for(run.in_stdout("evaluating"), "evaluation")
    assert run.interrupt(sig) == status
    assert run.stop_line(word) == (f"the evaluation of {checkpoint}", "no checkpoint was changed")


def test_sigterm_to_the_process_group_during_training(data, tmp_path):
    # as Slurm and timeout send it: to the data-loader worker too, which ends without a traceback
    run = Run(tmp_path, "train.py", *train_args(data, tmp_path / "out", "max_epoch", "3", "eval_interval", "5"))
    run.wait_for(run.in_stderr("epoch: 1/3, iter: 1/32"), "training")
    workers = psutil.Process(run.process.pid).children()
    assert workers  # the data-loader worker (data_num_workers 1)
    assert run.interrupt(signal.SIGTERM) == 143
    phase, state = run.stop_line("terminated")
    assert re.fullmatch(r"training \(epoch 1/3, iter ([1-9]|[12]\d|3[0-2])/32\)", phase)
    assert state == "no checkpoint was written yet"
    assert "DataLoader worker" not in run.stderr.read_text()
    assert not (tmp_path / "out" / "run" / ".claim").exists()


def test_sigterm_to_the_process_alone_waits_for_the_checkpoint_write(data, tmp_path):
    folder = tmp_path / "out" / "run"
    latest = folder / "latest_ckpt.pth"
    run = Run(tmp_path, "train.py", *train_args(data, tmp_path / "out", "max_epoch", "2", "eval_interval", "5", batch=8),
              env={SLOW_WRITE_ENV: "3"})
    run.wait_for(lambda: partial_files(folder, latest.name), "a checkpoint write")
    assert run.interrupt(signal.SIGTERM, group=False) == 143
    phase, state = run.stop_line("terminated")
    assert phase == f"writing {latest} (finished first)"
    assert state == f"the last good state is {latest} (after epoch 1): continue with --resume"
    assert epochs_in(latest) == 1 and not partial_files(folder)


def _gone(process):
    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.mark.parametrize("group", [True, False], ids=["to the group", "to the launcher alone"])
def test_sigterm_stops_a_two_process_run_after_its_checkpoint_write(data, tmp_path, group):
    folder = tmp_path / "out" / "run"
    latest = folder / "latest_ckpt.pth"
    run = Run(tmp_path, "train.py", "-d", "2", *train_args(data, tmp_path / "out", "max_epoch", "2", "eval_interval",
                                                             "5", batch=4), env={SLOW_WRITE_ENV: "3"})
    run.wait_for(lambda: partial_files(folder, latest.name), "rank 0's checkpoint write")
    processes = [p for p in psutil.Process(run.process.pid).children() if "spawn_main" in " ".join(p.cmdline())]
    assert len(processes) == 2
    assert run.interrupt(signal.SIGTERM, group=group) == 143
    phase, state = run.stop_line("terminated")  # the launcher's, the only one
    assert phase == "training in 2 processes"
    assert state == f"the last good state is {latest} (after epoch 1): continue with --resume"
    assert epochs_in(latest) == 1 and not partial_files(folder)
    assert all(_gone(p) for p in processes)


LOGGING = """
    import sys
    from yolox_focal.runtime import interrupt
    interrupt.install()
    from loguru import logger
    from yolox.utils import setup_logger
    setup_logger(sys.argv[1], filename="log.txt")
    print("logging", file=sys.__stderr__, flush=True)
    while True:
        logger.info("x" * 10000)  # long writes through YOLOX's queued logger, as its exp table at start-up
"""


@pytest.mark.parametrize("delay", [0.0, 0.3, 0.7])
def test_ctrl_c_inside_yoloxs_queued_logger_never_hangs(tmp_path, delay):
    script = tmp_path / "log_loop.py"
    script.write_text(textwrap.dedent(LOGGING))
    with open(tmp_path / "err", "w") as err:
        process = subprocess.Popen([sys.executable, str(script), str(tmp_path)], stdout=subprocess.DEVNULL,
                                   stderr=err, start_new_session=True)
    run = Run.__new__(Run)
    run.process, run.stderr = process, tmp_path / "err"
    run.wait_for(run.in_stderr("logging"), "logging")
    time.sleep(delay)
    assert run.interrupt() == 130
    assert run.stop_line() == ("start-up", "no checkpoint was changed")
    log = (tmp_path / "log.txt").read_text()
    # whole lines only (none, where the stop came before the first line was out: seen on a busy machine)
    assert (log == "" or log.endswith("\n")) and all(line.endswith("x" * 10000) for line in log.splitlines())
