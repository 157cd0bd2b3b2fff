"""Inner loops compiled to machine code (numba), for the few loops NumPy cannot vectorise well
(the offset vote, the segment gather): one decorator, so every kernel compiles alike."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

from numba import njit

F = TypeVar("F", bound=Callable[..., Any])


def compiled(fn: F) -> F:
    """``fn`` compiled on first call (no Python objects inside: numba's nopython mode, the GIL
    released), the machine code cached beside its module (or in numba's user-wide cache) for
    the next process; where no cache location is writable (a read-only install, no home),
    compiled in every process instead."""
    try:
        return cast(F, njit(cache=True, nogil=True)(fn))
    except RuntimeError:
        return cast(F, njit(nogil=True)(fn))
