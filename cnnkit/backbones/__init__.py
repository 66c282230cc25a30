"""Backbones by name: cnnkit's own (`own.py`) and keras.applications (`applications.py`).

    >>> import cnnkit.backbones as backbones
    >>> model = backbones.get("resnet20", (32, 32, 3))
"""
from cnnkit.backbones.registry import BACKBONES, describe, get, info, names, register
from cnnkit.backbones import own, applications  # noqa: F401  (fill the registry)

__all__ = ["get", "names", "info", "describe", "register", "BACKBONES"]
