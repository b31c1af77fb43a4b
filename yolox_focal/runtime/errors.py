"""The error types for mistakes a user can fix (in the command, the exp or the data), and how the
tools show them.

The tools show one as one ``error: ...`` line per line of its message (:func:`print_errors`),
without a traceback, and exit with status 2. Package code (trainer, data check) raises them
without depending on the command-line layer.
"""

import sys

from loguru import logger

__all__ = ["FixableError", "DataError", "UsageError", "print_errors"]


class FixableError(Exception):
    """A problem the user can fix; its message names the bad value and the fix, one line each."""


class DataError(FixableError):
    """A problem in a data set: annotation files, images, class lists."""


class UsageError(FixableError):
    """A mistake in the command or its inputs; shown as one line, without a traceback."""


def print_errors(message):
    """Each line of ``message`` as an ``error: ...`` line on the real stderr, after YOLOX's log."""
    # YOLOX's setup_logger reroutes sys.stderr into its log, and its terminal sink is queued:
    # let the queue drain, then print last, on the real stderr.
    logger.complete()
    for line in str(message).splitlines() or [""]:
        print(f"error: {line}", file=sys.__stderr__)
