"""Several processes on the CPU: tools/train.py and tools/eval.py with -d 2 (YOLOX's own launch over
gloo) and with --num_machines 2 started twice, on a tiny demo data set at 128 px.

The probe exp below is the demo exp with two of YOLOX's own extension points overridden to save,
per process, the indices its sampler yields and the weights it evaluates: the processes' shards
and weights are compared from those files.
"""

import json
import os
import re
import socket
import subprocess
import sys
import textwrap
import time
from argparse import Namespace

import psutil
import pytest
import torch

from cli_helpers import error_line
from helpers import REPO
from yolox_focal.adapter import flavour
from yolox_focal.runtime.demo_data import make_demo_data
from yolox_focal.runtime.distributed import check_launch
from yolox_focal.runtime.errors import FixableError

pytestmark = pytest.mark.any_yolox

PIXELTABLE = flavour.flavour() == "pixeltable"
ONE_YOLOX = pytest.mark.skipif(PIXELTABLE, reason="the launcher and its fault handling are the same code under "
                                                  "either YOLOX: tested with Megvii's, keeping this run short")
TINY = {"input_size": "(128, 128)", "test_size": "(128, 128)", "random_size": "(4, 4)", "data_num_workers": "0",
        "print_interval": "1", "eval_interval": "1", "no_aug_epochs": "0", "warmup_epochs": "1", "max_epoch": "1"}
PROBE = """
    import itertools
    import os
    import sys

    import torch
    import torch.distributed as dist

    from yolox_focal.adapter import flavour

    if flavour.flavour() == "pixeltable":
        from yolox_focal.pixeltable_configs import DemoFocal as Demo
    else:
        sys.path.insert(0, {demo_dir!r})
        from demo_focal import Exp as Demo


    def save(what, value):
        rank = dist.get_rank() if dist.is_initialized() else 0
        torch.save(value, os.path.join(os.environ["PROBES"], f"{{what}}{{rank}}.pt"))


    class Exp(Demo):
        def get_model(self, *args, **kwargs):
            new = getattr(self, "model", None) is None
            model = super().get_model(*args, **kwargs)
            if new:  # the weights training starts from
                save("initial", {{k: v.clone() for k, v in model.state_dict().items()}})
            return model

        def get_data_loader(self, batch_size, is_distributed, *args, **kwargs):
            loader = super().get_data_loader(batch_size, is_distributed, *args, **kwargs)
            sampler = loader.batch_sampler.sampler  # YOLOX's InfiniteSampler: one epoch is len() indices
            save("shard", [int(i) for i in itertools.islice(iter(sampler), len(sampler))])
            return loader

        def get_evaluator(self, *args, **kwargs):
            evaluator = super().get_evaluator(*args, **kwargs)

            def evaluate_prediction(data_list, statistics):  # the detections rank 0 scores, then scored
                save("detections", data_list)
                return type(evaluator).evaluate_prediction(evaluator, data_list, statistics)

            evaluator.evaluate_prediction = evaluate_prediction
            return evaluator

        def eval(self, model, evaluator, is_distributed, *args, **kwargs):
            save("weights", model.state_dict())
            save("loss_state", self.model.head.loss_kit.loss_state())  # the trained model's kit
            save("settings", dict(self.model.head.loss_kit.settings))
            return super().eval(model, evaluator, is_distributed, *args, **kwargs)
"""


def exp_args(root, name, **opts):
    """The probe exp, its run name and options, in the installed YOLOX's style."""
    opts = dict(TINY, data_dir=str(root / "data"), output_dir=str(root / "out"), **opts)
    if PIXELTABLE:
        return (["-c", "probe_exp:Exp", "-n", name]
                + [f"-D{k}={v.strip('()').replace(' ', '')}" for k, v in opts.items()])
    return ["-f", str(root / "probe_exp.py"), "-expn", name] + [x for kv in opts.items() for x in kv]


def start(root, tool, *args, env=None):
    # The run's flags come before the exp's: Megvii's trailing options take the rest of the line.
    return subprocess.Popen([sys.executable, str(REPO / "tools" / tool), "--device", "cpu", *map(str, args)],
                            cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), str(root)]),
                                     PROBES=str(root / "probes"), **(env or {})))


