"""A tool run in its own process group, watched and interrupted as a terminal would (tests/test_faults.py,
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
LINE = re.compile(r"^interrupted: stopped during (?P<phase>.+?); (?P<state>.+)$")


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

    def interrupt(self, sig=signal.SIGINT):
        """Send ``sig`` to the run's group; returns its exit status, asserting it ends within the bound."""
        os.killpg(self.process.pid, sig)
        try:
            return self.process.wait(timeout=EXIT_BOUND)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
            raise AssertionError(f"still running {EXIT_BOUND} s after {sig.name}:\n{self.stderr.read_text()[-3000:]}")

    def stop_line(self):
        """The one 'interrupted:' line, checked to be the last line and the only one."""
        lines = self.stderr.read_text().strip().splitlines()
        assert sum(line.startswith("interrupted:") for line in lines) == 1, lines[-20:]
        assert "Traceback" not in self.stderr.read_text(), self.stderr.read_text()[-3000:]
        match = LINE.match(lines[-1])
        assert match, lines[-5:]
        return match["phase"], match["state"]
