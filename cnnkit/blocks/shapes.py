"""The textbook output-size formulas for convolution and pooling layers."""
from __future__ import annotations

import math


def conv_output_size(w: int, f: int, p: int = 0, s: int = 1) -> int:
    """Output width of a convolution: W_out = (W - F + 2P) / S + 1, rounded down.

    Args:
        w: input width W. f: filter (kernel) width F. p: zero padding P on each side.
        s: stride S.

    Returns:
        The output width. Keras 'valid' padding is P = 0; 'same' padding with an odd
        F is P = (F - 1) / 2, which gives ceil(W / S) as Keras does.

    Example:
        >>> conv_output_size(32, 5, 0, 1)
        28
    """
    for name, value in (("w", w), ("f", f), ("s", s)):
        if value < 1:
            raise ValueError(f"{name} must be >= 1. Received: {name}={value}")
    if p < 0:
        raise ValueError(f"p must be >= 0. Received: p={p}")
    if f > w + 2 * p:
        raise ValueError(f"The filter is wider than the padded input. Received: w={w}, f={f}, p={p}")
    return math.floor((w - f + 2 * p) / s) + 1


def pool_output_size(w: int, f: int, s: int | None = None) -> int:
    """Output width of a pooling layer: W_out = (W - F) / S + 1, rounded down.

    Args:
        w: input width. f: pool width. s: stride (default: `f`, as Keras does).

    Example:
        >>> pool_output_size(300, 2, 2)
        150
    """
    return conv_output_size(w, f, 0, s if s is not None else f)
