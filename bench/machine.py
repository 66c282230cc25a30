"""The machine a benchmark row ran on, for the `machine` field of bench/results/*.jsonl: speeds
differ several-fold between the machines of one kind (AVX2 only, AVX-512 with bfloat16, AMX)."""
import os
import platform


def describe() -> str:
    """The CPU model, its vector extensions, the core count and the Python version, e.g.
    "Intel(R) Xeon(R) Processor (AVX-512 + AMX), 2 cores, Python 3.11.7"."""
    model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.machine())
    flags = next((l for l in open("/proc/cpuinfo") if l.startswith("flags")), "")
    simd = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"
    if " amx_bf16" in flags:  # oneDNN runs bfloat16 convolutions on AMX tiles: 3.5x its float32 rate here
        simd += " + AMX"
    elif " avx512_bf16" in flags:  # bfloat16 dot products without AMX (AMD Zen 4/5): up to 1.9x float32
        simd += " + AVX512-BF16"
    return f"{model} ({simd}), {os.cpu_count()} cores, Python {platform.python_version()}"
