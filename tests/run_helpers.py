"""A tool run in its own process group, watched and stopped as a terminal (Ctrl-C: SIGINT to the group)
or a cluster's scheduler (SIGTERM, to the group or to the process alone) would (tests/test_faults.py,
tests/test_voc_any_yolox.py)."""

import os
import re
import signal
import subprocess
import sys
import time

from helpers import REPO

EXIT_BOUND = 15  # seconds from the signal to the process's end
WAIT = 300  # seconds a run may take to reach a moment (a loaded 2-core machine)
LINE = re.compile(r"^(?P<word>interrupted|terminated): stopped during (?P<phase>.+?); (?P<state>.+)$")
STOP_WORDS = ("interrupted:", "terminated:")


class Run:
    """A tool in its own process group, its output in files."""

    def __init__(self, folder, tool, *args, env=None, cwd=REPO):
        folder.mkdir(parents=True, exist_ok=True)
        self.stdout, self.stderr = folder / f"{tool}.out", folder / f"{tool}.err"
        with open(self.stdout, "w") as out, open(self.stderr, "w") as err:
            self.process = subprocess.Popen([sys.executable, str(REPO / "tools" / tool), *map(str, args)], cwd=cwd,
                                            stdout=out, stderr=err, start_new_session=True,
                                            env=dict(os.environ, **(env or {})))

    def wait_for(self, found, what):
        """Poll until ``found()`` is true; fails if the run ends first."""
        deadline = time.monotonic() + WAIT
        while not found():
            assert self.process.poll() is None, f"the run ended before {what}:\n{self.stderr.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"no {what} after {WAIT} s"
            time.sleep(0.02)

    def in_stderr(self, text):
        return lambda: text in self.stderr.read_text()

    def in_stdout(self, text):
        return lambda: text in self.stdout.read_text()

    def handler_installed(self):
        # yolox_focal's handler also catches SIGALRM, which Python leaves alone: once it shows in
        # /proc's caught-signal mask, a Ctrl-C is the tool's to handle (the imports are still going on)
        def installed():
            status = open(f"/proc/{self.process.pid}/status").read()
            mask = int(re.search(r"^SigCgt:\s*([0-9a-f]+)$", status, re.M).group(1), 16)
            return bool(mask & (1 << (signal.SIGALRM - 1)))
        return installed

    def interrupt(self, sig=signal.SIGINT, group=True):
        """Send ``sig`` to the run's group (or to its first process alone); returns its exit status,
        asserting it ends within the bound."""
        (os.killpg if group else os.kill)(self.process.pid, sig)
        try:
            return self.process.wait(timeout=EXIT_BOUND)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
            raise AssertionError(f"still running {EXIT_BOUND} s after {sig.name}:\n{self.stderr.read_text()[-3000:]}")

    def stop_line(self, word="interrupted"):
        """The one stop line ('interrupted: ...' after a Ctrl-C, 'terminated: ...' after SIGTERM),
        checked to be the last line and the only one, with no traceback before it."""
        lines = self.stderr.read_text().strip().splitlines()
        assert sum(line.startswith(STOP_WORDS) for line in lines) == 1, lines[-20:]
        assert "Traceback" not in self.stderr.read_text(), self.stderr.read_text()[-3000:]
        match = LINE.match(lines[-1])
        assert match and match["word"] == word, lines[-5:]
        return match["phase"], match["state"]
