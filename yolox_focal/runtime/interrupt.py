"""Ctrl-C and SIGTERM for the tools: the run stops within moments, at any point, with one line saying
where it stopped and which checkpoint holds the last good state, and exit status 130 (Ctrl-C) or
143 (SIGTERM: what Slurm, Kubernetes, systemd and ``timeout`` send before SIGKILL, often to the
whole process group, data-loader workers included).

Python's default (``KeyboardInterrupt`` raised wherever the main thread is) can hang a YOLOX run
for good: YOLOX's ``setup_logger`` sends log records through loguru's ``enqueue=True``
multiprocessing queue, and an exception inside a write leaves the queue's lock held or a record
half sent, so that loguru's worker thread, and the exit that waits for it, never finish. An
exception in the middle of a checkpoint write would stop a run with the file half written.

So the tools handle SIGINT and SIGTERM themselves (``install``, first thing in each tool; the
trainer of the GPU route, ``checkpoints.WholeCheckpointTrainer``, installs it too):

- inside loguru's code or a ``protected`` block (a checkpoint write), the stop waits until that
  code is left (the outermost loguru call's return, seen by a profile function set for the wait;
  a protected block stops on leaving it);
- anywhere else, the handler stops the process itself: it lets the queued log lines out (for at
  most a second), prints the line, and ends with ``os._exit(130)``: no unwinding through code that
  might wait on a lock the interrupted code holds, no exit handlers that might wait on loguru;
- a second Ctrl-C stops at once; a repeated SIGTERM changes nothing (a stop is under way);
- a forked data-loader worker ends quietly (``KeyboardInterrupt``, which torch's worker loop takes
  as the end), so a signal to the whole group shows no worker's traceback;
- a launcher of several processes (``launching``) passes the signal on to them, waits for them to
  stop (each finishes a checkpoint write first) and alone prints the line: its processes stop
  without one.

Only stdlib imports at the top: a tool installs the handler before importing torch or YOLOX.
"""

import contextlib
import os
import signal
import sys
import threading

__all__ = ["install", "set_phase", "watch_run", "last_good_checkpoint", "last_good_state", "protected",
           "launching", "on_stop", "stop_if_requested", "stop_line", "EXIT_STATUS", "EXIT_STATUSES"]

EXIT_STATUS = 130  # 128 + SIGINT, what a shell reports for a Ctrl-C
# 128 + the signal, what a shell reports for a process the signal ended
EXIT_STATUSES = {signal.SIGINT: EXIT_STATUS, signal.SIGTERM: 128 + signal.SIGTERM}
_WORDS = {signal.SIGINT: "interrupted", signal.SIGTERM: "terminated"}
RETRY_SECONDS = 0.05
LOG_DRAIN_SECONDS = 1.0
# Set by a launcher for the processes it starts, to its own process id: they stop without a line.
LAUNCHER_ENV = "YOLOX_FOCAL_LAUNCHER_PID"

_state = {"pid": None, "phase": "start-up", "folder": None, "checkpoint": None, "requested": 0, "signal": None,
          "protected": 0, "speaks": True, "launching": False, "on_stop": []}


def install(speaks=True):
    """Handle SIGINT and SIGTERM in this process (not in the data-loader workers it forks) as
    described above. ``speaks``: whether a stop prints the line; never in a process started by a
    launcher of ours, which prints it."""
    _state["pid"] = os.getpid()
    _state["speaks"] = speaks and os.environ.get(LAUNCHER_ENV) in (None, str(os.getpid()))
    for signum in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGALRM", None)):
        if signum is not None:
            signal.signal(signum, _on_signal)


def set_phase(phase):
    """What the process is doing now, as the stop line names it: 'training (epoch 2/10, iter 5/40)'."""
    _state["phase"] = phase


def watch_run(folder):
    """A training run writing its checkpoints to ``folder``: the stop line names the last good one."""
    _state["folder"] = folder


def last_good_checkpoint(path, epochs):
    """``path`` holds a complete checkpoint after ``epochs`` epochs: just written, or resumed from."""
    _state["checkpoint"] = (path, epochs)


def on_stop(callback):
    """Call ``callback()`` when a signal stops the process (which then skips exit handlers)."""
    _state["on_stop"].append(callback)


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


