"""One run per output folder: two real tools/train.py processes into one folder (the second refuses in
one line naming the holder), tools/eval.py beside a training run, and claims left by runs that are
gone (a process that no longer runs on this host, a heartbeat that stopped on another host), which
are taken over with one warning line, the partial files they left removed."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch

from cli_helpers import TINY, error_line
from helpers import REPO
from run_helpers import Run
from yolox_focal.runtime import folder_claim
from yolox_focal.runtime.demo_data import make_demo_voc_data
from yolox_focal.runtime.folder_claim import CLAIM_ENV, CLAIM_FILE, FolderInUse, claim_folder

EXP = REPO / "exps" / "demo" / "demo_voc.py"
HOST = socket.gethostname()


def write_claim(folder, host, pid, age_s=0.0):
    """A claim as another run left it, its heartbeat ``age_s`` seconds old."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / CLAIM_FILE
    path.write_text(json.dumps({"host": host, "pid": pid, "process_started": None, "started": "earlier",
                                "token": "theirs"}))
    os.utime(path, (time.time() - age_s, time.time() - age_s))
    return path


def ended_pid():
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_claim_of_a_process_gone_from_this_host_is_taken_over_and_its_partial_files_removed(tmp_path, capsys):
    folder = tmp_path / "run"
    pid = ended_pid()
    write_claim(folder, HOST, pid)
    (folder / f".latest_ckpt.pth.{HOST}.{pid}.part").write_bytes(b"half")
    (folder / f".metrics.jsonl.{HOST}.{pid}.part").write_text("{")
    (folder / "latest_ckpt.pth").write_bytes(b"whole")
    with claim_folder(folder) as claim:
        held = json.loads((folder / CLAIM_FILE).read_text())
        assert held["token"] == claim.token and held["pid"] == os.getpid() and held["host"] == HOST
        assert sorted(p.name for p in folder.iterdir()) == [CLAIM_FILE, "latest_ckpt.pth"]
    assert not (folder / CLAIM_FILE).exists()  # released
    assert capsys.readouterr().err.splitlines() == [
        f"warning: took over {folder} from a run that is gone (host {HOST}, pid {pid}: process {pid} no longer runs)",
        f"warning: removed 2 partial files that a stopped run left in {folder} (written when it stopped; the "
        f"finished files are intact)"]


def test_a_claim_from_another_host_is_taken_over_only_once_its_heartbeat_is_old(tmp_path, capsys):
    folder = tmp_path / "run"
    write_claim(folder, "other-host", 4242, age_s=60)  # a minute: alive
    with pytest.raises(FolderInUse) as refused:
        claim_folder(folder)
    assert str(refused.value) == (f"{folder} is in use by another run (host other-host, pid 4242, started earlier); "
                                  f"wait for it to end or stop it, or train into another folder (-expn NAME)")
    write_claim(folder, "other-host", 4242, age_s=10 * 60)
    with claim_folder(folder):
        pass
    assert capsys.readouterr().err.splitlines() == [
        f"warning: took over {folder} from a run that is gone (host other-host, pid 4242: its last heartbeat was "
        f"10 min ago)"]


def test_a_claim_from_a_host_known_to_be_gone_is_taken_over_at_once(tmp_path, capsys):
    folder = tmp_path / "run"
    write_claim(folder, "lost-node", 4242, age_s=5)  # a fresh heartbeat: without the word of its loss, it waits
    with pytest.raises(FolderInUse):
        claim_folder(folder, gone_hosts=("another-lost-node",))
    with claim_folder(folder, gone_hosts=("lost-node",)) as claim:
        assert json.loads((folder / CLAIM_FILE).read_text())["token"] == claim.token
    assert capsys.readouterr().err.splitlines() == [
        f"warning: took over {folder} from a run that is gone (host lost-node, pid 4242: host lost-node left the "
        f"cluster)"]
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:  # this host is never taken for gone: its process decides
        write_claim(folder, HOST, sleeper.pid)
        with pytest.raises(FolderInUse):
            claim_folder(folder, gone_hosts=(HOST,))
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_claim_of_a_running_process_on_this_host_is_refused(tmp_path):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        write_claim(tmp_path, HOST, sleeper.pid, age_s=3600)  # an old heartbeat does not matter on this host
        with pytest.raises(FolderInUse, match=f"in use by another run \\(host {HOST}, pid {sleeper.pid},"):
            claim_folder(tmp_path)
    finally:
        sleeper.kill()
        sleeper.wait()
    with claim_folder(tmp_path):  # gone now
        pass


def test_the_holder_renews_its_heartbeat_and_hands_the_claim_to_a_child(tmp_path, monkeypatch):
    monkeypatch.setattr(folder_claim, "HEARTBEAT_S", 0.05)
    with claim_folder(tmp_path) as claim:
        path = tmp_path / CLAIM_FILE
        os.utime(path, (0, 0))
        deadline = time.monotonic() + 30
        while path.stat().st_mtime == 0:
            assert time.monotonic() < deadline, "no heartbeat"
            time.sleep(0.02)
        monkeypatch.setenv(CLAIM_ENV, claim.env()[CLAIM_ENV])
        with claim_folder(tmp_path) as handed:  # the child's view: the same claim, not released by it
            assert handed.inherited and handed.token == claim.token
        assert path.exists()
        monkeypatch.delenv(CLAIM_ENV)
        with pytest.raises(FolderInUse):  # anyone else is refused
            claim_folder(tmp_path)
    assert not path.exists()


def test_a_second_run_into_a_training_runs_folder_refuses_and_eval_goes_ahead(tmp_path):
    make_demo_voc_data(str(tmp_path / "data"), train_images=32, val_images=8, size=128, progress=False, workers=1)
    out = tmp_path / "out"
    args = ["-f", EXP, "--device", "cpu", "-expn", "run", "data_dir", tmp_path / "data", "output_dir", out, *TINY]
    first = Run(tmp_path / "first", "train.py", "-b", "1", *args, "max_epoch", "300")
    try:
        first.wait_for(first.in_stderr("epoch: 1/300, iter: 1/32"), "training")
        second = subprocess.run([sys.executable, str(REPO / "tools" / "train.py"), "-b", "1", *map(str, args)],
                                cwd=REPO, capture_output=True, text=True, timeout=600)
        line = error_line(second)
        assert line.startswith(f"error: {out / 'run'} is in use by another run (host {HOST}, pid "
                               f"{first.process.pid}, started ")
        assert line.endswith("wait for it to end or stop it, or train into another folder (-expn NAME)")
        assert (out / "run" / "train_log.txt").read_text().count("Training start") == 1
        # evaluation reads the folder and never needs it for itself
        checkpoint = tmp_path / "model.pth"
        model = __import__("yolox_focal.runtime.cli", fromlist=["load_exp"]).load_exp(str(EXP), None, []).get_model()
        torch.save({"model": model.state_dict()}, checkpoint)
        evaluated = subprocess.run([sys.executable, str(REPO / "tools" / "eval.py"), "-b", "4", "-c", str(checkpoint),
                                    *map(str, args)], cwd=REPO, capture_output=True, text=True, timeout=600)
        assert evaluated.returncode == 0, evaluated.stderr[-3000:]
        assert "AP50:95" in evaluated.stdout
        assert first.process.poll() is None  # still training, still its folder
    finally:
        assert first.interrupt(signal.SIGTERM) == 143
    assert not (out / "run" / CLAIM_FILE).exists()
