"""TensorFlow's native start-up lines: kept off the terminal, anything else passed through.

TensorFlow 2.21 prints, from C++ and regardless of `TF_CPP_MIN_LOG_LEVEL`, half a dozen lines at
import and at device start-up (oneDNN on, no CUDA driver, CPU instructions it was not built for,
`failed call to cuInit`); they are the first thing a user of `cnnkit train` saw, twice. While
`quiet_native_stderr()` is active, file descriptor 2 goes to a temporary file; on leaving, every
captured line that is not such a start-up line is written to stderr, so real warnings and errors
(and a failed import's message) still show. A user who sets `TF_CPP_MIN_LOG_LEVEL` themselves
sees everything (`cnnkit/__init__.py` decides).
"""
from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile

# Whether cnnkit filters them: set by `cnnkit/__init__.py` (False when the user set TF_CPP_MIN_LOG_LEVEL).
FILTER = True
# Set to "1" beside TF_CPP_MIN_LOG_LEVEL when cnnkit, not the user, set that level.
OWN_LEVEL = "CNNKIT_SET_TF_CPP_MIN_LOG_LEVEL"

# Lines TensorFlow prints at every start on a machine without a GPU (or with a CPU newer than its
# build): informational, the same each time.
STARTUP_LINE = re.compile(
    r"All log messages before absl::InitializeLog\(\) is called"
    r"|port\.cc:\d+\] oneDNN custom operations are on"
    r"|cudart_stub\.cc:\d+\] Could not find cuda drivers"
    r"|cuda_platform\.cc:\d+\] failed call to cuInit"
    r"|cpu_feature_guard\.cc:\d+\] This TensorFlow binary is optimized"
    r"|^To enable the following instructions: .*rebuild TensorFlow with the appropriate compiler flags")


# What libjpeg prints for a truncated or corrupt JPEG that it gives up on, without the file's
# name; cnnkit names the file itself ("Skipped PATH: cannot be decoded as an image").
UNDECODABLE_IMAGE_LINE = re.compile(r"^Improper call to JPEG library in state \d+\s*$")


def is_startup_line(line: str) -> bool:
    """Whether `line` (one line of stderr) is one of TensorFlow's start-up lines."""
    return STARTUP_LINE.search(line) is not None


def is_decoder_line(line: str) -> bool:
    """Whether `line` is a start-up line or libjpeg's nameless line for a file it cannot decode."""
    return is_startup_line(line) or UNDECODABLE_IMAGE_LINE.search(line) is not None


@contextlib.contextmanager
def quiet_native_stderr(enabled: bool = True, drop=is_startup_line):
    """Within the block, native and Python writes to stderr are captured; after it, every line
    for which `drop(line)` is false is written to stderr, in order (also when the block raises).
    With `enabled` False, or when stderr has no file descriptor, nothing is captured."""
    saved = captured = None
    if enabled:
        try:  # no descriptor 2, or no writable temporary folder: nothing is captured
            captured = tempfile.TemporaryFile()
            saved = os.dup(2)
        except OSError:
            if captured is not None:
                captured.close()
            saved = captured = None
    if captured is None:
        yield
        return
    with captured:
        sys.stderr.flush()
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            text = captured.read().decode("utf-8", errors="replace")
            kept = [line for line in text.splitlines(keepends=True) if not drop(line)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()
