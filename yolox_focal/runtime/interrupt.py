"""Ctrl-C for the tools: the run stops within moments, at any point, with one line saying where it
stopped and which checkpoint holds the last good state, and exit status 130.

Python's default (``KeyboardInterrupt`` raised wherever the main thread is) can hang a YOLOX run
for good: YOLOX's ``setup_logger`` sends log records through loguru's ``enqueue=True``
multiprocessing queue, and an exception inside a write leaves the queue's lock held or a record
half sent, so that loguru's worker thread, and the exit that waits for it, never finish. An
exception in the middle of a checkpoint write would stop a run with the file half written.

So the tools handle SIGINT themselves (``install``, first thing in each tool):

- inside loguru's code or a ``protected`` block (a checkpoint write), the stop waits until that
  code is left (the outermost loguru call's return, seen by a profile function set for the wait;
  a protected block stops on leaving it);
- anywhere else, the handler stops the process itself: it lets the queued log lines out (for at
  most a second), prints the line, and ends with ``os._exit(130)``: no unwinding through code that
  might wait on a lock the interrupted code holds, no exit handlers that might wait on loguru;
- a second Ctrl-C stops at once.

Only stdlib imports: a tool installs the handler before importing torch or YOLOX.
"""

import contextlib
import os
import signal
import sys
import threading

__all__ = ["install", "set_phase", "watch_run", "last_good_checkpoint", "protected", "stop_if_requested",
           "stop_line", "EXIT_STATUS"]

EXIT_STATUS = 130  # 128 + SIGINT, what a shell reports for a Ctrl-C
RETRY_SECONDS = 0.05
LOG_DRAIN_SECONDS = 1.0

_state = {"pid": None, "phase": "start-up", "folder": None, "checkpoint": None, "requested": 0, "protected": 0}


def install():
    """Handle SIGINT in this process (not in the data-loader workers it forks) as described above."""
    _state["pid"] = os.getpid()
    signal.signal(signal.SIGINT, _on_signal)
    if hasattr(signal, "SIGALRM"):
        signal.signal(signal.SIGALRM, _on_signal)


def set_phase(phase):
    """What the process is doing now, as the stop line names it: 'training (epoch 2/10, iter 5/40)'."""
    _state["phase"] = phase


def watch_run(folder):
    """A training run writing its checkpoints to ``folder``: the stop line names the last good one."""
    _state["folder"] = folder


def last_good_checkpoint(path, epochs):
    """``path`` holds a complete checkpoint after ``epochs`` epochs: just written, or resumed from."""
    _state["checkpoint"] = (path, epochs)


@contextlib.contextmanager
def protected(phase):
    """A block a Ctrl-C must not cut short (a checkpoint write): the stop comes when it ends."""
    before = _state["phase"]
    _state["phase"] = phase
    _state["protected"] += 1
    try:
        yield
    finally:
        _state["protected"] -= 1
        if _state["requested"] and not _state["protected"]:
            _state["phase"] = f"{phase} (finished first)"
            _stop()
        _state["phase"] = before


def stop_if_requested():
    """Stop now if a Ctrl-C came (and waits for its moment): for the failures it causes."""
    if _state["requested"] and os.getpid() == _state["pid"]:
        _stop()


def stop_line():
    """The one line printed on a stop."""
    line = f"interrupted: stopped during {_state['phase']}"
    if _state["folder"] is None:
        return line + "; no checkpoint was changed"
    if _state["checkpoint"] is not None:
        path, epochs = _state["checkpoint"]
        good = f"{path} (after epoch {epochs})" if epochs is not None else path
    else:
        latest = os.path.join(_state["folder"], "latest_ckpt.pth")
        good = latest if os.path.isfile(latest) else None
    if good is None:
        return line + "; no checkpoint was written yet"
    return line + f"; the last good state is {good}: continue with --resume"


def _on_signal(signum, frame):
    if os.getpid() != _state["pid"]:  # a forked data-loader worker: Python's default, which torch handles
        raise KeyboardInterrupt
    if signum == signal.SIGINT:
        _state["requested"] += 1
        if _state["requested"] > 1:  # a second Ctrl-C: now
            _write_line(stop_line() + " (second Ctrl-C: not waiting)")
            os._exit(EXIT_STATUS)
    elif not _state["requested"]:  # a SIGALRM that is not ours
        return
    if _state["protected"]:
        return  # the protected block stops on leaving it
    if _in_loguru(frame):
        # stop the moment the outermost loguru call returns (a tight logging loop is inside loguru
        # nearly all the time: polling alone could miss every way out); the timer checks as well
        sys.setprofile(_on_leaving_loguru)
        signal.setitimer(signal.ITIMER_REAL, RETRY_SECONDS)
        return
    _stop()


def _on_leaving_loguru(frame, event, arg):
    if event == "return" and _is_loguru(frame) and not _is_loguru(frame.f_back) and not _state["protected"]:
        _stop()


def _is_loguru(frame):
    loguru = sys.modules.get("loguru")
    return (frame is not None and loguru is not None
            and frame.f_code.co_filename.startswith(os.path.dirname(loguru.__file__)))


def _in_loguru(frame):
    while frame is not None:
        if _is_loguru(frame):
            return True
        frame = frame.f_back
    return False


def _stop():
    sys.setprofile(None)
    _drain_logs()
    for stream in (sys.__stdout__, sys.__stderr__):
        with contextlib.suppress(Exception):  # a stream the interrupted code was writing to
            stream.flush()
    _write_line(stop_line())
    os._exit(EXIT_STATUS)


def _drain_logs():
    """Let loguru's queued lines out (train_log.txt, the terminal), for at most a moment."""
    loguru = sys.modules.get("loguru")
    if loguru is None:
        return
    drain = threading.Thread(target=loguru.logger.complete, daemon=True)
    drain.start()
    drain.join(LOG_DRAIN_SECONDS)


def _write_line(line):
    os.write(2, ("\n" + line + "\n").encode("utf-8", "replace"))
