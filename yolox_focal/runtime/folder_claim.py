"""One training run per output folder.

Two runs into one ``YOLOX_outputs/<name>`` (a double submit, a rerun while the first still runs)
would interleave ``train_log.txt``, ``metrics.jsonl`` and the checkpoints. So a run claims its
folder before any work (:func:`claim_folder`): the file ``.claim`` in it names the holder (host,
process id, start time), and a second run refuses in one line naming both.

The holder keeps the claim alive with a heartbeat (the file's modification time, renewed every
``HEARTBEAT_S``): a lock by ``flock`` alone does not hold on network file systems, where the runs
of a cluster write. A claim is taken over, with one ``warning:`` line, when its holder is gone:
on this host, when its process no longer runs; from another host, when its heartbeat is older
than ``STALE_S``, or at once where the caller knows that host is gone (``gone_hosts``: the hosts of
a cluster's lost nodes, as ``tools/ablate.py --ray`` learns them from Ray). Taking a folder also
removes the partial files (``*.part``) that a killed writer left in it, with a ``warning:`` line
saying how many: while the claim is held nobody else writes there. The claim is created whole (written under its own name, then linked into place, which
fails if a claim exists) and released when the run ends, whichever way it ends but kill -9.

A process that a holder starts to train for it (``tools/ablate.py`` runs ``tools/train.py``)
is handed the claim through ``CLAIM_ENV``. ``tools/eval.py`` never claims: it only reads the
checkpoints and appends to its own log.
"""

import atexit
import contextlib
import json
import os
import socket
import sys
import threading
import time
import uuid

from . import interrupt
from .checkpoint_files import PARTIAL_SUFFIX
from .errors import FixableError

__all__ = ["claim_folder", "FolderInUse", "CLAIM_FILE", "CLAIM_ENV", "HEARTBEAT_S", "STALE_S"]

CLAIM_FILE = ".claim"
HEARTBEAT_S = 30.0
STALE_S = 300.0  # a few missed heartbeats: the holder on another host is gone
CLAIM_ENV = "YOLOX_FOCAL_FOLDER_CLAIM"  # "<folder>\n<token>" of a claim handed to a child process


class FolderInUse(FixableError):
    """Another run holds the output folder."""


def _process_started(pid):
    """When process ``pid`` started (clock ticks since boot, from /proc), or None where unknown:
    tells a process from a later one that got the same id."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def _runs(pid, started):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it runs
        pass
    return started is None or _process_started(pid) in (None, started)


def _read(path):
    try:
        with open(path) as f:
            return json.load(f), os.stat(path).st_mtime
    except (OSError, ValueError):
        return None, None


def _gone(holder, heartbeat, gone_hosts=()):
    """Why the claim's holder is gone, or None while it may still run."""
    if holder.get("host") == socket.gethostname():
        if not _runs(holder.get("pid", -1), holder.get("process_started")):
            return f"process {holder.get('pid')} no longer runs"
        return None
    if holder.get("host") in gone_hosts:
        return f"host {holder.get('host')} left the cluster"
    age = time.time() - heartbeat
    return f"its last heartbeat was {age / 60:.0f} min ago" if age > STALE_S else None


class Claim:
    """The claim this process holds on ``folder``: renewed by a heartbeat thread until released."""

    def __init__(self, folder, token, inherited=False):
        self.folder, self.path, self.token = folder, os.path.join(folder, CLAIM_FILE), token
        self._stopped, self.inherited = threading.Event(), inherited
        if not inherited:
            threading.Thread(target=self._beat, name="folder-claim-heartbeat", daemon=True).start()
            atexit.register(self.release)
            interrupt.on_stop(self.release)

    def env(self):
        """The environment entry that hands this claim to a child process."""
        return {CLAIM_ENV: f"{self.folder}\n{self.token}"}

    def _ours(self):
        holder, _ = _read(self.path)
        return holder is not None and holder.get("token") == self.token

    def _beat(self):
        while not self._stopped.wait(HEARTBEAT_S):
            if not self._ours():
                return  # taken over while this process did not beat (suspended): the other run writes now
            with contextlib.suppress(OSError):
                os.utime(self.path)

    def release(self):
        """End the heartbeat and remove the claim, if it is still this process's."""
        if self.inherited or self._stopped.is_set():
            return
        self._stopped.set()
        if self._ours():
            with contextlib.suppress(OSError):
                os.remove(self.path)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


def claim_folder(folder, gone_hosts=()):
    """Claim ``folder`` (made if missing) for this run, taking over the claim of a run that is gone
    (``gone_hosts``: other hosts known to be gone, whose claims need not wait for ``STALE_S``);
    raises :class:`FolderInUse` (one line) while another run holds it. Returns the :class:`Claim`."""
    folder = os.path.abspath(folder)
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, CLAIM_FILE)
    handed = os.environ.get(CLAIM_ENV, "").split("\n")
    while True:
        token = uuid.uuid4().hex
        if _create(path, token):
            _remove_partial_files(folder)
            return Claim(folder, token)
        holder, heartbeat = _read(path)
        if holder is None:
            if os.path.exists(path):  # claims are written whole: this file is not one
                raise FolderInUse(f"{path} is no claim of a training run (unreadable); remove it if no run "
                                  f"trains into {folder}")
            continue  # released meanwhile
        if handed == [folder, holder.get("token")]:  # the claim of the process that started this one
            return Claim(folder, holder["token"], inherited=True)
        why = _gone(holder, heartbeat, gone_hosts)
        if why is None:
            raise FolderInUse(
                f"{folder} is in use by another run (host {holder.get('host')}, pid {holder.get('pid')}, started "
                f"{holder.get('started')}); wait for it to end or stop it, or train into another folder (-expn NAME)")
        print(f"warning: took over {folder} from a run that is gone (host {holder.get('host')}, pid "
              f"{holder.get('pid')}: {why})", file=sys.stderr)
        _take_away(path, holder)


def _create(path, token):
    """Write the claim whole under a name of its own, then link it into place: fails (False) if a
    claim is there; ``link`` is atomic on local and network file systems alike."""
    record = {"host": socket.gethostname(), "pid": os.getpid(), "process_started": _process_started(os.getpid()),
              "started": time.strftime("%Y-%m-%d %H:%M:%S"), "token": token}
    own = f"{path}.{token}.new"
    with open(own, "w") as f:
        json.dump(record, f)
        f.flush()
        os.fsync(f.fileno())
    try:
        os.link(own, path)
        return True
    except FileExistsError:
        return False
    finally:
        os.remove(own)


def _take_away(path, holder):
    """Remove the gone holder's claim, unless another run took it over meanwhile."""
    moved = f"{path}.{uuid.uuid4().hex}.gone"
    try:
        os.rename(path, moved)  # one of several takers wins; the others find the claim gone
    except FileNotFoundError:
        return
    now, _ = _read(moved)
    if now is not None and now.get("token") != holder.get("token"):  # a new holder's: put it back
        with contextlib.suppress(OSError):
            os.link(moved, path)
    os.remove(moved)


def _remove_partial_files(folder):
    partial = [name for name in os.listdir(folder) if name.startswith(".") and name.endswith(PARTIAL_SUFFIX)]
    for name in partial:
        with contextlib.suppress(OSError):
            os.remove(os.path.join(folder, name))
    if partial:
        print(f"warning: removed {len(partial)} partial file{'s' * (len(partial) != 1)} that a stopped run left "
              f"in {folder} (written when it stopped; the finished files are intact)", file=sys.stderr)