def finish(process, timeout=300):
    """Wait for a started tool (a hang fails the test instead of the suite); its CompletedProcess."""
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        stdout, stderr = process.communicate()
        raise AssertionError(f"still running after {timeout} s:\n{stderr[-3000:]}") from None
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def run(root, tool, *args, env=None):
    return finish(start(root, tool, *args, env=env))


def succeeded(result):
    assert result.returncode == 0, result.stderr[-4000:]
    return result


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def ckpt_flag():
    return "--ckpt" if PIXELTABLE else "-c"


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("distributed")
    make_demo_data(str(root / "data"), train_images=8, val_images=5, size=128, progress=False, workers=1)
    (root / "probe_exp.py").write_text(textwrap.dedent(PROBE.format(demo_dir=str(REPO / "exps" / "demo"))))
    (root / "probes").mkdir()
    return root


# Two losses that keep running means (Wise-IoU v3 on boxes, the slide loss's mean IoU on classes), and
# the task-aligned label assignment in place of YOLOX's SimOTA.
STATEFUL = {"box_loss": "wiou_v3", "cls_loss": "slide_ema", "box_wiou_v3_momentum": "0.5", "assigner": "tal"}


@pytest.fixture(scope="module")
def trained(root):
    """Two processes, batch 4 (2 each) over 8 images: two iterations, then an evaluation; with two
    losses that keep running means (Wise-IoU v3 on boxes, the slide loss's mean IoU on classes) and
    the task-aligned assignment."""
    result = succeeded(run(root, "train.py", "-d", "2", "-b", "4", *exp_args(root, "two", **STATEFUL)))
    return root / "out" / "two", result


def read_metrics(folder):
    return [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]


def test_two_processes_train_and_only_rank_0_writes(trained):
    folder, result = trained
    log = (folder / "train_log.txt").read_text()
    assert "Training start on the CPU (1 threads, 2 processes)" in log
    assert log.count("Model Summary") == 1  # rank 1 logs nothing
    assert re.findall(r"epoch: \d/\d, iter: \d/\d", log) == ["epoch: 1/1, iter: 1/2", "epoch: 1/1, iter: 2/2"]
    (record,) = read_metrics(folder)
    assert record["epoch"] == 1 and record["total_loss"] > 0 and "ap50_95" in record
    checkpoint = torch.load(folder / "last_epoch_ckpt.pth", map_location="cpu", weights_only=True)
    assert checkpoint["start_epoch"] == 1
    assert result.stdout.count("best AP50:95") == 1
    assert "Traceback" not in result.stderr and "Warning" not in result.stderr


def test_the_shards_partition_the_data(trained, root):
    first, second = (torch.load(root / "probes" / f"shard{rank}.pt") for rank in (0, 1))
    assert len(first) == len(second) == 4
    assert sorted(first + second) == list(range(8))


def test_every_process_holds_the_same_weights_and_rank_0_saves_them(trained, root):
    settings = [torch.load(root / "probes" / f"settings{rank}.pt") for rank in (0, 1)]
    assert settings[0] == settings[1] and settings[0]["assigner"] == "tal"  # each process assigned with tal
    weights = [torch.load(root / "probes" / f"weights{rank}.pt") for rank in (0, 1)]
    assert weights[0].keys() == weights[1].keys()
    different = [k for k in weights[0] if not torch.equal(weights[0][k], weights[1][k])]
    assert not different, different[:5]
    saved = torch.load(trained[0] / "last_epoch_ckpt.pth", map_location="cpu", weights_only=True)["model"]
    assert all(torch.equal(saved[k], weights[0][k]) for k in weights[0])
    # training moved them: the weights are not the ones the first epoch started from
    initial = torch.load(root / "probes" / "initial0.pt")
    assert initial.keys() == saved.keys() and any(not torch.equal(saved[k], v) for k, v in initial.items())
    # and latest_ckpt.pth, written after the evaluation, holds them too: the norm statistics averaged
    # over the processes, as training goes on with them (YOLOX's holds rank 0's own)
    latest = torch.load(trained[0] / "latest_ckpt.pth", map_location="cpu", weights_only=True)["model"]
    assert latest.keys() == saved.keys() and all(torch.equal(latest[k], saved[k]) for k in saved)


