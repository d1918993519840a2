"""The blocking API: the same methods as :class:`strongroom.Strongroom`,
returning results instead of awaitables. Each call releases the GIL while it
runs on the extension's runtime, so other Python threads keep going."""

from ._native import BlockingStrongroom as Strongroom

__all__ = ["Strongroom"]
