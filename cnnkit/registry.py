"""Name -> builder registries (backbones, tasks), filled by a decorator.

Imports nothing of cnnkit but `errors`, so any module may use it.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

from cnnkit.errors import CnnkitError


@dataclasses.dataclass(frozen=True)
class Entry:
    """One registered builder and what is known about it without building it."""

    name: str
    builder: Callable[..., Any]
    meta: dict


class Registry:
    """A mapping of names to builders, filled with `@registry.register(name, **meta)`.

    Args:
        kind: what is registered ("backbone", "task"), used in error messages.

    Example:
        >>> things = Registry("thing")
        >>> @things.register("one", size=1)
        ... def make_one():
        ...     return 1
        >>> things.get("one").builder()
        1
    """

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Entry] = {}

    def register(self, name: str | None = None, *, overwrite: bool = False, **meta):
        """Decorator that registers `fn` under `name` (default: the function's name)."""

        def decorator(fn):
            key = name or fn.__name__
            if key in self._entries and not overwrite:
                raise CnnkitError(
                    f"A {self.kind} named '{key}' is already registered; pick another "
                    f"name or pass overwrite=True."
                )
            self._entries[key] = Entry(key, fn, dict(meta))
            return fn

        return decorator

    def get(self, name: str) -> Entry:
        """The entry for `name`; an unknown name raises an error listing the known ones."""
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(sorted(self._entries))
            raise CnnkitError(
                f"Unknown {self.kind} '{name}'. Known {self.kind}s: {known}."
            ) from None

    def names(self) -> list[str]:
        """All registered names, sorted."""
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        return name in self._entries