@contextlib.contextmanager
def launching():
    """The block in which this process starts and waits for the processes of a run: a signal is
    passed on to them (as SIGTERM: a Ctrl-C passed on twice would not wait for a checkpoint
    write), and once they have stopped, this process stops with the line."""
    saved = os.environ.get(LAUNCHER_ENV)
    os.environ[LAUNCHER_ENV] = str(os.getpid())
    _state["launching"] = True
    try:
        yield
    finally:
        _state["launching"] = False
        if saved is None:
            os.environ.pop(LAUNCHER_ENV, None)
        else:
            os.environ[LAUNCHER_ENV] = saved
        if _state["requested"]:
            _state["checkpoint"] = _written_by_the_run(_state["checkpoint"])
            _stop()


def _written_by_the_run(known):
    """The run's processes wrote the checkpoints: the latest one and its epoch, read from the file."""
    latest = os.path.join(_state["folder"] or "", "latest_ckpt.pth")
    if _state["folder"] is None or not os.path.isfile(latest):
        return known
    epochs = None
    with contextlib.suppress(Exception):  # the line is worth having without the epoch
        import torch

        epochs = torch.load(latest, map_location="cpu", mmap=True, weights_only=True).get("start_epoch")
    return latest, epochs


def stop_if_requested():
    """Stop now if a Ctrl-C came (and waits for its moment): for the failures it causes."""
    if _state["requested"] and os.getpid() == _state["pid"]:
        _stop()


def last_good_state():
    """'the last good state is PATH (after epoch N): continue with --resume' for a training run,
    'no checkpoint was written yet' before its first, 'no checkpoint was changed' for other tools."""
    if _state["folder"] is None:
        return "no checkpoint was changed"
    if _state["checkpoint"] is not None:
        path, epochs = _state["checkpoint"]
        good = f"{path} (after epoch {epochs})" if epochs is not None else path
    else:
        latest = os.path.join(_state["folder"], "latest_ckpt.pth")
        good = latest if os.path.isfile(latest) else None
    if good is None:
        return "no checkpoint was written yet"
    return f"the last good state is {good}: continue with --resume"


def stop_line():
    """The one line printed on a stop: 'interrupted: ...' after a Ctrl-C, 'terminated: ...' after SIGTERM."""
    return f"{_WORDS.get(_state['signal'], 'interrupted')}: stopped during {_state['phase']}; {last_good_state()}"


def _on_signal(signum, frame):
    if os.getpid() != _state["pid"]:  # a forked data-loader worker: Python's default, which torch handles
        raise KeyboardInterrupt
    if signum in EXIT_STATUSES:
        if _state["requested"] and signum == signal.SIGTERM:
            return  # a stop is under way (a launcher, a process group, torch's join: all send SIGTERM)
        _state["requested"] += 1
        _state["signal"] = _state["signal"] or signum
        if hasattr(signal, "SIGCHLD"):
            # The data-loader workers end too (a group's signal; spawned ones die of SIGTERM): torch's
            # SIGCHLD check would raise about it in the middle of a checkpoint write.
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        if _state["requested"] > 1:  # a Ctrl-C after a stop was asked for: now
            _run_on_stop()
            _write_line(stop_line() + " (second Ctrl-C: not waiting)")
            os._exit(EXIT_STATUSES[_state["signal"]])
        if _state["launching"]:
            _pass_on()
            return  # the launch ends once its processes have stopped
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


def _pass_on():
    """SIGTERM to the processes this one started (multiprocessing's: the run's, not the group's)."""
    import multiprocessing

    for child in multiprocessing.active_children():
        with contextlib.suppress(OSError):  # gone already
            os.kill(child.pid, signal.SIGTERM)


def _run_on_stop():
    for callback in _state["on_stop"]:
        with contextlib.suppress(Exception):  # the stop goes on whatever a clean-up meets
            callback()


def _stop():
    sys.setprofile(None)
    _drain_logs()
    for stream in (sys.__stdout__, sys.__stderr__):
        with contextlib.suppress(Exception):  # a stream the interrupted code was writing to
            stream.flush()
    _run_on_stop()
    if _state["speaks"]:
        _write_line(stop_line())
    os._exit(EXIT_STATUSES.get(_state["signal"], EXIT_STATUS))


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
