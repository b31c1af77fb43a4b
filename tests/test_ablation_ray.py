"""tools/ablate.py --ray on a real two-node Ray cluster on this machine (ray.cluster_utils.Cluster,
every node bound to 127.0.0.1, one CPU each): a 2 variants x 1 seed grid of a few iterations. Each
run's records name its node, both nodes ran one, and the run of the node removed mid-run finishes
on the other, resumed from its last checkpoint; a Ctrl-C cancels the runs on the cluster with one
line, and the same command resumes them. Without --ray nothing of Ray is imported, and --ray
without Ray installed, or with options that do not fit, is one line naming the fix."""

import json
import os
import re
import signal
import shutil
import subprocess
import sys
import tempfile
import time

import pytest

from cli_helpers import TINY
from helpers import REPO
from run_helpers import Run
from yolox_focal.ablation import grid, runs

EXP = REPO / "exps" / "demo" / "demo_focal.py"
NODE = {"num_cpus": 1, "node_ip_address": "127.0.0.1", "object_store_memory": 80 * 2**20}
# A lost node is found out within about 2 s (the default: 30 s), so the test need not wait on it.
HEALTH = {"health_check_period_ms": 500, "health_check_timeout_ms": 500, "health_check_failure_threshold": 4}
# Ray 2.60 resolves a loopback address given to ray.init to the machine's outward IP (see
# ray._private.services.resolve_ip_for_localhost), where this cluster's loopback-bound nodes are not:
# the driver (tools/ablate.py) is told to keep loopback as loopback, as Ray does on a machine of one node.
DRIVER_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}


@pytest.fixture(scope="module")
def data(tiny_demo_data):
    return tiny_demo_data


@pytest.fixture
def ray_temp(monkeypatch):
    """A Ray temp folder of the test's own. Ray's cluster_utils writes the cluster's address to
    ``$RAY_TMPDIR/ray/ray_current_cluster`` (default ``/tmp/ray``) whatever the nodes' temp_dir, and
    fails where that folder does not exist (a fresh machine): RAY_TMPDIR points there too, so the
    cluster and its drivers touch nothing outside. Short, under /tmp: Ray's socket paths must fit
    107 bytes."""
    root = tempfile.mkdtemp(prefix="ray", dir="/tmp")
    monkeypatch.setenv("RAY_TMPDIR", root)
    folder = os.path.join(root, "ray")
    os.makedirs(folder)
    yield folder
    shutil.rmtree(root, ignore_errors=True)


