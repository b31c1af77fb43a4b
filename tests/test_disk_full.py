"""A disk that fills during a checkpoint write: the run stops with one ``error:`` line (the folder,
about how much space a checkpoint needs, the last good checkpoint) and exit status 2, the partial
file removed and the earlier checkpoint intact.

Two real full disks: a small tmpfs the test mounts in a mount namespace of the run's own (``unshare
-m``, where this machine lets the test mount), and, everywhere on Linux, the kernel's ``/dev/full``
under the name the run writes its next checkpoint to (a write there fails with ENOSPC, through the
same code path)."""

import os
import shutil
import socket
import subprocess
import sys
import tempfile

import pytest
import torch

from cli_helpers import TINY, error_line
from helpers import REPO
from run_helpers import Run
from yolox_focal.runtime.demo_data import make_demo_voc_data

EXP = REPO / "exps" / "demo" / "demo_voc.py"
# epoch 1 writes latest_ckpt.pth; epoch 2's write of it is the one the full disk stops (the last
# mosaic epoch, with its own checkpoint, is epoch 3)
OPTS = [*TINY, "data_num_workers", "1", "max_epoch", "3", "eval_interval", "5"]
CHECKPOINT_BYTES = 7.6e6  # yolox-nano's weights and optimizer state: a tmpfs of 1.5 of them holds one


def _can_mount_tmpfs():
    """Whether this machine lets the test mount a tmpfs in a mount namespace of its own."""
    if not shutil.which("unshare"):
        return False
    with tempfile.TemporaryDirectory() as folder:
        return subprocess.run(["unshare", "-m", "sh", "-c", f"mount -t tmpfs -o size=1m tmpfs {folder}"],
                              capture_output=True).returncode == 0


TMPFS = _can_mount_tmpfs()


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("disk_full")
    make_demo_voc_data(str(root / "data"), train_images=32, val_images=8, size=128, progress=False, workers=1)
    return root / "data"


def expected_line(folder, size):
    """The line for a run into ``folder`` whose checkpoint has ``size`` bytes."""
    return (f"error: no space left in {folder} to write latest_ckpt.pth: a checkpoint needs about {size / 2**20:.0f} "
            f"MB; free space there (or train into another output_dir); the last good state is "
            f"{folder / 'latest_ckpt.pth'} (after epoch 1): continue with --resume")


def test_a_write_into_a_full_device_stops_with_one_line(data, tmp_path):
    out = tmp_path / "out"
    folder = out / "run"
    latest = folder / "latest_ckpt.pth"
    run = Run(tmp_path, "train.py", "-f", EXP, "-b", "1", "--device", "cpu", "-expn", "run", "data_dir", data,
              "output_dir", out, *OPTS)
    run.wait_for(lambda: latest.exists() and "epoch: 2/3" in run.stderr.read_text(), "epoch 2")
    full = folder / f".latest_ckpt.pth.{socket.gethostname()}.{run.process.pid}.part"
    full.symlink_to("/dev/full")  # where the run writes epoch 2's checkpoint before renaming it into place
    assert run.process.wait(timeout=600) == 2
    lines = run.stderr.read_text().strip().splitlines()
    assert lines[-1] == expected_line(folder, latest.stat().st_size) and "Traceback" not in run.stderr.read_text()
    assert not os.path.lexists(full) and not list(folder.glob(".*.part"))
    assert torch.load(latest, map_location="cpu", weights_only=True)["start_epoch"] == 1


@pytest.mark.skipif(not TMPFS, reason="this machine does not let the test mount a tmpfs in a mount namespace "
                                       "(unshare -m, as root)")
def test_a_full_tmpfs_stops_the_run_with_one_line(data, tmp_path):
    disk, kept = tmp_path / "disk", tmp_path / "kept"
    disk.mkdir()
    kept.mkdir()
    train = [sys.executable, str(REPO / "tools" / "train.py"), "-f", str(EXP), "-b", "8", "--device", "cpu",
             "-expn", "run", "data_dir", str(data), "output_dir", str(disk), *map(str, OPTS)]
    # the run in a mount namespace of its own, on a tmpfs that holds one checkpoint and a half; what it
    # leaves is copied out before the namespace, and the tmpfs with it, goes
    script = (f'mount -t tmpfs -o size={int(1.5 * CHECKPOINT_BYTES)} tmpfs "$1" && shift && "$@"; status=$?; '
              f'cp -a "$0/." "{kept}/"; exit $status')
    result = subprocess.run(["unshare", "-m", "sh", "-c", script, str(disk), str(disk), *train], cwd=REPO,
                            capture_output=True, text=True, timeout=600)
    latest = kept / "run" / "latest_ckpt.pth"
    assert error_line(result) == expected_line(disk / "run", latest.stat().st_size)
    assert not list((kept / "run").glob(".*.part")) and not (kept / "run" / ".claim").exists()
    assert torch.load(latest, map_location="cpu", weights_only=True)["start_epoch"] == 1
