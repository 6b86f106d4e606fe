"""A small evented-attribute mechanism (style.md rule 2, after napari's EmitterGroup).

``Emitter.connect`` keeps weak references to bound methods, so a closed view is never
called and never keeps the model alive. ``blocker()`` silences an emitter while a view
writes a value back. Handlers are synchronous and cheap.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["Emitter", "EmitterGroup"]

Handler = Callable[..., Any]


class Emitter:
    def __init__(self, name: str) -> None:
        self.name = name
        self._refs: list[weakref.WeakMethod[Any] | Callable[[], Handler | None]] = []
        self._blocked = 0

    def connect(self, handler: Handler) -> Handler:
        if hasattr(handler, "__self__") and hasattr(handler, "__func__"):
            self._refs.append(weakref.WeakMethod(handler))
        else:
            self._refs.append(lambda h=handler: h)
        return handler

    def disconnect(self, handler: Handler) -> None:
        self._refs = [r for r in self._refs if r() not in (None, handler)]

    def emit(self, *args: Any) -> None:
        if self._blocked:
            return
        dead = False
        for ref in list(self._refs):
            handler = ref()
            if handler is None:
                dead = True
                continue
            handler(*args)
        if dead:
            self._refs = [r for r in self._refs if r() is not None]

    @contextmanager
    def blocker(self) -> Iterator[None]:
        self._blocked += 1
        try:
            yield
        finally:
            self._blocked -= 1

    def __len__(self) -> int:
        return sum(1 for r in self._refs if r() is not None)


class EmitterGroup:
    """``group.state``, ``group.appended``...: one Emitter per named event."""

    def __init__(self, *names: str) -> None:
        self._names = names
        for name in names:
            setattr(self, name, Emitter(name))

    @property
    def names(self) -> tuple[str, ...]:
        return self._names

    def __getitem__(self, name: str) -> Emitter:
        if name not in self._names:
            raise KeyError(f"no event named {name!r}; known: {', '.join(self._names)}")
        emitter: Emitter = getattr(self, name)
        return emitter