def evaluation(result):
    """The figures an evaluation prints: pycocotools' table and the AP per class."""
    assert result.returncode == 0, result.stderr[-4000:]
    text = result.stderr + result.stdout
    lines = [line for line in text.splitlines() if "Average Precision" in line or "Average Recall" in line]
    table = text[text.index("per class AP:"):].splitlines()[1:7]
    return lines, table


def test_the_loss_state_is_the_same_on_every_process_and_is_what_the_checkpoint_holds(trained, root):
    states = [torch.load(root / "probes" / f"loss_state{rank}.pt") for rank in (0, 1)]
    assert sorted(states[0]) == ["box.wiou_v3.mean", "box.wiou_v3.updates", "cls.slide_ema.mean",
                                 "cls.slide_ema.updates"]
    assert states[0].keys() == states[1].keys()
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])
    assert float(states[0]["box.wiou_v3.updates"]) == 2  # both iterations moved it ...
    assert float(states[0]["box.wiou_v3.mean"]) != 1.0  # ... away from its start
    saved = torch.load(trained[0] / "last_epoch_ckpt.pth", map_location="cpu", weights_only=True)["loss_kit"]
    assert saved.keys() == states[0].keys() and all(torch.equal(saved[k], states[0][k]) for k in saved)


def scored_detections(root):
    """What the last evaluation handed pycocotools, per image, in a stable order."""
    by_image = {}
    for detection in torch.load(root / "probes" / "detections0.pt"):
        by_image.setdefault(detection["image_id"], []).append(
            (detection["category_id"], tuple(detection["bbox"]), detection["score"]))
    return {image: sorted(detections) for image, detections in by_image.items()}


def test_two_process_evaluation_scores_the_whole_validation_set(trained, root):
    # 5 validation images over 2 processes: torch's sampler repeats one; it must count once. Each
    # image passes the model alone and on one thread in both runs, so the scores agree to the bit.
    # At --conf 0 every image keeps detections, whatever two iterations of training taught the model.
    checkpoint = trained[0] / "last_epoch_ckpt.pth"
    args = [ckpt_flag(), checkpoint, "--conf", "0.0", *exp_args(root, "two")]
    one = run(root, "eval.py", "-b", "1", *args, env={"OMP_NUM_THREADS": "1"})
    alone = scored_detections(root)
    two = run(root, "eval.py", "-d", "2", "-b", "2", *args, env={"OMP_NUM_THREADS": "1"})
    lines, table = evaluation(two)
    assert (lines, table) == evaluation(one) and len(lines) == 12
    assert scored_detections(root) == alone
    images = json.loads((root / "data" / "annotations" / "instances_val2017.json").read_text())["images"]
    assert len(images) == 5 and sorted(alone) == sorted(image["id"] for image in images)
    assert all(alone.values())


def two_machines(root, *args):
    """The tool started twice, as machines 0 and 1 of one process each. They share this machine's
    cores: one thread each, as -d 2 gives its processes."""
    url = f"tcp://127.0.0.1:{free_port()}"
    return [start(root, "train.py", "-b", "4", "--num_machines", "2", "--machine_rank", rank, "--dist-url", url,
                  *args, env={"OMP_NUM_THREADS": "1"}) for rank in (0, 1)]


@ONE_YOLOX
def test_two_machines_resume_the_two_process_run(trained, root):
    folder, _ = trained
    # without EMA, the checkpoint holds the DDP-wrapped model itself: saved under the bare model's names
    machines = two_machines(root, "--resume", *exp_args(root, "two", max_epoch="2", ema="False", **STATEFUL))
    first, second = (succeeded(finish(machine)) for machine in machines)
    assert "best AP50:95" in first.stdout and second.stdout == ""  # rank 1 reports nothing
    log = (folder / "train_log.txt").read_text()
    assert "resume training" in log and "epoch: 2/2, iter: 2/2" in log and "epoch: 1/2" not in log
    assert log.count("Training start on the CPU (1 threads, 2 processes)") == 2  # the first run's and this one's
    assert [r["epoch"] for r in read_metrics(folder)] == [1, 2]
    checkpoint = torch.load(folder / "latest_ckpt.pth", map_location="cpu", weights_only=True)
    assert checkpoint["start_epoch"] == 2
    assert not [k for k in checkpoint["model"] if k.startswith("module.")]
    assert float(checkpoint["loss_kit"]["box.wiou_v3.updates"]) == 4  # the resumed state moved on: 2 + 2


