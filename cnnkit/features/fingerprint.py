"""TensorFlow's fast string hash in plain Python, for token-id exports served outside TensorFlow.

`tf.strings.to_hash_bucket_fast(s, buckets)` is `Fingerprint64(s) % buckets`, where TensorFlow's
Fingerprint64 is FarmHash's `Fingerprint64` (farmhashna::Hash64, which for strings of up to 32
bytes is CityHash64's). The subwords of a text model hash character 3-5-grams: at most 20 UTF-8
bytes, so only FarmHash's paths for 0-16 and 17-32 bytes are written here; longer input is refused
rather than hashed differently from TensorFlow.
"""
from __future__ import annotations

MASK = (1 << 64) - 1
K0 = 0xC3A5C85C97CB3127
K1 = 0xB492B66FBE98F273
K2 = 0x9AE16A3B2F90404F
LONGEST = 32  # bytes this module hashes as TensorFlow does


def _fetch64(data: bytes, at: int) -> int:
    return int.from_bytes(data[at:at + 8], "little")


def _fetch32(data: bytes, at: int) -> int:
    return int.from_bytes(data[at:at + 4], "little")


def _rotate(value: int, shift: int) -> int:
    return value if shift == 0 else ((value >> shift) | (value << (64 - shift))) & MASK


def _shift_mix(value: int) -> int:
    return value ^ (value >> 47)


def _hash_len16(u: int, v: int, mul: int) -> int:
    a = ((u ^ v) * mul) & MASK
    a ^= a >> 47
    b = ((v ^ a) * mul) & MASK
    b ^= b >> 47
    return (b * mul) & MASK


def _hash_len0to16(data: bytes) -> int:
    n = len(data)
    if n >= 8:
        mul = (K2 + n * 2) & MASK
        a = (_fetch64(data, 0) + K2) & MASK
        b = _fetch64(data, n - 8)
        c = (_rotate(b, 37) * mul + a) & MASK
        d = ((_rotate(a, 25) + b) * mul) & MASK
        return _hash_len16(c, d, mul)
    if n >= 4:
        mul = (K2 + n * 2) & MASK
        return _hash_len16((n + (_fetch32(data, 0) << 3)) & MASK, _fetch32(data, n - 4), mul)
    if n > 0:
        y = (data[0] + (data[n >> 1] << 8)) & 0xFFFFFFFF
        z = (n + (data[n - 1] << 2)) & 0xFFFFFFFF
        return (_shift_mix(((y * K2) & MASK) ^ ((z * K0) & MASK)) * K2) & MASK
    return K2


def _hash_len17to32(data: bytes) -> int:
    n = len(data)
    mul = (K2 + n * 2) & MASK
    a = (_fetch64(data, 0) * K1) & MASK
    b = _fetch64(data, 8)
    c = (_fetch64(data, n - 8) * mul) & MASK
    d = (_fetch64(data, n - 16) * K2) & MASK
    return _hash_len16((_rotate((a + b) & MASK, 43) + _rotate(c, 30) + d) & MASK,
                       (a + _rotate((b + K2) & MASK, 18) + c) & MASK, mul)


def fingerprint64(data: bytes) -> int:
    """TensorFlow's Fingerprint64 (FarmHash) of `data`, at most LONGEST bytes: an int in [0, 2**64).

    Raises:
        ValueError: for longer `data` (FarmHash's other paths are not written here).
    """
    if len(data) > LONGEST:
        raise ValueError(f"fingerprint64 hashes at most {LONGEST} bytes (character n-grams); received {len(data)}")
    return _hash_len0to16(data) if len(data) <= 16 else _hash_len17to32(data)


def hash_bucket(text: str, buckets: int) -> int:
    """`tf.strings.to_hash_bucket_fast(text, buckets)` of one string: its UTF-8 bytes' fingerprint mod `buckets`."""
    return fingerprint64(text.encode("utf-8")) % buckets
