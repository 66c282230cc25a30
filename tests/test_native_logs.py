"""cnnkit.native_logs: TensorFlow's start-up lines kept off stderr, everything else passed on."""
import os
import subprocess
import sys

import pytest

from cnnkit import native_logs

STARTUP = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n",
    "I0000 00:00:1796517606.855559    3442 port.cc:153] oneDNN custom operations are on. You may see ...\n",
    "I0000 00:00:1796517606.855887    3442 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will not be used.\n",
    "E0000 00:00:1796517687.765230    4134 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error\n",
    "I0000 00:00:1796518063.808108    7156 cpu_feature_guard.cc:227] This TensorFlow binary is optimized to use ...\n",
    "To enable the following instructions: AVX2 AVX512F FMA, in other operations, rebuild TensorFlow with the "
    "appropriate compiler flags.\n",
]
REAL = "W0000 00:00:1.0    1 op_kernel.cc:1857] OP_REQUIRES failed at example: out of memory\n"


def test_startup_lines_are_recognised_and_others_not():
    assert all(native_logs.is_startup_line(line) for line in STARTUP)
    assert not native_logs.is_startup_line(REAL)
    assert not native_logs.is_startup_line("error: data.csv has no column 'text'\n")


def test_captured_stderr_is_replayed_without_the_startup_lines(capfd):
    with native_logs.quiet_native_stderr():
        for line in STARTUP[:3]:
            os.write(2, line.encode())  # as TensorFlow's C++ writes: to the descriptor itself
        os.write(2, REAL.encode())
    assert capfd.readouterr().err == REAL


def test_lines_are_replayed_when_the_block_raises(capfd):
    with pytest.raises(ImportError):
        with native_logs.quiet_native_stderr():
            os.write(2, (STARTUP[1] + "ImportError: libfoo.so: cannot open shared object file\n").encode())
            raise ImportError("libfoo.so")
    assert capfd.readouterr().err == "ImportError: libfoo.so: cannot open shared object file\n"


def test_disabled_it_captures_nothing(capfd):
    with native_logs.quiet_native_stderr(enabled=False):
        os.write(2, STARTUP[2].encode())
    assert capfd.readouterr().err == STARTUP[2]


def test_without_a_temporary_folder_nothing_is_captured(capfd, monkeypatch):
    def no_space(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(native_logs.tempfile, "TemporaryFile", no_space)
    with native_logs.quiet_native_stderr():
        os.write(2, STARTUP[2].encode())
    assert capfd.readouterr().err == STARTUP[2]


def test_importing_cnnkit_prints_no_startup_lines():
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    done = subprocess.run([sys.executable, "-c", "import cnnkit, keras; keras.ops.add(1, 1)"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert not [line for line in done.stderr.splitlines() if native_logs.is_startup_line(line)], done.stderr


def test_a_process_started_by_cnnkit_filters_too_but_a_users_level_turns_the_filter_off():
    """cnnkit sets TF_CPP_MIN_LOG_LEVEL for TensorFlow and marks it as its own: a child process
    (`python -m cnnkit` from a test or script, a worker) inherits both and still filters; a level
    the user set shows everything."""
    code = "import cnnkit.native_logs as n, cnnkit; print(n.FILTER)"
    users = {k: v for k, v in os.environ.items() if k != native_logs.OWN_LEVEL}
    users["TF_CPP_MIN_LOG_LEVEL"] = "0"
    assert subprocess.run([sys.executable, "-c", code], env=users, capture_output=True, text=True,
                          timeout=120).stdout.strip() == "False"
    inherited = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", **{native_logs.OWN_LEVEL: "1"})
    assert subprocess.run([sys.executable, "-c", code], env=inherited, capture_output=True, text=True,
                          timeout=120).stdout.strip() == "True"