def running(pid):
    """Whether process ``pid`` of this machine runs (a zombie, ended but not yet reaped, does not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_plain_import_and_help_import_nothing_of_ray():
    code = ("import sys, runpy\nimport yolox_focal.ablation\nfrom yolox_focal.ablation import cli, local, runs\n"
            "sys.argv = ['tools/ablate.py', '--help']\ntry:\n    runpy.run_path('tools/ablate.py', run_name='__main__')\n"
            "except SystemExit:\n    pass\n"
            "print('RAY', sorted(m for m in sys.modules if m.split('.')[0] == 'ray'))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "--ray ADDRESS" in result.stdout and "--cpus-per-run N" in result.stdout  # --help did run
    assert result.stdout.strip().splitlines()[-1] == "RAY []"


def test_ray_without_ray_installed_is_one_line_naming_the_fix(tmp_path):
    hidden = tmp_path / "no_ray"
    hidden.mkdir()
    (hidden / "sitecustomize.py").write_text(  # this interpreter, as if Ray were not installed
        "import sys\nclass NoRay:\n    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'ray' or name.startswith('ray.'):\n            raise ModuleNotFoundError(name)\n"
        "sys.meta_path.insert(0, NoRay())\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(hidden), os.environ.get("PYTHONPATH")])))
    command = [sys.executable, str(REPO / "tools" / "ablate.py"), "--out", str(tmp_path / "grid"), "--ray", "auto",
               "--variants", "yolox", "--seeds", "0"]
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO, env=env, timeout=300)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: --ray needs Ray, which is not installed: pip install -e .[cluster] (or pip install ray)"]
    assert not (tmp_path / "grid").exists()


@pytest.mark.parametrize("more, line", [
    (["--ray", "auto", "--jobs", "2"], "error: --jobs 2 is for runs on this machine; with --ray the cluster runs as "
                                       "many at once as its nodes' CPUs and GPUs allow: leave --jobs out"),
    (["--cpus-per-run", "2"], "error: --cpus-per-run 2 is for runs on a Ray cluster (--ray); on this machine --jobs "
                              "N shares the cores: leave it out"),
    (["--ray", "auto", "--cpus-per-run", "0"], "error: --cpus-per-run 0: give 1 or more CPUs a run"),
])
def test_ray_options_are_checked_before_any_work(tmp_path, more, line):
    pytest.importorskip("ray", reason="the cluster extra: pip install -e .[cluster]")
    command = [sys.executable, str(REPO / "tools" / "ablate.py"), "--out", str(tmp_path / "grid"),
               "--variants", "yolox", "--seeds", "0", *more]
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=300)
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [line]
    assert not (tmp_path / "grid").exists()


def test_two_nodes_each_run_one_and_a_lost_nodes_run_finishes_on_the_other(tmp_path, data, ray_temp):
    cluster_utils = pytest.importorskip("ray.cluster_utils", reason="the cluster extra: pip install -e .[cluster]")
    cluster = cluster_utils.Cluster(initialize_head=True, shutdown_at_exit=True, head_node_args=dict(
        NODE, include_dashboard=False, temp_dir=ray_temp, _system_config=HEALTH))
    run = None
    try:
        worker = cluster.add_node(**NODE)
        cluster.wait_for_nodes()
        head_id, worker_id = cluster.head_node.node_id, worker.node_id
        out = tmp_path / "grid"
        grid_args = ["-f", EXP, "--out", out, "--seeds", "0", "-b", "4", "--device", "cpu", "--variants", "yolox",
                     "focal", "--ray", cluster.address, "--opts", "data_dir", data, "max_epoch", "4", *TINY]
        too_big = Run(tmp_path / "too_big", "ablate.py", *grid_args, "--cpus-per-run", "2", env=DRIVER_ENV)
        assert too_big.process.wait(timeout=300) == 2
        assert too_big.stderr.read_text().strip().splitlines() == [(
            f"error: --cpus-per-run 2: no node of the Ray cluster at {cluster.address} has 2 CPUs (the most: 1); "
            "lower --cpus-per-run")]
        assert not out.exists()  # refused before any work
        run = Run(tmp_path, "ablate.py", *grid_args, env=DRIVER_ENV)
        folders = [grid.run_dir(out, v, 0) for v in ("yolox", "focal")]
        run.wait_for(lambda: all(runs.attempts_of(f) for f in folders), "both runs started")
        assert {runs.attempts_of(f)[0]["node"] for f in folders} == {head_id, worker_id}  # one on each node
        (lost,) = [f for f in folders if runs.attempts_of(f)[0]["node"] == worker_id]
        (kept,) = [f for f in folders if f != lost]
        run.wait_for((lost / "latest_ckpt.pth").exists, "the worker node's run's first epoch's checkpoint")
        cluster.remove_node(worker, allow_graceful=False)
        assert run.process.wait(timeout=600) == 0, run.stderr.read_text()[-3000:]

        stdout = run.stdout.read_text()
        checkpoint = lost / "latest_ckpt.pth"
        assert (f"[ablate] {lost.name}: failed (its task on node {worker_id} ended without a result" in stdout
                and f"the node was lost); retrying once from {checkpoint}" in stdout), stdout
        assert f"[ablate] {lost.name}: finished on node {head_id}" in stdout
        assert f"[ablate] {kept.name}: finished on node {head_id}" in stdout
        attempts = runs.attempts_of(lost)
        assert [a["node"] for a in attempts] == [worker_id, head_id]
        assert [a["resumes"] for a in attempts] == [False, True]
        assert [a["node"] for a in runs.attempts_of(kept)] == [head_id]
        assert not running(attempts[0]["pid"])  # the lost node's training died with it
        assert "resume training" in (lost / "train_log.txt").read_text()
        assert "resume training" not in (kept / "train_log.txt").read_text()
        for folder in folders:
            done = json.loads((folder / "done").read_text())
            assert done["node"] == head_id  # where it finished: the node left
            assert done["host"] == attempts[-1]["host"] and done["train_seconds"] > 0
            assert done["trained_on"] == runs.trained_on("cpu", False, 1)  # its task's one CPU
            epochs = [json.loads(line)["epoch"] for line in (folder / "metrics.jsonl").read_text().splitlines()]
            assert epochs == [1, 2, 3, 4], epochs  # once each, in order: the lost node's run resumed after its record
            assert not (folder / ".claim").exists()
        report = (out / "ablation.md").read_text()
        assert "| yolox | YOLOX's losses | 0 |" in report and "| focal | obj_loss=focal | 0 |" in report
        assert f"--ray {cluster.address}" in report
    finally:
        if run is not None and run.process.poll() is None:
            run.process.kill()
            run.process.wait()
        cluster.shutdown()


def test_ctrl_c_cancels_the_runs_on_the_cluster_with_one_line_and_the_same_command_resumes(tmp_path, data, ray_temp):
    cluster_utils = pytest.importorskip("ray.cluster_utils", reason="the cluster extra: pip install -e .[cluster]")
    cluster = cluster_utils.Cluster(initialize_head=True, shutdown_at_exit=True, head_node_args=dict(
        NODE, include_dashboard=False, temp_dir=ray_temp))
    runs_started = []
    try:
        out = tmp_path / "grid"
        args = ["-f", EXP, "--out", out, "--seeds", "0", "-b", "4", "--device", "cpu", "--variants", "yolox",
                "--ray", cluster.address, "--opts", "data_dir", data, "max_epoch", "5", *TINY]
        run = Run(tmp_path, "ablate.py", *args, env=DRIVER_ENV)
        runs_started.append(run)
        folder = grid.run_dir(out, "yolox", 0)
        metrics = folder / "metrics.jsonl"
        run.wait_for((folder / "latest_ckpt.pth").exists, "the first epoch's checkpoint")
        assert run.interrupt(signal.SIGINT) == 130
        stderr = run.stderr.read_text()
        assert "Traceback" not in stderr
        lines = stderr.strip().splitlines()
        assert sum(line.startswith(("interrupted", "terminated")) for line in lines) == 1
        assert re.fullmatch(r"interrupted: stopped the ablation's runs: yolox-seed0 \(after epoch \d\); 0 finished "
                            r"runs kept; run the same command again to resume", lines[-1]), lines[-1]
        (first,) = runs.attempts_of(folder)
        deadline = time.monotonic() + 60
        while running(first["pid"]) and time.monotonic() < deadline:  # the task passes the stop on
            time.sleep(0.1)
        assert not running(first["pid"])
        assert not (folder / "done").exists() and not (folder / ".claim").exists()
        again = Run(tmp_path / "again", "ablate.py", *args, env=DRIVER_ENV)
        runs_started.append(again)
        assert again.process.wait(timeout=600) == 0, again.stderr.read_text()[-3000:]
        assert [a["resumes"] for a in runs.attempts_of(folder)] == [False, True]
        assert json.loads((folder / "done").read_text())["node"] == cluster.head_node.node_id
        epochs = [json.loads(line)["epoch"] for line in metrics.read_text().splitlines()]
        assert epochs == [1, 2, 3, 4, 5], epochs
    finally:
        for started in runs_started:
            if started.process.poll() is None:
                started.process.kill()
                started.process.wait()
        cluster.shutdown()
