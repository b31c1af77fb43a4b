"""The error type for mistakes a user can fix: in the command, the exp or the data.

The tools show it as one ``error: ...`` line per line of its message, without a traceback, and
exit with status 2. Package code (trainer, data check) raises it without depending on the
command-line layer.
"""

__all__ = ["FixableError", "DataError"]


class FixableError(Exception):
    """A problem the user can fix; its message names the bad value and the fix, one line each."""


class DataError(FixableError):
    """A problem in a data set: annotation files, images, class lists."""