def training_processes(launcher):
    """The worker processes a launcher started (not multiprocessing's resource tracker)."""
    return [p for p in psutil.Process(launcher.pid).children() if "spawn_main" in " ".join(p.cmdline())]


def wait_for_training(launcher, log):
    while not (log.is_file() and "iter: 1/2" in log.read_text()):
        assert launcher.poll() is None, launcher.communicate()[1][-3000:]
        time.sleep(0.2)


@ONE_YOLOX
def test_a_killed_process_stops_the_run_with_one_line_naming_it(root):
    launcher = start(root, "train.py", "-d", "2", "-b", "4", *exp_args(root, "killed", max_epoch="300"))
    wait_for_training(launcher, root / "out" / "killed" / "train_log.txt")
    workers = training_processes(launcher)
    assert len(workers) == 2
    workers[1].kill()
    line = error_line(finish(launcher, timeout=120))
    assert line.startswith("error: process rank ") and f"(pid {workers[1].pid}) was killed by SIGKILL" in line
    assert not any(worker.is_running() for worker in workers)


@ONE_YOLOX
def test_a_killed_machine_stops_the_other_machine(root):
    machines = two_machines(root, *exp_args(root, "killed_machine", max_epoch="300"))
    wait_for_training(machines[0], root / "out" / "killed_machine" / "train_log.txt")
    (worker,) = training_processes(machines[1])
    worker.kill()
    assert error_line(finish(machines[1], timeout=120)) == (
        f"error: process rank 1 (pid {worker.pid}) was killed by SIGKILL; stopped the other processes")
    line = error_line(finish(machines[0], timeout=120))
    assert line.startswith("error: process rank 0 (pid ") and "lost its connection to another process" in line


def test_a_port_in_use_is_refused_before_any_work(root):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        line = error_line(run(root, "train.py", "-d", "2", "-b", "4", "--dist-url", f"tcp://127.0.0.1:{port}",
                              *exp_args(root, "port")))
    assert line.startswith(f"error: --dist-url tcp://127.0.0.1:{port}: port {port} is in use on this machine")
    assert not (root / "out" / "port").exists()


def test_a_machine_rank_outside_the_machines_is_refused(root):
    line = error_line(run(root, "train.py", "-b", "4", "--num_machines", "2", "--machine_rank", "2",
                          "--dist-url", "tcp://127.0.0.1:1", *exp_args(root, "rank")))
    assert line == "error: --machine_rank 2 is not below --num_machines 2: number the machines 0 to 1"


def launch_args(**kwargs):
    values = dict(devices=None, num_machines=1, machine_rank=0, dist_url=None, batch_size=8)
    return Namespace(**dict(values, **kwargs))


@pytest.mark.parametrize("kwargs, device, gpus, message", [
    (dict(devices=2), "cuda", 1,
     "-d 2 asks for 2 GPUs but this machine has 1; use -d 1 or fewer, or --device cpu -d 2"),
    (dict(devices=0), "cpu", 0, "-d 0: give 1 or more processes per machine"),
    (dict(num_machines=2), "cpu", 0, "--num_machines 2 needs --dist-url tcp://HOST:PORT"),
    (dict(devices=3), "cpu", 0, "-b 8 does not split evenly over 3 processes"),
    (dict(dist_url="tcp://127.0.0.1", devices=2), "cpu", 0, "--dist-url tcp://127.0.0.1: write it as tcp://HOST:PORT"),
])
def test_settings_that_cannot_launch(kwargs, device, gpus, message):
    with pytest.raises(FixableError) as error:
        check_launch(launch_args(**kwargs), device, gpus)
    assert str(error.value).startswith(message)


def test_settings_that_launch():
    machine_1 = dict(devices=2, num_machines=2, machine_rank=1, dist_url="tcp://10.0.0.1:1")
    for kwargs in (dict(), dict(devices=2), machine_1):  # machine 1 does not probe machine 0's port
        check_launch(launch_args(**kwargs), "cpu", 0)
    check_launch(launch_args(devices=2), "cuda", 2)
