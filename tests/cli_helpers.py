"""Running the tools as a user does: a subprocess from the repository root."""

import subprocess
import sys

from helpers import REPO

TINY = ["input_size", "(128, 128)", "test_size", "(128, 128)", "random_size", "(4, 4)",
        "data_num_workers", "0", "print_interval", "1", "eval_interval", "1", "no_aug_epochs", "0",
        "warmup_epochs", "1"]


def run_tool(tool, *args, check=True):
    result = subprocess.run([sys.executable, str(REPO / "tools" / tool), *map(str, args)],
                            cwd=REPO, capture_output=True, text=True, timeout=600)
    if check and result.returncode != 0:
        raise AssertionError(f"{tool} failed ({result.returncode}):\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}")
    return result


def error_line(result):
    """The one line a refused command prints: stderr's last line, checked to be the only error."""
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ")
    return last
