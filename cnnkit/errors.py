"""The one exception type that cnnkit raises for problems a user can fix.

The CLI prints a `CnnkitError` as one line (no traceback unless `--debug`), so its
message must name the file or setting at fault and what to do about it.
"""


class CnnkitError(Exception):
    """A user-facing error: bad input, bad configuration, or a missing file."""
